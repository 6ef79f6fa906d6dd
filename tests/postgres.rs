//! The PostgreSQL backend against a real server that each test starts on a
//! free loopback port (a copy of one `initdb` per test binary) and stops by
//! pid (`tests/postgres_server`): every kind of commit, several processes,
//! a crash of the server, a lost reply, an outage, the lock timeout, the
//! layout `psql` sees, history, a caller inside a tokio runtime.
#![cfg(feature = "postgres")]

mod postgres_server;
mod proxy;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use persisted_state::{Durability, Error, KeepHistory, Mode, Persisted, Store};
use postgres_server::PostgresServer;
use proxy::Proxy;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Board {
    counter: u64,
    items: Vec<String>,
    queue: VecDeque<u64>,
    tags: BTreeSet<String>,
    scores: BTreeMap<String, u64>,
    note: Option<String>,
    /// A map, or none: kept as rows of persisted_entry, or as JSON null.
    limits: Option<BTreeMap<String, u64>>,
}

fn open(server: &PostgresServer, key: &str) -> Store<Board> {
    Store::<Board>::open_postgres(&server.url(), key).unwrap()
}

#[test]
fn every_kind_of_commit_round_trips_and_psql_reads_the_layout() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let store = open(&server, "board");
    let mut model = Board::default();
    for n in 0..20u64 {
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
            .transaction(|tx| {
                tx.counter += 1;
                tx.push_items("tx".into());
                Ok::<_, Error>(())
            })
            .unwrap();
        model.counter += 1;
        model.items.push("tx".into());
    }
    assert_eq!(store.get(), model);
    assert_eq!(
        open(&server, "board").get(),
        model,
        "a fresh handle reads it back"
    );
    // The layout: one row per store, plain fields as JSON members,
    // collections as rows.
    let note = server.psql("SELECT state->>'note' FROM persisted_state WHERE key = 'board'");
    assert_eq!(note, "note 19");
    let items =
        server.psql("SELECT count(*) FROM persisted_item WHERE key = 'board' AND field = 'items'");
    assert_eq!(items, model.items.len().to_string());
    let score = server.psql(
        "SELECT value FROM persisted_entry WHERE key = 'board' AND field = 'scores' AND k = 's1'",
    );
    assert_eq!(score, model.scores["s1"].to_string());
    let log = server.psql("SELECT count(*) FROM persisted_log WHERE key = 'board'");
    assert!(log.parse::<u64>().unwrap() > 200, "{log}");
}

#[test]
fn fields_the_struct_does_not_know_are_kept_and_a_bad_value_is_named() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let store = open(&server, "unknown");
    store.set_counter(1).unwrap();
    server.psql(
        "UPDATE persisted_state SET state = state || '{\"from_v2\": [1, 2]}' WHERE key = 'unknown'",
    );
    store.set_counter(2).unwrap();
    drop(store);
    let store = open(&server, "unknown");
    assert_eq!(store.counter(), 2);
    let kept = server.psql("SELECT state->'from_v2' FROM persisted_state WHERE key = 'unknown'");
    assert_eq!(kept, "[1, 2]");
    server.psql(
        "UPDATE persisted_state SET state = jsonb_set(state, '{counter}', '\"many\"') WHERE key = \
         'unknown'",
    );
    let err = Store::<Board>::open_postgres(&server.url(), "unknown").unwrap_err();
    assert!(
        matches!(&err, Error::Parse { message, .. } if message.contains("counter")),
        "{err:?}"
    );
}

const CHILD: &str = "PERSISTED_POSTGRES_CHILD";

/// Runs only as a child process: `update(+1)` and a push, N times.
#[test]
fn postgres_child_worker() {
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
        .lock_timeout(Duration::from_secs(30))
        .open_postgres(url, key)
        .unwrap();
    for i in 0..n {
        store.update(|s| s.counter += 1).unwrap();
        store
            .push_items(format!("{}-{i}", std::process::id()))
            .unwrap();
    }
}

#[test]
fn four_processes_update_exactly_once_each_and_push_in_order() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let (processes, each) = (4, 100);
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["postgres_child_worker", "--exact", "--test-threads=1"])
                .env(CHILD, format!("{}|procs|{each}", server.url()))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let end = open(&server, "procs").get();
    assert_eq!(end.counter, processes * each, "every update exactly once");
    assert_eq!(end.items.len() as u64, processes * each);
    for pid in pids {
        let mine: Vec<&String> = end
            .items
            .iter()
            .filter(|i| i.starts_with(&format!("{pid}-")))
            .collect();
        let expected: Vec<String> = (0..each).map(|i| format!("{pid}-{i}")).collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "each push once, in order"
        );
    }
}

