//! Several worker processes drain one persisted job queue, each job's result
//! recorded exactly once, even when a worker is killed with `kill -9`.
//!
//! ```text
//! cargo run --example job_queue                 # 300 jobs, 4 worker processes
//! cargo run --example job_queue -- 1000 6       # 1000 jobs, 6 workers
//! cargo run --example job_queue -- 300 4 --kill # kill -9 a worker now and then
//! ```
//!
//! The queue lives in `job-queue.json` (in the current directory, or where
//! `JOB_QUEUE` says), opened by every process with `.shared(true)`. A
//! worker takes a job and a lease on it in one transaction (`pop_front_`
//! plus `insert_`), works outside the lock, then records the result and
//! drops the lease in a second one. A worker that dies holding a lease
//! leaves it behind; whoever looks next puts its job back at the front of
//! the queue. Every commit is atomic across all the processes, so no job is
//! lost and no result is recorded twice. Linux only (leases name a process
//! id, checked in `/proc`).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use persisted_state::{Error, Persisted, Store};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Queue {
    /// Jobs waiting, oldest first.
    jobs: VecDeque<u64>,
    /// Jobs taken and not yet finished, with the process that took them.
    leases: BTreeMap<u64, u32>,
    /// The result of every finished job, with the process that made it.
    results: BTreeMap<u64, String>,
}

fn open(path: &PathBuf) -> persisted_state::Result<Store<Queue>> {
    Store::options().shared(true).open(path)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var_os("JOB_QUEUE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("job-queue.json"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return worker(&path);
    }
    let numbers: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let jobs = numbers.first().copied().unwrap_or(300);
    let workers = numbers.get(1).copied().unwrap_or(4).max(1);
    let kill = args.iter().any(|a| a == "--kill");

    // A fresh queue of `jobs` jobs.
    for suffix in ["", ".journal"] {
        let mut name = path.clone().into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
    let queue = open(&path)?;
    queue.set_jobs((1..=jobs).collect())?;
    println!(
        "{jobs} jobs in {}, {workers} worker processes{}",
        path.display(),
        if kill {
            ", one killed now and then"
        } else {
            ""
        }
    );

    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let spawn = || {
        Command::new(&exe)
            .arg("worker")
            .env("JOB_QUEUE", &path)
            .spawn()
    };
    let mut running: Vec<Child> = (0..workers).map(|_| spawn()).collect::<Result<_, _>>()?;
    let mut killed = 0;
    while !running.is_empty() {
        std::thread::sleep(Duration::from_millis(40));
        if kill && killed < 5 && queue.read().jobs.len() > 20 {
            // kill -9 the oldest worker, whatever it is doing, and replace it.
            running[0].kill()?;
            running[0].wait()?;
            running[0] = spawn()?;
            killed += 1;
        }
        let mut still = Vec::new();
        for mut child in running {
            match child.try_wait()? {
                Some(status) if !status.success() => return Err("a worker failed".into()),
                Some(_) => {}
                None => still.push(child),
            }
        }
        running = still;
    }

    // Whatever the kills left leased is picked up by this last look.
    reclaim(&queue)?;
    while work_one(&queue)? {}
    let done = queue.get();
    let per_worker = done.results.values().fold(BTreeMap::new(), |mut n, r| {
        *n.entry(r.split(':').next().unwrap_or("").to_owned())
            .or_insert(0) += 1;
        n
    });
    println!(
        "{} results in {} ms from {} processes ({} killed with kill -9); queue {} left, \
         leases {} left",
        done.results.len(),
        started.elapsed().as_millis(),
        per_worker.len(),
        killed,
        done.jobs.len(),
        done.leases.len()
    );
    let every_job_once = done.results.keys().copied().eq(1..=jobs);
    if !every_job_once || !done.jobs.is_empty() || !done.leases.is_empty() {
        return Err("a job was lost or recorded twice".into());
    }
    println!("every job has exactly one result");
    queue.close()?;
    Ok(())
}

/// A worker process: takes jobs until the queue is empty.
fn worker(path: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let queue = open(path)?;
    reclaim(&queue)?;
    while work_one(&queue)? {}
    Ok(())
}

/// Takes one job, works on it, records its result; `false` when the queue
/// is empty.
fn work_one(queue: &Store<Queue>) -> persisted_state::Result<bool> {
    let me = std::process::id();
    // Take the oldest job and a lease on it, as one commit.
    let job = queue.transaction(|tx| {
        let job = tx.pop_front_jobs();
        if let Some(job) = job {
            tx.insert_leases(job, me);
        }
        Ok::<_, Error>(job)
    })?;
    let Some(job) = job else {
        return Ok(false);
    };
    // The work, outside the lock: other workers go on meanwhile.
    std::thread::sleep(Duration::from_millis(2));
    let result = format!("{me}: {job} squared is {}", job * job);
    // Record the result and drop the lease, as one commit.
    queue.transaction(|tx| {
        tx.insert_results(job, result);
        tx.remove_leases(&job);
        Ok::<_, Error>(())
    })?;
    Ok(true)
}

/// Puts back the jobs of leases whose process is gone.
fn reclaim(queue: &Store<Queue>) -> persisted_state::Result<()> {
    queue.transaction(|tx| {
        let dead: Vec<(u64, u32, bool)> = tx
            .leases
            .iter()
            .filter(|(_, pid)| !PathBuf::from(format!("/proc/{pid}")).exists())
            .map(|(&job, &pid)| (job, pid, tx.results.contains_key(&job)))
            .collect();
        for (job, pid, finished) in dead {
            tx.remove_leases(&job);
            if !finished {
                println!("job {job}: its worker {pid} died; back in the queue");
                tx.push_front_jobs(job);
            }
        }
        Ok(())
    })
}
