//! Shared mode: several processes (and several handles of one process) on
//! one store, every commit atomic across all of them, in one order, with
//! reads that see each commit at once (MULTIPROCESS.md §4, S1-S12).
//!
//! Child processes are this test binary run again with
//! `PERSISTED_SHARED_CHILD=<role>` and the store's path in
//! `PERSISTED_SHARED_PATH`. The tests of this file run one at a time: a
//! child forked by one test holds copies of the other tests' lock
//! descriptors until it execs. `PERSISTED_SHARED_SCALE` multiplies the
//! workloads for a soak.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use persisted_state::{Durability, Engine, Error, Mode, Persisted, Store};
use serde::{Deserialize, Serialize};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scale() -> u64 {
    common::soak_size("PERSISTED_SHARED_SCALE", 1)
}

/// A job log: a counter and the items, always advanced together.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Jobs {
    counter: u64,
    items: Vec<String>,
    owners: BTreeMap<String, u64>,
}

fn shared(path: &Path) -> Store<Jobs> {
    Store::options()
        .shared(true)
        .journal_limit(16 * 1024)
        .open(path)
        .unwrap()
}

const ROLE: &str = "PERSISTED_SHARED_CHILD";
const PATH: &str = "PERSISTED_SHARED_PATH";

/// The child side: does what `PERSISTED_SHARED_CHILD` says, then exits.
#[test]
fn shared_child() {
    let (Ok(role), Ok(path)) = (std::env::var(ROLE), std::env::var(PATH)) else {
        return;
    };
    let arg = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (id, count) = (arg("CHILD_ID"), arg("CHILD_COUNT"));
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap(); // end libtest's "test shared_child ... "
    match role.as_str() {
        // `update(|s| s.counter += 1)`, the closure run exactly once.
        "update" => {
            let store = shared(Path::new(&path));
            for _ in 0..count {
                store.update(|s| s.counter += 1).unwrap();
            }
        }
        // Read, then push and set in one transaction; ack each commit.
        "push" => {
            let store = shared(Path::new(&path));
            for i in 0..count {
                let mut tx = store.begin();
                let next = tx.counter + 1;
                tx.push_items(format!("{id}-{i}"));
                tx.set_counter(next);
                tx.commit().unwrap();
                writeln!(out, "ACK {id}-{i}").unwrap();
                out.flush().unwrap();
            }
        }
        // Four threads of one process, each doing `update`.
        "threads" => {
            let store = shared(Path::new(&path));
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        for _ in 0..count {
                            store.update(|s| s.counter += 1).unwrap();
                        }
                    });
                }
            });
        }
        // The same with `Durability::Sync` or the snapshot engine.
        "sync" | "snapshot" => {
            let options = Store::<Jobs>::options().shared(true);
            let store = match role.as_str() {
                "sync" => options.durability(Durability::Sync),
                _ => options.engine(Engine::Snapshot),
            }
            .open(&path)
            .unwrap();
            for _ in 0..count {
                store.update(|s| s.counter += 1).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
    writeln!(out, "DONE").unwrap();
}

fn spawn(role: &str, path: &Path, id: u64, count: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["shared_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .env("CHILD_ID", id.to_string())
        .env("CHILD_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for a child and checks it finished its work.
fn finish(mut child: Child) {
    let stdout = child.stdout.take().unwrap();
    // Read to the end: libtest writes after `DONE`.
    let lines: Vec<String> = BufReader::new(stdout).lines().map(Result::unwrap).collect();
    let done = lines.iter().any(|line| line == "DONE");
    assert!(child.wait().unwrap().success() && done, "a child failed");
}

fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.json");
    (dir, path)
}

#[test]
fn s1_four_processes_by_five_thousand_updates_lose_nothing() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let m = 5_000 * scale();
    let started = Instant::now();
    let children: Vec<_> = (0..4).map(|id| spawn("update", &path, id, m)).collect();
    children.into_iter().for_each(finish);
    let store = shared(&path);
    assert_eq!(store.counter(), 4 * m);
    eprintln!(
        "S1: 4 processes x {m} update(+1) = {} in {:?}",
        store.counter(),
        started.elapsed()
    );
}

#[test]
fn s1_s2_pushes_from_four_processes_land_whole_in_one_order() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let m = 1_000 * scale();
    let children: Vec<_> = (0..4).map(|id| spawn("push", &path, id, m)).collect();
    children.into_iter().for_each(finish);
    let state = shared(&path).get();
    assert_eq!(state.counter, 4 * m);
    assert_eq!(state.items.len() as u64, 4 * m, "every push landed once");
    // Each process's items appear in its own order.
    for id in 0..4 {
        let mine: Vec<u64> = state
            .items
            .iter()
            .filter_map(|item| item.strip_prefix(&format!("{id}-")))
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..m).collect::<Vec<_>>(), "process {id}");
    }
    // A fresh exclusive open (which verifies every frame, CRC and seq)
    // sees the same state.
    drop(state);
    let reopened = Jobs::open(&path).unwrap().get();
    assert_eq!(reopened.counter, 4 * m);
}

