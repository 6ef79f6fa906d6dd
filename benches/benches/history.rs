//! The cost of keeping history (issue 11): what `keep_history` adds to a
//! compaction that folds a journal of 1,000 `set_counter` commits (a small
//! state; the store's second compaction, which appends to its history
//! file), `KeepHistory::Forever` vs `KeepHistory::None`, and the bytes
//! kept per commit. Commits themselves cost the same either way (history
//! is written only by compaction). Paired: compactions of each alternated,
//! median of the per-round ratios.
//!
//!     cd benches && cargo bench --no-default-features --bench history

mod common;

use std::time::{Duration, Instant};

use common::{State, StateStoreExt as _};
use persisted_state::{Durability, KeepHistory, Store};

const COMMITS: u64 = 1_000;

/// Makes `COMMITS` commits on a store of its own, compacts, makes as many
/// again, and times the second compaction (fully synced, as always).
fn compaction(policy: KeepHistory, dir: &std::path::Path, round: &mut u64) -> Duration {
    *round += 1;
    let path = dir.join(format!("state-{round}.json"));
    let store = Store::<State>::options()
        .durability(Durability::Flush)
        .journal_limit(u64::MAX)
        .keep_history(policy)
        .open(&path)
        .expect("open");
    // The first compaction of a store with history starts its first
    // history file; the one timed is the usual kind, which appends.
    for i in 0..COMMITS {
        store.set_counter(i).expect("commit");
    }
    store.compact().expect("compact");
    for i in 0..COMMITS {
        store.set_counter(i).expect("commit");
    }
    let start = Instant::now();
    store.compact().expect("compact");
    let took = start.elapsed();
    drop(store);
    took
}

fn main() {
    let dir = common::tempdir();
    let (kept, dropped) = (dir.path().join("forever"), dir.path().join("none"));
    std::fs::create_dir_all(&kept).expect("mkdir");
    std::fs::create_dir_all(&dropped).expect("mkdir");
    let (mut a, mut b) = (0, 0);
    let (forever, none, ratio) = common::paired_timed(
        &mut || compaction(KeepHistory::Forever, &kept, &mut a),
        &mut || compaction(KeepHistory::None, &dropped, &mut b),
        15,
        1,
    );
    // Bytes the history keeps per commit.
    let sizes: u64 = std::fs::read_dir(&kept)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains(".history-") && !name.ends_with(".snapshot")
        })
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    let stores = std::fs::read_dir(&kept)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".history-0"))
        .count()
        .max(1) as u64;
    println!(
        "history: compaction of {COMMITS} commits, Forever vs None: {forever:.0} vs {none:.0} us, \
         paired ratio {ratio:.2}; history bytes per commit: {:.1}",
        sizes as f64 / (stores * 2 * COMMITS) as f64
    );
    common::record_extra(
        "history",
        &[
            ("paired compaction ratio, Forever / None", ratio),
            (
                "history bytes per commit",
                sizes as f64 / (stores * 2 * COMMITS) as f64,
            ),
        ],
    );
}
