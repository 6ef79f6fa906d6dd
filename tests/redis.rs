//! The Redis backend against a real `redis-server` that each test starts on
//! a free loopback port and stops by pid (`tests/redis_server`): every kind
//! of commit, several handles and processes, failures of the server and of
//! the connection, durability, the layout `redis-cli` sees, history.
#![cfg(feature = "redis")]

mod proxy;
mod redis_server;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use persisted_state::{Durability, Error, KeepHistory, Mode, Persisted, Store};
use proxy::Proxy;
use redis_server::{Aof, RedisServer};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Board {
    counter: u64,
    a: i64,
    b: i64,
    items: Vec<String>,
    queue: VecDeque<u64>,
    tags: BTreeSet<String>,
    scores: BTreeMap<String, u64>,
    note: Option<String>,
}

fn open(server: &RedisServer, key: &str) -> Store<Board> {
    Store::<Board>::open_redis(&server.url(), key).unwrap()
}

/// Every kind of commit, applied to the store and to a model.
fn every_kind(store: &Store<Board>, model: &mut Board, n: u64) {
    store.set_counter(n).unwrap();
    model.counter = n;
    store.push_items(format!("i{n}")).unwrap();
    model.items.push(format!("i{n}"));
    store.extend_items(vec!["x".into(), "y".into()]).unwrap();
    model.items.extend(["x".to_string(), "y".to_string()]);
    assert_eq!(store.pop_items().unwrap(), model.items.pop());
    store.push_queue(n).unwrap();
    store.push_front_queue(n + 100).unwrap();
    model.queue.push_back(n);
    model.queue.push_front(n + 100);
    assert_eq!(store.pop_front_queue().unwrap(), model.queue.pop_front());
    assert_eq!(
        store.insert_tags(format!("t{}", n % 3)).unwrap(),
        model.tags.insert(format!("t{}", n % 3))
    );
    assert_eq!(
        store.insert_scores(format!("s{}", n % 4), n).unwrap(),
        model.scores.insert(format!("s{}", n % 4), n)
    );
    if n % 5 == 4 {
        assert_eq!(
            store.remove_scores("s0").unwrap(),
            model.scores.remove("s0")
        );
        assert_eq!(store.remove_tags("t1").unwrap(), model.tags.remove("t1"));
    }
    store.set_note(Some(format!("note {n}"))).unwrap();
    model.note = Some(format!("note {n}"));
    store
        .update(|s| {
            s.a -= 1;
            s.b += 1;
        })
        .unwrap();
    model.a -= 1;
    model.b += 1;
    store
        .transaction(|tx| {
            tx.counter += 1;
            tx.push_items("tx".into());
            Ok::<_, Error>(())
        })
        .unwrap();
    model.counter += 1;
    model.items.push("tx".into());
    let mut tx = store.begin();
    tx.a += 10;
    tx.commit().unwrap();
    model.a += 10;
    if n % 4 == 3 {
        store.clear_items().unwrap();
        model.items.clear();
    }
}

#[test]
fn every_kind_of_commit_round_trips_and_redis_cli_reads_the_fields() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let store = open(&server, "board");
    let mut model = Board::default();
    for n in 0..12 {
        every_kind(&store, &mut model, n);
        assert_eq!(store.get(), model, "round {n}");
    }
    // A second handle (a fresh load) sees the same state.
    assert_eq!(open(&server, "board").get(), model);
    // What a person sees with redis-cli.
    assert_eq!(
        server.cli(&["HGET", "{board}:state", "counter"]),
        model.counter.to_string()
    );
    assert_eq!(
        server.cli(&["HGET", "{board}:state", "note"]),
        "\"note 11\""
    );
    let queue = server.cli(&["LRANGE", "{board}:c:queue", "0", "-1"]);
    let expected: Vec<String> = model.queue.iter().map(u64::to_string).collect();
    assert_eq!(queue.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        server.cli(&["HGET", "{board}:c:scores", "s1"]),
        model.scores["s1"].to_string()
    );
}

