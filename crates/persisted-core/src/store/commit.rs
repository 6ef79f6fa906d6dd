//! Writes: the writer lock and the backend's ordering, `update`,
//! transactions, `Mode::Batch`, and a mutation made durable then applied to
//! memory (memory never keeps a change the backend did not take).

use super::{Store, Writer, WriterGuard};
use crate::change::FieldOf;
use crate::engine::backend::{Intent, Outcome, Proposal};
use crate::error::Result;
use crate::mutation::{Mutation, Replace};
use crate::notify::{Notes, Origin};
use crate::options::Mode;
use crate::reentry::{self, Held, Hold};
use crate::schema::Persisted;
use crate::transaction::Transaction;
use std::sync::atomic::Ordering;

impl<T: Persisted> Store<T> {
    /// Runs `f` on a copy of the state and commits the fields it changed as
    /// one atomic commit; returns what `f` returns. If `f` panics or the
    /// commit fails, the state is unchanged.
    ///
    /// Costs O(state): the state is cloned for `f`, compared field by field
    /// afterwards (with `PartialEq` where the type has it, else by
    /// encoding), and each changed field is recorded whole. For a change
    /// that costs what it changes, use the generated setters and collection
    /// operations (`set_<f>`, `push_<f>`, `insert_<f>`, ...), alone or in a
    /// [`Transaction`]. A call that changes nothing writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) (memory unchanged),
    /// [`Error::Poisoned`](crate::Error::Poisoned),
    /// [`Error::Encode`](crate::Error::Encode),
    /// [`Error::Reentrant`](crate::Error::Reentrant) (called from inside a
    /// closure or while this thread holds a guard on the store).
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let writer = self.closure_writer()?;
        let mut next = self.inner.state.read().clone();
        let out = {
            let _held = Held::new(self.key(), Hold::Update);
            f(&mut next)
        };
        let changed = self.changed_fields(&writer, &self.inner.state.read(), &next)?;
        if !changed.is_empty() {
            self.persist(writer, Replace { next, changed })?;
        }
        Ok(out)
    }

    /// Starts a transaction: an exclusive, all-or-nothing change. Other
    /// writers wait until it ends; readers see the state before it.
    /// [`Transaction::commit`] writes it as one record; dropping it without
    /// committing discards it. See [`Transaction`] for what each way of
    /// changing it costs.
    ///
    /// # Panics
    ///
    /// When this thread already holds a guard, an `update` closure or a
    /// transaction on this store (it would wait on itself forever); the
    /// message says what to do instead. [`transaction`](Store::transaction)
    /// returns [`Error::Reentrant`](crate::Error::Reentrant) instead.
    ///
    /// In shared mode it first takes the store's writer lock and catches
    /// up: other processes wait until it ends (keep it short). If the lock
    /// cannot be had within the lock timeout, the transaction shows the
    /// last state caught up with and its [`commit`](Transaction::commit)
    /// returns [`Error::LockTimeout`](crate::Error::LockTimeout), writing
    /// nothing; [`transaction`](Store::transaction) returns the error
    /// without running its closure.
    pub fn begin(&self) -> Transaction<'_, T> {
        if let Some(hold) = reentry::held(self.key()) {
            panic!("{}", self.reentrant(hold));
        }
        let (writer, failed) = match self.lock_writer(true) {
            Ok(writer) => (writer, None),
            Err(e) => (WriterGuard::new(self.inner.writer.lock()), Some(e)),
        };
        Transaction::new(
            self,
            writer,
            self.inner.state.read_recursive(),
            self.key(),
            failed,
        )
    }

    /// Runs `f` in a transaction: `Ok` commits it, `Err` (or a panic) rolls
    /// it back. Returns what `f` returns.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the commit's;
    /// [`Error::Reentrant`](crate::Error::Reentrant) when this thread
    /// already holds a guard, a closure or a transaction on this store.
    pub fn transaction<R, E>(
        &self,
        f: impl FnOnce(&mut Transaction<'_, T>) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E>
    where
        E: From<crate::Error>,
    {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold).into());
        }
        let mut tx = self.begin();
        if let Some(e) = tx.take_failure() {
            return Err(e.into());
        }
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// [`Mode::Batch`]: writes every change made since the last commit as
    /// one atomic record, each generated operation as itself (a `push_` as
    /// the element) and every field changed otherwise whole. In
    /// [`Mode::WriteThrough`] there is never anything pending and this
    /// returns `Ok(())`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) (the changes stay pending),
    /// [`Error::Poisoned`](crate::Error::Poisoned),
    /// [`Error::Reentrant`](crate::Error::Reentrant); on Redis,
    /// [`Error::Conflict`](crate::Error::Conflict) when another process
    /// committed since the batch began (it stays pending).
    pub fn commit(&self) -> Result<()> {
        let mut guard = self.writer()?;
        let writer = &mut *guard;
        if writer.batch.is_empty() {
            return Ok(());
        }
        let state = self.inner.state.read();
        let changes = writer.batch.changes(&*state);
        let proposal = match writer.backend.caps().whole_state {
            true => Proposal::Whole(&*state),
            false => Proposal::Batch(&changes),
        };
        let result = writer.backend.commit(&self.inner.state, proposal);
        if result.is_ok() {
            writer.notes.note_changes(Origin::ThisProcess, &changes);
        }
        drop(state);
        if let Err(failure) = result {
            return Err(writer.fail(failure));
        }
        writer.batch.clear();
        self.maybe_compact(writer);
        Ok(())
    }

    /// The writer lock, unless this thread holds something a write would
    /// wait for, or the store is poisoned.
    pub(crate) fn writer(&self) -> Result<WriterGuard<'_, T>> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        self.lock_writer(false)
    }

    /// The writer for a closure (`update`, `update_<f>`): as
    /// [`writer`](Store::writer), with what the backend needs for a closure
    /// to run once on the current state (the Redis lease).
    pub(crate) fn closure_writer(&self) -> Result<WriterGuard<'_, T>> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        self.lock_writer(true)
    }

    /// The writer mutex and the backend's ordering of this write against
    /// every other writer (shared mode's writer lock and a catch-up; the
    /// snapshot engine's check for an edit by hand; the Redis lease for a
    /// closure).
    pub(crate) fn lock_writer(&self, closure: bool) -> Result<WriterGuard<'_, T>> {
        let mut guard = WriterGuard::arriving(&self.inner.writer, &self.inner.group);
        guard.check(&self.inner.path)?;
        let contended = guard.contended;
        let writer = &mut *guard;
        let intent = Intent {
            closure,
            batch: &writer.batch,
            contended,
        };
        let begun = writer.backend.begin_write(&self.inner.state, intent);
        match begun {
            Ok(false) => {}
            Ok(true) => self.files_replaced(writer, Ok(true))?,
            Err(failure) => return Err(writer.fail(failure)),
        }
        Ok(guard)
    }

    /// Records `m` (write-through) or adds it to the batch, then applies it
    /// to memory. On failure memory is unchanged. Takes the writer lock so
    /// a `Durability::Sync` commit can release it while it waits for its
    /// group's fsync.
    pub(crate) fn persist<M: Mutation<T>>(
        &self,
        mut guard: WriterGuard<'_, T>,
        m: M,
    ) -> Result<M::Output> {
        let writer = &mut *guard;
        writer.check(&self.inner.path)?;
        if self.inner.mode == Mode::Batch {
            let mut state = self.inner.state.write();
            self.inner.batch_edits.fetch_add(1, Ordering::Release);
            return Ok(m.apply(&mut state, Some(&mut writer.batch)).0);
        }
        if writer.backend.caps().whole_state {
            let mut next = self.inner.state.read().clone();
            let mut notes = Notes::default();
            notes.note_changes(Origin::ThisProcess, &m);
            let (out, _) = m.apply(&mut next, None);
            let committed = writer
                .backend
                .commit(&self.inner.state, Proposal::Whole(&next));
            if let Err(failure) = committed {
                return Err(writer.fail(failure));
            }
            *self.inner.state.write() = next;
            writer.notes.absorb(notes);
            return Ok(out);
        }
        let committed = writer
            .backend
            .commit(&self.inner.state, Proposal::Changes(&m));
        let outcome = match committed {
            Ok(outcome) => outcome,
            Err(failure) => return Err(writer.fail(failure)),
        };
        // Subscribers hear of it once durable: a pending commit after its
        // group's sync (which may fail and undo it).
        let mut notes = Notes::default();
        match outcome {
            Outcome::Durable => writer.notes.note_changes(Origin::ThisProcess, &m),
            Outcome::Pending { .. } => notes.note_changes(Origin::ThisProcess, &m),
        }
        let (out, undo) = m.apply(&mut self.inner.state.write(), None);
        let Outcome::Pending { len } = outcome else {
            self.maybe_compact(writer);
            return Ok(out);
        };
        let pos = self.inner.group.wrote(len);
        if std::mem::take(&mut writer.arrived) {
            self.inner.group.depart();
        }
        let synced = self.inner.group.synced();
        while writer.pending.front().is_some_and(|(p, _)| *p <= synced) {
            writer.pending.pop_front();
        }
        writer.pending.push_back((pos, undo));
        self.maybe_compact(writer);
        // Other writers append while this one waits: that is the group.
        drop(guard);
        self.wait_durable(pos)?;
        // Told once durable (a failed group sync undoes it).
        self.inner.hub.publish(&notes);
        Ok(out)
    }

    /// The fields in which `new` differs from `old`.
    pub(crate) fn changed_fields(
        &self,
        writer: &Writer<T>,
        old: &T,
        new: &T,
    ) -> Result<Vec<usize>> {
        let mut changed = Vec::new();
        for index in 0..T::__FIELDS.len() {
            let differs = match old.__field_eq(new, index) {
                Some(equal) => !equal,
                None => {
                    let path = &self.inner.path;
                    writer.codec.encode_value(path, &FieldOf(old, index))?
                        != writer.codec.encode_value(path, &FieldOf(new, index))?
                }
            };
            if differs {
                changed.push(index);
            }
        }
        Ok(changed)
    }
}
