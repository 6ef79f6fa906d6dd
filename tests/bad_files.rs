//! A corrupt or mistyped file is a clear error naming the file (and, for
//! text, the line and column); it is never overwritten, repaired or
//! replaced by defaults.

mod common;

use std::fs;
use std::path::Path;

use common::State;
use persisted::{Error, Persisted};

/// Opens `path` holding `bytes` and expects an error; the file must be
/// byte-identical afterwards and no journal may appear.
fn open_fails(path: &Path, bytes: &[u8]) -> Error {
    fs::write(path, bytes).unwrap();
    let err = State::open(path).unwrap_err();
    assert_eq!(
        fs::read(path).unwrap(),
        bytes,
        "{} was modified",
        path.display()
    );
    assert!(!common::journal_of(path).exists());
    assert!(
        err.to_string()
            .contains(&*path.file_name().unwrap().to_string_lossy()),
        "{err}"
    );
    err
}

fn parse_position(err: &Error) -> (usize, usize) {
    match err {
        Error::Parse { line, column, .. } => (*line, *column),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn invalid_json_is_an_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let cases: &[(&str, (usize, usize))] = &[
        ("{\n  \"last_id\": 1,\n  \"processed\": [\n}\n", (4, 1)),
        (
            "{\n  \"last_id\": \"twelve\",\n  \"processed\": [],\n  \"settings\": {}\n}\n",
            (2, 21),
        ),
        ("{\n  \"last_id\": 1\n  \"processed\": []\n}\n", (3, 3)),
        (
            "{\n  \"last_id\": -1,\n  \"processed\": [], \"settings\": {}\n}\n",
            (2, 15),
        ),
        ("", (1, 0)),
    ];
    for (text, expected) in cases {
        let err = open_fails(&path, text.as_bytes());
        let (line, column) = parse_position(&err);
        assert_eq!(line, expected.0, "{text:?}: {err}");
        assert!(column.abs_diff(expected.1) <= 1, "{text:?}: {err}");
    }
}

#[cfg(feature = "yaml")]
#[test]
fn invalid_yaml_is_an_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let cases: &[(&str, usize)] = &[
        ("last_id: 1\nprocessed: [a, b\nsettings: {}\n", 3),
        ("last_id: twelve\nprocessed: []\nsettings: {}\n", 1),
        ("last_id: 1\nprocessed:\n  - a\n - b\nsettings: {}\n", 4),
        ("last_id: 1\nprocessed: []\nsettings: \"unclosed\n", 3),
    ];
    for (text, expected_line) in cases {
        let err = open_fails(&path, text.as_bytes());
        let (line, _) = parse_position(&err);
        assert!(line.abs_diff(*expected_line) <= 1, "{text:?}: {err}");
    }
}

#[cfg(feature = "bincode")]
#[test]
fn a_bincode_snapshot_cut_anywhere_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let store = State::open(&path).unwrap();
    store
        .update(|s| {
            s.last_id = 77;
            s.processed = vec!["a".into(); 10];
        })
        .unwrap();
    store.close().unwrap();
    // After a clean close the journal holds nothing; take it away so the
    // snapshot alone is on trial.
    fs::remove_file(common::journal_of(&path)).unwrap();
    let whole = fs::read(&path).unwrap();
    for cut in 0..whole.len() {
        let err = open_fails(&path, &whole[..cut]);
        assert!(matches!(err, Error::Corrupt { .. }), "cut {cut}: {err}");
    }
    let mut flipped = whole.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    open_fails(&path, &flipped);
    fs::write(&path, &whole).unwrap();
    assert_eq!(State::open(&path).unwrap().get().last_id, 77);
}

#[test]
fn a_corrupt_file_stays_byte_identical_after_failed_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let text = b"{\"last_id\": 1, \"processed\": [\"a\"], \"settings\": {}";
    for _ in 0..3 {
        open_fails(&path, text);
    }
}

#[test]
fn a_journal_whose_header_does_not_verify_is_an_error_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = State::open(&path).unwrap();
    common::StateStoreExt::set_last_id(&store, 3).unwrap();
    let (_crashed, copy) = common::crash_image(&path);
    drop(store);
    let journal = common::journal_of(&copy);
    let mut bytes = fs::read(&journal).unwrap();
    bytes[3] ^= 0x01;
    fs::write(&journal, &bytes).unwrap();
    let err = State::open(&copy).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("state.json.journal"), "{err}");
    assert_eq!(fs::read(&journal).unwrap(), bytes);
}
