//! What a user meets in the first hour, each with a clear answer: a path in
//! a directory that does not exist, a batch dropped with changes not
//! committed, a `close()` that refuses them.

mod common;

use std::sync::{Mutex, Once};

use common::{State, StateStoreExt};
use persisted_state::{Error, Mode, Persisted, Store};

/// The warnings logged, for the tests to read.
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
            logged.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn capture_log() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

fn logged_about(path: &std::path::Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    LOGGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|m| m.contains(&name))
        .cloned()
        .collect()
}

#[test]
fn a_path_in_a_missing_directory_names_the_directory_not_a_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let err = Store::<State>::open(missing.join("state.json")).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(
        text.contains("no-such-dir") && text.contains("directory"),
        "{text}"
    );
    assert!(!text.contains("lock"), "{text}");
    assert!(!missing.exists(), "the directory is not created");
}

#[test]
fn a_batch_dropped_with_changes_warns_naming_the_fields_it_discards() {
    capture_log();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped-batch.json");
    let store = Store::<State>::options()
        .mode(Mode::Batch)
        .open(&path)
        .unwrap();
    store.set_last_id(7).unwrap();
    store.push_processed("x".into()).unwrap();
    drop(store);
    let warnings = logged_about(&path);
    assert!(
        warnings.iter().any(|w| w.contains("uncommitted")
            && w.contains("`last_id`")
            && w.contains("`processed`")
            && w.contains("discarded")),
        "{warnings:?}"
    );
    assert_eq!(State::open(&path).unwrap().last_id(), 0);
}

#[test]
fn close_with_uncommitted_changes_says_what_it_discards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = Store::<State>::options()
        .mode(Mode::Batch)
        .open(&path)
        .unwrap();
    store.set_last_id(3).unwrap();
    let err = store.close().unwrap_err();
    match &err {
        Error::Uncommitted {
            changes: 1, fields, ..
        } => assert_eq!(fields, &["last_id"]),
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("`last_id`") && text.contains("discarded"),
        "{text}"
    );
}