#[test]
fn s3_a_second_participant_sees_each_commit_at_once_across_compactions() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let writer = shared(&path);
    let reader = shared(&path);
    let mut last = 0;
    for n in 1..=2_000u64 {
        writer.push_items(format!("item-{n}")).unwrap();
        writer.set_counter(n).unwrap();
        // The small journal limit folds the journal every few dozen
        // commits; the reader follows through each compaction.
        let seen = reader.read();
        assert_eq!(seen.counter, n, "the reader sees the commit at once");
        assert_eq!(seen.items.len() as u64, n);
        assert!(seen.counter >= last);
        last = seen.counter;
    }
    // And the other way round, through `update` on the reader's handle.
    reader.update(|s| s.counter += 1).unwrap();
    assert_eq!(writer.counter(), 2_001);
}

#[test]
fn s4_kill9_of_writers_loses_no_acknowledged_commit() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let rounds = 12 * scale();
    let mut acked: BTreeMap<u64, i64> = BTreeMap::new();
    let mut kills = 0;
    for round in 0..rounds {
        // Two writers; one is killed after a varying number of acks.
        let mut victim = spawn("push", &path, round * 2, 100_000);
        let survivor = spawn("push", &path, round * 2 + 1, 200);
        let stdout = victim.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let kill_after = 1 + (round * 53) % 300;
        let mut seen = 0;
        for line in lines.by_ref() {
            if line.unwrap().starts_with("ACK ") {
                seen += 1;
                if seen == kill_after {
                    break;
                }
            }
        }
        victim.kill().unwrap(); // SIGKILL
        kills += 1;
        let mut last = seen as i64 - 1;
        for line in lines {
            if line.unwrap().starts_with("ACK ") {
                last += 1;
            }
        }
        victim.wait().unwrap();
        acked.insert(round * 2, last);
        finish(survivor);
        acked.insert(round * 2 + 1, 199);
        // Every acknowledged commit is there, whole, exactly once.
        let state = shared(&path).get();
        assert_eq!(
            state.counter,
            state.items.len() as u64,
            "half a transaction"
        );
        for (&id, &last) in &acked {
            let mine: Vec<i64> = state
                .items
                .iter()
                .filter_map(|item| item.strip_prefix(&format!("{id}-")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert!(
                mine.len() as i64 > last,
                "process {id}: {} items, acked {}",
                mine.len(),
                last + 1
            );
            assert_eq!(
                mine,
                (0..mine.len() as i64).collect::<Vec<_>>(),
                "process {id}"
            );
        }
    }
    eprintln!("S4: {kills} kill -9 of a shared writer, 0 acknowledged commits lost");
}

#[test]
fn s7_readers_never_see_half_a_commit_while_others_compact() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let writer = Store::<Jobs>::options()
        .shared(true)
        .journal_limit(1) // every commit past the first folds the journal
        .open(&path)
        .unwrap();
    let reader = shared(&path);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (reads, last) = std::thread::scope(|scope| {
        let checker = scope.spawn(|| {
            let (mut reads, mut last) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads < 1_000 {
                let state = reader.read();
                assert_eq!(state.counter, state.items.len() as u64, "a mixed state");
                assert!(state.counter >= last, "the state went backwards");
                last = state.counter;
                reads += 1;
            }
            (reads, last)
        });
        for n in 1..=500u64 {
            let mut tx = writer.begin();
            tx.push_items(format!("item-{n}"));
            tx.set_counter(n);
            tx.commit().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        checker.join().unwrap()
    });
    assert_eq!(reader.counter(), 500);
    assert!(last <= 500);
    eprintln!("S7: {reads} consistent reads across 500 compactions");
}

#[test]
fn s8_a_hand_edit_while_open_is_adopted_at_the_next_commit() {
    let _serial = serial();
    let (dir, path) = temp_store();
    let store = shared(&path);
    store.push_items("before".into()).unwrap();
    store.compact().unwrap();
    store.set_counter(1).unwrap();
    // An editor saves by writing a temp file and renaming it.
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("before", "edited");
    let temp = dir.path().join("jobs.json.edit");
    std::fs::write(&temp, &edited).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    store.push_items("after".into()).unwrap();
    assert_eq!(store.read().items, ["edited", "after"], "the edit wins");
    let orphans = common::files_in(dir.path())
        .into_iter()
        .filter(|f| f.contains(".journal.orphaned-"))
        .count();
    assert_eq!(orphans, 1, "the replaced journal is kept aside");
    let other = shared(&path);
    assert_eq!(other.read().items, ["edited", "after"]);

    // An edit that does not parse fails the next commit and is left alone.
    std::fs::write(&path, "{\n  \"counter\": 2,\n  oops\n}\n").unwrap();
    let err = store.set_counter(5).unwrap_err();
    match err {
        Error::Parse { line, column, .. } => assert_eq!((line, column), (3, 3)),
        other => panic!("expected a parse error, got {other:?}"),
    }
    drop((store, other));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\n  \"counter\": 2,\n  oops\n}\n",
        "neither a commit nor a close overwrote the broken edit"
    );
}

