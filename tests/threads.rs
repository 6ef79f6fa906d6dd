//! Many threads write through one store at once and lose nothing.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{State, StateStoreExt};
use persisted_state::{Durability, Persisted, Store};

/// Two counters every commit moves together, so a torn read or a mixed
/// commit shows as `a != b`.
#[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone, Debug, PartialEq)]
struct Counters {
    a: u64,
    b: u64,
}

#[test]
fn eight_threads_times_many_updates_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counters.json");
    let store = Store::<Counters>::options()
        .journal_limit(64 * 1024) // compact now and then during the run
        .open(&path)
        .unwrap();
    const THREADS: u64 = 8;
    const EACH: u64 = 10_000;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // Checks while the writers run, then on until there have been
            // a million in all (RELIABILITY.md T14).
            let (mut checks, mut during_writes) = (0u64, 0u64);
            loop {
                let writing = !stop.load(Ordering::Relaxed);
                if !writing && checks >= 1_000_000 {
                    break (checks, during_writes);
                }
                {
                    let state = store.read();
                    assert_eq!(state.a, state.b, "torn read");
                }
                checks += 1;
                during_writes += u64::from(writing);
            }
        })
    };
    let writers: Vec<_> = (0..THREADS)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    if i % 2 == 0 {
                        store
                            .update(|s| {
                                s.a += 1;
                                s.b += 1;
                            })
                            .unwrap();
                    } else {
                        store
                            .transaction(|tx| {
                                tx.a += 1;
                                tx.b += 1;
                                Ok::<_, persisted_state::Error>(())
                            })
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (checks, during_writes) = reader.join().unwrap();
    assert!(during_writes > 0, "the reader never ran beside the writers");
    eprintln!("T14: {checks} invariant checks, {during_writes} while writing, 0 torn reads");
    assert_eq!(
        (store.read().a, store.read().b),
        (THREADS * EACH, THREADS * EACH)
    );
    let in_memory = store.get();
    drop(store);
    assert_eq!(Counters::open(&path).unwrap().get(), in_memory);
}

#[test]
fn concurrent_sync_pushes_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = Store::<State>::options()
        .durability(Durability::Sync)
        .open(&path)
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..25 {
                    store.push_processed(format!("{t}-{i}")).unwrap();
                }
            });
        }
    });
    assert_eq!(store.read().processed.len(), 100);
    drop(store);
    assert_eq!(State::open(&path).unwrap().read().processed.len(), 100);
}