#[test]
fn batch_mode_commits_at_commit_and_a_conflicting_batch_applies_nothing() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let options = Store::<Board>::options().mode(Mode::Batch);
    let a = options.open_redis(&server.url(), "batch").unwrap();
    a.set_counter(5).unwrap();
    a.push_items("one".into()).unwrap();
    assert_eq!(open(&server, "batch").get(), Board::default(), "not yet");
    a.commit().unwrap();
    let seen = open(&server, "batch").get();
    assert_eq!((seen.counter, seen.items), (5, vec!["one".to_string()]));
    // Another process commits meanwhile: this batch cannot be rebased.
    let other = open(&server, "batch");
    a.set_counter(6).unwrap();
    other.set_counter(100).unwrap();
    assert!(matches!(a.commit(), Err(Error::Conflict { .. })));
    assert_eq!(open(&server, "batch").counter(), 100);
}

#[test]
fn two_handles_and_threads_lose_no_update() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let handles = [open(&server, "count"), open(&server, "count")];
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = &handles[t % 2];
            scope.spawn(move || {
                for i in 0..100 {
                    store.update(|s| s.counter += 1).unwrap();
                    store.push_items(format!("{t}-{i}")).unwrap();
                }
            });
        }
    });
    let end = open(&server, "count").get();
    assert_eq!(end.counter, 400);
    assert_eq!(end.items.len(), 400);
    let unique: BTreeSet<&String> = end.items.iter().collect();
    assert_eq!(unique.len(), 400);
}

/// Two handles on `key` (10 s lock timeout), the first keeping the lease
/// after its update.
fn kept_lease(server: &RedisServer, key: &str) -> (Store<Board>, Store<Board>) {
    let options = || Store::<Board>::options().lock_timeout(Duration::from_secs(10));
    let a = options().open_redis(&server.url(), key).unwrap();
    let b = options().open_redis(&server.url(), key).unwrap();
    a.update(|s| s.counter += 1).unwrap();
    (a, b)
}

#[test]
fn a_handle_keeps_the_lease_between_updates_and_gives_it_way() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let (a, b) = kept_lease(&server, "kept");
    // Kept after the commit: its next update need not wait to take it.
    assert_ne!(server.cli(&["GET", "{kept}:lease"]), "");
    // Another handle's update while `a` is idle waits only for the kept
    // lease to run out (100 ms), not for the whole lock timeout.
    let start = Instant::now();
    b.update(|s| s.counter += 1).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // While `a` keeps updating, `b` still gets its turn: `a` gives the
    // lease up at its next commit once `b` waits for it.
    let done = AtomicBool::new(false);
    let a_updates = std::thread::scope(|scope| {
        let busy = scope.spawn(|| {
            let mut n = 0u64;
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(20) {
                a.update(|s| s.counter += 1).unwrap();
                n += 1;
            }
            n
        });
        for _ in 0..20 {
            b.update(|s| s.counter += 1).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        busy.join().unwrap()
    });
    assert_eq!(b.get().counter, 2 + 20 + a_updates);
    // Dropping the handle gives the kept lease up at once.
    drop(a);
    b.update(|s| s.counter += 1).unwrap();
    drop(b);
    assert_eq!(server.cli(&["EXISTS", "{kept}:lease"]), "0");
}

#[test]
fn a_slow_closure_after_a_kept_lease_still_holds_it_whole() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let (a, b) = kept_lease(&server, "slow");
    // `a`'s next closure runs on the kept lease for longer than the kept
    // lease lives; the lease was renewed for the whole lock timeout as it
    // began, so `b` waits for it instead of committing in between.
    let started = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            a.update(|s| {
                started.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(400));
                s.counter += 1;
            })
            .unwrap();
        });
        // Should `a`'s update fail before its closure runs, the scope's
        // join reports that thread's panic instead of this loop waiting on.
        while !started.load(Ordering::SeqCst) && !slow.is_finished() {
            std::thread::yield_now();
        }
        assert!(started.load(Ordering::SeqCst), "`a`'s closure never ran");
        b.set_counter(100).unwrap();
    });
    // `b`'s set came after `a`'s update, whole.
    assert_eq!(open(&server, "slow").counter(), 100);
    assert_eq!(a.get().counter, 100);
}