#[test]
fn s8_exclusive_mode_never_overwrites_an_edit_made_while_it_runs() {
    let _serial = serial();
    let (dir, path) = temp_store();
    let store = Jobs::open(&path).unwrap();
    store.set_counter(1).unwrap();
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"counter\": 0", "\"counter\": 42");
    std::fs::write(&path, edited).unwrap();
    store.close().unwrap();
    assert_eq!(
        Jobs::open(&path).unwrap().counter(),
        42,
        "the edit survived"
    );
    assert!(common::files_in(dir.path())
        .iter()
        .any(|f| f.contains(".journal.orphaned-")));
}

#[test]
fn s9_mixing_modes_fails_at_once_naming_the_other_mode() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let exclusive = Jobs::open(&path).unwrap();
    let started = Instant::now();
    let err = Store::<Jobs>::options()
        .shared(true)
        .open(&path)
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(
        matches!(
            err,
            Error::Locked {
                holder: "exclusive",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("jobs.json"), "{err}");
    drop(exclusive);

    let a = shared(&path);
    let b = shared(&path); // two participants in one process
    let err = Jobs::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Locked {
                holder: "shared",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(".shared(true)"), "{err}");
    a.set_counter(3).unwrap();
    assert_eq!(b.counter(), 3);
}

#[test]
fn s10_a_held_writer_lock_times_out_and_changes_nothing() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let holder = shared(&path);
    let waiter = Store::<Jobs>::options()
        .shared(true)
        .lock_timeout(Duration::from_millis(200))
        .open(&path)
        .unwrap();
    let mut tx = holder.begin();
    tx.set_counter(7);
    let started = Instant::now();
    let err = waiter.update(|s| s.counter = 99).unwrap_err();
    let elapsed = started.elapsed();
    match err {
        Error::LockTimeout { waited, .. } => {
            assert!(waited >= Duration::from_millis(200), "{waited:?}");
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(waiter.counter(), 0, "nothing changed");
    // `transaction` does not run its closure without the lock.
    let ran = std::cell::Cell::new(false);
    let result = waiter.transaction(|_| {
        ran.set(true);
        Ok::<_, Error>(())
    });
    assert!(matches!(result, Err(Error::LockTimeout { .. })));
    assert!(!ran.get());
    tx.commit().unwrap();
    assert_eq!(waiter.counter(), 7);
    waiter.update(|s| s.counter += 1).unwrap();
    assert_eq!(holder.counter(), 8);
}

#[test]
fn s11_sync_and_the_snapshot_engine_are_exact_across_processes() {
    let _serial = serial();
    for role in ["sync", "snapshot"] {
        let (_dir, path) = temp_store();
        let m = 200 * scale();
        let children: Vec<_> = (0..2).map(|id| spawn(role, &path, id, m)).collect();
        children.into_iter().for_each(finish);
        let options = Store::<Jobs>::options().shared(true);
        let options = match role {
            "snapshot" => options.engine(Engine::Snapshot),
            _ => options,
        };
        assert_eq!(options.open(&path).unwrap().counter(), 2 * m, "{role}");
    }
}

#[test]
fn s12_threads_times_processes_count_exactly() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let m = 1_000 * scale();
    let children: Vec<_> = (0..2).map(|id| spawn("threads", &path, id, m)).collect();
    children.into_iter().for_each(finish);
    assert_eq!(shared(&path).counter(), 2 * 4 * m);
}

#[test]
fn read_only_follows_a_writer_of_either_mode_and_refuses_writes() {
    let _serial = serial();
    for share in [false, true] {
        let (_dir, path) = temp_store();
        let writer = Store::<Jobs>::options()
            .shared(share)
            .journal_limit(1024)
            .open(&path)
            .unwrap();
        writer.set_counter(1).unwrap();
        let reader = Store::<Jobs>::options()
            .read_only(true)
            .open(&path)
            .unwrap();
        assert_eq!(reader.counter(), 1, "shared {share}");
        for n in 2..200 {
            writer.push_items(format!("item-{n}")).unwrap();
            writer.set_counter(n).unwrap();
        }
        assert!(reader.refresh().unwrap());
        assert_eq!(reader.counter(), 199, "across compactions");
        assert_eq!(reader.read().items.len(), 198);
        assert!(!reader.refresh().unwrap(), "nothing new");
        let err = reader.set_counter(5).unwrap_err();
        assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
        assert!(err.to_string().contains("read-only"), "{err}");
        drop(reader);
        assert_eq!(writer.counter(), 199, "a read-only handle writes nothing");
    }
}

#[test]
fn batch_mode_cannot_be_shared() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let err = Store::<Jobs>::options()
        .shared(true)
        .mode(Mode::Batch)
        .open(&path)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("Mode::Batch"), "{err}");
}

