//! Every format x engine x durability round-trips every kind of write, and
//! a reopened store resumes where it stopped.

mod common;

use common::{files_in, formats, state_path, State, StateStoreExt, StateTransactionExt};
use persisted_state::{Durability, Engine, Persisted, Store};

fn every_write(store: &Store<State>) {
    store.set_last_id(7).unwrap();
    store.update_last_id(|id| *id += 1).unwrap();
    store.push_processed("a".into()).unwrap();
    store
        .extend_processed(["b".to_string(), "c".to_string()])
        .unwrap();
    assert_eq!(store.pop_processed().unwrap(), Some("c".to_string()));
    store.insert_settings("k".into(), "v".into()).unwrap();
    store.insert_settings("gone".into(), "x".into()).unwrap();
    assert_eq!(
        store.remove_settings(&"gone".to_string()).unwrap(),
        Some("x".into())
    );
    let n = store
        .update(|s| {
            s.last_id += 1;
            s.last_id
        })
        .unwrap();
    assert_eq!(n, 9);
    let mut tx = store.begin();
    tx.set_last_id(10);
    tx.processed.push("d".into());
    tx.commit().unwrap();
}

fn expected() -> State {
    State {
        last_id: 10,
        processed: vec!["a".into(), "b".into(), "d".into()],
        settings: [("k".to_string(), "v".to_string())].into(),
    }
}

#[test]
fn every_format_and_engine_round_trips_every_write() {
    for format in formats() {
        for engine in [Engine::Journal, Engine::Snapshot] {
            for durability in [Durability::Flush, Durability::Sync] {
                let dir = tempfile::tempdir().unwrap();
                let path = state_path(dir.path(), format);
                let open = || {
                    Store::<State>::options()
                        .engine(engine)
                        .durability(durability)
                        .open(&path)
                        .unwrap()
                };
                let store = open();
                every_write(&store);
                assert_eq!(store.get(), expected());
                // Drop without close: the journal (if any) carries the state.
                drop(store);
                let store = open();
                assert_eq!(
                    store.get(),
                    expected(),
                    "{format:?} {engine:?} {durability:?}"
                );
                store.close().unwrap();
                let store = open();
                assert_eq!(store.get(), expected(), "{format:?} {engine:?} after close");
                drop(store);
                let files = files_in(dir.path());
                assert!(
                    files.iter().all(|f| !f.contains(".tmp-")),
                    "no temp files left: {files:?}"
                );
                if engine == Engine::Snapshot {
                    assert_eq!(files.len(), 2, "snapshot + lock only: {files:?}");
                }
            }
        }
    }
}

#[test]
fn a_reopened_store_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.json");
    for round in 0..5u64 {
        let store = State::open(&path).unwrap();
        assert_eq!(store.last_id(), round * 10);
        for _ in 0..10 {
            let next = store.last_id() + 1;
            store.set_last_id(next).unwrap();
            store.push_processed(format!("item-{next}")).unwrap();
        }
        if round % 2 == 0 {
            store.close().unwrap();
        }
    }
    let store = State::open(&path).unwrap();
    assert_eq!(store.last_id(), 50);
    assert_eq!(store.read().processed.len(), 50);
    assert_eq!(store.read().processed[49], "item-50");
}

#[test]
fn open_or_starts_a_missing_file_from_the_given_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let initial = State {
        last_id: 7,
        ..State::default()
    };
    let store = Store::open_or(&path, initial.clone()).unwrap();
    assert_eq!(store.get(), initial);
    drop(store);
    // The file exists now, so the value given is not used again.
    let store = Store::open_or(&path, State::default()).unwrap();
    assert_eq!(store.last_id(), 7);
}

#[test]
fn clones_share_one_state_and_the_lock_outlives_all_but_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let a = State::open(&path).unwrap();
    let b = a.clone();
    b.set_last_id(3).unwrap();
    assert_eq!(a.last_id(), 3);
    a.close().unwrap();
    assert!(matches!(
        State::open(&path),
        Err(persisted_state::Error::Locked { .. })
    ));
    drop(b);
    assert_eq!(State::open(&path).unwrap().last_id(), 3);
}