const CHILD: &str = "PERSISTED_REDIS_CHILD";

/// Runs only as a child process: `update(+1)` and a push, N times.
#[test]
fn redis_child_worker() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let mut parts = spec.split('|');
    let (url, key, n) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
    );
    let store = Store::<Board>::options()
        .lock_timeout(Duration::from_secs(20))
        .open_redis(url, key)
        .unwrap();
    for i in 0..n {
        store.update(|s| s.counter += 1).unwrap();
        store
            .push_items(format!("{}-{i}", std::process::id()))
            .unwrap();
    }
}

#[test]
fn several_processes_commit_exactly_once_each() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let (processes, each) = (3, 150);
    let children: Vec<_> = (0..processes)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["redis_child_worker", "--exact", "--test-threads=1"])
                .env(CHILD, format!("{}|procs|{each}", server.url()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let end = open(&server, "procs").get();
    assert_eq!(end.counter, processes * each);
    assert_eq!(end.items.len() as u64, processes * each);
}

#[test]
fn a_failed_or_panicking_transaction_leaves_nothing_and_frees_the_lease() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let store = open(&server, "tx");
    store.set_counter(1).unwrap();
    let failed: Result<(), Error> = store.transaction(|tx| {
        tx.set_counter(99);
        tx.push_items("never".into());
        Err(Error::ReadOnly {
            path: "the closure refused".into(),
        })
    });
    assert!(failed.is_err());
    let store2 = store.clone();
    let panicked = std::thread::spawn(move || {
        store2
            .update(|s| {
                s.counter = 77;
                panic!("in the closure");
            })
            .ok()
    })
    .join();
    assert!(panicked.is_err());
    let other = open(&server, "tx");
    assert_eq!(other.get().counter, 1);
    assert!(other.get().items.is_empty());
    // The lease was given up: another handle's closure runs at once.
    let start = Instant::now();
    other.update(|s| s.counter += 1).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(store.counter(), 2);
}

#[test]
fn kill9_of_the_server_with_sync_loses_no_acknowledged_commit() {
    let Some(mut server) = RedisServer::start(Aof::Always) else {
        return;
    };
    let store = Store::<Board>::options()
        .durability(Durability::Sync)
        .timeout(Duration::from_millis(300))
        .open_redis(&server.url(), "durable")
        .unwrap();
    let mut acked = Vec::new();
    let mut failed = 0;
    for round in 0..4 {
        for i in 0..60 {
            let item = format!("{round}-{i}");
            match store.push_items(item.clone()) {
                Ok(()) => acked.push(item),
                Err(_) => failed += 1,
            }
            if i == 30 {
                server.kill9();
            }
            if i == 40 {
                server.restart();
            }
        }
    }
    assert!(failed > 0, "the outages were noticed");
    let items = open(&server, "durable").get().items;
    let present: BTreeSet<&String> = items.iter().collect();
    assert_eq!(present.len(), items.len(), "an item applied twice");
    for item in &acked {
        assert!(present.contains(item), "acknowledged {item} lost");
    }
    // Memory never kept what the server did not acknowledge.
    assert_eq!(store.get().items, items);
}