/// Runs only as a child: `Sync` pushes, each acknowledged on stdout.
#[test]
fn postgres_sync_child() {
    let Ok(url) = std::env::var("PERSISTED_POSTGRES_SYNC_CHILD") else {
        return;
    };
    use std::io::Write;
    let store = Store::<Board>::options()
        .durability(Durability::Sync)
        .timeout(Duration::from_secs(30))
        .open_postgres(&url, "crash")
        .unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    for i in 0..100_000u64 {
        store.push_items(format!("item-{i}")).unwrap();
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_server_crash_during_sync_commits_loses_none_and_applies_none_twice() {
    let Some(mut server) = PostgresServer::start_durable() else {
        return;
    };
    open(&server, "crash");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "postgres_sync_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERSISTED_POSTGRES_SYNC_CHILD", server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = None;
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("ACK ") {
            acked = Some(n.parse::<u64>().unwrap());
            if acked == Some(150) {
                break;
            }
        }
    }
    // The server dies with commits in flight, and comes back; the writer
    // goes on through the outage (its timeout is 30 s).
    server.restart();
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("ACK ") {
            acked = Some(n.parse::<u64>().unwrap());
            if acked >= Some(250) {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let acked = acked.unwrap();
    let items = open(&server, "crash").get().items;
    let expected: Vec<String> = (0..items.len()).map(|i| format!("item-{i}")).collect();
    assert_eq!(items, expected, "every commit once, in order");
    assert!(
        items.len() as u64 > acked,
        "an acknowledged commit was lost"
    );
}

#[test]
fn a_commit_whose_reply_was_lost_is_applied_exactly_once() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let proxy = Proxy::start(server.port, b"persisted_commit", b"");
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    let store = Store::<Board>::options()
        .timeout(Duration::from_secs(5))
        .open_postgres(&url, "lost")
        .unwrap();
    store.push_items("warm-up".into()).unwrap();
    let mut cut = 0;
    for i in 0..30 {
        if i % 6 == 0 {
            proxy.arm.store(true, Ordering::SeqCst);
            cut += 1;
        }
        store.push_items(format!("item-{i}")).unwrap();
    }
    let direct = open(&server, "lost").get();
    assert_eq!(direct.items.len(), 31, "{:?}", direct.items);
    let unique: BTreeSet<&String> = direct.items.iter().collect();
    assert_eq!(unique.len(), 31, "an item applied twice");
    assert_eq!(store.get(), direct);
    assert_eq!(cut, 5);
}

#[test]
fn an_outage_is_an_error_within_the_timeout_and_the_next_call_reconnects() {
    let Some(mut server) = PostgresServer::start() else {
        return;
    };
    let store = Store::<Board>::options()
        .timeout(Duration::from_millis(800))
        .open_postgres(&server.url(), "outage")
        .unwrap();
    store.set_counter(1).unwrap();
    server.kill9();
    let started = Instant::now();
    let err = store.set_counter(2).unwrap_err();
    assert!(matches!(err, Error::Remote { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(store.update(|s| s.counter += 10).is_err());
    assert_eq!(store.get().counter, 1, "memory kept no failed commit");
    server.restart();
    store.set_counter(4).unwrap();
    assert_eq!(open(&server, "outage").counter(), 4);
    // No server at all: the error says why.
    let port = server.port;
    drop(server);
    let err = Store::<Board>::options()
        .timeout(Duration::from_millis(300))
        .open_postgres(
            &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            "x",
        )
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
}

#[test]
fn a_closure_waits_at_most_the_lock_timeout_for_another_holder() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let a = open(&server, "locked");
    let b = Store::<Board>::options()
        .lock_timeout(Duration::from_millis(300))
        .open_postgres(&server.url(), "locked")
        .unwrap();
    let tx = a.begin(); // holds the row lock
    let started = Instant::now();
    let err = b.update(|s| s.counter += 1).unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(tx); // rolled back: the lock is free
    b.update(|s| s.counter += 1).unwrap();
    assert_eq!(a.counter(), 1);
}

#[test]
fn the_log_is_the_history() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let store = Store::<Board>::options()
        .keep_history(KeepHistory::Forever)
        .open_postgres(&server.url(), "history")
        .unwrap();
    for n in 1..=5 {
        store.set_counter(n).unwrap();
        store.push_items(format!("i{n}")).unwrap();
    }
    let commits = store.history().unwrap();
    assert_eq!(
        commits.len(),
        11,
        "the first commit sets every field, then ten"
    );
    assert_eq!(commits[1].fields, ["counter"]);
    let third = store.state_at(commits[3].seq).unwrap();
    assert_eq!((third.counter, third.items.len()), (2, 1));
    let now = store.state_as_of(std::time::SystemTime::now()).unwrap();
    assert_eq!(now, store.get());
    // `Last(n)` trims the log.
    let trimmed = Store::<Board>::options()
        .keep_history(KeepHistory::Last(3))
        .open_postgres(&server.url(), "history")
        .unwrap();
    trimmed.set_counter(100).unwrap();
    assert_eq!(trimmed.history().unwrap().len(), 3);
    assert!(matches!(
        trimmed.state_at(commits[3].seq),
        Err(Error::NotInHistory { .. })
    ));
}

#[test]
fn it_is_called_from_inside_a_tokio_runtime_without_panicking() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let counter = runtime.block_on(async move {
        let store = Store::<Board>::open_postgres(&url, "tokio").unwrap();
        store.set_counter(7).unwrap();
        store.update(|s| s.counter += 1).unwrap();
        let moved = store.clone();
        tokio::task::spawn_blocking(move || moved.push_items("from a blocking task".into()))
            .await
            .unwrap()
            .unwrap();
        store.counter()
    });
    assert_eq!(counter, 8);
    assert_eq!(open(&server, "tokio").items(), ["from a blocking task"]);

    // A multi-threaded runtime: stores opened, used and dropped in tasks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let url = server.url();
    runtime.block_on(async move {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let store = Store::<Board>::open_postgres(&url, "tokio").unwrap();
                    for _ in 0..5 {
                        store.update(|s| s.counter += 1).unwrap();
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!(open(&server, "tokio").counter(), 28);
}

#[test]
fn sync_is_refused_on_a_server_that_does_not_fsync() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let err = Store::<Board>::options()
        .durability(Durability::Sync)
        .open_postgres(&server.url(), "sync")
        .unwrap_err();
    assert!(err.to_string().contains("fsync"), "{err}");
}

#[test]
fn batch_mode_commits_at_commit_and_a_conflicting_batch_applies_nothing() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let batch = Store::<Board>::options()
        .mode(Mode::Batch)
        .open_postgres(&server.url(), "batch")
        .unwrap();
    batch.set_counter(5).unwrap();
    batch.push_items("a".into()).unwrap();
    assert_eq!(
        open(&server, "batch").counter(),
        0,
        "nothing before commit()"
    );
    batch.commit().unwrap();
    assert_eq!(open(&server, "batch").get().items, ["a"]);
    batch.set_counter(6).unwrap();
    open(&server, "batch").set_counter(100).unwrap();
    let err = batch.commit().unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(open(&server, "batch").counter(), 100);
}

#[test]
fn keys_and_values_with_quotes_and_sql_stay_text() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let key = "it's'; DROP TABLE persisted_state; --";
    let store = open(&server, key);
    let text = "'); DELETE FROM persisted_log; -- \\' $$ \u{e9}";
    store
        .update(|s| {
            s.items.push(text.to_string());
            s.scores.insert(text.to_string(), 7);
            s.note = Some(text.to_string());
        })
        .unwrap();
    store.push_items(text.to_string()).unwrap();
    drop(store);
    let again = open(&server, key);
    assert_eq!(again.items(), vec![text.to_string(), text.to_string()]);
    assert_eq!(again.scores().get(text), Some(&7));
    assert_eq!(again.note().as_deref(), Some(text));
    assert_eq!(again.history().unwrap().len(), 3);
    assert_eq!(
        server.psql("SELECT count(*) FROM persisted_state"),
        "1",
        "one store, tables intact"
    );
    let err = Store::<Board>::open_postgres(&server.url(), "nul\0key").unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[test]
fn a_field_that_is_a_map_or_null_moves_between_the_tables() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let store = open(&server, "shape");
    let limits = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
    store.set_limits(Some(limits.clone())).unwrap();
    let rows = "SELECT count(*) FROM persisted_entry WHERE key = 'shape' AND field = 'limits'";
    assert_eq!(server.psql(rows), "2");
    store.set_limits(None).unwrap();
    assert_eq!(server.psql(rows), "0", "the rows go with the collection");
    assert_eq!(
        server.psql(
            "SELECT state->'limits', kinds ? 'limits' FROM persisted_state WHERE key = 'shape'"
        ),
        "null|f"
    );
    // Both in one commit, in order: the last wins.
    store
        .transaction(|tx| {
            tx.set_limits(Some(limits.clone()));
            tx.set_counter(5);
            tx.set_limits(None);
            Ok::<_, Error>(())
        })
        .unwrap();
    store
        .transaction(|tx| {
            tx.set_limits(None);
            tx.set_limits(Some(limits.clone()));
            Ok::<_, Error>(())
        })
        .unwrap();
    let again = open(&server, "shape");
    assert_eq!(again.get(), store.get());
    assert_eq!((again.counter(), again.limits()), (5, Some(limits)));
    assert_eq!(server.psql(rows), "2");
}

#[test]
fn the_log_is_trimmed_to_keep_history_at_each_commit_and_at_open() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let forever = Store::<Board>::options()
        .keep_history(KeepHistory::Forever)
        .open_postgres(&server.url(), "trim")
        .unwrap();
    for n in 0..150 {
        forever.set_counter(n).unwrap();
    }
    assert_eq!(forever.history().unwrap().len(), 151);
    drop(forever);
    // A keep that shrank by more than a commit trims: opening trims the
    // whole log.
    let last = Store::<Board>::options()
        .keep_history(KeepHistory::Last(10))
        .open_postgres(&server.url(), "trim")
        .unwrap();
    let kept = last.history().unwrap();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept.last().unwrap().seq, 151);
    for n in 0..100 {
        last.push_items(n.to_string()).unwrap();
        assert_eq!(
            server.psql("SELECT count(*) FROM persisted_log WHERE key = 'trim'"),
            "10"
        );
    }
    assert_eq!(last.history().unwrap().last().unwrap().seq, 251);
}

