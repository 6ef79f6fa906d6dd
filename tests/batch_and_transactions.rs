//! Batch mode writes only on `commit()`; transactions are all-or-nothing
//! and roll back on drop, on `Err` and on panic.

mod common;

use std::fs;

use common::{crash_image, journal_of, State, StateStoreExt, StateTransactionExt};
use persisted_state::{Error, Mode, Persisted, Store};

fn batch(path: &std::path::Path) -> Store<State> {
    Store::<State>::options()
        .mode(Mode::Batch)
        .open(path)
        .unwrap()
}

#[test]
fn batch_mode_writes_only_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = batch(&path);
    let journal_len = || fs::metadata(journal_of(&path)).unwrap().len();
    let empty = journal_len();
    store.set_last_id(1).unwrap();
    store.push_processed("a".into()).unwrap();
    store.update(|s| s.last_id = 2).unwrap();
    store.insert_settings("k".into(), "v".into()).unwrap();
    assert_eq!(store.last_id(), 2, "memory sees the change at once");
    assert_eq!(journal_len(), empty, "nothing written before commit");
    let (_crashed, copy) = crash_image(&path);
    assert_eq!(State::open(&copy).unwrap().get(), State::default());

    store.commit().unwrap();
    let after_commit = journal_len();
    assert!(after_commit > empty);
    let journal = fs::read_to_string(journal_of(&path)).unwrap();
    assert_eq!(journal.lines().count(), 3, "header + one record: {journal}");
    store.commit().unwrap();
    assert_eq!(
        journal_len(),
        after_commit,
        "an empty commit writes nothing"
    );

    let (_crashed, copy) = crash_image(&path);
    let reopened = State::open(&copy).unwrap().get();
    assert_eq!(reopened, store.get());
}

#[test]
fn batch_changes_not_committed_are_discarded_at_drop_and_refused_by_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = batch(&path);
    store.set_last_id(1).unwrap();
    store.commit().unwrap();
    store.set_last_id(2).unwrap();
    drop(store);
    assert_eq!(State::open(&path).unwrap().last_id(), 1);

    let store = batch(&path);
    store.set_last_id(3).unwrap();
    assert!(matches!(store.compact(), Err(Error::Uncommitted { .. })));
    let err = store.close().unwrap_err();
    assert!(
        matches!(err, Error::Uncommitted { changes: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("commit()"), "{err}");
    assert_eq!(State::open(&path).unwrap().last_id(), 1, "nothing written");
}

#[test]
fn batch_mode_with_the_snapshot_engine_rewrites_the_file_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = Store::<State>::options()
        .mode(Mode::Batch)
        .engine(persisted_state::Engine::Snapshot)
        .open(&path)
        .unwrap();
    store.set_last_id(9).unwrap();
    assert!(!fs::read_to_string(&path).unwrap().contains('9'));
    store.commit().unwrap();
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("\"last_id\": 9"));
}

#[test]
fn a_transaction_commits_all_its_fields_as_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = State::open(&path).unwrap();
    let mut tx = store.begin();
    tx.set_last_id(43);
    tx.processed.push("p".into());
    tx.settings.insert("k".into(), "v".into());
    assert_eq!(
        store.read().last_id,
        0,
        "readers see the state before the transaction"
    );
    tx.commit().unwrap();
    assert_eq!(store.last_id(), 43);
    let journal = fs::read_to_string(journal_of(&path)).unwrap();
    assert_eq!(journal.lines().count(), 3, "header + one record: {journal}");
    let (_crashed, copy) = crash_image(&path);
    assert_eq!(State::open(&copy).unwrap().get(), store.get());
}

#[test]
fn a_transaction_dropped_without_commit_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = State::open(dir.path().join("s.json")).unwrap();
    {
        let mut tx = store.begin();
        tx.last_id = 5;
        tx.processed.push("x".into());
    }
    assert_eq!(store.get(), State::default());
    let tx = store.begin();
    tx.rollback();
    store.set_last_id(1).unwrap();
    assert_eq!(store.last_id(), 1, "the writer lock was released");
}

#[test]
fn a_transaction_closure_returning_err_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = State::open(dir.path().join("s.json")).unwrap();
    #[derive(Debug)]
    enum AppError {
        Refused,
        Store(Error),
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Store(e)
        }
    }
    let result: Result<(), AppError> = store.transaction(|tx| {
        tx.last_id = 9;
        Err(AppError::Refused)
    });
    assert!(matches!(result, Err(AppError::Refused)));
    assert_eq!(store.last_id(), 0);
    let n = store
        .transaction(|tx| {
            tx.last_id += 2;
            Ok::<_, Error>(tx.last_id)
        })
        .unwrap();
    assert_eq!((n, store.last_id()), (2, 2));
    if let Err(AppError::Store(e)) = result {
        panic!("unexpected {e}");
    }
}

#[test]
fn a_transaction_that_panics_rolls_back_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = State::open(&path).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.transaction(|tx| {
            tx.last_id = 7;
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<_, Error>(())
        });
    }));
    assert!(caught.is_err());
    assert_eq!(store.last_id(), 0);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.update(|s| {
            s.last_id = 8;
            panic!("boom");
        });
    }));
    assert!(caught.is_err());
    assert_eq!(store.last_id(), 0);
    store.set_last_id(3).unwrap();
    drop(store);
    assert_eq!(State::open(&path).unwrap().last_id(), 3);
}

#[test]
fn update_that_changes_nothing_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = State::open(&path).unwrap();
    let before = fs::metadata(journal_of(&path)).unwrap().len();
    let read = store.update(|s| s.last_id).unwrap();
    store.update_last_id(|id| *id).unwrap();
    assert_eq!(read, 0);
    assert_eq!(fs::metadata(journal_of(&path)).unwrap().len(), before);
}
