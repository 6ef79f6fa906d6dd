//! Several worker processes drain one job queue kept in PostgreSQL: every
//! job done exactly once, with the same typed API as a file store. The
//! processes could as well run on different hosts.
//!
//! ```text
//! cargo run --features postgres --example postgres_workers            # 200 jobs, 4 workers
//! cargo run --features postgres --example postgres_workers -- 1000 6  # 1000 jobs, 6 workers
//! DATABASE_URL=postgres://me@127.0.0.1:5433/app cargo run --features postgres --example postgres_workers
//! ```
//!
//! Without `DATABASE_URL` the example starts its own PostgreSQL (Debian
//! package `postgresql`) on a free loopback port in a temp dir, and stops
//! it at the end. A worker takes a job and records its result in one
//! transaction, atomic across every process: the transaction's closure runs
//! under the store's row lock, once, so no job is lost or done twice.

#[path = "../tests/postgres_server/mod.rs"]
mod postgres_server;

use std::collections::{BTreeMap, VecDeque};
use std::process::Command;
use std::time::Instant;

use persisted_state::{Error, Persisted, Store};
use serde::{Deserialize, Serialize};

const KEY: &str = "examples:postgres_workers";

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Queue {
    /// Jobs waiting, oldest first.
    jobs: VecDeque<u64>,
    /// Each finished job's result, with the process that made it.
    results: BTreeMap<u64, String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return worker(&args[1]);
    }
    let numbers: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let jobs = numbers.first().copied().unwrap_or(200);
    let workers = numbers.get(1).copied().unwrap_or(4).max(1);

    let mut own_server = None;
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let Some(server) = postgres_server::PostgresServer::start_durable() else {
                return Err("set DATABASE_URL, or install postgresql".into());
            };
            let url = server.url();
            own_server = Some(server);
            url
        }
    };

    // A fresh queue of `jobs` jobs.
    let store = Store::<Queue>::open_postgres(&url, KEY)?;
    store.update(|q| {
        q.jobs = (1..=jobs).collect();
        q.results.clear();
    })?;
    println!("{jobs} jobs in {url} store {KEY}; starting {workers} worker processes");

    let start = Instant::now();
    let exe = std::env::current_exe()?;
    let children = (0..workers)
        .map(|_| Command::new(&exe).args(["worker", &url]).spawn())
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        if !child.wait()?.success() {
            return Err("a worker failed".into());
        }
    }

    let done = store.get();
    let mut per_worker: BTreeMap<&str, usize> = BTreeMap::new();
    for result in done.results.values() {
        let pid = result.split(' ').next_back().unwrap_or("?");
        *per_worker.entry(pid).or_default() += 1;
    }
    println!(
        "{} results in {:.2?}, queue empty: {}; per worker process: {per_worker:?}",
        done.results.len(),
        start.elapsed(),
        done.jobs.is_empty()
    );
    let all = (1..=jobs).all(|j| done.results.contains_key(&j));
    if done.results.len() as u64 != jobs || !all {
        return Err("a job was lost or done twice".into());
    }
    println!("every job done exactly once");
    drop(own_server);
    Ok(())
}

/// Takes jobs until none are left; each job taken and its result recorded
/// in one transaction.
fn worker(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::<Queue>::open_postgres(url, KEY)?;
    let pid = std::process::id();
    loop {
        let took = store.transaction(|tx| {
            let job = tx.pop_front_jobs();
            if let Some(job) = job {
                tx.insert_results(job, format!("{} squared by {pid}", job * job));
            }
            Ok::<_, Error>(job)
        })?;
        if took.is_none() {
            return Ok(());
        }
    }
}