#[test]
fn the_last_participant_to_close_folds_the_journal() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let a = shared(&path);
    let b = shared(&path);
    a.set_counter(5).unwrap();
    a.close().unwrap();
    assert!(
        !std::fs::read_to_string(&path).unwrap().contains("5"),
        "not folded while another participant has it open"
    );
    b.close().unwrap();
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("\"counter\": 5"));
}

#[test]
fn the_job_queue_example_records_every_job_once_through_kill9() {
    let _serial = serial();
    // `cargo test` builds the examples beside the test binaries' `deps/`.
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("examples").join("job_queue"))
        .unwrap();
    assert!(
        example.exists(),
        "build the examples: {}",
        example.display()
    );
    let (_dir, path) = temp_store();
    let output = Command::new(&example)
        .args(["300", "4", "--kill"])
        .env("JOB_QUEUE", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("every job has exactly one result"),
        "{stdout}"
    );
    assert!(stdout.contains("killed with kill -9"), "{stdout}");
}

/// A participant that adopts a hand edit seals the journal it sets aside,
/// so another participant still reading it through its old descriptor
/// reloads instead of adopting the edit a second time (which would set the
/// first adopter's new journal aside, with its commit).
#[test]
fn s8_a_hand_edit_is_adopted_once_and_the_other_participant_follows() {
    let _serial = serial();
    let (dir, path) = temp_store();
    let a = shared(&path);
    let b = shared(&path);
    a.push_items("before".into()).unwrap();
    a.compact().unwrap();
    assert_eq!(b.read().items, ["before"]);
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("before", "edited");
    let temp = dir.path().join("jobs.json.swp");
    std::fs::write(&temp, &edited).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    a.push_items("from-a".into()).unwrap(); // adopts the edit
    assert_eq!(
        b.read().items,
        ["edited", "from-a"],
        "B follows A's adoption"
    );
    b.push_items("from-b".into()).unwrap();
    drop((a, b));
    let store = shared(&path);
    assert_eq!(store.read().items, ["edited", "from-a", "from-b"]);
    let orphans = common::files_in(dir.path())
        .into_iter()
        .filter(|f| f.contains(".journal.orphaned-"))
        .count();
    assert_eq!(orphans, 1, "the edit was adopted once");
}

/// The last participant's `Drop` (not `close()`) folds the journal only
/// after catching up with the others' commits.
#[test]
fn s8_the_last_participant_to_drop_folds_every_commit() {
    let _serial = serial();
    let (_dir, path) = temp_store();
    let a = shared(&path);
    let b = shared(&path);
    a.set_counter(1).unwrap();
    b.set_counter(2).unwrap();
    drop(b);
    drop(a);
    assert_eq!(Jobs::open(&path).unwrap().counter(), 2);
}
