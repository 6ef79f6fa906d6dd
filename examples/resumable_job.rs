//! A batch job that survives Ctrl-C, `kill -9` and crashes: it records its
//! progress after every item and, when started again, resumes right after
//! the last item it finished.
//!
//! ```text
//! cargo run --example resumable_job            # 2000 items, about 10 s: Ctrl-C it, run it again
//! cargo run --example resumable_job -- 300     # 300 items
//! cargo run --example resumable_job -- --reset # forget the progress, start over
//! JOB_STATE=/tmp/job.json cargo run --example resumable_job
//! ```
//!
//! The progress lives in `job-state.json` in the current directory (or in
//! the file `JOB_STATE` names), with its journal `job-state.json.journal`
//! and its lock `job-state.json.lock` beside it. Every change is handed to
//! the kernel before the call returns (`Durability::Flush`), so killing the
//! process loses at most the item it was working on, never a finished one.
//! Stop a run half-way (Ctrl-C) and start it again to see it resume; run it
//! once more when it is done and it finds nothing left to do.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use persisted_state::{Durability, Error, Persisted, Store};
use serde::{Deserialize, Serialize};

/// How far the job got. Saved after every item.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Progress {
    /// The last item handled (processed or failed); 0 before the first.
    last_id: u64,
    /// The result of every item that succeeded, in order.
    processed: Vec<String>,
    /// The items that failed, with the reason.
    failures: BTreeMap<u64, String>,
}

/// Items handled when no count is given on the command line.
const DEFAULT_ITEMS: u64 = 2000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (items, reset) = parse_args()?;
    let path = std::env::var_os("JOB_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("job-state.json"));
    if reset {
        reset_state(&path)?;
        println!("--reset: removed the saved progress in {}", path.display());
    }

    // Write-through (the default mode): every setter, collection operation
    // and transaction is one atomic commit, in the kernel when it returns.
    let store: Store<Progress> = Store::options().durability(Durability::Flush).open(&path)?;

    let start = store.last_id();
    if start == 0 {
        println!(
            "starting fresh: items 1..={items}, progress in {}",
            path.display()
        );
    } else {
        println!(
            "resuming after item {start} ({} processed, {} failed so far), progress in {}",
            store.read().processed.len(),
            store.read().failures.len(),
            path.display()
        );
    }

    let began = Instant::now();
    let mut handled = 0u64;
    for id in start + 1..=items {
        match work(id) {
            Ok(result) => {
                // The result and the new `last_id` land together, as one
                // journal record: after a crash either both are on disk or
                // neither is, so a resumed run never pushes an item twice.
                // The record holds just the new element and the new id,
                // however long `processed` grows.
                let mut tx = store.begin();
                tx.push_processed(result);
                tx.set_last_id(id);
                tx.commit()?;
            }
            Err(reason) => {
                // The same for a failure: the entry and the id, one record.
                store.transaction(|tx| {
                    tx.insert_failures(id, reason);
                    tx.set_last_id(id);
                    Ok::<_, Error>(())
                })?;
            }
        }
        handled += 1;
        if id.is_multiple_of(100) {
            let progress = store.read();
            println!(
                "  item {id:>4}/{items}: {} processed, {} failed",
                progress.processed.len(),
                progress.failures.len()
            );
        }
    }

    let progress = store.get();
    if handled == 0 {
        println!("nothing left to do: every item up to {items} was handled by an earlier run");
    }
    let mut failed: Vec<String> = progress
        .failures
        .keys()
        .take(8)
        .map(u64::to_string)
        .collect();
    if progress.failures.len() > failed.len() {
        failed.push("...".into());
    }
    println!(
        "done: handled {handled} item(s) in this run ({} ms); in total {} processed, {} failed [{}], last item {}",
        began.elapsed().as_millis(),
        progress.processed.len(),
        progress.failures.len(),
        failed.join(", "),
        progress.last_id
    );
    // Folds the journal into `job-state.json` and releases the lock.
    store.close()?;
    println!("(run it again to see it resume; `-- --reset` starts over)");
    Ok(())
}

/// Simulated work on one item: a short pause (so that a run lasts long
/// enough to Ctrl-C), and every item whose id is a multiple of 37 fails.
fn work(id: u64) -> Result<String, String> {
    thread::sleep(Duration::from_millis(5));
    if id.is_multiple_of(37) {
        Err(format!("item {id}: simulated failure (divisible by 37)"))
    } else {
        Ok(format!(
            "item-{id}: checksum {:08x}",
            id.wrapping_mul(0x9e37_79b9) & 0xffff_ffff
        ))
    }
}

/// `[COUNT] [--reset]`, in any order.
fn parse_args() -> Result<(u64, bool), String> {
    let mut items = DEFAULT_ITEMS;
    let mut reset = false;
    for arg in std::env::args().skip(1) {
        if arg == "--reset" {
            reset = true;
        } else {
            items = arg.parse().map_err(|e| {
                format!("usage: resumable_job [COUNT] [--reset]: bad COUNT `{arg}`: {e}")
            })?;
        }
    }
    Ok((items, reset))
}

/// Removes the snapshot, its journal and its lock file, unless another run
/// has the store open right now (its lock would be pulled from under it).
fn reset_state(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    match Store::<Progress>::open(path) {
        Err(e @ Error::Locked { .. }) => return Err(e.into()),
        // A file that does not parse is just what a reset is for.
        Err(_) => {}
        Ok(store) => drop(store),
    }
    for suffix in ["", ".journal", ".lock"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}