#[test]
fn a_server_outage_is_an_error_within_the_timeout_and_the_next_call_reconnects() {
    let Some(mut server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let store = Store::<Board>::options()
        .timeout(Duration::from_millis(300))
        .open_redis(&server.url(), "outage")
        .unwrap();
    store.set_counter(1).unwrap();
    server.kill9();
    let start = Instant::now();
    let result = store.set_counter(2);
    assert!(matches!(result, Err(Error::Remote { .. })), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let update = store.update(|s| s.counter = 3);
    assert!(update.is_err());
    assert_eq!(store.get().counter, 1, "memory kept no failed commit");
    server.restart();
    store.set_counter(4).unwrap();
    assert_eq!(open(&server, "outage").counter(), 4);
}

/// A server, a proxy in front of it, and a store at `key` opened through
/// the proxy (2 s timeout); `None` when this machine has no server.
fn behind_proxy(key: &str) -> Option<(RedisServer, Proxy, Store<Board>)> {
    let server = RedisServer::start(Aof::Everysec)?;
    let proxy = Proxy::start(
        server.port,
        b"EVALSHA",
        b"-LOADING Redis is loading the dataset in memory\r\n",
    );
    let store = Store::<Board>::options()
        .timeout(Duration::from_secs(2))
        .open_redis(&format!("redis://127.0.0.1:{}/0", proxy.port), key)
        .unwrap();
    Some((server, proxy, store))
}

#[test]
fn a_commit_whose_reply_was_lost_is_applied_exactly_once() {
    let Some((server, proxy, store)) = behind_proxy("lost") else {
        return;
    };
    store.push_items("warm-up".into()).unwrap();
    let mut cut = 0;
    for i in 0..60 {
        if i % 6 == 0 {
            proxy.arm.store(true, Ordering::SeqCst);
            cut += 1;
        }
        store.push_items(format!("item-{i}")).unwrap();
        if i % 12 == 0 {
            store.update(|s| s.counter += 1).unwrap();
        }
    }
    let direct = open(&server, "lost").get();
    assert_eq!(direct.items.len(), 61, "{:?}", direct.items);
    let unique: BTreeSet<&String> = direct.items.iter().collect();
    assert_eq!(unique.len(), 61, "an item applied twice");
    assert_eq!(direct.counter, 5);
    assert_eq!(store.get(), direct);
    assert_eq!(cut, 10);
}

#[test]
fn a_server_still_loading_its_data_is_waited_for_within_the_timeout() {
    let Some((server, proxy, store)) = behind_proxy("loading") else {
        return;
    };
    store.push_items("first".into()).unwrap();
    // A server just restarted answers `LOADING` until its data is read.
    proxy.loading.store(5, Ordering::SeqCst);
    store.push_items("second".into()).unwrap();
    assert_eq!(proxy.loading.load(Ordering::SeqCst), 0, "all five answered");
    proxy.loading.store(3, Ordering::SeqCst);
    store.update(|s| s.counter += 1).unwrap();
    assert_eq!(store.get(), open(&server, "loading").get());
    assert_eq!(store.items(), ["first", "second"], "applied once each");
    // One that loads for longer than the timeout is an error in time.
    proxy.loading.store(u32::MAX, Ordering::SeqCst);
    let start = Instant::now();
    let result = store.push_items("third".into());
    assert!(
        matches!(&result, Err(Error::Remote { message, .. }) if message.contains("loading")),
        "{result:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    proxy.loading.store(0, Ordering::SeqCst);
    assert_eq!(open(&server, "loading").items(), ["first", "second"]);
}

#[test]
fn sync_is_refused_on_a_server_that_does_not_fsync_every_write() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let result = Store::<Board>::options()
        .durability(Durability::Sync)
        .open_redis(&server.url(), "sync");
    match result {
        Err(Error::Unsupported { reason, .. }) => {
            assert!(reason.contains("appendfsync always"), "{reason}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn unknown_fields_are_kept_and_a_value_that_does_not_parse_is_named() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let store = open(&server, "evolve");
    store.set_counter(1).unwrap();
    server.cli(&["HSET", "{evolve}:state", "added_by_v2", "\"kept\""]);
    let reopened = open(&server, "evolve");
    reopened.set_counter(2).unwrap();
    assert_eq!(
        server.cli(&["HGET", "{evolve}:state", "added_by_v2"]),
        "\"kept\""
    );
    server.cli(&["HSET", "{evolve}:state", "counter", "not json"]);
    match Store::<Board>::open_redis(&server.url(), "evolve") {
        Err(Error::Parse { message, .. }) => assert!(
            message.contains("{evolve}:state") && message.contains("counter"),
            "{message}"
        ),
        other => panic!("expected Parse, got {other:?}"),
    }
    server.cli(&["HSET", "{evolve}:state", "counter", "\"text\""]);
    match Store::<Board>::open_redis(&server.url(), "evolve") {
        Err(Error::Parse { message, .. }) => assert!(message.contains("counter"), "{message}"),
        other => panic!("expected Parse, got {other:?}"),
    }
    // Never overwritten.
    assert_eq!(
        server.cli(&["HGET", "{evolve}:state", "counter"]),
        "\"text\""
    );
}

#[test]
fn two_keys_are_two_stores() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let (one, two) = (open(&server, "one"), open(&server, "two"));
    one.set_counter(1).unwrap();
    two.set_counter(2).unwrap();
    one.push_items("a".into()).unwrap();
    assert_eq!(open(&server, "one").get().items, ["a"]);
    assert!(open(&server, "two").get().items.is_empty());
    assert_eq!(open(&server, "two").counter(), 2);
}

#[test]
fn the_log_answers_history_and_state_at() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let store = Store::<Board>::options()
        .keep_history(KeepHistory::Forever)
        .open_redis(&server.url(), "hist")
        .unwrap();
    let mut model = Board::default();
    let mut states = vec![model.clone()];
    for n in 0..10 {
        store.set_counter(n).unwrap();
        model.counter = n;
        states.push(model.clone());
        store.push_items(format!("{n}")).unwrap();
        model.items.push(format!("{n}"));
        states.push(model.clone());
    }
    let history = store.history().unwrap();
    // The first commit created the store.
    assert_eq!(history.len(), states.len());
    for (commit, state) in history.iter().zip(&states) {
        assert_eq!(&store.state_at(commit.seq).unwrap(), state);
    }
    assert_eq!(history[1].fields, ["counter"]);
    assert_eq!(history[2].fields, ["items"]);
    let last = history.last().unwrap();
    assert_eq!(store.state_as_of(last.time).unwrap(), model);
    assert!(matches!(
        store.state_at(last.seq + 1),
        Err(Error::NotInHistory { .. })
    ));
}

#[test]
fn passwords_never_appear_in_errors() {
    // Nothing listens on this port: the error names the store without the
    // password.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("redis://user:hunter2@127.0.0.1:{port}/0");
    let error = Store::<Board>::options()
        .timeout(Duration::from_millis(200))
        .open_redis(&url, "secret")
        .unwrap_err();
    let text = error.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
}

/// The example of docs/redis.md, as it is there but for the server's URL.
#[test]
fn the_readme_example_runs() {
    let Some(server) = RedisServer::start(Aof::Always) else {
        return;
    };
    readme::run(&server.url()).unwrap();
    let store = Store::<readme::Jobs>::open_redis(&server.url(), "jobs:state").unwrap();
    assert_eq!(store.get().done, 1);
    assert_eq!(store.get().queue, ["job-1"]);
}

mod readme {
    use persisted_state::{Durability, Persisted, Store};
    use std::time::Duration;

    #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    pub struct Jobs {
        pub queue: std::collections::VecDeque<String>,
        pub done: u64,
    }

    pub fn run(url: &str) -> persisted_state::Result<()> {
        let store = Store::<Jobs>::options()
            .durability(Durability::Sync) // the server must fsync every write (checked at open)
            .timeout(Duration::from_secs(2)) // connect, each request, reconnecting
            .open_redis(url, "jobs:state")?;
        store.push_queue("job-1".into())?; // RPUSH on the server: O(the change)
        store.update(|j| j.done += 1)?; // runs once, atomic across hosts
        Ok(())
    }
}

#[test]
fn a_native_key_of_the_wrong_type_fails_the_commit_before_anything_is_written() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let store = open(&server, "typed");
    store.push_items("a".into()).unwrap();
    let version = server.cli(&["HGET", "{typed}:meta", "v"]);
    server.cli(&["DEL", "{typed}:c:items"]);
    server.cli(&["SET", "{typed}:c:items", "not a list"]);
    let result = store.transaction(|tx| {
        tx.set_counter(9);
        tx.push_items("b".into());
        Ok::<_, Error>(())
    });
    match result {
        Err(Error::Remote { message, .. }) => {
            assert!(message.contains("{typed}:c:items"), "{message}")
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    assert_eq!(server.cli(&["HGET", "{typed}:meta", "v"]), version);
    assert_eq!(server.cli(&["HGET", "{typed}:state", "counter"]), "0");
    assert_eq!(store.counter(), 0);
}

#[test]
fn a_read_sees_every_commit_acknowledged_before_it_began() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let (a, b) = (open(&server, "fresh"), open(&server, "fresh"));
    for n in 1..=50 {
        a.set_counter(n).unwrap();
        a.push_items(format!("{n}")).unwrap();
        assert_eq!(b.counter(), n, "a read missed a commit");
        assert_eq!(b.read().items.len() as u64, n);
    }
    // Many commits behind: caught up from the log in one read.
    for n in 51..=3000 {
        a.set_counter(n).unwrap();
    }
    assert_eq!(b.counter(), 3000);
}

#[test]
fn a_closure_whose_lease_ran_out_while_another_committed_applies_nothing() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let slow = Store::<Board>::options()
        .lock_timeout(Duration::from_millis(1000))
        .open_redis(&server.url(), "lease")
        .unwrap();
    let fast = open(&server, "lease");
    slow.set_counter(1).unwrap();
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // Waits for the lease, which expires at 1 s, then commits.
        fast.set_counter(2).unwrap();
    });
    let result = slow.update(|s| {
        s.counter += 100;
        // Outlive the lease (TTL = lock_timeout); meanwhile another
        // process takes it and commits.
        std::thread::sleep(Duration::from_millis(1300));
        s.items.push("late".into());
    });
    // `fast` committed while `slow` slept past its lease.
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    let end = open(&server, "lease").get();
    assert_eq!(end.counter, 2, "only fast's commit");
    assert!(end.items.is_empty());
    other.join().unwrap();
    assert_eq!(
        slow.get(),
        end,
        "memory kept nothing of the conflicting closure"
    );
}

