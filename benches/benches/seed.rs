//! P8 (issue 11): the Python seed's own perftest, beside the seed.
//!
//! The seed is `persistedstate` (PyPI; github.com/presidento/persistedstate),
//! whose `benchmarks/perftest.py` times, for a fresh file:
//!
//! ```python
//! with PersistedState(file) as state:
//!     state.counter = 0
//!     for _ in range(10_000):
//!         state.counter += 1
//! ```
//!
//! Ours is the same program: open a new YAML store, `set_counter(0)`,
//! 10,000 `update(|s| s.counter += 1)` (each on disk when it returns,
//! `Durability::Flush`), `close()` (a fully synced compaction). The seed
//! writes one JSON line per change and never fsyncs. Paired, 15 rounds:
//! each round times ours, the seed (inside Python, interpreter start-up
//! excluded), and ours again, and divides the seed's time by the mean of
//! the two of ours; printed are the median times and the per-round ratios'
//! median and lowest.
//!
//! Needs `python3` with the seed installed (`pip install persistedstate`);
//! without it, ours runs alone and the comparison says NOT RUN.
//!
//!     cd benches && cargo bench --no-default-features --bench seed

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use persisted_state::{Persisted, Store};
use serde::{Deserialize, Serialize};

const COUNT_TO: u64 = 10_000;
const ROUNDS: usize = 15;

/// The seed's perftest loop for one fresh file; prints its seconds.
const SEED: &str = r#"
import pathlib, sys, time
from persistedstate import PersistedState
file = pathlib.Path(sys.argv[1])
file.unlink(missing_ok=True)
start = time.perf_counter()
with PersistedState(file) as state:
    state.counter = 0
    for _ in range(int(sys.argv[2])):
        state.counter += 1
print(time.perf_counter() - start)
"#;

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct PerfState {
    counter: u64,
}

/// Ours: the perftest on a fresh YAML store at `path`.
fn ours(path: &Path) -> Duration {
    let _ = std::fs::remove_file(path);
    let start = Instant::now();
    let store = Store::<PerfState>::open(path).expect("open");
    store.set_counter(0).expect("set");
    for _ in 0..COUNT_TO {
        store.update(|s| s.counter += 1).expect("update");
    }
    store.close().expect("close");
    let took = start.elapsed();
    let reopened = Store::<PerfState>::open(path).expect("reopen");
    assert_eq!(reopened.counter(), COUNT_TO);
    took
}

/// The seed: one run of its loop in `python3`; `None` when it cannot run.
fn seed(path: &Path) -> Option<Duration> {
    let out = Command::new("python3")
        .args(["-c", SEED])
        .arg(path)
        .arg(COUNT_TO.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let seconds: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    assert!(
        text.contains(&format!("counter: {COUNT_TO}")),
        "the seed's file holds the count"
    );
    Some(Duration::from_secs_f64(seconds))
}

fn main() {
    let dir = common::tempdir();
    let (ours_path, seed_path) = (dir.path().join("perf.yaml"), dir.path().join("perf.state"));
    if seed(&seed_path).is_none() {
        let mut times: Vec<f64> = (0..ROUNDS)
            .map(|_| ours(&ours_path).as_secs_f64() * 1e3)
            .collect();
        println!(
            "P8 ours: open + {COUNT_TO} update(+1) + close, YAML: {:.1} ms (median)",
            common::median(&mut times)
        );
        println!("P8 seed: NOT RUN (needs python3 with the seed: pip install persistedstate)");
        return;
    }
    // Warm-up, then rounds of ours, the seed, ours again: each seed run is
    // compared with the mean of the two of ours around it, so a machine
    // that speeds up or slows down during a round skews neither side.
    ours(&ours_path);
    let (mut theirs, mut mine, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let before = ours(&ours_path);
        let s = seed(&seed_path).expect("the seed ran before");
        let after = ours(&ours_path);
        let (s, o) = (
            s.as_secs_f64() * 1e3,
            (before + after).as_secs_f64() * 1e3 / 2.0,
        );
        println!(
            "round {round}: seed {s:.1} ms, ours {o:.1} ms (mean of the runs before and \
             after), {:.2}x",
            s / o
        );
        theirs.push(s);
        mine.push(o);
        ratios.push(s / o);
    }
    let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "P8 seed (Python persistedstate): {:.1} ms; ours: {:.1} ms (medians; open + \
         {COUNT_TO} update(+1) + close, YAML)",
        common::median(&mut theirs),
        common::median(&mut mine)
    );
    println!(
        "P8 paired ratio, seed / ours: median {:.2}x, lowest round {lowest:.2}x (goal: >= 5x \
         in every run)",
        common::median(&mut ratios)
    );
}
