//! `Transaction`: an exclusive, all-or-nothing change.
//!
//! A transaction keeps the generated operations it is given (`set_`,
//! `push_`, `insert_`, ...) and commits them as one record of just those
//! operations. It needs a working copy of the state only when something
//! reads the state through it after a change, or changes it through
//! `DerefMut`: until then, reads go to the state itself (which no other
//! writer can change while the transaction holds the writer lock) and
//! operations wait in a queue, so a transaction of a few operations on a
//! large state costs what it changes.

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use parking_lot::RwLockReadGuard;

use crate::changeset::ChangeSet;
use crate::collection::{DequeField, MapField, MapLookup, SeqField, SetField, SetLookup};
use crate::error::{Error, Result};
use crate::mutation::{self, Discard, Mutation, Queued, QueuedList, Replace, SetValue, Swap};
use crate::reentry::{Held, Hold};
use crate::schema::{Field, Persisted};
use crate::store::Store;
use crate::store::WriterGuard;

/// An open transaction, from [`Store::begin`] or [`Store::transaction`].
///
/// [`commit`](Self::commit) writes everything it changed as one atomic
/// record; dropping it without committing — including by a panic or an
/// early `?` — rolls it back. While it is open, other writers wait and
/// readers see the state before it. A write to the store from the thread
/// that has it open returns [`Error::Reentrant`](crate::Error::Reentrant):
/// make the change through the transaction.
///
/// # What a change costs
///
/// * The generated setters and collection operations (`tx.set_<f>(..)`,
///   `tx.push_<f>(..)`, `tx.insert_<f>(..)`, `tx.pop_front_<f>()`, ...) are
///   recorded as operations: the record holds just the value or element,
///   whatever the size of the state. Prefer them.
/// * Reading through the transaction (`tx.last_id`) is free until the
///   transaction has changed something; after a change, the first read
///   makes a working copy of the state once (O(state) in memory; the record
///   still holds only the operations). An operation that returns a value
///   (`pop_`, `pop_front_`, `insert_`, `remove_`) reads it from the state
///   itself unless this transaction already changed that field (then it
///   makes the working copy too).
/// * Changing the state through `DerefMut` (`tx.last_id += 1`) makes the
///   working copy too, and then the commit compares every field and records
///   each changed field whole: O(state) to compare, O(field) on disk.
///
/// # Examples
///
/// ```
/// use persisted_state::{Persisted, Store};
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
/// struct Job {
///     last_id: u64,
///     done: Vec<String>,
/// }
///
/// # let dir = tempfile::tempdir()?;
/// let store: Store<Job> = Store::open(dir.path().join("job.json"))?;
/// let mut tx = store.begin();
/// tx.push_done("item-1".into()); // recorded as the element, not the whole Vec
/// tx.set_last_id(1);
/// tx.commit()?;                  // both, as one record, or neither
/// assert_eq!(store.last_id(), 1);
///
/// store.transaction(|tx| {
///     tx.last_id += 1;           // DerefMut: the changed field is recorded whole
///     Ok::<_, persisted_state::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a transaction is rolled back unless `commit()` is called"]
pub struct Transaction<'a, T: Persisted> {
    store: &'a Store<T>,
    writer: WriterGuard<'a, T>,
    /// Why the transaction could not begin (shared mode: the lock timed
    /// out, or catching up failed); `commit` returns it.
    failed: Option<Error>,
    /// The state as it was at `begin`; no writer can change it meanwhile.
    base: RwLockReadGuard<'a, T>,
    /// Operations made before a working copy was needed, in order.
    queued: RefCell<Vec<Box<dyn Queued<T>>>>,
    /// The fields the queued operations change, sorted.
    queued_fields: Vec<usize>,
    /// The working copy and the changes that made it from `base`.
    working: OnceCell<(T, ChangeSet)>,
    /// Changed through `DerefMut`: the commit compares fields.
    touched: bool,
    _held: Held,
}