/// The example of docs/postgres.md, as it is there but for the server's
/// URL, and its `psql` queries.
#[test]
fn the_readme_example_and_queries_run() {
    let Some(server) = PostgresServer::start_durable() else {
        return;
    };
    readme::run(&server.url()).unwrap();
    let store = Store::<readme::Jobs>::open_postgres(&server.url(), "jobs:state").unwrap();
    assert_eq!(store.get().done, 1);
    assert_eq!(store.get().queue, ["job-1"]);
    assert_eq!(
        server.psql("SELECT version, state->>'done' FROM persisted_state WHERE key = 'jobs:state'"),
        "3|1"
    );
    assert_eq!(
        server.psql(
            "SELECT value FROM persisted_item WHERE key = 'jobs:state' AND field = 'queue' \
             ORDER BY pos"
        ),
        "\"job-1\""
    );
    let log = server.psql(
        "SELECT seq, to_timestamp(time_ms / 1000.0), record FROM persisted_log
            WHERE key = 'jobs:state' ORDER BY seq DESC LIMIT 5",
    );
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.lines().next().unwrap().starts_with("3|"), "{log}");
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
            .durability(Durability::Sync) // the server's fsync must be on (checked at open)
            .timeout(Duration::from_secs(2)) // connect, each statement, reconnecting
            .lock_timeout(Duration::from_secs(5)) // how long a closure waits for the row lock
            .open_postgres(url, "jobs:state")?;
        store.push_queue("job-1".into())?; // one INSERT into a side table: O(the change)
        store.update(|j| j.done += 1)?; // runs once, under the store's row lock
        Ok(())
    }
}

