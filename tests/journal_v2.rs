//! Journal format version 2: every record's frame carries its commit time
//! and the fields it touches, covered by the checksum; open skips records
//! that later ones replace whole, without parsing them. Version 1 journals
//! still open (`tests/compat_fixtures.rs`).

mod common;

use std::fs;

use common::{formats, journal_of, state_path, State, StateStoreExt, StateTransactionExt};
use persisted_state::{Error, Format, Persisted};
use persisted_state_core::__fuzz::spec;

#[test]
fn frames_carry_the_commit_time_and_the_fields_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let store = State::open(&path).unwrap();
    store.set_last_id(1).unwrap();
    store.push_processed("a".into()).unwrap();
    store
        .transaction(|tx| {
            tx.set_last_id(2);
            tx.push_processed("b".into());
            tx.insert_settings("k".into(), "v".into());
            Ok::<_, Error>(())
        })
        .unwrap();
    let journal = fs::read_to_string(journal_of(&path)).unwrap();
    let frames: Vec<Vec<&str>> = journal
        .lines()
        .filter(|l| l.starts_with('@'))
        .map(|l| l.split(' ').collect())
        .collect();
    assert!(
        journal.starts_with("# persisted-journal v2 json "),
        "{journal}"
    );
    let fields: Vec<&str> = frames.iter().map(|f| f[4]).collect();
    assert_eq!(
        fields,
        ["=last_id", "+processed", "=last_id,+processed,+settings"]
    );
    for frame in &frames {
        let time: u64 = frame[3].parse().unwrap();
        assert!(time >= before && time < before + 60_000, "{journal}");
    }
}

/// A record whose payload does not parse (a type the struct rejects),
/// framed validly as version 2 with the fields it names.
fn journal_with(format: Format, snapshot: &[u8], records: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = spec::encode_header_version(format, 2, spec::fingerprint(snapshot), 0);
    for (seq, (fields, payload)) in records.iter().enumerate() {
        spec::encode_record_v2(format, b'@', seq as u64 + 1, 1, fields, payload, &mut out);
    }
    out
}

#[test]
fn open_skips_records_a_later_one_replaces_whole_without_parsing_them() {
    for format in formats().into_iter().filter(|f| *f == Format::Json) {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        State::open(&path).unwrap().close().unwrap();
        let snapshot = fs::read(&path).unwrap();
        let unparsable: &[u8] = b"{\"set last_id\":\"not a number\"}\n";
        // Replaced whole later: never parsed, so it cannot fail the open.
        let journal = journal_with(
            format,
            &snapshot,
            &[
                (b"=last_id", unparsable),
                (b"+processed", b"{\"push processed\":\"x\"}\n"),
                (b"=last_id", b"{\"set last_id\":5}\n"),
            ],
        );
        fs::write(journal_of(&path), &journal).unwrap();
        let store = State::open(&path).unwrap();
        assert_eq!(store.last_id(), 5);
        assert_eq!(store.read().processed, ["x"]);
        assert_eq!(store.recovery().replayed, 3);
        drop(store);
        // Not replaced later: parsed, and the mistake is reported.
        let journal = journal_with(
            format,
            &snapshot,
            &[
                (b"=last_id", unparsable),
                (b"+processed", b"{\"push processed\":\"x\"}\n"),
            ],
        );
        fs::write(&path, &snapshot).unwrap();
        fs::write(journal_of(&path), &journal).unwrap();
        let err = State::open(&path).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err}");
        // An operation after a whole value keeps the whole value needed.
        let journal = journal_with(
            format,
            &snapshot,
            &[
                (b"=processed", b"{\"set processed\":[\"a\"]}\n"),
                (b"+processed", b"{\"push processed\":\"b\"}\n"),
            ],
        );
        fs::write(&path, &snapshot).unwrap();
        fs::write(journal_of(&path), &journal).unwrap();
        assert_eq!(State::open(&path).unwrap().read().processed, ["a", "b"]);
    }
}

/// A journal of more than 1 MiB is read and verified on a second thread
/// while the snapshot is parsed: the same state, the same damage rules.
#[test]
fn a_long_journal_read_beside_the_snapshot_opens_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let expected = {
        let store = persisted_state::Store::<State>::options()
            .journal_limit(u64::MAX)
            .open(&path)
            .unwrap();
        for n in 0..12_000u64 {
            store.set_last_id(n).unwrap();
            store
                .push_processed(format!("{n}-{}", "x".repeat(64)))
                .unwrap();
        }
        let state = store.get();
        let (_copy_dir, copy) = common::crash_image(&path);
        assert!(std::fs::metadata(journal_of(&copy)).unwrap().len() > 1 << 20);
        let reopened = State::open(&copy).unwrap();
        assert_eq!(reopened.get(), state);
        assert_eq!(reopened.recovery().replayed, 24_000);
        drop(reopened);
        // Damage followed by valid records stays an error.
        let (_damaged_dir, damaged) = common::crash_image(&path);
        let journal = journal_of(&damaged);
        let mut bytes = fs::read(&journal).unwrap();
        let middle = bytes.len() / 2;
        let at = middle + bytes[middle..].iter().position(|&b| b == b'{').unwrap() + 2;
        bytes[at] ^= 0x01;
        fs::write(&journal, &bytes).unwrap();
        assert!(matches!(State::open(&damaged), Err(Error::Corrupt { .. })));
        state
    };
    assert_eq!(State::open(&path).unwrap().get(), expected);
}
