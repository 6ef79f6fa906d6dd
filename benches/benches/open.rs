//! P5: open + recovery of a crash image — a ~10 MB JSON snapshot plus a
//! journal of 100k `set_counter` records — vs `serde_json::from_slice` of
//! the snapshot alone. The image is built once (journal_limit u64::MAX so
//! nothing is compacted), copied while the store is still open (the two
//! files, not the lock: what a kill -9 leaves), and every iteration opens a
//! fresh copy. One group, `open`; ids `<kind>/<label>`.
//!
//!     cd benches && cargo bench --bench open

mod common;

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Padded, PaddedStoreExt as _};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use persisted_state::Store;

const RECORDS: u64 = 100_000;

/// Copies the snapshot (and the journal, if `journal`) of `image` into a
/// fresh dir; returns the dir and the snapshot's path there.
fn copy_image(image: &Path, journal: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = common::tempdir();
    let path = dir.path().join("state.json");
    fs::copy(image, &path).unwrap();
    if journal {
        fs::copy(common::journal_path(image), common::journal_path(&path)).unwrap();
    }
    (dir, path)
}

fn open(c: &mut Criterion) {
    // Build the crash image.
    let build = common::tempdir();
    let live = build.path().join("live.json");
    Store::open_or(&live, Padded::of_size(10 << 20))
        .unwrap()
        .close()
        .unwrap();
    let store = Store::<Padded>::options()
        .journal_limit(u64::MAX)
        .open(&live)
        .unwrap();
    for i in 1..=RECORDS {
        store.set_counter(i).unwrap();
    }
    let images = common::tempdir();
    let image = images.path().join("state.json");
    fs::copy(&live, &image).unwrap();
    fs::copy(common::journal_path(&live), common::journal_path(&image)).unwrap();
    drop(store);
    drop(build);
    let snapshot = fs::read(&image).unwrap();
    let journal_len = common::file_len(&common::journal_path(&image));
    common::record_extra(
        "open",
        &[
            ("snapshot bytes", snapshot.len() as f64),
            ("journal bytes", journal_len as f64),
            ("journal records", RECORDS as f64),
        ],
    );

    // Recovery is correct: every record replayed.
    {
        let (_dir, path) = copy_image(&image, true);
        let store = Store::<Padded>::open(&path).unwrap();
        assert_eq!(store.counter(), RECORDS, "recovery lost records");
    }

    let mut g = c.benchmark_group("open");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("floor/serde_json::from_slice (snapshot only)", |b| {
        b.iter(|| serde_json::from_slice::<Padded>(black_box(&snapshot)).unwrap())
    });
    g.bench_function("peer/fs::read + serde_json::from_slice", |b| {
        b.iter(|| serde_json::from_slice::<Padded>(&fs::read(&image).unwrap()).unwrap())
    });
    g.bench_function("ours/open snapshot + 100k-record journal", |b| {
        b.iter_batched(
            || copy_image(&image, true),
            // The store and dir are returned so that closing them (which
            // compacts) is not timed.
            |(dir, path)| (Store::<Padded>::open(&path).unwrap(), dir),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("ours/open snapshot, no journal", |b| {
        b.iter_batched(
            || copy_image(&image, false),
            |(dir, path)| (Store::<Padded>::open(&path).unwrap(), dir),
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // The same ratio from runs of each alternated (the machine's load
    // drifts between criterion's groups): median of the per-round ratios.
    let (ours, floor, ratio) = common::paired_timed(
        &mut || {
            let (dir, path) = copy_image(&image, true);
            let start = std::time::Instant::now();
            let store = Store::<Padded>::open(&path).unwrap();
            let took = start.elapsed();
            drop((store, dir));
            took
        },
        &mut || {
            let start = std::time::Instant::now();
            black_box(serde_json::from_slice::<Padded>(&snapshot).unwrap());
            start.elapsed()
        },
        10,
        2,
    );
    println!(
        "open: paired P5 open (snapshot + 100k records) / serde_json::from_slice: {ratio:.2} \
         ({:.1} vs {:.1} ms)",
        ours / 1e3,
        floor / 1e3
    );
    common::record_extra("open", &[("paired P5 ratio", ratio)]);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = open
}
criterion_main!(benches);
