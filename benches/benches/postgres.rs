//! P19, P20 and the contention figure of issue 22: the PostgreSQL backend
//! (`Store::open_postgres`, `Durability::Sync`) against the raw `postgres`
//! client on the same kind of connection (sync, one TCP connection,
//! loopback), on a server this bench starts on a free port with `fsync` on
//! and `synchronous_commit = on`, and stops at the end.
//!
//! - **P19**: `set_counter(n)` vs one raw one-row `UPDATE` (autocommit,
//!   synchronous commit); goal <= 1.5x.
//! - **P20**: `update(|s| s.counter += 1)` (row lock, closure, commit in
//!   one transaction) vs the same raw `UPDATE`; goal <= 2.5x.
//! - **Contention**: 4 processes each making a fixed number of
//!   `update(|s| s.counter += 1)` on one store, total commits/s, beside a
//!   raw `BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT` loop doing the same
//!   increment on a one-row table. The workers are this binary run again
//!   (`PERSISTED_BENCH_PG_WORKER` = `ours` or `raw`); the final counter must
//!   equal the commits made.
//!
//!     cd benches && cargo bench --no-default-features --bench postgres

mod common;
#[path = "../../tests/postgres_server/mod.rs"]
mod postgres_server;

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;
use persisted_state::{Durability, Persisted, Store};
use serde::{Deserialize, Serialize};

const WORKER: &str = "PERSISTED_BENCH_PG_WORKER";
const PROCESSES: u64 = 4;
const EACH: u64 = 500;

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Counter {
    counter: u64,
    name: String,
}

fn raw(url: &str) -> postgres::Client {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    client
        .batch_execute(
            "SET synchronous_commit = on;
             CREATE TABLE IF NOT EXISTS rawbench (id int PRIMARY KEY, counter bigint NOT NULL);
             INSERT INTO rawbench VALUES (1, 0) ON CONFLICT DO NOTHING",
        )
        .expect("raw table");
    client
}

fn open(url: &str, key: &str) -> Store<Counter> {
    Store::<Counter>::options()
        .durability(Durability::Sync)
        .lock_timeout(Duration::from_secs(60))
        .open_postgres(url, key)
        .expect("open")
}

/// The baseline: one one-row `UPDATE`, its own transaction.
fn raw_update(client: &mut postgres::Client, statement: &postgres::Statement, n: i64) {
    client.execute(statement, &[&n]).expect("UPDATE");
}

fn single(c: &mut Criterion, url: &str) {
    let mut group = c.benchmark_group("postgres");
    let mut client = raw(url);
    let update = client
        .prepare("UPDATE rawbench SET counter = $1 WHERE id = 1")
        .unwrap();
    let mut n = 0i64;
    group.bench_function("raw/update", |b| {
        b.iter(|| {
            n += 1;
            raw_update(&mut client, &update, n);
        })
    });
    // The library's commit function, called raw on a prepared statement:
    // what the server does for a commit, without the client.
    let store = open(url, "bench:single");
    let commit = client
        .prepare(
            "SELECT persisted_commit($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8::text::jsonb, \
             $9, $10)",
        )
        .unwrap();
    let mut version = client
        .query_one(
            "SELECT version FROM persisted_state WHERE key = 'bench:single'",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0);
    let mut raw_commit = |client: &mut postgres::Client, n: i64| {
        let cid = format!("{n:032x}");
        let record = format!("{{\"set counter\":{n}}}");
        let set = format!("{{\"counter\":{n}}}");
        let none: Vec<String> = Vec::new();
        let v: i64 = client
            .query_one(
                &commit,
                &[
                    &"bench:single",
                    &version,
                    &cid,
                    &1_700_000_000_000i64,
                    &record,
                    &set,
                    &none,
                    &"[]",
                    &10_000i64,
                    &0i64,
                ],
            )
            .expect("persisted_commit")
            .get(0);
        assert_eq!(v, version + 1);
        version = v;
    };
    group.bench_function("raw/commit_function", |b| {
        b.iter(|| {
            n += 1;
            raw_commit(&mut client, n);
        })
    });
    drop(store);
    let store = open(url, "bench:single");
    group.bench_function("ours/set_counter", |b| {
        b.iter(|| {
            n += 1;
            store.set_counter(black_box(n as u64)).expect("set");
        })
    });
    group.bench_function("ours/update", |b| {
        b.iter(|| store.update(|s| s.counter += 1).expect("update"))
    });
    group.finish();

    // The same ratios from batches of each alternated (a shared VM's
    // round trip and fsync drift between runs): median of the per-round
    // ratios.
    let mut raw_one = || {
        n += 1;
        raw_update(&mut client, &update, n);
    };
    let mut set = || store.set_counter(black_box(7)).expect("set");
    let (ours, base, p19) = common::paired(&mut set, &mut raw_one, 20, 100);
    println!("set_counter {ours:.0} us, raw UPDATE {base:.0} us");
    let mut update_one = || store.update(|s| s.counter += 1).expect("update");
    let mut raw_one = || {
        n += 1;
        raw_update(&mut client, &update, n);
    };
    let (ours, base, p20) = common::paired(&mut update_one, &mut raw_one, 20, 100);
    println!("update(+1) {ours:.0} us, raw UPDATE {base:.0} us");
    println!("paired P19 ratio, set_counter / raw UPDATE: {p19:.2}");
    println!("paired P20 ratio, update(+1) / raw UPDATE: {p20:.2}");
}