/// `sslmode=require`: the connection is TLS, verified against the root
/// certificate the URL names; a server whose certificate does not verify
/// is refused.
#[cfg(feature = "postgres-tls")]
#[test]
fn sslmode_require_connects_with_tls_and_verifies_the_certificate() {
    let Some(server) = PostgresServer::start_tls() else {
        return;
    };
    let url = format!(
        "{}?sslmode=require&sslrootcert={}",
        server.url(),
        server.certificate().display()
    );
    let store = Store::<Board>::open_postgres(&url, "tls").unwrap();
    store.set_counter(3).unwrap();
    store.update(|s| s.counter += 1).unwrap();
    assert_eq!(
        server.psql(
            "SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'persisted-state'"
        ),
        "t",
        "the store's connection is TLS"
    );
    assert_eq!(open(&server, "tls").counter(), 4);

    // The Mozilla roots alone do not trust a self-signed certificate.
    let err = Store::<Board>::options()
        .timeout(Duration::from_secs(2))
        .open_postgres(&format!("{}?sslmode=require", server.url()), "tls")
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // A missing root certificate file is named.
    let err = Store::<Board>::open_postgres(
        &format!(
            "{}?sslmode=require&sslrootcert=/nonexistent.pem",
            server.url()
        ),
        "tls",
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
}

/// `Watch::Auto` on PostgreSQL: another client's commits reach a
/// subscriber as `Remote`.
#[test]
fn another_clients_commits_arrive_as_remote() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let watching = Store::<Board>::options()
        .watch(persisted_state::Watch::Auto)
        .open_postgres(&server.url(), "watched")
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
}

