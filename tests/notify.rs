//! Change notifications (`subscribe`, `on_change`, `snapshot`, `watch`):
//! this process's commits, coalescing, callbacks that write, a person's
//! saves in each editor style, broken and half-written saves, another
//! process's commits, own compactions not echoed, `changed()` under a
//! minimal executor and under tokio, 200 watched stores, `iter()` ending
//! when the store is closed.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use persisted_state::{Change, Error, Origin, Persisted, Store, Watch};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Config {
    port: u16,
    name: String,
    tags: Vec<String>,
    limits: BTreeMap<String, u64>,
}

/// Tests that spawn children or edit files serialize (a child inherits
/// open files and locks until it execs).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn watched(path: &Path) -> Store<Config> {
    Store::<Config>::options()
        .watch(Watch::Auto)
        .open(path)
        .unwrap()
}

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(400);

#[test]
fn own_commits_wake_a_subscriber_with_fields_origin_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store: Store<Config> = Store::open(dir.path().join("c.json")).unwrap();
    let sub = store.subscribe();
    assert_eq!(sub.wait_timeout(Duration::from_millis(20)).unwrap(), None);
    let writer = store.clone();
    let thread = std::thread::spawn(move || writer.set_port(8080).unwrap());
    let change = sub.wait_timeout(WAIT).unwrap().expect("a change");
    thread.join().unwrap();
    assert_eq!(change.fields, ["port"]);
    assert_eq!(change.origins, [Origin::ThisProcess]);
    assert_eq!(change.commits, 1);
    assert_eq!(change.seq, 1);
    store
        .transaction(|tx| {
            tx.push_tags("a".into());
            tx.insert_limits("x".into(), 1);
            Ok::<_, Error>(())
        })
        .unwrap();
    store.update(|c| c.name = "api".into()).unwrap();
    let change = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(change.fields, ["name", "tags", "limits"]);
    assert_eq!((change.commits, change.seq), (2, 3));
    // A commit that changes nothing is no change.
    store.update(|c| c.port = 8080).unwrap();
    assert_eq!(sub.wait_timeout(Duration::from_millis(50)).unwrap(), None);
}

#[test]
fn a_subscriber_that_never_waits_holds_nothing_and_gets_everything_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Store<Config> = Store::open(dir.path().join("c.json")).unwrap();
    let idle: Vec<_> = (0..10).map(|_| store.subscribe()).collect();
    let sub = store.subscribe();
    for i in 0..50_000u64 {
        match i % 2 {
            0 => store.set_port((i % 60_000) as u16).unwrap(),
            _ => store
                .insert_limits(format!("k{}", i % 7), i)
                .map(drop)
                .unwrap(),
        }
    }
    let change = sub.wait_timeout(Duration::ZERO).unwrap().expect("at once");
    assert_eq!(change.commits, 50_000);
    assert_eq!(change.seq, 50_000);
    assert_eq!(change.fields, ["port", "limits"]);
    assert_eq!(sub.wait_timeout(Duration::ZERO).unwrap(), None);
    for other in &idle {
        assert_eq!(
            other.wait_timeout(Duration::ZERO).unwrap().unwrap().commits,
            50_000
        );
    }
}

#[test]
fn a_callback_may_write_to_the_store_and_dropping_its_guard_never_blocks_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store: Store<Config> = Store::open(dir.path().join("c.json")).unwrap();
    let (tx, rx) = mpsc::channel();
    let writer = store.clone();
    let guard = store.on_change(move |change: &Change, config: &Config| {
        // Answers a port change by writing the name: a write from inside.
        if change.fields.iter().any(|f| f == "port") {
            writer.set_name(format!("port {}", config.port)).unwrap();
        }
        let _ = tx.send(change.fields.clone());
    });
    store.set_port(7).unwrap();
    let deadline = Instant::now() + WAIT;
    while store.name() != "port 7" {
        assert!(
            Instant::now() < deadline,
            "the callback's write did not land"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(rx.recv_timeout(WAIT).unwrap().contains(&"port".to_string()));
    // Dropped while writers run (and while this thread holds a
    // transaction): returns at once, no deadlock.
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    store.set_port(i).unwrap();
                }
            })
        })
        .collect();
    let tx_guard = store.begin();
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(tx_guard);
    for w in writers {
        w.join().unwrap();
    }
    // Stopped: a later change calls nothing.
    while rx.try_recv().is_ok() {}
    store.set_port(9).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn snapshot_is_shared_while_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store: Store<Config> = Store::open(dir.path().join("c.json")).unwrap();
    let a = store.snapshot();
    let b = store.snapshot();
    assert!(Arc::ptr_eq(&a, &b));
    store.set_port(1).unwrap();
    let c = store.snapshot();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!((a.port, c.port), (0, 1));
}