/// Releasing the lease wakes a handle waiting for it at once (the release
/// pushes to the wake list the waiter blocks on), whether a commit gives
/// it up or a rolled-back transaction does; without the wake-up each
/// waiter would sit out its 100 ms poll.
#[test]
fn a_released_lease_wakes_its_waiter_at_once() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let options = || Store::<Board>::options().lock_timeout(Duration::from_secs(10));
    let a = options().open_redis(&server.url(), "handoff").unwrap();
    let b = options().open_redis(&server.url(), "handoff").unwrap();
    let rounds = 20;
    let mut waited = Duration::ZERO;
    for round in 0..rounds {
        server.cli(&["DEL", "{handoff}:waiting"]);
        let mut tx = a.begin(); // holds the lease
        tx.counter += 1;
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| b.update(|s| s.counter += 1).unwrap());
            // `b` marks the lease wanted when its attempt fails.
            while server.cli(&["EXISTS", "{handoff}:waiting"]) != "1" && !waiter.is_finished() {
                std::thread::yield_now();
            }
            let released = Instant::now();
            match round % 2 {
                0 => tx.commit().unwrap(),
                _ => drop(tx), // rolled back: the release script gives it up
            }
            waiter.join().unwrap();
            waited += released.elapsed();
        });
    }
    assert_eq!(b.get().counter, rounds + rounds / 2);
    assert!(
        waited < Duration::from_millis(rounds * 100 / 2),
        "{rounds} hand-offs took {waited:?}: waiters are not woken"
    );
}

