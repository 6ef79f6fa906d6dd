//! DESIGN "Encryption at rest": an encrypted store's files are
//! authenticated ciphertext — nothing of the state appears in them — in
//! every format, both engines, with history; the wrong or a missing key is
//! a named error that changes no file; a record moved from another store
//! is refused, never cut away; a cut at every byte of the last record keeps
//! the earlier commits; `rekey` retires the old key; shared mode works.
#![cfg(feature = "encryption")]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use persisted_state::{Engine, Error, Format, KeepHistory, Key, Persisted, Store};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Secrets {
    token: String,
    notes: Vec<String>,
    seen: u64,
}

const MARKER: &str = "MARKER-7f3a";

fn key() -> Key {
    Key::from_bytes([0x42; 32])
}

fn other_key() -> Key {
    Key::from_bytes([0x24; 32])
}

fn name(format: Format) -> &'static str {
    match format {
        Format::Json => "secrets.json.enc",
        Format::Yaml => "secrets.yaml.enc",
        Format::Toml => "secrets.toml.enc",
        _ => "secrets.bin.enc",
    }
}

fn open_with(path: &Path, key: Key) -> persisted_state::Result<Store<Secrets>> {
    Store::<Secrets>::options().encryption(key).open(path)
}

/// Every file in `dir`, name and bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files_in(dir)
        .into_iter()
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn assert_no_marker(dir: &Path, context: &str) {
    for (name, bytes) in files(dir) {
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{context}: the marker is readable in {name}"
        );
    }
}

#[test]
fn nothing_of_the_state_appears_in_any_file_in_every_format_engine_and_with_history() {
    for format in common::formats() {
        for engine in [Engine::Journal, Engine::Snapshot] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name(format));
            let history = match engine {
                Engine::Journal => KeepHistory::Forever,
                _ => KeepHistory::None,
            };
            let store = Store::<Secrets>::options()
                .encryption(key())
                .engine(engine)
                .keep_history(history)
                .open(&path)
                .unwrap();
            store.set_token(format!("{MARKER}-token")).unwrap();
            store.push_notes(format!("{MARKER}-note")).unwrap();
            let ctx = format!("{format:?} {engine:?}");
            assert_no_marker(dir.path(), &format!("{ctx}, in the journal"));
            store.compact().unwrap();
            store.update(|s| s.seen += 1).unwrap();
            store.compact().unwrap();
            assert_no_marker(dir.path(), &format!("{ctx}, after compactions"));
            store.close().unwrap();
            assert_no_marker(dir.path(), &format!("{ctx}, after close"));
            let store = Store::<Secrets>::options()
                .encryption(key())
                .engine(engine)
                .keep_history(history)
                .open(&path)
                .unwrap();
            assert_eq!(store.token(), format!("{MARKER}-token"), "{ctx}");
            assert_eq!(store.notes(), [format!("{MARKER}-note")], "{ctx}");
            if engine == Engine::Journal {
                let commits = store.history().unwrap();
                assert_eq!(commits.len(), 3, "{ctx}");
                assert_eq!(store.state_at(commits[0].seq).unwrap().notes.len(), 0);
            }
        }
    }
}

#[test]
fn a_wrong_or_missing_key_is_a_named_error_and_changes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json.enc");
    let store = open_with(&path, key()).unwrap();
    store.set_token("t".into()).unwrap();
    drop(store); // the journal is folded; make one more commit stay in it
    let store = open_with(&path, key()).unwrap();
    store.set_seen(3).unwrap();
    // As a crash would leave it: a journal with a record, and no lock held.
    let (crashed, path) = common::crash_image(&path);
    drop(store);
    let dir = crashed;
    // The lock file exists, as it does once a store has been opened.
    fs::write(dir.path().join("secrets.json.enc.lock"), b"").unwrap();
    let before = files(dir.path());
    let err = Store::<Secrets>::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Encrypted { path: p } if *p == path),
        "{err:?}"
    );
    let err = open_with(&path, other_key()).unwrap_err();
    assert!(
        matches!(&err, Error::WrongKey { path: p } if *p == path),
        "{err:?}"
    );
    let err = open_with(&path, Key::passphrase("guess").unwrap()).unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err:?}");
    assert_eq!(files(dir.path()), before, "every file byte-identical");
}