impl<'a, T: Persisted> Transaction<'a, T> {
    pub(crate) fn new(
        store: &'a Store<T>,
        writer: WriterGuard<'a, T>,
        base: RwLockReadGuard<'a, T>,
        key: usize,
        failed: Option<Error>,
    ) -> Self {
        Transaction {
            store,
            writer,
            failed,
            base,
            queued: RefCell::new(Vec::new()),
            queued_fields: Vec::new(),
            working: OnceCell::new(),
            touched: false,
            _held: Held::new(key, Hold::Transaction),
        }
    }

    /// Commits everything the transaction changed as one atomic record (in
    /// [`Mode::Batch`](crate::Mode::Batch): applies it to memory, to be
    /// written by the next [`Store::commit`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) (nothing applied),
    /// [`Error::Poisoned`](crate::Error::Poisoned), [`Error::Encode`](crate::Error::Encode);
    /// in shared mode, why the transaction could not begin
    /// ([`Error::LockTimeout`](crate::Error::LockTimeout), ...).
    pub fn commit(self) -> Result<()> {
        let Transaction {
            store,
            writer,
            failed,
            base,
            queued,
            working,
            touched,
            ..
        } = self;
        let path = Store::file_path(store);
        if let Some(e) = failed {
            return Err(e);
        }
        match working.into_inner() {
            None => {
                let queued = QueuedList(queued.into_inner());
                drop(base);
                if queued.0.is_empty() {
                    return writer.check(path);
                }
                store.persist(writer, queued)
            }
            Some((next, changes)) if !touched => {
                drop(base);
                if changes.is_empty() {
                    return writer.check(path);
                }
                store.persist(writer, Swap { next, changes })
            }
            Some((next, _)) => {
                let changed = store.changed_fields(&writer, &base, &next)?;
                drop(base);
                if changed.is_empty() {
                    return writer.check(path);
                }
                store.persist(writer, Replace { next, changed })
            }
        }
    }

    /// Discards the transaction's changes (the same as dropping it).
    pub fn rollback(self) {}

    /// Why the transaction could not begin, if it could not.
    pub(crate) fn take_failure(&mut self) -> Option<Error> {
        self.failed.take()
    }

    /// The working copy, made on first need from the state and the queued
    /// operations.
    fn working(&self) -> &(T, ChangeSet) {
        self.working.get_or_init(|| {
            let mut next = self.base.clone();
            let mut changes = ChangeSet::default();
            for m in self.queued.borrow_mut().drain(..) {
                drop(m.apply_boxed(&mut next, Some(&mut changes)));
            }
            (next, changes)
        })
    }

    fn working_mut(&mut self) -> &mut (T, ChangeSet) {
        self.working();
        match self.working.get_mut() {
            Some(working) => working,
            None => unreachable!("the working copy was made just above"),
        }
    }

    /// Applies an operation that returns nothing: queued until a working
    /// copy exists, then applied to it.
    fn queue<M: Mutation<T, Output = ()> + Send + 'static>(&mut self, m: M) {
        match self.working.get_mut() {
            Some((next, changes)) => drop(m.apply(next, Some(changes))),
            None => {
                let fields = &mut self.queued_fields;
                m.each(&mut |_, index, _| {
                    if let Err(at) = fields.binary_search(&index) {
                        fields.insert(at, index);
                    }
                });
                self.queued.get_mut().push(Box::new(m));
            }
        }
    }

    /// Field `F` as the transaction sees it, when that can be read without
    /// a working copy: no working copy yet and no queued operation on `F`.
    fn untouched<F: Field<T>>(&self) -> Option<&F::Value> {
        let clean =
            self.working.get().is_none() && self.queued_fields.binary_search(&F::INDEX).is_err();
        clean.then(|| F::get(&self.base))
    }

    /// Applies an operation whose result depends on the state: when field
    /// `F` is untouched, `peek` reads the result from it and the operation
    /// is queued (no copy of the state); otherwise it is applied to the
    /// working copy.
    fn apply<F, M>(&mut self, peek: impl FnOnce(&F::Value) -> M::Output, m: M) -> M::Output
    where
        F: Field<T>,
        M: Mutation<T> + Send + 'static,
    {
        if let Some(field) = self.untouched::<F>() {
            let out = peek(field);
            self.queue(Discard(m));
            return out;
        }
        let (next, changes) = self.working_mut();
        m.apply(next, Some(changes)).0
    }

    /// Field `F` as the transaction sees it now.
    fn field<F: Field<T>>(&mut self) -> &F::Value {
        if self.untouched::<F>().is_some() {
            return F::get(&self.base);
        }
        F::get(&self.working_mut().0)
    }
}

