//! A write that would wait on its own thread — while the thread holds a
//! `read()` guard, runs an `update` closure, or has a `Transaction` open on
//! the same store — returns `Error::Reentrant` at once with advice, instead
//! of hanging. Each case runs in a thread with a deadline, so a regression
//! fails the test instead of hanging the suite.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{State, StateStoreExt, StateTransactionExt};
use persisted_state::{Error, Mode, Persisted, Store};

/// Runs `f` on a fresh store in another thread; fails if it takes more
/// than five seconds (it would hang forever without the check).
fn within_deadline(mode: Mode, f: impl FnOnce(&Store<State>) + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::<State>::options()
            .mode(mode)
            .open(dir.path().join("s.json"))
            .unwrap();
        f(&store);
        done.send(()).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(5)) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the call hung"),
        // The thread panicked: its message is already printed.
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the test thread panicked"),
    }
}

fn assert_reentrant(result: persisted_state::Result<impl std::fmt::Debug>, says: &str) {
    match result {
        Err(err @ Error::Reentrant { .. }) => {
            let message = err.to_string();
            assert!(message.contains("s.json"), "{message}");
            assert!(message.contains(says), "{message}");
        }
        other => panic!("expected Error::Reentrant, got {other:?}"),
    }
}

#[test]
fn a_write_while_this_thread_holds_a_read_guard_is_an_error_not_a_hang() {
    for mode in [Mode::WriteThrough, Mode::Batch] {
        within_deadline(mode, |store| {
            // The guard lives to the end of the statement.
            assert_reentrant(store.set_last_id(store.read().last_id + 1), "read()");
            let guard = store.read();
            assert_reentrant(store.push_processed("x".into()), "drop the guard");
            assert_reentrant(store.update(|s| s.last_id = 9), "read()");
            assert_reentrant(store.commit(), "read()");
            assert_reentrant(store.compact(), "read()");
            assert_reentrant(store.clone().close(), "read()");
            drop(guard);
            // Once the guard is gone, the same write works.
            let id = store.read().last_id;
            store.set_last_id(id + 1).unwrap();
            assert_eq!(store.last_id(), 1);
        });
    }
}

#[test]
fn a_write_inside_an_update_closure_is_an_error_not_a_hang() {
    within_deadline(Mode::WriteThrough, |store| {
        let inner = store
            .update(|s| {
                s.last_id = 5;
                store.set_last_id(6)
            })
            .unwrap();
        assert_reentrant(inner, "update");
        assert_eq!(store.last_id(), 5, "the closure's own change committed");
        let inner = store.update_processed(|v| {
            v.push("a".into());
            store.push_processed("b".into())
        });
        assert_reentrant(inner.unwrap(), "closure");
        assert_eq!(store.read().processed, ["a"]);
        // Reads inside a closure are fine.
        store.update(|s| s.last_id = store.last_id() + 1).unwrap();
        assert_eq!(store.last_id(), 6);
    });
}

#[test]
fn a_write_while_a_transaction_is_open_is_an_error_not_a_hang() {
    within_deadline(Mode::WriteThrough, |store| {
        let mut tx = store.begin();
        tx.set_last_id(1);
        assert_reentrant(store.set_last_id(2), "Transaction");
        assert_reentrant(store.update(|s| s.last_id = 3), "tx.set_");
        let nested = store.transaction(|_| Ok::<_, Error>(()));
        assert_reentrant(nested, "Transaction");
        // Reading the store while the transaction is open sees the state
        // before it.
        assert_eq!(store.last_id(), 0);
        tx.commit().unwrap();
        assert_eq!(store.last_id(), 1);
        // Inside `transaction(|tx| ..)` too.
        let result = store.transaction(|tx| {
            tx.set_last_id(7);
            store.set_last_id(8)
        });
        assert_reentrant(result, "Transaction");
        assert_eq!(store.last_id(), 1, "the transaction rolled back");
    });
}

#[test]
fn begin_while_this_thread_holds_a_guard_panics_with_advice_instead_of_hanging() {
    within_deadline(Mode::WriteThrough, |store| {
        let store = store.clone();
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = store.read();
            let _tx = store.begin();
        }))
        .unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("read()"), "{message}");
        // Nothing is left held: the store still works.
        store.set_last_id(3).unwrap();
    });
}

#[test]
fn other_threads_wait_for_a_guard_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let store = State::open(dir.path().join("s.json")).unwrap();
    let guard = store.read();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.set_last_id(1))
    };
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(guard.last_id, 0);
    drop(guard);
    writer.join().unwrap().unwrap();
    assert_eq!(store.last_id(), 1);
}

#[test]
fn nested_reads_on_one_thread_do_not_deadlock_behind_a_waiting_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = State::open(dir.path().join("s.json")).unwrap();
    let outer = store.read();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.set_last_id(1))
    };
    // Give the writer time to queue behind `outer`; a plain nested read
    // would then wait for the writer, which waits for `outer`.
    std::thread::sleep(Duration::from_millis(20));
    let inner = store.last_id();
    assert_eq!(inner, outer.last_id);
    drop(outer);
    writer.join().unwrap().unwrap();
}
