//! A corrupt or mistyped file is a clear error naming the file (and, for
//! text, the line and column); it is never overwritten, repaired or
//! replaced by defaults.

mod common;

use std::fs;
use std::path::Path;

use common::State;
use persisted_state::{Error, Persisted};

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

#[cfg(feature = "toml")]
#[test]
fn invalid_toml_is_an_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.toml");
    let cases: &[(&[u8], (usize, usize))] = &[
        (b"last_id = 1\nprocessed = [\"a\"\n[settings]\n", (3, 1)),
        (
            b"last_id = \"twelve\"\nprocessed = []\n[settings]\n",
            (1, 11),
        ),
        (
            b"last_id = 1\nprocessed = []\n[settings]\nmode = fast\n",
            (4, 8),
        ),
        (
            b"last_id = 1\nprocessed = []\n[settings]\nmode = \"fast\n",
            (4, 13),
        ),
        (
            b"last_id = 1\nprocessed = []\nsettings = { a = 1 }\n",
            (3, 18),
        ),
        // Columns count characters: `\xc3\xa9` (`\u{e9}`) is one.
        (
            b"last_id = 1\nprocessed = [\"\xc3\xa9\", 2\xc3\xa9]\n[settings]\n",
            (2, 19),
        ),
        // Not UTF-8: placed at the first bad byte.
        (
            b"last_id = 1\nprocessed = [\"\xff\"]\n[settings]\n",
            (2, 15),
        ),
    ];
    for (text, expected) in cases {
        let err = open_fails(&path, text);
        assert_eq!(
            parse_position(&err),
            *expected,
            "{}: {err}",
            String::from_utf8_lossy(text)
        );
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
    // Cut to 0 bytes is an empty file, which opens as the default
    // (`human_files::an_empty_snapshot_opens_as_the_default_and_says_so`).
    for cut in 1..whole.len() {
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

// ---------------------------------------------------------------------------
// T11: a text snapshot cut at every byte.

/// A state with every kind of field filled in, so cuts land inside
/// numbers, strings, lists and maps.
fn rich_state() -> State {
    State {
        last_id: 1_234_567,
        processed: vec!["item-1".into(), "two words".into(), "x".into()],
        settings: [("mode", "fast"), ("retries", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The snapshot `state` is saved as at `path` after a clean close (the
/// journal, which then holds no records, is removed).
fn saved_snapshot(path: &Path, state: &State) -> Vec<u8> {
    let store = State::open(path).unwrap();
    store.update(|s| *s = state.clone()).unwrap();
    store.close().unwrap();
    fs::remove_file(common::journal_of(path)).unwrap();
    fs::read(path).unwrap()
}

/// What opening a snapshot cut short did.
enum CutOutcome {
    /// `Error::Parse` naming the file; nothing was changed or created.
    ParseError { line: usize },
    /// It opened, to this state.
    Opened(State),
}

/// Writes `bytes` to `path` (keeping its inode), opens it and checks that a
/// failed open left the file's bytes and inode alone and created nothing
/// (no journal, no temp file). A successful open's journal is removed.
fn open_cut(path: &Path, bytes: &[u8]) -> CutOutcome {
    use std::os::unix::fs::MetadataExt;
    fs::write(path, bytes).unwrap();
    let inode = fs::metadata(path).unwrap().ino();
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let outcome = match State::open(path) {
        Ok(store) => {
            let state = store.get();
            drop(store);
            fs::remove_file(common::journal_of(path)).unwrap();
            CutOutcome::Opened(state)
        }
        Err(Error::Parse {
            path: named, line, ..
        }) => {
            assert_eq!(named, path, "the error names the snapshot");
            let lock = format!("{name}.lock");
            let left: Vec<_> = common::files_in(dir)
                .into_iter()
                .filter(|f| *f != name && *f != lock)
                .collect();
            assert!(left.is_empty(), "a failed open created {left:?}");
            CutOutcome::ParseError { line }
        }
        Err(other) => panic!(
            "cut to {} bytes: expected a parse error, got {other:?}",
            bytes.len()
        ),
    };
    assert_eq!(fs::read(path).unwrap(), bytes, "the file was modified");
    assert_eq!(
        fs::metadata(path).unwrap().ino(),
        inode,
        "the file was replaced"
    );
    outcome
}

#[test]
fn a_json_snapshot_cut_anywhere_is_a_parse_error_or_the_whole_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let full = rich_state();
    let whole = saved_snapshot(&path, &full);
    let mut errors = 0;
    // Cut to 0 bytes is an empty file, which opens as the default
    // (`human_files::an_empty_snapshot_opens_as_the_default_and_says_so`).
    for cut in 1..whole.len() {
        match open_cut(&path, &whole[..cut]) {
            CutOutcome::ParseError { line } => {
                assert!(line >= 1, "cut {cut}: line {line}");
                errors += 1;
            }
            // Only whitespace after the closing brace may go missing.
            CutOutcome::Opened(state) => {
                assert_eq!(state, full, "cut {cut} opened to another state");
                assert!(
                    whole[cut..].iter().all(u8::is_ascii_whitespace),
                    "cut {cut}"
                );
            }
        }
    }
    assert_eq!(
        errors,
        whole.len() - 2,
        "only the trailing newline may be cut"
    );
    eprintln!(
        "T11: json: {} cut points, {errors} parse errors",
        whole.len()
    );
}

/// Where the last top-level field of a YAML snapshot starts (after its
/// `key:`): a block-style YAML document has no closing token, so a cut
/// from there on can still be a valid document.
#[cfg(feature = "yaml")]
fn yaml_last_field_value_start(whole: &[u8]) -> usize {
    let text = std::str::from_utf8(whole).unwrap();
    text.rfind("\nsettings:").unwrap() + "\nsettings:".len()
}

#[cfg(feature = "yaml")]
#[test]
fn a_yaml_snapshot_cut_before_its_last_field_is_a_parse_error_and_never_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let full = rich_state();
    let whole = saved_snapshot(&path, &full);
    let last_field = yaml_last_field_value_start(&whole);
    let (mut errors, mut shorter) = (0, 0);
    // Cut to 0 bytes is an empty file, which opens as the default
    // (`human_files::an_empty_snapshot_opens_as_the_default_and_says_so`).
    for cut in 1..whole.len() {
        match open_cut(&path, &whole[..cut]) {
            CutOutcome::ParseError { line } => {
                assert!(line >= 1, "cut {cut}: line {line}");
                errors += 1;
            }
            CutOutcome::Opened(state) if state == full => {}
            CutOutcome::Opened(state) => {
                // Plain YAML cannot tell a cut inside its last value from a
                // shorter value: this is the only way a cut may open, and
                // every other field is still whole.
                assert!(cut >= last_field, "cut {cut} opened to {state:?}");
                assert_ne!(state, State::default(), "cut {cut}");
                assert_eq!(
                    (state.last_id, &state.processed),
                    (full.last_id, &full.processed),
                    "cut {cut}"
                );
                shorter += 1;
            }
        }
    }
    eprintln!(
        "T11: yaml: {} cut points, {errors} parse errors, {shorter} cuts inside the last field \
         open as a shorter value",
        whole.len()
    );
}

/// The strict form of the test above. It fails: a block-style YAML snapshot
/// carries nothing that shows it was cut inside its last value, so
/// `settings:\n  mode: fa` opens as `{"mode": "fa"}` (and `settings:` as
/// `{}`). Detecting it would need an end marker or checksum in the
/// snapshot, which the format (RELIABILITY.md 5b) leaves out.
#[cfg(feature = "yaml")]
#[test]
#[ignore = "limitation: a YAML snapshot cut inside its last field is a valid, shorter document"]
fn a_yaml_snapshot_cut_anywhere_is_a_parse_error_or_the_whole_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let full = rich_state();
    let whole = saved_snapshot(&path, &full);
    // Cut to 0 bytes is an empty file, which opens as the default
    // (`human_files::an_empty_snapshot_opens_as_the_default_and_says_so`).
    for cut in 1..whole.len() {
        if let CutOutcome::Opened(state) = open_cut(&path, &whole[..cut]) {
            assert_eq!(state, full, "cut {cut} opened to another state");
        }
    }
}

/// Where the last table of a TOML snapshot ends (after its `[name]`
/// line): a table has no closing token, so a cut between its entries is a
/// valid, shorter document.
#[cfg(feature = "toml")]
fn toml_last_table_start(whole: &[u8]) -> usize {
    let text = std::str::from_utf8(whole).unwrap();
    text.rfind("\n[settings]\n").unwrap() + "\n[settings]".len()
}

#[cfg(feature = "toml")]
#[test]
fn a_toml_snapshot_cut_before_its_last_table_is_a_parse_error_and_never_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.toml");
    let full = rich_state();
    let whole = saved_snapshot(&path, &full);
    let last_table = toml_last_table_start(&whole);
    let (mut errors, mut shorter) = (0, 0);
    // Cut to 0 bytes is an empty file, which opens as the default.
    for cut in 1..whole.len() {
        match open_cut(&path, &whole[..cut]) {
            CutOutcome::ParseError { line } => {
                assert!(line >= 1, "cut {cut}: line {line}");
                errors += 1;
            }
            CutOutcome::Opened(state) if state == full => {}
            CutOutcome::Opened(state) => {
                // Only a cut between the entries of the last table opens,
                // as that table with fewer entries; every other field is
                // whole.
                assert!(cut >= last_table, "cut {cut} opened to {state:?}");
                assert_eq!(
                    (state.last_id, &state.processed),
                    (full.last_id, &full.processed),
                    "cut {cut}"
                );
                assert!(
                    state
                        .settings
                        .iter()
                        .all(|(k, v)| full.settings.get(k) == Some(v)),
                    "cut {cut}: {state:?}"
                );
                shorter += 1;
            }
        }
    }
    assert!(
        errors >= last_table,
        "every cut before the last table fails"
    );
    eprintln!(
        "T11: toml: {} cut points, {errors} parse errors, {shorter} cuts between the last \
         table's entries open as a shorter table",
        whole.len()
    );
}

// ---------------------------------------------------------------------------
// T12: hand-edit mistakes, reported at the exact line (column within 1).

/// One hand-edit mistake: what it is, the file, and where a person reading
/// the file would point (1-based line and column, worked out by hand).
struct Mistake {
    what: &'static str,
    text: &'static str,
    line: usize,
    column: usize,
    /// Set when the library reports another position (a known bug, checked
    /// by an ignored test); the file must still be kept.
    bug: Option<&'static str>,
}

/// One way of opening a store.
type OpenFn = fn(&Path) -> persisted_state::Result<persisted_state::Store<State>>;

/// Opens a file holding `mistake` three ways (twice as usual, once with the
/// snapshot engine) and checks every attempt fails with a parse error naming
/// the file and leaves the file byte-identical, on the same inode; with
/// `exact`, also that the error is at the stated position.
fn check_mistake(path: &Path, mistake: &Mistake, exact: bool) {
    use std::os::unix::fs::MetadataExt;
    let what = mistake.what;
    fs::write(path, mistake.text).unwrap();
    let inode = fs::metadata(path).unwrap().ino();
    let attempts: [(&str, OpenFn); 3] = [
        ("open", |p| State::open(p)),
        ("second open", |p| State::open(p)),
        ("snapshot-engine open", |p| {
            persisted_state::Store::<State>::options()
                .engine(persisted_state::Engine::Snapshot)
                .open(p)
        }),
    ];
    for (attempt, open) in attempts {
        let err = open(path).map(drop).unwrap_err();
        let Error::Parse {
            path: named,
            line,
            column,
            ..
        } = &err
        else {
            panic!("{what} ({attempt}): expected a parse error, got {err:?}");
        };
        assert_eq!(named, path, "{what} ({attempt})");
        assert!(*line >= 1, "{what} ({attempt}): {err}");
        if exact {
            assert_eq!(
                (*line, column.abs_diff(mistake.column) <= 1),
                (mistake.line, true),
                "{what} ({attempt}): expected line {} column {}: {err}",
                mistake.line,
                mistake.column
            );
        }
        assert_eq!(
            fs::read(path).unwrap(),
            mistake.text.as_bytes(),
            "{what} ({attempt}): the file was modified"
        );
        assert_eq!(
            fs::metadata(path).unwrap().ino(),
            inode,
            "{what} ({attempt})"
        );
        assert!(!common::journal_of(path).exists(), "{what} ({attempt})");
    }
}

/// Mistakes in this valid file:
/// ```text
/// 1 {
/// 2   "last_id": 7,
/// 3   "processed": [
/// 4     "a",
/// 5     "b"
/// 6   ],
/// 7   "settings": {
/// 8     "mode": "fast"
/// 9   }
/// 10 }
/// ```
const JSON_MISTAKES: &[Mistake] = &[
    Mistake {
        what: "missing comma after a value",
        text: "{\n  \"last_id\": 7\n  \"processed\": [\n    \"a\",\n    \"b\"\n  ],\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The next key's opening quote.
        line: 3,
        column: 3,
        bug: None,
    },
    Mistake {
        what: "unclosed bracket",
        text: "{\n  \"last_id\": 7,\n  \"processed\": [\n    \"a\",\n    \"b\"\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The key that should have been preceded by `],`.
        line: 6,
        column: 3,
        bug: None,
    },
    Mistake {
        what: "unclosed quote",
        text: "{\n  \"last_id\": 7,\n  \"processed\": [\n    \"a,\n    \"b\"\n  ],\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The line break inside the string, at the end of line 4
        // (`    "a,` is columns 1-7).
        line: 4,
        column: 8,
        bug: None,
    },
    Mistake {
        what: "wrong type (a string for a u64)",
        text: "{\n  \"last_id\": \"seven\",\n  \"processed\": [\n    \"a\",\n    \"b\"\n  ],\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The closing quote of "seven" (columns 14-20).
        line: 2,
        column: 20,
        bug: None,
    },
    Mistake {
        what: "trailing comma",
        text: "{\n  \"last_id\": 7,\n  \"processed\": [\n    \"a\",\n    \"b\",\n  ],\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The `]` after the comma.
        line: 6,
        column: 3,
        bug: None,
    },
    Mistake {
        what: "duplicate key",
        text: "{\n  \"last_id\": 7,\n  \"last_id\": 8,\n  \"processed\": [\n    \"a\",\n    \"b\"\n  ],\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The second key's closing quote (columns 3-11).
        line: 3,
        column: 11,
        bug: None,
    },
    Mistake {
        what: "trailing garbage after the document",
        text: "{\n  \"last_id\": 7,\n  \"processed\": [\n    \"a\",\n    \"b\"\n  ],\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n}\n",
        line: 11,
        column: 1,
        bug: None,
    },
    Mistake {
        what: "a string where a list is expected",
        text: "{\n  \"last_id\": 7,\n  \"processed\": \"a, b\",\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The closing quote of "a, b" (columns 16-21).
        line: 3,
        column: 21,
        bug: None,
    },
    Mistake {
        what: "negative number for a u64",
        text: "{\n  \"last_id\": -7,\n  \"processed\": [\n    \"a\",\n    \"b\"\n  ],\n  \"settings\": {\n    \"mode\": \"fast\"\n  }\n}\n",
        // The number's last digit (`-7` at columns 14-15).
        line: 2,
        column: 15,
        bug: None,
    },
    Mistake {
        what: "unknown nested structure where a string is expected",
        text: "{\n  \"last_id\": 7,\n  \"processed\": [\n    \"a\",\n    \"b\"\n  ],\n  \"settings\": {\n    \"mode\": {\"speed\": \"fast\"}\n  }\n}\n",
        // The `{` that opens the nested object.
        line: 8,
        column: 13,
        bug: None,
    },
];

#[test]
fn json_hand_edit_mistakes_are_reported_where_they_are_and_the_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    for mistake in JSON_MISTAKES {
        check_mistake(&path, mistake, mistake.bug.is_none());
    }
    eprintln!(
        "T12: json: {} hand-edit mistakes located",
        JSON_MISTAKES.len()
    );
}

/// Mistakes in this valid file:
/// ```text
/// 1 last_id: 7
/// 2 processed:
/// 3 - a
/// 4 - b
/// 5 settings:
/// 6   mode: fast
/// ```
#[cfg(feature = "yaml")]
const YAML_MISTAKES: &[Mistake] = &[
    Mistake {
        what: "missing comma in a flow mapping",
        text: "last_id: 7\nprocessed:\n- a\n- b\nsettings: {mode: fast retries: 3}\n",
        // The `:` after `fast retries`.
        line: 5,
        column: 30,
        bug: None,
    },
    Mistake {
        what: "unclosed bracket",
        text: "last_id: 7\nprocessed: [a, b\nsettings:\n  mode: fast\n",
        // Inside `[` the plain scalar `b` folds on into `b settings`; the
        // first token that cannot follow it is the `:` at column 9.
        line: 3,
        column: 9,
        bug: None,
    },
    Mistake {
        what: "unclosed quote",
        text: "last_id: 7\nprocessed:\n- a\n- b\nsettings:\n  mode: \"fast\n",
        // The opening quote (`  mode: ` is columns 1-8).
        line: 6,
        column: 9,
        bug: Some(
            "reported at the end of the stream (line 7, column 1); libyaml's context mark \
             (the opening quote) is cut from the message by `strip_location`",
        ),
    },
    Mistake {
        what: "wrong type (a string for a u64)",
        text: "last_id: seven\nprocessed:\n- a\n- b\nsettings:\n  mode: fast\n",
        line: 1,
        column: 10,
        bug: None,
    },
    Mistake {
        what: "tab indentation",
        text: "last_id: 7\nprocessed:\n- a\n- b\nsettings:\n\tmode: fast\n",
        line: 6,
        column: 1,
        bug: None,
    },
    Mistake {
        what: "duplicate key",
        text: "last_id: 7\nlast_id: 8\nprocessed:\n- a\n- b\nsettings:\n  mode: fast\n",
        // The second `last_id`.
        line: 2,
        column: 1,
        bug: Some(
            "serde_yaml places the derive's `duplicate field` error at the start of the \
             mapping: reported as line 1, column 1",
        ),
    },
    Mistake {
        what: "trailing garbage after the document",
        text: "last_id: 7\nprocessed:\n- a\n- b\nsettings:\n  mode: fast\n]\n",
        line: 7,
        column: 1,
        bug: None,
    },
    Mistake {
        what: "a string where a list is expected",
        text: "last_id: 7\nprocessed: a, b\nsettings:\n  mode: fast\n",
        line: 2,
        column: 12,
        bug: None,
    },
    Mistake {
        what: "negative number for a u64",
        text: "last_id: -7\nprocessed:\n- a\n- b\nsettings:\n  mode: fast\n",
        line: 1,
        column: 10,
        bug: None,
    },
    Mistake {
        what: "unknown nested structure where a string is expected",
        text: "last_id: 7\nprocessed:\n- a\n- b\nsettings:\n  mode:\n    speed: fast\n",
        // Where the nested mapping starts.
        line: 7,
        column: 5,
        bug: None,
    },
];

#[cfg(feature = "yaml")]
#[test]
fn yaml_hand_edit_mistakes_are_reported_where_they_are_and_the_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    for mistake in YAML_MISTAKES {
        check_mistake(&path, mistake, mistake.bug.is_none());
    }
    eprintln!(
        "T12: yaml: {} hand-edit mistakes located",
        YAML_MISTAKES.len()
    );
}

#[cfg(feature = "yaml")]
#[test]
#[ignore = "bug: YAML unclosed quote reported at the end of the stream, duplicate key at the mapping start (see YAML_MISTAKES)"]
fn yaml_hand_edit_mistakes_with_known_position_bugs_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    for mistake in YAML_MISTAKES.iter().filter(|m| m.bug.is_some()) {
        check_mistake(&path, mistake, true);
    }
}