/// The methods `#[derive(Persisted)]` generates call these.
#[doc(hidden)]
impl<T: Persisted> Transaction<'_, T> {
    pub fn __set<F: Field<T>>(&mut self, value: F::Value) {
        self.queue(SetValue::<T, F>(value, PhantomData));
    }

    pub fn __push<F: Field<T>>(&mut self, value: <F::Value as SeqField>::Elem)
    where
        F::Value: SeqField,
    {
        self.queue(mutation::push::<T, F>(value));
    }

    pub fn __push_front<F: Field<T>>(&mut self, value: <F::Value as SeqField>::Elem)
    where
        F::Value: DequeField,
    {
        self.queue(mutation::push_front::<T, F>(value));
    }

    pub fn __extend<F: Field<T>, I>(&mut self, values: I)
    where
        F::Value: SeqField,
        I: IntoIterator<Item = <F::Value as SeqField>::Elem>,
    {
        let values: Vec<_> = values.into_iter().collect();
        if !values.is_empty() {
            self.queue(mutation::extend::<T, F>(values));
        }
    }

    pub fn __clear<F: Field<T>>(&mut self)
    where
        F::Value: SeqField,
    {
        self.queue(mutation::clear::<T, F>());
    }

    pub fn __pop<F: Field<T>>(&mut self) -> Option<<F::Value as SeqField>::Elem>
    where
        F::Value: SeqField,
    {
        if self.field::<F>().is_empty() {
            return None;
        }
        self.apply::<F, _>(|v| v.last().cloned(), mutation::pop::<T, F>())
    }

    pub fn __pop_front<F: Field<T>>(&mut self) -> Option<<F::Value as SeqField>::Elem>
    where
        F::Value: DequeField,
    {
        if self.field::<F>().is_empty() {
            return None;
        }
        self.apply::<F, _>(|v| v.first().cloned(), mutation::pop_front::<T, F>())
    }

    pub fn __map_insert<F: Field<T>>(
        &mut self,
        key: <F::Value as MapField>::Key,
        value: <F::Value as MapField>::Value,
    ) -> Option<<F::Value as MapField>::Value>
    where
        F::Value: MapField,
    {
        let old = self.field::<F>().get(&key).cloned();
        self.apply::<F, _>(|_| old, mutation::map_insert::<T, F>(key, value))
    }

    pub fn __map_remove<F: Field<T>, Q: ?Sized>(
        &mut self,
        key: &Q,
    ) -> Option<<F::Value as MapField>::Value>
    where
        F::Value: MapLookup<Q>,
    {
        let field = self.field::<F>();
        let key = field.find_key(key)?.clone();
        let old = field.get(&key).cloned();
        self.apply::<F, _>(|_| old, mutation::map_remove::<T, F>(key))
    }

    pub fn __set_insert<F: Field<T>>(&mut self, value: <F::Value as SetField>::Elem) -> bool
    where
        F::Value: SetField,
    {
        if self.field::<F>().contains(&value) {
            return false;
        }
        self.apply::<F, _>(|_| true, mutation::set_insert::<T, F>(value))
    }

    pub fn __set_remove<F: Field<T>, Q: ?Sized>(&mut self, value: &Q) -> bool
    where
        F::Value: SetLookup<Q>,
    {
        match self.field::<F>().find(value).cloned() {
            Some(value) => self.apply::<F, _>(|_| true, mutation::set_remove::<T, F>(value)),
            None => false,
        }
    }
}

impl<T: Persisted> Deref for Transaction<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        if self.working.get().is_none() && self.queued.borrow().is_empty() {
            return &self.base;
        }
        &self.working().0
    }
}

impl<T: Persisted> DerefMut for Transaction<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.touched = true;
        &mut self.working_mut().0
    }
}

impl<T: Persisted + fmt::Debug> fmt::Debug for Transaction<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("path", &Store::file_path(self.store))
            .field("working", &**self)
            .finish()
    }
}
