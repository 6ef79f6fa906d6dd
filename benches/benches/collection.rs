//! P7: `push_items(x)` on a 200k-element `Vec<String>` vs a small-field
//! commit (`set_counter`) on the same store, `Durability::Flush`, journal
//! engine. Each timed push is followed by an untimed `pop_items()` so the
//! Vec stays at 200k elements however many iterations criterion runs. Also
//! records the journal bytes appended per push (target/persisted-bench/
//! collection.json). One group, `collection`; ids `<kind>/<label>`.
//!
//!     cd benches && cargo bench --bench collection

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use persisted_state::{Persisted, Store};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Queue {
    counter: u64,
    name: String,
    items: Vec<String>,
}

const ELEMENTS: usize = 200_000;

fn queue() -> Queue {
    Queue {
        counter: 0,
        name: "persisted-bench".into(),
        items: (0..ELEMENTS).map(|i| format!("item-{i:08}")).collect(),
    }
}

const ELEMENT: &str = "item-00200000";

/// Journal bytes per push and per set_counter, from the file's growth.
fn bytes_per_op() -> (f64, f64) {
    let dir = common::tempdir();
    let path = dir.path().join("state.json");
    Store::open_or(&path, queue()).unwrap().close().unwrap();
    let store = Store::<Queue>::options()
        .journal_limit(u64::MAX)
        .open(&path)
        .unwrap();
    let journal = common::journal_path(&path);
    const N: u64 = 1000;
    let before = common::file_len(&journal);
    for _ in 0..N {
        store.push_items(ELEMENT.into()).unwrap();
    }
    let pushes = common::file_len(&journal) - before;
    let before = common::file_len(&journal);
    for i in 0..N {
        store.set_counter(1_000_000 + i).unwrap();
    }
    let sets = common::file_len(&journal) - before;
    assert_eq!(store.read().items.len(), ELEMENTS + N as usize);
    (pushes as f64 / N as f64, sets as f64 / N as f64)
}

fn collection(c: &mut Criterion) {
    let (push_bytes, set_bytes) = bytes_per_op();
    eprintln!("collection: journal bytes per push {push_bytes:.1}, per set_counter {set_bytes:.1}");

    let mut g = c.benchmark_group("collection");
    let dir = common::tempdir();
    let path = dir.path().join("state.json");
    Store::open_or(&path, queue()).unwrap().close().unwrap();
    let store = Store::<Queue>::open(&path).unwrap();
    g.bench_function("ours/push_items on a 200k-element Vec", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                store.push_items(black_box(ELEMENT.into())).unwrap();
                total += start.elapsed();
                store.pop_items().unwrap();
            }
            total
        })
    });
    let mut n = 0u64;
    g.bench_function("ours/set_counter (small field, same store)", |b| {
        b.iter(|| {
            n += 1;
            store.set_counter(black_box(n)).unwrap();
        })
    });
    assert_eq!(store.read().items.len(), ELEMENTS);
    // The naive alternative: rewrite the whole field through update_items.
    g.bench_function(
        "ours/update_items(|v| v.push(x)) (whole-field record)",
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    store.update_items(|v| v.push(ELEMENT.into())).unwrap();
                    total += start.elapsed();
                    store.pop_items().unwrap();
                }
                total
            })
        },
    );
    g.finish();

    // Paired (alternating batches on the same store, median of per-round
    // ratios); each push is undone by an (also timed, so halved) pop.
    let (tp, ts, r) = common::paired(
        &mut || {
            store.push_items(black_box(ELEMENT.into())).unwrap();
            store.pop_items().unwrap();
        },
        &mut || {
            n += 1;
            store.set_counter(black_box(n)).unwrap();
            n += 1;
            store.set_counter(black_box(n)).unwrap();
        },
        41,
        2000,
    );
    eprintln!("collection: paired push+pop {tp:.2} us, 2x set_counter {ts:.2} us, ratio {r:.2}");
    common::record_extra(
        "collection",
        &[
            (
                "journal bytes per push_items (200k-element Vec)",
                push_bytes,
            ),
            ("journal bytes per set_counter (same store)", set_bytes),
            ("element bytes (JSON)", (ELEMENT.len() + 2) as f64),
            ("paired P7 (push+pop) / (2 x set_counter)", r),
        ],
    );
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = collection
}
criterion_main!(benches);
