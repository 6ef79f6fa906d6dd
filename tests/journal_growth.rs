//! A commit costs the size of the change: one-field commits on a large
//! state grow the files by the size of the field, not of the state.

mod common;

use std::fs;

use common::{journal_of, State, StateStoreExt};
use persisted_state::{Persisted, Store};

#[test]
fn a_thousand_one_field_commits_on_a_megabyte_state_grow_the_files_by_far_less_than_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let big = State {
        last_id: 0,
        processed: (0..20_000)
            .map(|i| format!("item-{i:08}-{}", "x".repeat(40)))
            .collect(),
        settings: Default::default(),
    };
    let store = Store::open_or(&path, big).unwrap();
    let snapshot = fs::metadata(&path).unwrap().len();
    assert!(snapshot > 1_000_000, "state is {snapshot} bytes");
    let size =
        || fs::metadata(&path).unwrap().len() + fs::metadata(journal_of(&path)).unwrap().len();
    let before = size();
    for id in 1..=1000 {
        store.set_last_id(id).unwrap();
    }
    store.push_processed("one more".into()).unwrap();
    let grown = size() - before;
    assert!(
        grown < snapshot / 20,
        "1000 commits grew the files by {grown} bytes (snapshot {snapshot})"
    );
    drop(store);
    let store = State::open(&path).unwrap();
    assert_eq!(store.last_id(), 1000);
    assert_eq!(store.read().processed.len(), 20_001);
}