/// `Watch::Auto` on Redis: another client's commits reach a subscriber
/// as `Remote` (polled every 100 ms), this handle's own as `ThisProcess`.
#[test]
fn another_clients_commits_arrive_as_remote() {
    let Some(server) = RedisServer::start(Aof::Everysec) else {
        return;
    };
    let watching = Store::<Board>::options()
        .watch(persisted_state::Watch::Auto)
        .open_redis(&server.url(), "watched")
        .unwrap();
    let sub = watching.subscribe();
    let other = open(&server, "watched");
    other.set_counter(5).unwrap();
    other.push_items("x".into()).unwrap();
    let mut commits = 0;
    let mut fields = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while commits < 2 && Instant::now() < deadline {
        if let Some(change) = sub.wait_timeout(Duration::from_millis(200)).unwrap() {
            assert_eq!(change.origins, [persisted_state::Origin::Remote]);
            commits += change.commits;
            fields.extend(change.fields);
        }
    }
    assert_eq!(commits, 2);
    assert!(fields.contains(&"counter".to_string()) && fields.contains(&"items".to_string()));
    assert_eq!(watching.get().counter, 5);
    watching.set_counter(6).unwrap();
    let own = sub.wait_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(own.origins, [persisted_state::Origin::ThisProcess]);
}