#[test]
fn a_plain_store_opened_with_a_key_is_refused_unless_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.json");
    let store = Store::<Secrets>::options()
        .keep_history(KeepHistory::Forever)
        .open(&path)
        .unwrap();
    store.set_token(format!("{MARKER}-plain")).unwrap();
    store.compact().unwrap();
    store.push_notes(format!("{MARKER}-later")).unwrap();
    drop(store);
    let before = files(dir.path());
    let err = open_with(&path, key()).unwrap_err();
    assert!(
        matches!(&err, Error::NotEncrypted { path: p } if *p == path),
        "{err:?}"
    );
    assert_eq!(files(dir.path()), before);
    let store = Store::<Secrets>::options()
        .encryption(key())
        .encrypt_existing(true)
        .keep_history(KeepHistory::Forever)
        .open(&path)
        .unwrap();
    assert_eq!(store.notes().len(), 1);
    assert_eq!(
        store.history().unwrap().len(),
        2,
        "the history is kept, sealed"
    );
    drop(store);
    assert_no_marker(dir.path(), "after the conversion");
    assert!(matches!(
        Store::<Secrets>::open(&path).unwrap_err(),
        Error::Encrypted { .. }
    ));
}

#[test]
fn rekey_retires_the_old_key_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json.enc");
    let store = Store::<Secrets>::options()
        .encryption(key())
        .keep_history(KeepHistory::Forever)
        .open(&path)
        .unwrap();
    store.set_token("before".into()).unwrap();
    store.compact().unwrap();
    let phrase = Key::passphrase("correct horse battery staple").unwrap();
    store.rekey(phrase.clone()).unwrap();
    store.set_seen(9).unwrap();
    drop(store);
    assert!(matches!(
        open_with(&path, key()).unwrap_err(),
        Error::WrongKey { .. }
    ));
    let store = Store::<Secrets>::options()
        .encryption(phrase)
        .keep_history(KeepHistory::Forever)
        .open(&path)
        .unwrap();
    assert_eq!((store.token().as_str(), store.seen()), ("before", 9));
    let first = store.history().unwrap()[0].seq;
    assert_eq!(store.state_at(first).unwrap().token, "before");
}

/// The journal beside a snapshot.
fn journal_of(path: &Path) -> PathBuf {
    common::journal_of(path)
}

#[test]
fn a_cut_at_every_byte_of_the_last_record_keeps_the_earlier_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json.enc");
    let store = open_with(&path, key()).unwrap();
    store.set_seen(1).unwrap();
    let before_last = fs::read(journal_of(&path)).unwrap().len();
    store.set_seen(2).unwrap();
    let (_crashed, copy) = common::crash_image(&path);
    drop(store);
    let journal = fs::read(journal_of(&copy)).unwrap();
    let snapshot = fs::read(&copy).unwrap();
    for cut in before_last..journal.len() {
        // The image as the crash left it, cut (each open folds it).
        fs::write(&copy, &snapshot).unwrap();
        fs::write(journal_of(&copy), &journal[..cut]).unwrap();
        let store = open_with(&copy, key()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(store.seen(), 1, "cut at {cut}");
    }
    fs::write(&copy, &snapshot).unwrap();
    fs::write(journal_of(&copy), &journal).unwrap();
    assert_eq!(
        open_with(&copy, key()).unwrap().seen(),
        2,
        "the whole record"
    );
}

#[test]
fn a_record_from_another_store_with_the_same_key_is_refused_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json.enc");
    let b = dir.path().join("b.json.enc");
    let store_a = open_with(&a, key()).unwrap();
    let store_b = open_with(&b, key()).unwrap();
    store_a.set_seen(1).unwrap();
    store_b.set_seen(1).unwrap();
    let journal_b = fs::read(journal_of(&b)).unwrap();
    store_b.set_seen(666).unwrap();
    let b_record = fs::read(journal_of(&b)).unwrap()[journal_b.len()..].to_vec();
    let (_ca, copy_a) = common::crash_image(&a);
    drop((store_a, store_b));
    // B's record appended to A's journal, with A's next sequence number's
    // checksum: a valid frame whose seal is B's.
    let mut journal = fs::read(journal_of(&copy_a)).unwrap();
    journal.extend_from_slice(&b_record);
    fs::write(journal_of(&copy_a), &journal).unwrap();
    let before = fs::read(journal_of(&copy_a)).unwrap();
    let err = open_with(&copy_a, key()).unwrap_err();
    assert!(matches!(err, Error::Decrypt { .. }), "{err:?}");
    assert_eq!(
        fs::read(journal_of(&copy_a)).unwrap(),
        before,
        "nothing cut away"
    );
}