#[test]
fn an_unknown_extension_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = State::open(dir.path().join("state.txt")).unwrap_err();
    assert!(matches!(err, persisted_state::Error::UnknownFormat { .. }));
    assert!(err.to_string().contains("state.txt"), "{err}");
    // With an explicit format the extension does not matter.
    let store = Store::<State>::options()
        .format(persisted_state::Format::Json)
        .open(dir.path().join("state.txt"))
        .unwrap();
    store.set_last_id(1).unwrap();
}

#[cfg(not(feature = "yaml"))]
#[test]
fn a_format_whose_feature_is_off_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let err = State::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            persisted_state::Error::FormatNotEnabled {
                feature: "yaml",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("state.yaml"));
    assert!(!path.exists(), "nothing is created");
}

#[cfg(not(feature = "bincode"))]
#[test]
fn bincode_without_its_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = State::open(dir.path().join("state.bin")).unwrap_err();
    assert!(matches!(
        err,
        persisted_state::Error::FormatNotEnabled {
            feature: "bincode",
            ..
        }
    ));
}

#[cfg(not(feature = "toml"))]
#[test]
fn toml_without_its_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.toml");
    let err = State::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            persisted_state::Error::FormatNotEnabled {
                format: persisted_state::Format::Toml,
                feature: "toml",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("state.toml"), "{err}");
    assert!(!path.exists(), "nothing is created");
}

/// TOML has no null and its integers are `i64`: a commit that would put a
/// `None` in a list or a map, or a `u64` past `i64::MAX`, into a TOML store
/// fails with `Error::Encode` in both engines, and changes neither memory
/// nor the files; the store takes the next commit as usual.
#[cfg(feature = "toml")]
#[test]
fn a_value_toml_cannot_hold_fails_its_commit_and_changes_nothing() {
    use std::collections::BTreeMap;

    #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Debug, Clone, PartialEq)]
    struct Slots {
        id: u64,
        slots: Vec<Option<u32>>,
        labels: BTreeMap<String, Option<String>>,
        note: Option<String>,
    }

    for engine in [Engine::Journal, Engine::Snapshot] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slots.toml");
        let store = Store::<Slots>::options()
            .engine(engine)
            .open(&path)
            .unwrap();
        store.push_slots(Some(1)).unwrap();
        store.insert_labels("a".into(), Some("x".into())).unwrap();
        store.set_note(None).unwrap();
        let before = store.get();
        let files = |dir: &std::path::Path| -> Vec<Vec<u8>> {
            files_in(dir)
                .iter()
                .map(|f| std::fs::read(dir.join(f)).unwrap())
                .collect()
        };
        let on_disk = files(dir.path());
        let refused: [(&str, persisted_state::Result<()>); 5] = [
            ("push None", store.push_slots(None)),
            (
                "insert None",
                store.insert_labels("b".into(), None).map(drop),
            ),
            ("set u64::MAX", store.set_id(u64::MAX)),
            ("set a list with None", store.set_slots(vec![None])),
            (
                "update",
                store.update(|s| {
                    s.id = 2;
                    s.labels.insert("c".into(), None);
                }),
            ),
        ];
        for (what, result) in refused {
            let err = result.unwrap_err();
            assert!(
                matches!(err, persisted_state::Error::Encode { .. }),
                "{engine:?} {what}: {err}"
            );
            assert!(err.to_string().contains("slots.toml"), "{err}");
            assert_eq!(store.get(), before, "{engine:?} {what}");
        }
        assert_eq!(files(dir.path()), on_disk, "{engine:?}: the files changed");
        store.set_id(i64::MAX as u64).unwrap();
        store.close().unwrap();
        let store = Store::<Slots>::open(&path).unwrap();
        assert_eq!(
            store.get(),
            Slots {
                id: i64::MAX as u64,
                ..before
            },
            "{engine:?}"
        );
    }
}