/// An encrypted store in PostgreSQL: field names readable, every value
/// sealed.
#[cfg(feature = "encryption")]
mod encrypted {
    use persisted_state::Key;

    use super::*;

    fn key() -> Key {
        Key::from_bytes([0x42; 32])
    }

    fn open_with(
        server: &PostgresServer,
        name: &str,
        key: Key,
    ) -> persisted_state::Result<Store<Board>> {
        Store::<Board>::options()
            .encryption(key)
            .keep_history(KeepHistory::Forever)
            .open_postgres(&server.url(), name)
    }

    /// Every row of every table, as `psql` prints it.
    fn dump(server: &PostgresServer) -> String {
        [
            "SELECT key, version, state::text, kinds::text, coalesce(envelope, '') FROM \
             persisted_state ORDER BY key",
            "SELECT * FROM persisted_item ORDER BY key, field, pos",
            "SELECT * FROM persisted_entry ORDER BY key, field, k",
            "SELECT key, seq, record FROM persisted_log ORDER BY key, seq",
        ]
        .iter()
        .map(|sql| server.psql(sql))
        .collect::<Vec<_>>()
        .join("\n")
    }

    #[test]
    fn every_kind_of_commit_round_trips_and_no_value_reaches_the_database_in_plain_text() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let store = open_with(&server, "vault", key()).unwrap();
        let mut model = Board::default();
        for n in 0..10u64 {
            store.set_counter(n).unwrap();
            store.push_items(format!("MARKER-{n}")).unwrap();
            store.push_front_queue(n).unwrap();
            store.insert_tags(format!("MARKER-t{}", n % 3)).unwrap();
            store
                .insert_scores(format!("MARKER-s{}", n % 4), n)
                .unwrap();
            store
                .update(|b| b.note = Some(format!("MARKER-note {n}")))
                .unwrap();
            model.counter = n;
            model.items.push(format!("MARKER-{n}"));
            model.queue.push_front(n);
            model.tags.insert(format!("MARKER-t{}", n % 3));
            model.scores.insert(format!("MARKER-s{}", n % 4), n);
            model.note = Some(format!("MARKER-note {n}"));
            if n % 3 == 2 {
                assert_eq!(store.pop_items().unwrap(), model.items.pop());
                store
                    .set_limits(Some(BTreeMap::from([("MARKER-l".into(), n)])))
                    .unwrap();
                model.limits = Some(BTreeMap::from([("MARKER-l".into(), n)]));
            }
            assert_eq!(store.get(), model, "round {n}");
        }
        // A field far larger than an index row (8 KB) once sealed.
        let big: Vec<String> = (0..2000).map(|i| format!("MARKER-big-{i:0>40}")).collect();
        store.set_items(big.clone()).unwrap();
        model.items = big;
        assert_eq!(open_with(&server, "vault", key()).unwrap().get(), model);
        let last = store.history().unwrap().last().unwrap().seq;
        assert_eq!(store.state_at(last).unwrap(), model);
        let everything = dump(&server);
        assert!(!everything.contains("MARKER"), "{everything}");
        // Names stay readable in SQL; each field is one sealed value, a
        // row of its own.
        let names = server.psql(
            "SELECT string_agg(field, ',' ORDER BY field) FROM persisted_entry WHERE key = 'vault' \
             AND k = 'sealed'",
        );
        assert_eq!(names, "counter,items,limits,note,queue,scores,tags");
        let state = server.psql("SELECT state::text FROM persisted_state WHERE key = 'vault'");
        assert_eq!(state, "{}");
    }

    #[test]
    fn a_wrong_or_missing_key_is_named_and_changes_nothing() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        open_with(&server, "vault", key())
            .unwrap()
            .set_counter(5)
            .unwrap();
        open(&server, "plain").set_counter(1).unwrap();
        let before = dump(&server);
        // An open trims the log to its own keep, but only once it opened.
        let err = Store::<Board>::options()
            .encryption(Key::from_bytes([1; 32]))
            .keep_history(KeepHistory::Last(1))
            .open_postgres(&server.url(), "vault")
            .unwrap_err();
        assert!(matches!(err, Error::WrongKey { .. }), "{err:?}");
        let err = Store::<Board>::open_postgres(&server.url(), "vault").unwrap_err();
        assert!(matches!(err, Error::Encrypted { .. }), "{err:?}");
        let err = open_with(&server, "plain", key()).unwrap_err();
        assert!(matches!(err, Error::NotEncrypted { .. }), "{err:?}");
        assert_eq!(dump(&server), before);
    }

    /// A new store is claimed before its first commit, for a key or for
    /// plain values: a process with a key and one without never both make
    /// it (rows as another process leaves them between its claim and its
    /// first commit).
    #[test]
    fn a_store_being_made_with_a_key_or_without_is_not_made_the_other_way() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        open_with(&server, "made", key()).unwrap();
        server.psql("INSERT INTO persisted_state (key, envelope) VALUES ('plain-claim', '')");
        server.psql(
            "INSERT INTO persisted_state (key, envelope) \
             SELECT 'key-claim', envelope FROM persisted_state WHERE key = 'made'",
        );
        let err = open_with(&server, "plain-claim", key()).unwrap_err();
        assert!(matches!(err, Error::NotEncrypted { .. }), "{err:?}");
        let err = Store::<Board>::open_postgres(&server.url(), "key-claim").unwrap_err();
        assert!(matches!(err, Error::Encrypted { .. }), "{err:?}");
        // The claimants themselves go on: a plain one, and one with the key.
        open(&server, "plain-claim").set_counter(1).unwrap();
        open_with(&server, "key-claim", key())
            .unwrap()
            .set_counter(2)
            .unwrap();
        assert_eq!(open(&server, "plain-claim").counter(), 1);
        assert_eq!(open_with(&server, "key-claim", key()).unwrap().counter(), 2);
    }

    #[test]
    fn rekey_retires_the_old_key_and_a_value_moved_to_another_field_is_refused() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let store = open_with(&server, "vault", key()).unwrap();
        store.set_counter(3).unwrap();
        store.set_note(Some("n".into())).unwrap();
        let new = Key::passphrase("correct horse battery staple").unwrap();
        store.rekey(new.clone()).unwrap();
        store.push_items("after".into()).unwrap();
        drop(store);
        let err = open_with(&server, "vault", key()).unwrap_err();
        assert!(matches!(err, Error::WrongKey { .. }), "{err:?}");
        let reopened = open_with(&server, "vault", new.clone()).unwrap();
        assert_eq!(
            (reopened.counter(), reopened.items()),
            (3, vec!["after".to_string()])
        );
        drop(reopened);
        server.psql(
            "UPDATE persisted_entry SET value = (SELECT value FROM persisted_entry \
             WHERE key = 'vault' AND field = 'counter') WHERE key = 'vault' AND field = 'note'",
        );
        let err = open_with(&server, "vault", new).unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("field note` does not authenticate"),
            "{err}"
        );
    }

    #[test]
    fn two_handles_share_an_encrypted_store_exactly() {
        let Some(server) = PostgresServer::start() else {
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
                    for i in 0..30 {
                        store.update(|s| s.counter += 1).unwrap();
                        store.push_items(format!("{t}-{i}")).unwrap();
                    }
                });
            }
        });
        for store in &handles {
            store.refresh().unwrap();
            assert_eq!((store.counter(), store.items().len()), (120, 120));
        }
    }
}

#[test]
fn an_element_larger_than_an_index_row_is_stored() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let store = open(&server, "big");
    // Incompressible text: PostgreSQL compresses values before indexing.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let big: String = (0..20_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'a' + (seed % 26) as u8)
        })
        .collect();
    store.push_items(big.clone()).unwrap();
    store.insert_tags(big.clone()).unwrap();
    assert!(!store.insert_tags(big.clone()).unwrap());
    assert!(store.remove_tags(&big).unwrap());
    assert_eq!(open(&server, "big").items(), vec![big]);
}