#[test]
fn two_shared_participants_share_an_encrypted_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json.enc");
    let shared = || {
        Store::<Secrets>::options()
            .encryption(key())
            .shared(true)
            .open(&path)
            .unwrap()
    };
    let a = shared();
    let b = shared();
    for i in 0..50 {
        a.update(|s| s.seen += 1).unwrap();
        b.push_notes(format!("{MARKER}-{i}")).unwrap();
    }
    a.compact().unwrap();
    b.update(|s| s.seen += 1).unwrap();
    assert_eq!((a.seen(), a.notes().len()), (51, 50));
    assert_eq!(b.get(), a.get());
    drop((a, b));
    assert_no_marker(dir.path(), "shared");
    assert_eq!(open_with(&path, key()).unwrap().seen(), 51);
}

const CHILD: &str = "PERSISTED_ENCRYPTED_CHILD";

/// Runs only as a child: encrypted commits in a loop, each acknowledged.
#[test]
fn encrypted_child_writer() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    use std::io::Write;
    let store = Store::<Secrets>::options()
        .encryption(key())
        .journal_limit(4 * 1024) // compactions happen, so kills land in them too
        .open(&path)
        .unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    for n in store.seen() + 1..store.seen() + 100_000 {
        store.set_seen(n).unwrap();
        writeln!(out, "ACK {n}").unwrap();
        out.flush().unwrap();
    }
}

/// Every sealed commit payload's nonce (its first 12 bytes) in a journal,
/// with the frame it belongs to.
fn nonces(journal: &[u8]) -> Vec<([u8; 12], Vec<u8>)> {
    let records = persisted_state_core::__tool::read_records(journal);
    records
        .records
        .iter()
        .filter(|r| !r.intent)
        .map(|r| {
            let payload = &journal[r.payload_at..r.end];
            (
                payload[..12].try_into().unwrap(),
                journal[r.start..r.end].to_vec(),
            )
        })
        .collect()
}

/// 50 `kill -9` of an encrypted writer, each journal captured before the
/// next open recovers it: no nonce is ever used for two different records
/// (nonces never come from sequence numbers, which repeat after a crash).
#[test]
fn no_nonce_repeats_across_kill9_of_an_encrypted_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill9.json.enc");
    let mut seen: std::collections::HashMap<[u8; 12], Vec<u8>> = Default::default();
    let (mut acked, mut frames) = (0, 0);
    for round in 0..50u64 {
        if let Some(n) = common::kill9_after_acks(
            "encrypted_child_writer",
            CHILD,
            &path,
            1 + (round * 13) % 40,
        ) {
            acked = n;
        }
        let journal = fs::read(journal_of(&path)).unwrap_or_default();
        for (nonce, frame) in nonces(&journal) {
            frames += 1;
            if let Some(other) = seen.insert(nonce, frame.clone()) {
                assert_eq!(other, frame, "round {round}: a nonce used for two records");
            }
        }
        let store = open_with(&path, key()).unwrap();
        assert!(
            store.seen() >= acked,
            "round {round}: lost acknowledged commits"
        );
    }
    assert!(frames > 100, "{frames} frames captured");
}

/// After one participant's `rekey`, the other takes the new envelope from
/// the files the rekey wrote: its own compactions do not bring the old key
/// back.
#[test]
fn a_rekey_in_shared_mode_is_kept_by_the_other_participant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json.enc");
    let shared = |key: Key| {
        Store::<Secrets>::options()
            .encryption(key)
            .shared(true)
            .open(&path)
            .unwrap()
    };
    let a = shared(key());
    let b = shared(key());
    a.set_seen(1).unwrap();
    a.rekey(other_key()).unwrap();
    b.set_seen(2).unwrap(); // catches up with A's compaction
    b.compact().unwrap();
    drop((a, b));
    assert!(matches!(
        open_with(&path, key()).unwrap_err(),
        Error::WrongKey { .. }
    ));
    assert_eq!(open_with(&path, other_key()).unwrap().seen(), 2);
}
