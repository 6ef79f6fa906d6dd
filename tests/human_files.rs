//! Snapshots are plain, pretty documents in field order; a person's edits
//! made while the store is closed are what the next open sees; keys the
//! struct does not know survive later saves.

mod common;

use std::fs;

use common::{State, StateStoreExt};
use persisted_state::Persisted;

/// The snapshot file `name` holds after three commits and a close.
fn snapshot_after_three_commits(name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let store = State::open(&path).unwrap();
    store.set_last_id(42).unwrap();
    store.push_processed("item-42".into()).unwrap();
    store.insert_settings("k".into(), "v".into()).unwrap();
    store.close().unwrap();
    fs::read_to_string(&path).unwrap()
}

#[test]
fn a_json_snapshot_is_pretty_in_field_order_with_a_trailing_newline() {
    assert_eq!(
        snapshot_after_three_commits("state.json"),
        "{\n  \"last_id\": 42,\n  \"processed\": [\n    \"item-42\"\n  ],\n  \"settings\": {\n    \"k\": \"v\"\n  }\n}\n"
    );
}

#[cfg(feature = "yaml")]
#[test]
fn a_yaml_snapshot_is_block_style_in_field_order() {
    assert_eq!(
        snapshot_after_three_commits("state.yaml"),
        "last_id: 42\nprocessed:\n- item-42\nsettings:\n  k: v\n"
    );
}

#[cfg(feature = "yaml")]
#[test]
fn the_yaml_journal_is_a_readable_yaml_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let store = State::open(&path).unwrap();
    store.set_last_id(42).unwrap();
    store.push_processed("item-42".into()).unwrap();
    let journal = fs::read_to_string(common::journal_of(&path)).unwrap();
    assert!(journal.contains("\nset last_id: 42\n"), "{journal}");
    assert!(journal.contains("\npush processed: item-42\n"), "{journal}");
    assert!(
        journal.lines().nth(1).unwrap().starts_with("--- # @1 "),
        "{journal}"
    );
}

#[cfg(feature = "toml")]
#[test]
fn a_toml_snapshot_is_pretty_in_field_order_with_a_trailing_newline() {
    assert_eq!(
        snapshot_after_three_commits("state.toml"),
        "last_id = 42\nprocessed = [\"item-42\"]\n\n[settings]\nk = \"v\"\n"
    );
}

/// TOML writes plain values before tables: a struct whose first field is
/// a map still writes its plain fields first, and reads back the same.
#[cfg(feature = "toml")]
#[test]
fn a_toml_snapshot_of_a_struct_starting_with_a_map_reopens_to_the_same_state() {
    use std::collections::BTreeMap;

    #[derive(
        persisted_state::Persisted,
        serde::Serialize,
        serde::Deserialize,
        Default,
        Debug,
        Clone,
        PartialEq,
    )]
    struct Config {
        limits: BTreeMap<String, u32>,
        name: String,
        hosts: Vec<String>,
        owner: Option<String>,
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let config = Config {
        limits: [("cpu".to_string(), 2), ("mem mb".to_string(), 512)].into(),
        name: "svc".into(),
        hosts: vec!["a".into(), "b".into()],
        owner: None,
    };
    let store = persisted_state::Store::open_or(&path, config.clone()).unwrap();
    store.close().unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "name = \"svc\"\nhosts = [\n    \"a\",\n    \"b\",\n]\n\n[limits]\ncpu = 2\n\"mem mb\" = 512\n"
    );
    assert_eq!(Config::open(&path).unwrap().get(), config);
}

