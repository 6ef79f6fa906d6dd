//! P4: `Durability::Sync` commits from 1, 2, 4 and 8 threads writing
//! through clones of one store. Criterion's time per iteration is wall time
//! per commit, so commits/s = 1 / time; with group commit (writers that
//! arrive together share one fsync) it falls as threads are added. One
//! group, `threads`; ids `<kind>/<label>/<threads>`.
//!
//!     cd benches && cargo bench --bench threads

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{State, StateStoreExt as _};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use persisted_state::{Durability, Store};

const THREADS: [u64; 4] = [1, 2, 4, 8];

/// Commits in each batch of the paired measurement.
const PAIRED: u64 = 800;

/// Runs `iters` commits split over `threads` threads; the wall time from
/// the moment all threads are ready until the last one finishes.
fn run(store: &Store<State>, threads: u64, iters: u64, commit: Commit) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let barrier = Barrier::new(threads as usize + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = store.clone();
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..per_thread {
                        commit(&store, t * per_thread + i);
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            h.join().unwrap();
        }
        // Scale to exactly `iters` commits (per_thread * threads may be a few more).
        start
            .elapsed()
            .mul_f64(iters as f64 / (per_thread * threads) as f64)
    })
}

/// One commit on the store by the thread doing its `i`-th commit.
type Commit = fn(&Store<State>, u64);

fn threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("threads");
    let cases: [(&str, Commit); 2] = [
        ("ours/update(counter += 1)", |s, _| {
            s.update(|st| st.counter += 1).unwrap();
        }),
        ("ours/set_counter", |s, i| {
            s.set_counter(i + 1).unwrap();
        }),
    ];
    for (name, commit) in cases {
        for n in THREADS {
            let dir = common::tempdir();
            let store = Store::<State>::options()
                .durability(Durability::Sync)
                .open(dir.path().join("state.json"))
                .unwrap();
            let mut done = 0u64;
            g.bench_function(BenchmarkId::new(name, format!("{n} threads")), |b| {
                b.iter_custom(|iters| {
                    done += iters.div_ceil(n) * n;
                    run(&store, n, iters, commit)
                })
            });
            if name.starts_with("ours/update") {
                // Every read-modify-write landed once: no lost update.
                assert_eq!(store.read().counter, done, "{name} x{n}: lost updates");
            }
            drop(store);
        }
    }
    g.finish();

    // Paired: alternate a batch of PAIRED commits from 1 thread and as
    // many from 8 threads on two stores, so the disk's drifting load hits
    // both alike; ratio = time(1 thread) / time(8 threads) = the speedup.
    // The batch is long enough (100 commits a thread) that starting and
    // joining the threads, and the first and last groups (smaller, while
    // threads start and finish), weigh little: commits/s as a program
    // committing from 8 threads sees it.
    let mut extras = Vec::new();
    for (name, commit) in cases {
        let dirs = [common::tempdir(), common::tempdir()];
        let open = |dir: &tempfile::TempDir| {
            Store::<State>::options()
                .durability(Durability::Sync)
                .open(dir.path().join("state.json"))
                .unwrap()
        };
        let (one, eight) = (open(&dirs[0]), open(&dirs[1]));
        let (t1, t8, r) = common::paired(
            &mut || {
                run(&one, 1, PAIRED, commit);
            },
            &mut || {
                run(&eight, 8, PAIRED, commit);
            },
            15,
            1,
        );
        eprintln!(
            "threads: paired {name}: {PAIRED} commits from 1 thread {t1:.0} us, from 8 threads {t8:.0} us, speedup {r:.2}x"
        );
        extras.push((format!("paired P4 speedup 8 threads vs 1, {name}"), r));
    }
    let extras: Vec<(&str, f64)> = extras.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    common::record_extra("threads", &extras);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = threads
}
criterion_main!(benches);
