//! Eight threads share one persisted state: each claims jobs with an atomic
//! read-modify-write and records its results, and no job is lost or done
//! twice.
//!
//! ```text
//! cargo run --example workers
//! ```
//!
//! `Store<T>` is `Send + Sync` and cheap to clone: every worker gets a
//! clone of the same handle. `store.update(|s| ...)` runs its closure under
//! the store's writer lock and commits what it changed as one record, so
//! "read the next job number and advance it" cannot interleave with another
//! worker's. Results go in with the generated `insert_results`, which
//! journals just the new entry. At the end the main thread checks the
//! claims and results, then reopens the file and checks that what is on
//! disk equals what was in memory. Everything happens in a fresh directory
//! under the system's temp directory, removed at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use persisted_state::{Persisted, Store};
use serde::{Deserialize, Serialize};

/// The shared job board.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Board {
    /// Jobs are numbered `1..=jobs`.
    jobs: u64,
    /// The next job to hand out.
    next_job: u64,
    /// Each finished job's result.
    results: BTreeMap<u64, String>,
}

const WORKERS: usize = 8;
const JOBS: u64 = 400;

/// A directory that is removed when dropped (also on an early `?`).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let dir = TempDir(
        std::env::temp_dir().join(format!("persisted-workers-{}-{nanos}", std::process::id())),
    );
    std::fs::create_dir(&dir.0)?;
    let path = dir.0.join("board.json");

    let store: Store<Board> = Store::open_or(
        &path,
        Board {
            jobs: JOBS,
            next_job: 1,
            results: BTreeMap::new(),
        },
    )?;
    println!(
        "{WORKERS} workers, {JOBS} jobs, state in {}",
        path.display()
    );

    let handles: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let store = store.clone();
            thread::spawn(move || work(worker, &store))
        })
        .collect();
    let mut claims: Vec<Vec<u64>> = Vec::new();
    for handle in handles {
        let claimed = handle.join().map_err(|_| "a worker thread panicked")??;
        claims.push(claimed);
    }

    // No job was claimed twice, and every job was claimed by someone.
    let per_worker: Vec<usize> = claims.iter().map(Vec::len).collect();
    println!("jobs claimed per worker: {per_worker:?}");
    let mut all: Vec<u64> = claims.concat();
    all.sort_unstable();
    let claimed_once = all.len();
    all.dedup();
    if all.len() != claimed_once {
        return Err(format!("{} job(s) were claimed twice", claimed_once - all.len()).into());
    }
    if all != (1..=JOBS).collect::<Vec<_>>() {
        return Err("some jobs were never claimed".into());
    }
    println!("ok: {claimed_once} claims, no job claimed twice");

    // Every job has a result.
    let in_memory = store.get();
    if !(1..=JOBS).all(|id| in_memory.results.contains_key(&id))
        || in_memory.results.len() as u64 != JOBS
    {
        return Err("some jobs have no result".into());
    }
    println!(
        "ok: every job has a result, e.g. {:?}",
        in_memory.results.get(&JOBS)
    );

    // What is on disk is what was in memory. `close()` releases the lock
    // (this is the last clone: the workers' clones were dropped with them).
    let journal = journal_len(&path)?;
    store.close()?;
    let reopened = Board::open(&path)?.get();
    if reopened != in_memory {
        return Err("the reopened file differs from memory".into());
    }
    println!(
        "ok: reopened file equals memory ({journal} bytes of journal were folded in at close)"
    );
    Ok(())
}

/// One worker: claims jobs until none are left; returns the ids it claimed.
fn work(worker: usize, store: &Store<Board>) -> persisted_state::Result<Vec<u64>> {
    let mut claimed = Vec::new();
    loop {
        // Atomic read-modify-write: the check and the increment happen
        // under the writer lock, and the new `next_job` is one commit.
        let job = store.update(|board| {
            (board.next_job <= board.jobs).then(|| {
                board.next_job += 1;
                board.next_job - 1
            })
        })?;
        let Some(id) = job else { break };
        claimed.push(id);
        let result = format!("job {id} done by worker {worker}: {id}^2 = {}", id * id);
        store.insert_results(id, result)?;
    }
    Ok(claimed)
}

/// The size of the journal beside `path`.
fn journal_len(path: &Path) -> std::io::Result<u64> {
    let mut name = path.as_os_str().to_owned();
    name.push(".journal");
    Ok(std::fs::metadata(name)?.len())
}
