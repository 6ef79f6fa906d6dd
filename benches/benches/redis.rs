//! P12, P13 and the contention figure of issue 12: the Redis backend
//! (`Store::open_redis`) against raw redis-rs on the same kind of
//! connection (sync, one TCP connection, loopback), on a `redis-server`
//! this bench starts on a free port (AOF `everysec`, so `Durability::Flush`:
//! acknowledged by the server) and stops at the end.
//!
//! - **P12**: `set_counter(n)` vs one raw `HSET` round trip; goal <= 2x.
//! - **P13**: `update(|s| s.counter += 1)` (lease + catch-up in one script,
//!   the closure, commit + release in another) vs the same raw `HSET`;
//!   goal <= 3x.
//! - **Contention**: 4 processes each making a fixed number of
//!   `update(|s| s.counter += 1)` on one key, total commits/s, beside two
//!   baselines doing the same increment on a raw hash field: WATCH/GET/
//!   MULTI/SET/EXEC retried on conflict, and a Lua compare-and-set script
//!   (read the version, then one EVALSHA that checks it) retried on
//!   conflict; retries per commit printed for each. The workers are this
//!   binary run again (`PERSISTED_BENCH_REDIS_WORKER` = `ours`, `watch` or
//!   `lua`); the final counter must equal the commits made.
//!
//!     cd benches && cargo bench --no-default-features --bench redis

mod common;
#[path = "../../tests/redis_server/mod.rs"]
mod redis_server;

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;
use persisted_state::{Persisted, Store};
use serde::{Deserialize, Serialize};

const WORKER: &str = "PERSISTED_BENCH_REDIS_WORKER";
const PROCESSES: u64 = 4;
const EACH: u64 = 2_000;

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Counter {
    counter: u64,
    name: String,
}

fn raw(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("client");
    client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect")
}

/// The baseline: one raw `HSET` round trip.
fn raw_hset(conn: &mut redis::Connection, n: u64) {
    let _: () = redis::cmd("HSET")
        .arg("rawbench")
        .arg("counter")
        .arg(n)
        .query(conn)
        .expect("HSET");
}

fn single(c: &mut Criterion, url: &str) {
    let mut group = c.benchmark_group("redis");
    let mut conn = raw(url);
    let mut n = 0u64;
    group.bench_function("raw/hset", |b| {
        b.iter(|| {
            n += 1;
            raw_hset(&mut conn, n);
        })
    });
    // The library's commit script, called raw: what the client adds.
    let commit = redis::Script::new(include_str!(
        "../../crates/persisted-core/src/remote/commit.lua"
    ));
    let _: () = redis::cmd("HSET")
        .arg("{raw}:meta")
        .arg("v")
        .arg(0)
        .query(&mut conn)
        .unwrap();
    let mut v = 0u64;
    group.bench_function("raw/commit_script", |b| {
        b.iter(|| {
            let reply: redis::Value = commit
                .key("{raw}:meta")
                .key("{raw}:state")
                .key("{raw}:log")
                .key("{raw}:lease")
                .arg("{raw}")
                .arg(v)
                .arg("0123456789abcdef0123456789abcdef")
                .arg("{\"set counter\":5}")
                .arg(1_700_000_000_000u64)
                .arg("")
                .arg("0")
                .arg("MAXLEN")
                .arg("10000")
                .arg(1)
                .arg("J")
                .arg("counter")
                .arg(1)
                .arg(v)
                .invoke(&mut conn)
                .expect("commit script");
            black_box(reply);
            v += 1;
        })
    });
    let store = Store::<Counter>::open_redis(url, "bench:single").expect("open");
    group.bench_function("ours/set_counter", |b| {
        b.iter(|| {
            n += 1;
            store.set_counter(black_box(n)).expect("set");
        })
    });
    group.bench_function("ours/update", |b| {
        b.iter(|| store.update(|s| s.counter += 1).expect("update"))
    });
    group.finish();

    // The same ratios from batches of each alternated (a shared VM's
    // round trip drifts between runs): median of the per-round ratios.
    let mut hset = || {
        n += 1;
        raw_hset(&mut conn, n);
    };
    let mut set = || store.set_counter(black_box(7)).expect("set");
    let (_, _, p12) = common::paired(&mut set, &mut hset, 30, 300);
    let mut update = || store.update(|s| s.counter += 1).expect("update");
    let mut hset = || {
        n += 1;
        raw_hset(&mut conn, n);
    };
    let (_, _, p13) = common::paired(&mut update, &mut hset, 30, 300);
    println!("paired P12 ratio, set_counter / raw HSET: {p12:.2}");
    println!("paired P13 ratio, update(+1) / raw HSET: {p13:.2}");
}

