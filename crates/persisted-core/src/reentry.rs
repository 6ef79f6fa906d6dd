//! What this thread holds on which store, so that a write that would wait
//! on the thread itself fails at once with advice instead of hanging:
//! a write while the thread holds a `read()` guard, runs an `update`
//! closure, or has a `Transaction` open on the same store.

use std::cell::RefCell;

/// Something a thread can hold on a store that a write would wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    Read,
    Update,
    Transaction,
}

impl Hold {
    /// What the thread holds and what to do instead, completing "cannot
    /// write to `state.json`: this thread ...".
    pub(crate) fn advice(self) -> &'static str {
        match self {
            Hold::Read => {
                "holds a `read()` guard on it: drop the guard first (copy the value out: \
                 `let n = store.read().n;` then `store.set_n(n + 1)`), or make the whole \
                 change in `store.update(|s| ..)`"
            }
            Hold::Update => {
                "is inside an `update` closure on it: change the state through the closure's \
                 `&mut` argument instead"
            }
            Hold::Transaction => {
                "has a `Transaction` open on it: make the change through the transaction \
                 (`tx.set_..`, `tx.push_..`), or commit or drop it first"
            }
        }
    }
}

thread_local! {
    static HELD: RefCell<Vec<(usize, Hold)>> = const { RefCell::new(Vec::new()) };
}

/// Marks `hold` on store `key` for as long as it lives.
#[must_use]
pub(crate) struct Held {
    key: usize,
    hold: Hold,
}

impl Held {
    pub(crate) fn new(key: usize, hold: Hold) -> Held {
        HELD.with(|held| held.borrow_mut().push((key, hold)));
        Held { key, hold }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let this = (self.key, self.hold);
        // `try_with`: a guard dropped while the thread's locals are torn down.
        let _ = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            if let Some(at) = held.iter().rposition(|entry| *entry == this) {
                held.remove(at);
            }
        });
    }
}

/// What this thread holds on store `key`, if anything.
pub(crate) fn held(key: usize) -> Option<Hold> {
    HELD.try_with(|held| {
        held.borrow()
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, hold)| *hold)
    })
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_are_per_store_and_end_with_their_guard() {
        assert_eq!(held(1), None);
        let read = Held::new(1, Hold::Read);
        let tx = Held::new(2, Hold::Transaction);
        assert_eq!(held(1), Some(Hold::Read));
        assert_eq!(held(2), Some(Hold::Transaction));
        drop(read);
        assert_eq!(held(1), None);
        drop(tx);
        assert_eq!(held(2), None);
    }

    #[test]
    fn another_thread_holds_nothing() {
        let _read = Held::new(7, Hold::Read);
        std::thread::spawn(|| assert_eq!(held(7), None))
            .join()
            .expect("thread");
    }
}