/// The three ways editors save a file.
#[derive(Clone, Copy, Debug)]
enum Save {
    /// Truncate and write the same file (`O_TRUNC`).
    InPlace,
    /// Write a temp file and rename it over (most editors, atomic tools).
    RenameOver,
    /// Rename the file to a backup, write a new one, remove the backup
    /// (vim's default).
    BackupRename,
}

fn save(path: &Path, text: &str, how: Save) {
    match how {
        Save::InPlace => std::fs::write(path, text).unwrap(),
        Save::RenameOver => {
            let tmp = path.with_extension("json.tmp~");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        Save::BackupRename => {
            let backup = path.with_extension("json~");
            std::fs::rename(path, &backup).unwrap();
            std::fs::write(path, text).unwrap();
            std::fs::remove_file(&backup).unwrap();
        }
    }
}

fn text_with_port(path: &Path, port: u16) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["port"] = port.into();
    serde_json::to_string_pretty(&value).unwrap()
}

#[test]
fn each_editor_save_style_gives_one_file_edit_and_the_watch_survives_them() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let store = watched(&path);
    store.set_name("svc".into()).unwrap();
    store.compact().unwrap();
    let sub = store.subscribe();
    let mut port = 100;
    for how in [Save::InPlace, Save::RenameOver, Save::BackupRename].repeat(2) {
        port += 1;
        save(&path, &text_with_port(&path, port), how);
        let change = sub
            .wait_timeout(WAIT)
            .unwrap()
            .unwrap_or_else(|| panic!("{how:?}: no change"));
        assert_eq!(change.origins, [Origin::FileEdit], "{how:?}");
        assert_eq!(change.fields, ["port"], "{how:?}");
        assert_eq!(change.commits, 1, "{how:?}: one save, one change");
        assert_eq!(store.port(), port);
        assert_eq!(sub.wait_timeout(QUIET).unwrap(), None, "{how:?}: echoed");
        // The program's commits go on on top of the edit.
        store.set_name(format!("svc {port}")).unwrap();
        let own = sub.wait_timeout(WAIT).unwrap().unwrap();
        assert_eq!(own.origins, [Origin::ThisProcess]);
    }
    drop(store);
    let reopened: Store<Config> = Store::open(&path).unwrap();
    assert_eq!(
        (reopened.port(), reopened.name()),
        (port, format!("svc {port}"))
    );
}

#[test]
fn an_empty_or_broken_save_changes_nothing_and_the_fix_is_adopted() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let store = watched(&path);
    store.set_port(5).unwrap();
    store.compact().unwrap();
    let good = std::fs::read_to_string(&path).unwrap();
    let sub = store.subscribe();

    // Half-written: empty for a while, then the text. Never `Default`.
    std::fs::write(&path, "").unwrap();
    assert_eq!(sub.wait_timeout(QUIET).unwrap(), None);
    assert_eq!(store.port(), 5);
    std::fs::write(&path, text_with_port_in(&good, 6)).unwrap();
    let change = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (change.fields.as_slice(), store.port()),
        (&["port".to_string()][..], 6)
    );

    // Broken: an error from the next wait, state and file untouched.
    let broken = "{\n  \"port\": 7,\n  \"name\": \n}\n";
    std::fs::write(&path, broken).unwrap();
    match sub.wait_timeout(WAIT) {
        Err(Error::Parse { line, .. }) => assert!(line >= 3, "line {line}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert_eq!(store.port(), 6);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert_eq!(sub.wait_timeout(QUIET).unwrap(), None, "told once");
    // The fixed save is adopted.
    std::fs::write(&path, text_with_port_in(&good, 8)).unwrap();
    let change = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (change.origins.as_slice(), store.port()),
        (&[Origin::FileEdit][..], 8)
    );
}

fn text_with_port_in(text: &str, port: u16) -> String {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    value["port"] = port.into();
    serde_json::to_string_pretty(&value).unwrap()
}

#[test]
fn own_compactions_and_commits_never_come_back_as_edits() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let store = watched(&path);
    let sub = store.subscribe();
    for i in 0..20 {
        store.set_port(i).unwrap();
        if i % 5 == 0 {
            store.compact().unwrap();
        }
    }
    let change = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(change.origins, [Origin::ThisProcess]);
    std::thread::sleep(QUIET);
    if let Some(late) = sub.wait_timeout(Duration::ZERO).unwrap() {
        assert_eq!(late.origins, [Origin::ThisProcess], "{late:?}");
    }
}

/// A child process that commits to a shared store (`another_process_*`).
#[test]
fn notify_child() {
    let Ok(path) = std::env::var("NOTIFY_CHILD_PATH") else {
        return;
    };
    let store = Store::<Config>::options().shared(true).open(&path).unwrap();
    store.push_tags("from the child".into()).unwrap();
    store.set_port(4242).unwrap();
    println!("DONE");
}

