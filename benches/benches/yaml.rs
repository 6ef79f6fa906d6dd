//! P6: a YAML commit vs a JSON commit (and bincode, for reference) of the
//! same one-field change, `set_counter` with `Durability::Flush`, on the
//! small state, both engines. One group, `yaml`; ids `<kind>/<label>`.
//!
//!     cd benches && cargo bench --bench yaml

mod common;

use std::hint::black_box;

use common::{State, StateStoreExt as _};
use criterion::{criterion_group, criterion_main, Criterion};
use persisted_state::{Engine, Format, Store};

fn op(format: Format, engine: Engine) -> common::Op {
    let dir = common::tempdir();
    let path = dir.path().join(common::file_name(format));
    Store::open_or(&path, State::new())
        .unwrap()
        .close()
        .unwrap();
    let store = Store::<State>::options()
        .engine(engine)
        .open(&path)
        .unwrap();
    let mut n = 0u64;
    common::Op::new(
        format!(
            "ours/{} {}",
            common::format_label(format),
            common::engine_label(engine)
        ),
        move || {
            n += 1;
            store.set_counter(black_box(n)).unwrap();
        },
    )
    .keep(dir)
}

fn yaml(c: &mut Criterion) {
    let mut g = c.benchmark_group("yaml");
    for engine in [Engine::Journal, Engine::Snapshot] {
        for format in [Format::Json, Format::Yaml, Format::Bincode] {
            let mut op = op(format, engine);
            g.bench_function(op.name.clone(), |b| b.iter(|| (op.run)()));
        }
    }
    g.finish();

    // Paired (alternating batches, median of per-round ratios).
    let (mut y, mut j) = (
        op(Format::Yaml, Engine::Journal),
        op(Format::Json, Engine::Journal),
    );
    let (ty, tj, r) = common::paired(&mut y.run, &mut j.run, 41, 3000);
    eprintln!("yaml: paired yaml {ty:.2} us/op, json {tj:.2} us/op, ratio {r:.2}");
    common::record_extra("yaml", &[("paired P6 yaml journal / json journal", r)]);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = yaml
}
criterion_main!(benches);