/// An encrypted store on Redis: field names readable, every value sealed.
#[cfg(feature = "encryption")]
mod encrypted {
    use persisted_state::Key;

    use super::*;

    fn key() -> Key {
        Key::from_bytes([0x42; 32])
    }

    fn open_with(
        server: &RedisServer,
        name: &str,
        key: Key,
    ) -> persisted_state::Result<Store<Board>> {
        Store::<Board>::options()
            .encryption(key)
            .keep_history(KeepHistory::Forever)
            .open_redis(&server.url(), name)
    }

    /// Everything the server holds, as `redis-cli` prints it.
    fn dump(server: &RedisServer) -> String {
        let mut keys: Vec<String> = server
            .cli(&["KEYS", "*"])
            .lines()
            .map(String::from)
            .collect();
        keys.sort();
        let mut out = String::new();
        for key in keys {
            let contents = match server.cli(&["TYPE", &key]).as_str() {
                "hash" => server.cli(&["HGETALL", &key]),
                "list" => server.cli(&["LRANGE", &key, "0", "-1"]),
                "stream" => server.cli(&["XRANGE", &key, "-", "+"]),
                "string" => server.cli(&["GET", &key]),
                other => format!("({other})"),
            };
            out.push_str(&format!("{key}:\n{contents}\n"));
        }
        out
    }

    #[test]
    fn every_kind_of_commit_round_trips_and_no_value_reaches_the_server_in_plain_text() {
        let Some(server) = RedisServer::start(Aof::Everysec) else {
            return;
        };
        let store = open_with(&server, "vault", key()).unwrap();
        let mut model = Board::default();
        for n in 0..8 {
            every_kind(&store, &mut model, n);
            assert_eq!(store.get(), model, "round {n}");
        }
        store.set_note(Some("MARKER-note".into())).unwrap();
        store.push_items("MARKER-item".into()).unwrap();
        store.insert_scores("MARKER-key".into(), 7).unwrap();
        model.note = Some("MARKER-note".into());
        model.items.push("MARKER-item".into());
        model.scores.insert("MARKER-key".into(), 7);
        // A second handle (a fresh load) and the log (history) agree.
        assert_eq!(open_with(&server, "vault", key()).unwrap().get(), model);
        let last = store.history().unwrap().last().unwrap().seq;
        assert_eq!(store.state_at(last).unwrap(), model);
        let everything = dump(&server);
        assert!(!everything.contains("MARKER"), "{everything}");
        assert!(!everything.contains("note "), "{everything}");
        // Names stay readable; collections travel as one sealed value.
        let state = server.cli(&["HKEYS", "{vault}:state"]);
        for field in ["counter", "items", "queue", "scores", "note"] {
            assert!(state.lines().any(|l| l == field), "{state}");
        }
        assert_eq!(server.cli(&["KEYS", "{vault}:c:*"]), "");
    }

