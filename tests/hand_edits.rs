//! DESIGN "Hand edits": a snapshot a person saves while a program has the
//! store open wins over the commits made before the save, and every commit
//! acknowledged after the save is on disk after reopen, on top of the
//! edit, in both engines, every mode, and after a crash.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use persisted_state::{Engine, Format, Mode, Persisted, RecoveryEvent, Store};
use persisted_state_core::__fuzz::spec;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Config {
    note: String,
    runs: u64,
    items: Vec<String>,
}

fn text_formats() -> Vec<Format> {
    common::formats()
        .into_iter()
        .filter(|f| *f != Format::Bincode)
        .collect()
}

fn path_for(dir: &Path, format: Format) -> PathBuf {
    common::state_path(dir, format)
}

/// How a person's editor saves.
#[derive(Debug, Clone, Copy)]
enum Save {
    /// Truncate and write the file in place (`fs::write`, nano, VS Code).
    InPlace,
    /// Write a temp file and rename it over (`sed -i`, many editors).
    RenameOver,
    /// Rename the file to a backup, write a new one (vim, emacs).
    BackupRename,
}

/// Saves `path` with `from` replaced by `to`, the way `save` does.
fn edit(path: &Path, save: Save, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    let text = text.replace(from, to);
    match save {
        Save::InPlace => fs::write(path, text).unwrap(),
        Save::RenameOver => {
            let temp = path.with_extension("swp");
            fs::write(&temp, text).unwrap();
            fs::rename(&temp, path).unwrap();
        }
        Save::BackupRename => {
            let mut backup = path.as_os_str().to_os_string();
            backup.push("~");
            fs::rename(path, &backup).unwrap();
            fs::write(path, text).unwrap();
        }
    }
}

fn orphans(dir: &Path) -> usize {
    common::files_in(dir)
        .iter()
        .filter(|f| f.contains(".journal.orphaned-"))
        .count()
}

fn reopen(path: &Path) -> Config {
    Store::<Config>::open(path).unwrap().get()
}

#[test]
fn a_commit_after_a_save_is_kept_on_top_of_it_in_every_text_format_and_save_style() {
    for format in text_formats() {
        for save in [Save::InPlace, Save::RenameOver, Save::BackupRename] {
            let dir = tempfile::tempdir().unwrap();
            let path = path_for(dir.path(), format);
            let store: Store<Config> = Store::open(&path).unwrap();
            store.set_note("before".into()).unwrap();
            store.compact().unwrap();
            edit(&path, save, "before", "edited");
            store.set_runs(7).unwrap();
            store.push_items("after".into()).unwrap();
            store.close().unwrap();
            let got = reopen(&path);
            assert_eq!(
                (got.note.as_str(), got.runs, &got.items[..]),
                ("edited", 7, &["after".to_string()][..]),
                "{format:?} {save:?}"
            );
            assert_eq!(orphans(dir.path()), 1, "{format:?} {save:?}");
        }
    }
}

#[test]
fn the_edit_wins_on_the_fields_it_changed_and_the_journal_keeps_the_others() {
    for format in text_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), format);
        let store: Store<Config> = Store::open(&path).unwrap();
        store.set_runs(1234).unwrap();
        store.compact().unwrap();
        // In the journal, not in the file the person opens.
        store.set_note("before".into()).unwrap();
        store.set_runs(1235).unwrap();
        // The person changes `runs` (from the 1234 they see); `note` they
        // leave as the file has it.
        edit(&path, Save::RenameOver, "1234", "50");
        store.push_items("after".into()).unwrap();
        drop(store); // Drop, not close: it folds the same way
        let got = reopen(&path);
        assert_eq!(got.runs, 50, "{format:?}: the field the person changed");
        assert_eq!(
            got.note, "before",
            "{format:?}: a field the save left as it was keeps its commit"
        );
        assert_eq!(got.items, ["after"], "{format:?}");
    }
}

/// A program counting in its journal while a person changes another field
/// of the file: the count goes on from where it was, not from the stale
/// value the file (and so the save) still held.
#[test]
fn a_save_of_one_field_does_not_reset_the_fields_the_program_keeps_changing() {
    for shared in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), Format::Json);
        let store = Store::<Config>::options()
            .shared(shared)
            .open(&path)
            .unwrap();
        for _ in 0..100 {
            store.update(|c| c.runs += 1).unwrap();
        }
        edit(
            &path,
            Save::InPlace,
            "\"note\": \"\"",
            "\"note\": \"by hand\"",
        );
        std::thread::sleep(Duration::from_millis(15));
        store.update(|c| c.runs += 1).unwrap();
        assert_eq!(store.runs(), 101, "shared: {shared}");
        assert_eq!(store.note(), "by hand", "shared: {shared}");
        drop(store);
        let got = reopen(&path);
        assert_eq!(
            (got.runs, got.note.as_str()),
            (101, "by hand"),
            "shared: {shared}"
        );
    }
}

#[test]
fn an_edit_is_adopted_by_a_commit_once_the_check_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), Format::Json);
    let store: Store<Config> = Store::open(&path).unwrap();
    store.set_note("before".into()).unwrap();
    store.compact().unwrap();
    edit(&path, Save::RenameOver, "before", "edited");
    std::thread::sleep(Duration::from_millis(15));
    store.set_runs(3).unwrap();
    // Adopted before the commit: reads show the edit at once.
    assert_eq!((store.note().as_str(), store.runs()), ("edited", 3));
    drop(store);
    assert_eq!(reopen(&path).note, "edited");
}

