//! Entry points for fuzzing the decoders (feature `__fuzz`), used by the
//! cargo-fuzz targets in `fuzz/` and the stable-Rust smoke test
//! `tests/fuzz_smoke.rs`. Not public API.

pub mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::testing::model::Model;
use crate::testing::sim::SimFs;
use crate::{Format, Store};

/// Opens a store whose snapshot holds `snapshot` and whose journal (if
/// `journal` is `Some`) holds those bytes, on a simulated disk; returns
/// whether it opened. It must never panic, whatever the bytes.
pub fn open(format: Format, snapshot: &[u8], journal: Option<&[u8]>) -> bool {
    let path = PathBuf::from(match format {
        Format::Json => "/fuzz/state.json",
        Format::Yaml => "/fuzz/state.yaml",
        Format::Toml => "/fuzz/state.toml",
        Format::Bincode => "/fuzz/state.bin",
    });
    let mut image = BTreeMap::new();
    image.insert(path.clone(), snapshot.to_vec());
    if let Some(journal) = journal {
        image.insert(
            crate::engine::journal::journal_path(&path),
            journal.to_vec(),
        );
    }
    let sim = SimFs::from_image(&image);
    let opened = Store::<Model>::open_on(Arc::new(sim), &path, Store::options(), None);
    opened.is_ok()
}

/// A valid snapshot and journal of `format` with a few records, as seeds
/// for a fuzzer's corpus.
pub fn seed_files(format: Format) -> (Vec<u8>, Vec<u8>) {
    let path = PathBuf::from("/seed/state");
    let sim = SimFs::new();
    let store = Store::<Model>::open_on(
        Arc::new(sim.clone()),
        &path,
        Store::options().format(format),
        None,
    )
    .expect("a store on an empty simulated disk opens");
    store
        .__push::<crate::testing::model::Items>("seed".into())
        .expect("write");
    store
        .__set::<crate::testing::model::Counter>(7)
        .expect("write");
    let image = sim.process_crash_image();
    let journal = crate::engine::journal::journal_path(&path);
    (image[&path].clone(), image[&journal].clone())
}
