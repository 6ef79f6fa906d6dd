//! P7: `push_items(x)` on a 200k-element `Vec<String>` vs a small-field
//! commit (`set_counter`) on the same store, `Durability::Flush`, journal
//! engine. Each timed push is followed by an untimed `pop_items()` so the
//! Vec stays at 200k elements however many iterations criterion runs. Also
//! records the journal bytes appended per push (target/persisted-bench/
//! collection.json). One group, `collection`; ids `<kind>/<label>`.
//!
//! P15 (issue 9): a transaction of one push onto the same 200k-element Vec
//! plus one set,
//!
//!     let mut tx = store.begin();
//!     tx.push_items(x);
//!     tx.set_counter(n);
//!     tx.commit()?;
//!
//! vs the same `set_counter` baseline, on the same store. As for P7, each
//! timed transaction is followed by an untimed `store.pop_items()` (a
//! separate small commit) that keeps the Vec at 200k elements; the counter
//! just grows. The pop is not made inside the transaction (alternating
//! push and pop transactions): a `pop_` on a transaction returns the
//! element, so it makes the transaction's O(state) working copy and would
//! measure something else. The paired measurement (batches of the
//! transaction and of `set_counter` alternated, median of the per-round
//! ratios, `common::paired_timed`) times each operation alone, so the
//! untimed pop stays out of it too. Also records the journal bytes
//! appended per such transaction, and, for reference, the same change made
//! the O(state) way, `store.update(|s| { s.items.push(x); s.counter = n })`
//! (clones the state, compares it field by field, records `items` whole).
//!
//!     cd benches && cargo bench --bench collection

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use persisted_state::{Durability, Engine, Persisted, Store};
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

/// Journal bytes appended per operation, from the journal file's growth.
struct Bytes {
    push: f64,
    set: f64,
    transaction: f64,
    update: f64,
}

/// Journal bytes per push, per set_counter, per transaction (push + set)
/// and per `update(|s| { push; set })`.
fn bytes_per_op() -> Bytes {
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
    let push = common::file_len(&journal) - before;
    let before = common::file_len(&journal);
    for i in 0..N {
        store.set_counter(1_000_000 + i).unwrap();
    }
    let set = common::file_len(&journal) - before;
    let before = common::file_len(&journal);
    for i in 0..N {
        let mut tx = store.begin();
        tx.push_items(ELEMENT.into());
        tx.set_counter(2_000_000 + i);
        tx.commit().unwrap();
    }
    let transaction = common::file_len(&journal) - before;
    // Each of these records the whole Vec (~3 MB): a few are enough.
    const U: u64 = 3;
    let before = common::file_len(&journal);
    for i in 0..U {
        store
            .update(|s| {
                s.items.push(ELEMENT.into());
                s.counter = 3_000_000 + i;
            })
            .unwrap();
    }
    let update = common::file_len(&journal) - before;
    let state = store.read();
    assert_eq!(state.items.len(), ELEMENTS + (2 * N + U) as usize);
    assert_eq!(state.counter, 3_000_000 + U - 1);
    Bytes {
        push: push as f64 / N as f64,
        set: set as f64 / N as f64,
        transaction: transaction as f64 / N as f64,
        update: update as f64 / U as f64,
    }
}

fn collection(c: &mut Criterion) {
    let bytes = bytes_per_op();
    eprintln!(
        "collection: journal bytes per push {:.1}, per set_counter {:.1}, per transaction (push + set) {:.1}, per update(push + set) {:.0}",
        bytes.push, bytes.set, bytes.transaction, bytes.update
    );

    let mut g = c.benchmark_group("collection");
    let dir = common::tempdir();
    let path = dir.path().join("state.json");
    Store::open_or(&path, queue()).unwrap().close().unwrap();
    // Durability::Flush and the journal engine, the defaults, spelled out.
    let store = Store::<Queue>::options()
        .durability(Durability::Flush)
        .engine(Engine::Journal)
        .open(&path)
        .unwrap();
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
    // P15: push + set in one transaction, then an untimed pop.
    g.bench_function(
        "ours/transaction push_items + set_counter (200k-element Vec)",
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let start = Instant::now();
                    let mut tx = store.begin();
                    tx.push_items(black_box(ELEMENT.into()));
                    tx.set_counter(black_box(n));
                    tx.commit().unwrap();
                    total += start.elapsed();
                    store.pop_items().unwrap();
                }
                total
            })
        },
    );
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
    // For reference to P15: the same change the O(state) way.
    g.bench_function(
        "ours/update(|s| {s.items.push(x); s.counter = n}) (O(state))",
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let start = Instant::now();
                    store
                        .update(|s| {
                            s.items.push(black_box(ELEMENT.into()));
                            s.counter = black_box(n);
                        })
                        .unwrap();
                    total += start.elapsed();
                    store.pop_items().unwrap();
                }
                total
            })
        },
    );
    g.finish();
    assert_eq!(store.read().items.len(), ELEMENTS);

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

    // P15 paired: each operation timed alone, the pop that follows a
    // transaction untimed.
    let n = Cell::new(n);
    let next = || {
        n.set(n.get() + 1);
        n.get()
    };
    let (tt, ts15, r15) = common::paired_timed(
        &mut || {
            let value = next();
            let start = Instant::now();
            let mut tx = store.begin();
            tx.push_items(black_box(ELEMENT.into()));
            tx.set_counter(black_box(value));
            tx.commit().unwrap();
            let time = start.elapsed();
            store.pop_items().unwrap();
            time
        },
        &mut || {
            let value = next();
            let start = Instant::now();
            store.set_counter(black_box(value)).unwrap();
            start.elapsed()
        },
        41,
        2000,
    );
    eprintln!("collection: paired transaction (push + set) {tt:.2} us, set_counter {ts15:.2} us, ratio {r15:.2}");
    assert_eq!(store.read().items.len(), ELEMENTS);
    assert_eq!(store.read().counter, n.get());

    common::record_extra(
        "collection",
        &[
            (
                "journal bytes per push_items (200k-element Vec)",
                bytes.push,
            ),
            ("journal bytes per set_counter (same store)", bytes.set),
            ("element bytes (JSON)", (ELEMENT.len() + 2) as f64),
            ("paired P7 (push+pop) / (2 x set_counter)", r),
            (
                "journal bytes per transaction push_items + set_counter (200k-element Vec)",
                bytes.transaction,
            ),
            (
                "journal bytes per update(|s| {push; set}) (200k-element Vec)",
                bytes.update,
            ),
            ("paired P15 transaction (push + set) / set_counter", r15),
            ("paired P15 transaction (push + set), us", tt),
            ("paired P15 set_counter, us", ts15),
        ],
    );
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = collection
}
criterion_main!(benches);