/// One worker process: `EACH` increments by `kind`.
fn worker(kind: &str, url: &str) {
    match kind {
        "ours" => {
            let store = open(url, "bench:contended");
            for _ in 0..EACH {
                store.update(|s| s.counter += 1).expect("update");
            }
        }
        _ => {
            let mut client = raw(url);
            for _ in 0..EACH {
                let mut tx = client.transaction().expect("BEGIN");
                let row = tx
                    .query_one("SELECT counter FROM rawbench WHERE id = 1 FOR UPDATE", &[])
                    .expect("SELECT FOR UPDATE");
                let counter: i64 = row.get(0);
                tx.execute(
                    "UPDATE rawbench SET counter = $1 WHERE id = 1",
                    &[&(counter + 1)],
                )
                .expect("UPDATE");
                tx.commit().expect("COMMIT");
            }
        }
    }
}

/// `PROCESSES` workers of `kind`; returns commits/s.
fn contended(kind: &str, url: &str) -> f64 {
    let start = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env(WORKER, kind)
                .arg(url)
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    for mut child in children {
        assert!(
            child.wait().expect("worker").success(),
            "{kind} worker failed"
        );
    }
    (PROCESSES * EACH) as f64 / start.elapsed().as_secs_f64()
}

fn contention(url: &str) {
    let mut rates = Vec::new();
    for kind in ["ours", "raw"] {
        let mut client = raw(url);
        client
            .batch_execute("UPDATE rawbench SET counter = 0")
            .unwrap();
        let rate = contended(kind, url);
        let total = match kind {
            "ours" => open(url, "bench:contended").counter(),
            _ => {
                let row = client
                    .query_one("SELECT counter FROM rawbench WHERE id = 1", &[])
                    .unwrap();
                row.get::<_, i64>(0) as u64
            }
        };
        assert_eq!(total, PROCESSES * EACH, "{kind}: lost or doubled updates");
        println!(
            "postgres/contended/{kind}: {PROCESSES} processes x {EACH} increments: {rate:.0} \
             commits/s"
        );
        rates.push(rate);
    }
    println!(
        "contention ratio, ours / raw SELECT FOR UPDATE loop: {:.2}",
        rates[0] / rates[1]
    );
}

fn benches() {
    let server = postgres_server::PostgresServer::start_durable()
        .expect("PostgreSQL (Debian package postgresql) is needed for this bench");
    let url = server.url();
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    single(&mut c, &url);
    contention(&url);
}

fn main() {
    if let Ok(kind) = std::env::var(WORKER) {
        let url = std::env::args().nth(1).expect("url");
        worker(&kind, &url);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