fn child(path: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["notify_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("NOTIFY_CHILD_PATH", path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn another_process_commits_arrive_as_other_process() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let store = Store::<Config>::options()
        .shared(true)
        .watch(Watch::Auto)
        .open(&path)
        .unwrap();
    store.set_name("parent".into()).unwrap();
    let sub = store.subscribe();
    let mut child = child(&path);
    // Read to the end: libtest writes after `DONE`.
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = out.lines().map(Result::unwrap).collect();
    assert!(lines.iter().any(|l| l.ends_with("DONE")), "{lines:?}");
    assert!(child.wait().unwrap().success());
    let mut seen = Change {
        seq: 0,
        fields: Vec::new(),
        origins: Vec::new(),
        commits: 0,
    };
    let deadline = Instant::now() + WAIT;
    while seen.commits < 2 && Instant::now() < deadline {
        if let Some(change) = sub.wait_timeout(Duration::from_millis(200)).unwrap() {
            seen.fields.extend(change.fields);
            seen.origins.extend(change.origins);
            seen.commits += change.commits;
        }
    }
    assert_eq!(seen.commits, 2, "{seen:?}");
    assert!(
        seen.origins.iter().all(|o| *o == Origin::OtherProcess),
        "{seen:?}"
    );
    assert!(seen.fields.contains(&"tags".to_string()) && seen.fields.contains(&"port".to_string()));
    assert_eq!(store.port(), 4242);
    // This process's own commit is not `OtherProcess`.
    store.set_name("again".into()).unwrap();
    let own = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(own.origins, [Origin::ThisProcess]);
}

/// The smallest executor: polls on this thread, parks until woken.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_secs(1));
    }
}

#[test]
fn changed_is_a_future_for_any_executor() {
    let dir = tempfile::tempdir().unwrap();
    let store: Store<Config> = Store::open(dir.path().join("c.json")).unwrap();
    let sub = store.subscribe();
    let writer = store.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer.set_port(1).unwrap();
    });
    let change = block_on(sub.changed()).unwrap();
    assert_eq!(change.fields, ["port"]);
    thread.join().unwrap();

    // A dropped future loses nothing.
    drop(sub.changed());
    store.set_port(2).unwrap();
    assert_eq!(block_on(sub.changed()).unwrap().commits, 1);

    // Under tokio, current-thread, with the commit from a blocking task.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let writer = store.clone();
    let change = runtime.block_on(async {
        let commit = tokio::task::spawn_blocking(move || writer.set_name("t".into()));
        let change = sub.changed().await;
        commit.await.unwrap().unwrap();
        change
    });
    assert_eq!(change.unwrap().fields, ["name"]);

    // Closed: the future ends with an error.
    let closing = store.subscribe();
    drop(store);
    assert!(matches!(
        block_on(closing.changed()),
        Err(Error::Closed { .. })
    ));
}

#[test]
fn iter_ends_when_the_store_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Store<Config> = Store::open(dir.path().join("c.json")).unwrap();
    let sub = store.subscribe();
    let count = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&count);
    let reader = std::thread::spawn(move || {
        for change in sub.iter() {
            counted.fetch_add(change.unwrap().commits, Ordering::SeqCst);
        }
    });
    for i in 0..10 {
        store.set_port(i).unwrap();
    }
    store.close().unwrap();
    reader.join().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 10);
}

#[test]
fn two_hundred_watched_stores_in_one_process() {
    let _serial = serial();
    let root = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..200)
        .map(|i| {
            let dir = root.path().join(format!("s{i}"));
            std::fs::create_dir(&dir).unwrap();
            dir.join("config.json")
        })
        .collect();
    let stores: Vec<Store<Config>> = paths
        .iter()
        .map(|p| {
            let store = watched(p);
            store.set_port(1).unwrap();
            store.compact().unwrap();
            store
        })
        .collect();
    let last = stores.last().unwrap();
    let sub = last.subscribe();
    let path = paths.last().unwrap();
    save(path, &text_with_port(path, 77), Save::RenameOver);
    let change = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(change.origins, [Origin::FileEdit]);
    assert_eq!(last.port(), 77);
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.flush().unwrap();
}

#[test]
fn the_snapshot_engine_tells_its_commits_and_a_persons_saves_apart() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let store = Store::<Config>::options()
        .engine(persisted_state::Engine::Snapshot)
        .watch(Watch::Auto)
        .open(&path)
        .unwrap();
    let sub = store.subscribe();
    store.set_port(1).unwrap();
    store.push_tags("a".into()).unwrap();
    let own = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (own.origins.as_slice(), own.commits),
        (&[Origin::ThisProcess][..], 2)
    );
    assert_eq!(own.fields, ["port", "tags"]);
    // Its own rewrites of the file are not edits.
    assert_eq!(sub.wait_timeout(QUIET).unwrap(), None);
    save(&path, &text_with_port(&path, 9), Save::RenameOver);
    let edit = sub.wait_timeout(WAIT).unwrap().unwrap();
    assert_eq!(edit.origins, [Origin::FileEdit]);
    assert_eq!(
        (edit.fields.as_slice(), store.port()),
        (&["port".to_string()][..], 9)
    );
}