/// One worker process: `EACH` increments by `kind`; prints the retries.
fn worker(kind: &str, url: &str) {
    let mut retries = 0u64;
    match kind {
        "ours" => {
            let store = Store::<Counter>::options()
                .lock_timeout(Duration::from_secs(30))
                .open_redis(url, "bench:contended")
                .expect("open");
            for _ in 0..EACH {
                store.update(|s| s.counter += 1).expect("update");
            }
        }
        "watch" => {
            let mut conn = raw(url);
            for _ in 0..EACH {
                loop {
                    let _: () = redis::cmd("WATCH")
                        .arg("watchbench")
                        .query(&mut conn)
                        .unwrap();
                    let n: Option<u64> = redis::cmd("GET")
                        .arg("watchbench")
                        .query(&mut conn)
                        .unwrap();
                    let done: Option<((),)> = redis::pipe()
                        .atomic()
                        .cmd("SET")
                        .arg("watchbench")
                        .arg(n.unwrap_or(0) + 1)
                        .query(&mut conn)
                        .unwrap();
                    if done.is_some() {
                        break;
                    }
                    retries += 1;
                }
            }
        }
        _ => {
            let script = redis::Script::new(
                "if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end \
                 redis.call('SET', KEYS[1], ARGV[2]) return 1",
            );
            let mut conn = raw(url);
            for _ in 0..EACH {
                loop {
                    let n: Option<u64> =
                        redis::cmd("GET").arg("luabench").query(&mut conn).unwrap();
                    let n = n.unwrap_or(0);
                    let ok: u64 = script
                        .key("luabench")
                        .arg(n.to_string())
                        .arg(n + 1)
                        .invoke(&mut conn)
                        .unwrap();
                    if ok == 1 {
                        break;
                    }
                    retries += 1;
                }
            }
        }
    }
    println!("RETRIES {retries}");
}

/// `PROCESSES` workers of `kind`; returns (commits/s, retries per commit).
fn contended(kind: &str, url: &str) -> (f64, f64) {
    let start = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env(WORKER, kind)
                .arg(url)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let mut retries = 0u64;
    for child in children {
        let out = child.wait_with_output().expect("worker");
        assert!(out.status.success(), "{kind} worker failed");
        let text = String::from_utf8_lossy(&out.stdout);
        retries += text
            .lines()
            .filter_map(|l| l.strip_prefix("RETRIES "))
            .map(|n| n.parse::<u64>().unwrap())
            .sum::<u64>();
    }
    let elapsed = start.elapsed();
    let commits = PROCESSES * EACH;
    (
        commits as f64 / elapsed.as_secs_f64(),
        retries as f64 / commits as f64,
    )
}

fn contention(url: &str) {
    for kind in ["ours", "watch", "lua"] {
        let mut conn = raw(url);
        let _: () = redis::cmd("FLUSHDB").query(&mut conn).unwrap();
        let (rate, retries) = contended(kind, url);
        let total: u64 = match kind {
            "ours" => Store::<Counter>::open_redis(url, "bench:contended")
                .unwrap()
                .counter(),
            "watch" => redis::cmd("GET")
                .arg("watchbench")
                .query(&mut conn)
                .unwrap(),
            _ => redis::cmd("GET").arg("luabench").query(&mut conn).unwrap(),
        };
        assert_eq!(total, PROCESSES * EACH, "{kind}: lost or doubled updates");
        println!(
            "redis/contended/{kind}: {PROCESSES} processes x {EACH} increments: {rate:.0} commits/s, \
             {retries:.2} retries per commit"
        );
    }
}

fn benches() {
    let server = redis_server::RedisServer::start(redis_server::Aof::Everysec)
        .expect("redis-server is needed for this bench");
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