    #[test]
    fn a_wrong_or_missing_key_is_named_and_changes_nothing() {
        let Some(server) = RedisServer::start(Aof::Everysec) else {
            return;
        };
        let store = open_with(&server, "vault", key()).unwrap();
        store.set_counter(5).unwrap();
        drop(store);
        Store::<Board>::open_redis(&server.url(), "plain").unwrap();
        let before = dump(&server);
        let err = open_with(&server, "vault", Key::from_bytes([1; 32])).unwrap_err();
        assert!(matches!(err, Error::WrongKey { .. }), "{err:?}");
        let err = Store::<Board>::open_redis(&server.url(), "vault").unwrap_err();
        assert!(matches!(err, Error::Encrypted { .. }), "{err:?}");
        let err = open_with(&server, "plain", key()).unwrap_err();
        assert!(matches!(err, Error::NotEncrypted { .. }), "{err:?}");
        let err = Store::<Board>::options()
            .encryption(key())
            .encrypt_existing(true)
            .open_redis(&server.url(), "plain")
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert_eq!(dump(&server), before);
    }

    #[test]
    fn rekey_retires_the_old_key_and_a_value_moved_to_another_field_is_refused() {
        let Some(server) = RedisServer::start(Aof::Everysec) else {
            return;
        };
        let store = open_with(&server, "vault", key()).unwrap();
        store.set_a(-3).unwrap();
        store.set_b(4).unwrap();
        let new = Key::from_bytes([7; 32]);
        store.rekey(new.clone()).unwrap();
        store.set_counter(1).unwrap();
        drop(store);
        let err = open_with(&server, "vault", key()).unwrap_err();
        assert!(matches!(err, Error::WrongKey { .. }), "{err:?}");
        let reopened = open_with(&server, "vault", new.clone()).unwrap();
        assert_eq!((reopened.a(), reopened.b(), reopened.counter()), (-3, 4, 1));
        drop(reopened);
        // Field `a`'s sealed value copied into `b`: it does not open there.
        let a = server.cli(&["HGET", "{vault}:state", "a"]);
        server.cli(&["HSET", "{vault}:state", "b", &a]);
        let err = open_with(&server, "vault", new).unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("field b` does not authenticate"),
            "{message}"
        );
    }

    #[test]
    fn two_handles_share_an_encrypted_store_exactly() {
        let Some(server) = RedisServer::start(Aof::Everysec) else {
            return;
        };
        let handles = [
            open_with(&server, "count", key()).unwrap(),
            open_with(&server, "count", key()).unwrap(),
        ];
        std::thread::scope(|scope| {
            for t in 0..4 {
                let store = &handles[t % 2];
                scope.spawn(move || {
                    for i in 0..50 {
                        store.update(|s| s.counter += 1).unwrap();
                        store.push_items(format!("{t}-{i}")).unwrap();
                    }
                });
            }
        });
        // Each handle caught up through the sealed log entries.
        for store in &handles {
            store.refresh().unwrap();
            assert_eq!((store.counter(), store.items().len()), (200, 200));
        }
        let end = open_with(&server, "count", key()).unwrap().get();
        let unique: BTreeSet<&String> = end.items.iter().collect();
        assert_eq!((end.counter, unique.len()), (200, 200));
    }
}
