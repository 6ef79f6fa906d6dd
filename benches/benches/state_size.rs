//! P3: a one-field commit (`set_counter`, `Durability::Flush`) on a state
//! whose `Vec<String>` padding makes it ~1 KB, ~100 KB or ~10 MB: ours with
//! the journal engine (cost of the change) vs ours with the snapshot engine
//! and serde_json + tmp + rename (cost of the state). One group,
//! `state_size`; ids `<kind>/<label>/<size>`.
//!
//!     cd benches && cargo bench --bench state_size

mod common;

use std::fs;
use std::hint::black_box;
use std::time::Duration;

use common::{Padded, PaddedStoreExt as _};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use persisted_state::{Engine, Store};

const SIZES: [(usize, &str); 3] = [
    (1 << 10, "1 KB"),
    (100 << 10, "100 KB"),
    (10 << 20, "10 MB"),
];

fn state_size(c: &mut Criterion) {
    let mut g = c.benchmark_group("state_size");
    for (bytes, label) in SIZES {
        let state = Padded::of_size(bytes);
        if bytes >= 1 << 20 {
            // A 10 MB rewrite takes tens of ms: criterion's minimum of 10
            // samples with a longer window.
            g.sample_size(10).measurement_time(Duration::from_secs(8));
        }
        for engine in [Engine::Journal, Engine::Snapshot] {
            let dir = common::tempdir();
            let path = dir.path().join("state.json");
            Store::open_or(&path, state.clone())
                .unwrap()
                .close()
                .unwrap();
            let store = Store::<Padded>::options()
                .engine(engine)
                .open(&path)
                .unwrap();
            let mut n = 0u64;
            g.bench_function(
                BenchmarkId::new(format!("ours/{}", common::engine_label(engine)), label),
                |b| {
                    b.iter(|| {
                        n += 1;
                        store.set_counter(black_box(n)).unwrap();
                    })
                },
            );
            drop(store);
        }
        let dir = common::tempdir();
        let path = dir.path().join("state.json");
        let tmp = dir.path().join("state.json.tmp");
        let mut state = state;
        eprintln!(
            "state_size: {label}: pretty JSON is {} bytes",
            serde_json::to_vec_pretty(&state).unwrap().len()
        );
        g.bench_function(
            BenchmarkId::new("peer/serde_json + tmp + rename", label),
            |b| {
                b.iter(|| {
                    state.counter += 1;
                    fs::write(&tmp, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
                    fs::rename(&tmp, &path).unwrap();
                })
            },
        );
    }
    g.finish();

    // Paired: journal commit on the 10 MB state vs on the 1 KB state.
    let open = |bytes: usize| {
        let dir = common::tempdir();
        let path = dir.path().join("state.json");
        Store::open_or(&path, Padded::of_size(bytes))
            .unwrap()
            .close()
            .unwrap();
        (Store::<Padded>::open(&path).unwrap(), dir)
    };
    let (big, _big_dir) = open(10 << 20);
    let (small, _small_dir) = open(1 << 10);
    let (mut i, mut j) = (0u64, 0u64);
    let (tb, ts, r) = common::paired(
        &mut || {
            i += 1;
            big.set_counter(black_box(i)).unwrap();
        },
        &mut || {
            j += 1;
            small.set_counter(black_box(j)).unwrap();
        },
        41,
        3000,
    );
    eprintln!("state_size: paired journal 10 MB {tb:.2} us/op, 1 KB {ts:.2} us/op, ratio {r:.2}");
    drop((big, small));
    common::record_extra("state_size", &[("paired P3 journal 10 MB / 1 KB", r)]);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = state_size
}
criterion_main!(benches);