#[cfg(feature = "toml")]
#[test]
fn the_toml_journal_is_readable_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.toml");
    let store = State::open(&path).unwrap();
    store.set_last_id(42).unwrap();
    store.push_processed("item-42".into()).unwrap();
    store
        .insert_settings("k".into(), "v\n\"w\"".into())
        .unwrap();
    let journal = fs::read_to_string(common::journal_of(&path)).unwrap();
    let lines: Vec<&str> = journal.lines().collect();
    assert!(
        lines[0].starts_with("# persisted-journal v2 toml base="),
        "{journal}"
    );
    // A frame line, then the commit as one line of JSON.
    assert_eq!(lines.len(), 7, "{journal}");
    for (i, pair) in lines[1..].chunks(2).enumerate() {
        assert!(pair[0].starts_with(&format!("@{} ", i + 1)), "{journal}");
        let record: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
        assert!(record.is_object(), "{journal}");
    }
    assert_eq!(lines[2], r#"{"set last_id":42}"#);
    assert_eq!(lines[4], r#"{"push processed":"item-42"}"#);
    assert_eq!(lines[6], r#"{"insert settings":["k","v\n\"w\""]}"#);
}

#[test]
fn a_hand_edit_made_while_closed_is_what_the_next_open_sees() {
    for name in ["state.json", "state.yaml", "state.toml"] {
        if name.ends_with("yaml") && !cfg!(feature = "yaml")
            || name.ends_with("toml") && !cfg!(feature = "toml")
        {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let store = State::open(&path).unwrap();
        store.set_last_id(1).unwrap();
        store.close().unwrap();
        let text = fs::read_to_string(&path).unwrap().replace('1', "2024");
        fs::write(&path, text).unwrap();
        let store = State::open(&path).unwrap();
        assert_eq!(store.last_id(), 2024, "{name}");
        store.set_last_id(2025).unwrap();
        drop(store);
        assert_eq!(State::open(&path).unwrap().last_id(), 2025, "{name}");
    }
}

#[test]
fn unknown_keys_in_a_json_snapshot_survive_later_saves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::write(
        &path,
        r#"{"last_id": 3, "from_a_newer_version": {"nested": [1, 2]}, "processed": [], "settings": {}}"#,
    )
    .unwrap();
    let store = State::open(&path).unwrap();
    assert_eq!(store.last_id(), 3);
    store.set_last_id(4).unwrap();
    store.close().unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["last_id"], 4);
    assert_eq!(saved["from_a_newer_version"]["nested"][1], 2);
    // With the snapshot engine too.
    let store = persisted_state::Store::<State>::options()
        .engine(persisted_state::Engine::Snapshot)
        .open(&path)
        .unwrap();
    store.set_last_id(5).unwrap();
    drop(store);
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["last_id"], 5);
    assert_eq!(saved["from_a_newer_version"]["nested"][0], 1);
}

#[cfg(feature = "yaml")]
#[test]
fn unknown_keys_in_a_yaml_snapshot_survive_later_saves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    fs::write(
        &path,
        "last_id: 3\nkept: [a, b]\nprocessed: []\nsettings: {}\n",
    )
    .unwrap();
    let store = State::open(&path).unwrap();
    store.set_last_id(4).unwrap();
    store.close().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("last_id: 4"), "{text}");
    assert!(text.contains("kept:\n- a\n- b\n"), "{text}");
}

#[test]
fn an_empty_snapshot_opens_as_the_default_and_says_so() {
    for format in common::formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = common::state_path(dir.path(), format);
        // What `touch state.yaml` leaves.
        fs::write(&path, b"").unwrap();
        let store = State::open(&path).unwrap();
        assert_eq!(store.get(), State::default(), "{format:?}");
        assert!(
            matches!(
                &store.recovery().events[..],
                [persisted_state::RecoveryEvent::EmptySnapshot { path: p }] if *p == path
            ),
            "{format:?}: {:?}",
            store.recovery()
        );
        assert!(store.recovery().events[0].is_warning());
        store.set_last_id(3).unwrap();
        drop(store);
        let store = State::open(&path).unwrap();
        assert_eq!(store.last_id(), 3, "{format:?}");
        assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    }
}

#[test]
fn a_new_file_is_reported_as_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.json");
    let store = State::open(&path).unwrap();
    assert!(matches!(
        &store.recovery().events[..],
        [persisted_state::RecoveryEvent::Created { .. }]
    ));
    assert!(!store.recovery().events[0].is_warning());
}

#[cfg(feature = "toml")]
#[test]
fn unknown_keys_in_a_toml_snapshot_survive_later_saves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.toml");
    fs::write(
        &path,
        "last_id = 3\nkept = [\"a\", \"b\"]\nprocessed = []\n\n[settings]\n\n[from_a_newer_version]\nnested = [1, 2]\n",
    )
    .unwrap();
    let store = State::open(&path).unwrap();
    assert_eq!(store.last_id(), 3);
    store.set_last_id(4).unwrap();
    store.close().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "last_id = 4\nkept = [\n    \"a\",\n    \"b\",\n]\nprocessed = []\n\n[settings]\n\n\
         [from_a_newer_version]\nnested = [\n    1,\n    2,\n]\n",
        "each kept key stays where it was"
    );
    // With the snapshot engine too.
    let store = persisted_state::Store::<State>::options()
        .engine(persisted_state::Engine::Snapshot)
        .open(&path)
        .unwrap();
    store.set_last_id(5).unwrap();
    drop(store);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("last_id = 5\n"), "{text}");
    assert!(text.contains("\nkept = [\n"), "{text}");
    assert!(
        text.ends_with("[from_a_newer_version]\nnested = [\n    1,\n    2,\n]\n"),
        "{text}"
    );
}