/// libyaml errors read "<problem> at <mark>, <context> at <mark>": the
/// second mark says where the unclosed construct began, and is the useful
/// one for a person. `strip_location` cuts the last " at line ..." and so
/// drops it, leaving the first one duplicated in the message.
#[cfg(feature = "yaml")]
#[test]
fn a_yaml_error_message_says_where_the_unclosed_quote_began() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let text = "last_id: 7\nprocessed:\n- a\n- b\nsettings:\n  mode: \"fast\n";
    let err = open_fails(&path, text.as_bytes());
    let message = err.to_string();
    assert!(message.contains("line 6 column 9"), "{message}");
}

/// Mistakes in this valid file:
/// ```text
/// 1 last_id = 7
/// 2 processed = [
/// 3     "a",
/// 4     "b",
/// 5 ]
/// 6
/// 7 [settings]
/// 8 mode = "fast"
/// ```
#[cfg(feature = "toml")]
const TOML_MISTAKES: &[Mistake] = &[
    Mistake {
        what: "missing comma between list elements",
        text: "last_id = 7\nprocessed = [\n    \"a\"\n    \"b\",\n]\n\n[settings]\nmode = \"fast\"\n",
        // The element after the missing comma.
        line: 4,
        column: 5,
        bug: None,
    },
    Mistake {
        what: "unclosed bracket",
        text: "last_id = 7\nprocessed = [\n    \"a\",\n    \"b\",\n\n[settings]\nmode = \"fast\"\n",
        // The table header that should have been preceded by `]`.
        line: 6,
        column: 1,
        bug: Some(
            "reported at `mode` on line 7 (\"missing comma between array elements\"): the \
             parser reads `[settings]` as one more element, and of its two errors reports the \
             later one",
        ),
    },
    Mistake {
        what: "unclosed quote",
        text: "last_id = 7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"fast\n",
        // The line break inside the string (`mode = "fast` is columns 1-12).
        line: 8,
        column: 13,
        bug: None,
    },
    Mistake {
        what: "unclosed multi-line string",
        text: "last_id = 7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"\"\"fast\n",
        // The opening `"""`.
        line: 8,
        column: 8,
        bug: Some(
            "reported at the end of the file (line 9, column 1), where the parser gives up; \
             the message does not say where the string opened",
        ),
    },
    Mistake {
        what: "a bare word for a string",
        text: "last_id = 7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = fast\n",
        line: 8,
        column: 8,
        bug: None,
    },
    Mistake {
        what: "missing `=`",
        text: "last_id 7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"fast\"\n",
        // The value where `=` should be.
        line: 1,
        column: 9,
        bug: None,
    },
    Mistake {
        what: "wrong type (a string for a u64)",
        text: "last_id = \"seven\"\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"fast\"\n",
        line: 1,
        column: 11,
        bug: None,
    },
    Mistake {
        what: "duplicate key",
        text: "last_id = 7\nlast_id = 8\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"fast\"\n",
        line: 2,
        column: 1,
        bug: None,
    },
    Mistake {
        what: "duplicate table",
        text: "last_id = 7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"fast\"\n\n[settings]\nretries = \"3\"\n",
        // The second `[settings]` (its name, column 2).
        line: 10,
        column: 1,
        bug: None,
    },
    Mistake {
        what: "trailing garbage after the document",
        text: "last_id = 7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"fast\"\n]\n",
        line: 9,
        column: 1,
        bug: None,
    },
    Mistake {
        what: "a string where a list is expected",
        text: "last_id = 7\nprocessed = \"a, b\"\n\n[settings]\nmode = \"fast\"\n",
        line: 2,
        column: 13,
        bug: None,
    },
    Mistake {
        what: "negative number for a u64",
        text: "last_id = -7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = \"fast\"\n",
        line: 1,
        column: 11,
        bug: None,
    },
    Mistake {
        what: "unknown nested structure where a string is expected",
        text: "last_id = 7\nprocessed = [\n    \"a\",\n    \"b\",\n]\n\n[settings]\nmode = { speed = \"fast\" }\n",
        line: 8,
        column: 8,
        bug: None,
    },
];

#[cfg(feature = "toml")]
#[test]
fn toml_hand_edit_mistakes_are_reported_where_they_are_and_the_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.toml");
    for mistake in TOML_MISTAKES {
        check_mistake(&path, mistake, mistake.bug.is_none());
    }
    eprintln!(
        "T12: toml: {} hand-edit mistakes located",
        TOML_MISTAKES.len()
    );
}

#[cfg(feature = "toml")]
#[test]
#[ignore = "bug: TOML unclosed bracket reported a line late, unclosed multi-line string at the end of the file (see TOML_MISTAKES)"]
fn toml_hand_edit_mistakes_with_known_position_bugs_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.toml");
    for mistake in TOML_MISTAKES.iter().filter(|m| m.bug.is_some()) {
        check_mistake(&path, mistake, true);
    }
}
