//! `Transaction`: an exclusive, all-or-nothing change.

use std::fmt;
use std::ops::{Deref, DerefMut};

use parking_lot::MutexGuard;

use crate::error::Result;
use crate::mutation::Replace;
use crate::schema::Persisted;
use crate::store::{Store, Writer};

/// An open transaction, from [`Store::begin`] or [`Store::transaction`].
///
/// It derefs (mutably) to a working copy of the state. [`commit`](Self::commit)
/// writes every field it changed as one atomic record; dropping it without
/// committing — including by a panic or an early `?` — rolls it back.
/// While it is open, other writers wait; readers see the state before it.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "json")] {
/// # use persisted_state_core::Store;
/// # #[derive(serde::Serialize, serde::Deserialize, Default, Clone, Debug, PartialEq)]
/// # struct Account { a: i64, b: i64 }
/// # persisted_state_core::__impl_persisted_for_tests!(Account { a: i64, b: i64 });
/// # let dir = tempfile::tempdir()?;
/// let store: Store<Account> = Store::open(dir.path().join("account.json"))?;
/// let mut tx = store.begin();
/// tx.a -= 10;
/// tx.b += 10;
/// tx.commit()?; // both fields, one record
/// assert_eq!((store.read().a, store.read().b), (-10, 10));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a transaction is rolled back unless `commit()` is called"]
pub struct Transaction<'a, T: Persisted> {
    store: &'a Store<T>,
    writer: MutexGuard<'a, Writer<T>>,
    working: T,
}

impl<'a, T: Persisted> Transaction<'a, T> {
    pub(crate) fn new(store: &'a Store<T>, writer: MutexGuard<'a, Writer<T>>, working: T) -> Self {
        Transaction {
            store,
            writer,
            working,
        }
    }

    /// Commits every field the transaction changed as one atomic record
    /// (in [`Mode::Batch`](crate::Mode::Batch): applies them to memory, to
    /// be written by the next [`Store::commit`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) (nothing applied),
    /// [`Error::Poisoned`](crate::Error::Poisoned), [`Error::Encode`](crate::Error::Encode).
    pub fn commit(self) -> Result<()> {
        let Transaction {
            store,
            writer,
            working,
        } = self;
        let changed = store.changed_fields(&writer, &store.read(), &working)?;
        if changed.is_empty() {
            return writer.check(store.path());
        }
        store.persist(
            writer,
            Replace {
                next: working,
                changed,
            },
        )
    }

    /// Discards the transaction's changes (the same as dropping it).
    pub fn rollback(self) {}
}

impl<T: Persisted> Deref for Transaction<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.working
    }
}

impl<T: Persisted> DerefMut for Transaction<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.working
    }
}

impl<T: Persisted + fmt::Debug> fmt::Debug for Transaction<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("path", &self.store.path())
            .field("working", &self.working)
            .finish()
    }
}