#[test]
fn a_save_that_does_not_parse_fails_the_commit_that_finds_it_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), Format::Json);
    let store: Store<Config> = Store::open(&path).unwrap();
    store.set_runs(1).unwrap();
    store.compact().unwrap();
    let broken = "{\n  \"note\": \"x\",\n  oops\n}\n";
    fs::write(&path, broken).unwrap();
    std::thread::sleep(Duration::from_millis(15));
    let err = store.set_runs(2).unwrap_err();
    assert!(
        matches!(err, persisted_state::Error::Parse { line: 3, .. }),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    // The person fixes it; the next commit adopts the fix.
    fs::write(
        &path,
        "{\n  \"note\": \"fixed\",\n  \"runs\": 1,\n  \"items\": []\n}\n",
    )
    .unwrap();
    store.set_runs(2).unwrap();
    store.close().unwrap();
    let got = reopen(&path);
    assert_eq!((got.note.as_str(), got.runs), ("fixed", 2));
}

#[test]
fn the_snapshot_engine_keeps_a_commit_made_after_a_save() {
    for mode in [Mode::WriteThrough, Mode::Batch] {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), Format::Json);
        let store = Store::<Config>::options()
            .engine(Engine::Snapshot)
            .mode(mode)
            .open(&path)
            .unwrap();
        store.set_note("before".into()).unwrap();
        store.commit().unwrap();
        store.push_items("batched-before-the-save".into()).unwrap();
        edit(&path, Save::RenameOver, "before", "edited");
        store.set_runs(9).unwrap();
        store.commit().unwrap();
        assert_eq!(store.note(), "edited", "{mode:?}");
        store.close().unwrap();
        let got = reopen_with(&path, Engine::Snapshot);
        assert_eq!(
            (got.note.as_str(), got.runs, got.items.len()),
            ("edited", 9, 1),
            "{mode:?}: the edit, and every change committed after it"
        );
    }
}

fn reopen_with(path: &Path, engine: Engine) -> Config {
    Store::<Config>::options()
        .engine(engine)
        .open(path)
        .unwrap()
        .get()
}

#[test]
fn a_batch_committed_after_a_save_is_kept_on_top_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), Format::Json);
    let store = Store::<Config>::options()
        .mode(Mode::Batch)
        .open(&path)
        .unwrap();
    store.set_note("before".into()).unwrap();
    store.commit().unwrap();
    store.compact().unwrap();
    store.set_runs(4).unwrap(); // pending while the person saves
    edit(&path, Save::InPlace, "before", "edited");
    store.push_items("x".into()).unwrap();
    store.commit().unwrap();
    store.close().unwrap();
    let got = reopen(&path);
    assert_eq!(
        (got.note.as_str(), got.runs, got.items.len()),
        ("edited", 4, 1)
    );
}

/// A commit record pushing `item` (what a program appends when it commits
/// in a burst after a save, without looking at the snapshot first), dated
/// `time_ms`, built from the format spec.
fn push_record(format: Format, seq: u64, time_ms: u64, item: &str) -> Vec<u8> {
    let payload = match format {
        Format::Yaml => format!("push items: {item}\n"),
        _ => format!("{{\"push items\":\"{item}\"}}\n"),
    };
    let mut out = Vec::new();
    spec::encode_record_v2(
        format,
        b'@',
        seq,
        time_ms,
        b"+items",
        payload.as_bytes(),
        &mut out,
    );
    out
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn after_a_crash_commits_made_after_the_save_are_kept_on_top_of_it() {
    for format in text_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), format);
        let store: Store<Config> = Store::open(&path).unwrap();
        store.set_runs(1234).unwrap(); // seq 1
        store.compact().unwrap(); // the intent is seq 2
        store.set_note("before".into()).unwrap(); // seq 3
        let (crashed, copy) = common::crash_image(&path);
        drop(store);
        edit(&copy, Save::RenameOver, "1234", "50");
        // A commit a second after the save, and one at the same time as it.
        let saved_ms = now_ms();
        let mut journal = fs::read(common::journal_of(&copy)).unwrap();
        journal.extend(push_record(format, 4, saved_ms + 1_000, "after"));
        journal.extend(push_record(format, 5, saved_ms, "at-the-save"));
        fs::write(common::journal_of(&copy), &journal).unwrap();

        let store: Store<Config> = Store::open(&copy).unwrap();
        let got = store.get();
        assert_eq!(
            (got.note.as_str(), got.runs, &got.items[..]),
            ("", 50, &["after".to_string()][..]),
            "{format:?}: the edit, then the commit made after it"
        );
        match &store.recovery().events[..] {
            [RecoveryEvent::JournalOrphaned {
                commits: 3,
                kept_on_top: 1,
                kept_at,
                ..
            }] => assert_eq!(fs::read(kept_at).unwrap(), journal, "{format:?}"),
            other => panic!("{format:?}: {other:?}"),
        }
        drop(store);
        assert_eq!(reopen(&copy), got, "{format:?}: the merge is on disk");
        assert_eq!(orphans(crashed.path()), 1);
    }
}
