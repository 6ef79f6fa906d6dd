//! `Store<T>`: a shared handle to one persisted struct.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use crate::change::FieldOf;
use crate::checksum::fingerprint;
use crate::collection::{MapField, SeqField, SetField};
use crate::engine::journal::group::GroupSync;
use crate::engine::journal::{self, journal_path, Journal};
use crate::engine::snapshot::SnapshotEngine;
use crate::engine::Failure;
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, remove_leftovers, sibling, sync_dir, write_atomic};
use crate::file::lock::LockFile;
use crate::file::vfs::{RealFs, Vfs};
use crate::format::{Codec, Extras};
use crate::mutation::{self, CurrentFields, Mutation, Replace, SetValue, Undo};
use crate::options::{Durability, Engine, Mode, OpenOptions};
use crate::schema::{Field, Persisted};
use crate::transaction::Transaction;

/// A persisted struct: a shared, cheap-to-clone handle to a `T` that lives
/// in a file.
///
/// Reads come from memory. In [`Mode::WriteThrough`] (the default) every
/// write — a generated setter, [`update`](Store::update), a
/// [`Transaction`] — is one atomic commit, on disk when the call returns;
/// if it fails, memory keeps none of it. Clones share the state; the file
/// lock is released when the last clone is dropped.
///
/// Writes are serialized by one writer lock: do not call a write method
/// from inside an `update` closure, or while this thread holds a
/// [`read`](Store::read) guard or an open [`Transaction`] (it would wait on
/// itself).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "json")] {
/// use persisted_state_core::Store;
/// # #[derive(serde::Serialize, serde::Deserialize, Default, Clone, Debug, PartialEq)]
/// # struct Counter { n: u64 }
/// # persisted_state_core::__impl_persisted_for_tests!(Counter { n: u64 });
/// # let dir = tempfile::tempdir()?;
/// let store: Store<Counter> = Store::open(dir.path().join("counter.json"))?;
/// let n = store.update(|c| { c.n += 1; c.n })?;
/// assert_eq!(store.read().n, n);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Store<T: Persisted> {
    pub(crate) inner: Arc<Inner<T>>,
}

pub(crate) struct Inner<T: Persisted> {
    path: PathBuf,
    mode: Mode,
    state: RwLock<T>,
    writer: Mutex<Writer<T>>,
    /// Group commit for `Durability::Sync` (journal engine).
    group: GroupSync,
}

/// Everything a write needs, behind the writer lock.
pub(crate) struct Writer<T> {
    backend: Backend,
    codec: Codec,
    extras: Extras,
    /// Fields changed since the last commit (`Mode::Batch`), sorted.
    dirty: Vec<usize>,
    poisoned: bool,
    snapshot_len: u64,
    journal_limit: u64,
    /// Group commit: commits applied to memory whose record is written but
    /// not yet known durable, with their end position and undo.
    pending: VecDeque<(u64, Undo<T>)>,
    _lock: LockFile,
}

enum Backend {
    Journal(Journal),
    Snapshot(SnapshotEngine),
}

impl<T> Writer<T> {
    /// Latches the poison flag when a failure leaves disk and memory unsure.
    fn fail(&mut self, failure: Failure) -> Error {
        if failure.poison && !self.poisoned {
            self.poisoned = true;
            log::error!("store poisoned until reopened: {}", failure.error);
        }
        failure.error
    }

    /// [`Error::Poisoned`] once an I/O failure has latched the store.
    pub(crate) fn check(&self, path: &Path) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    fn mark_dirty(&mut self, index: usize) {
        if let Err(at) = self.dirty.binary_search(&index) {
            self.dirty.insert(at, index);
        }
    }
}

/// A shared read guard; derefs to `&T`. Writers wait while it is held.
pub struct ReadGuard<'a, T>(RwLockReadGuard<'a, T>);

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for ReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Persisted> Clone for Store<T> {
    fn clone(&self) -> Self {
        Store {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Persisted> fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl<T: Persisted> Store<T> {
    /// Opens the store at `path` with the default options; a missing file
    /// is created from `T::default()`. The format comes from the extension.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if another process or handle has it open,
    /// [`Error::Parse`]/[`Error::Corrupt`] for a damaged file (left as it
    /// is), [`Error::UnknownFormat`], [`Error::FormatNotEnabled`],
    /// [`Error::Io`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store<T>> {
        Store::open_with(path.as_ref(), OpenOptions::default(), None)
    }

    /// Like [`open`](Store::open), but a missing file starts from `initial`.
    ///
    /// # Errors
    ///
    /// See [`open`](Store::open).
    pub fn open_or(path: impl AsRef<Path>, initial: T) -> Result<Store<T>> {
        Store::open_with(path.as_ref(), OpenOptions::default(), Some(initial))
    }

    /// A builder to choose the format, durability, mode and engine.
    pub fn options() -> OpenOptions<T> {
        OpenOptions::default()
    }

    pub(crate) fn open_with(
        path: &Path,
        options: OpenOptions<T>,
        initial: Option<T>,
    ) -> Result<Store<T>> {
        Store::open_on(RealFs::shared(), path, options, initial)
    }

    /// Opens the store with every file operation going through `vfs`.
    pub(crate) fn open_on(
        vfs: Arc<dyn Vfs>,
        path: &Path,
        options: OpenOptions<T>,
        initial: Option<T>,
    ) -> Result<Store<T>> {
        let codec = Codec::new(options.resolve_format(path)?, path)?;
        let lock = LockFile::acquire(&*vfs, &sibling(path, ".lock"), path)?;
        remove_leftovers(&*vfs, path)?;
        let journal_file = journal_path(path);
        remove_leftovers(&*vfs, &journal_file)?;

        let (mut state, extras, base, snapshot_len) = match vfs.read(path).context("read", path)? {
            Some(bytes) => {
                let (state, extras) = codec.decode_snapshot::<T>(path, &bytes)?;
                (state, extras, fingerprint(&bytes), bytes.len())
            }
            None => {
                let state = initial.unwrap_or_default();
                let mut bytes = Vec::new();
                codec.encode_snapshot(path, &state, &Extras::None, &mut bytes)?;
                write_atomic(&vfs, path, &bytes, true)?;
                (state, Extras::None, fingerprint(&bytes), bytes.len())
            }
        };

        let backend = match options.engine {
            Engine::Journal => Backend::Journal(journal::open(
                &vfs,
                path,
                codec,
                options.durability,
                &mut state,
                base,
            )?),
            Engine::Snapshot => {
                if vfs
                    .read(&journal_file)
                    .context("read", &journal_file)?
                    .is_some()
                {
                    // Left by the journal engine: fold it in, then remove it.
                    let journal =
                        journal::open(&vfs, path, codec, options.durability, &mut state, base)?;
                    if journal.has_records() {
                        let mut bytes = Vec::new();
                        codec.encode_snapshot(path, &state, &extras, &mut bytes)?;
                        write_atomic(&vfs, path, &bytes, true)?;
                    }
                    drop(journal);
                    vfs.remove(&journal_file).context("remove", &journal_file)?;
                    sync_dir(&*vfs, &parent_dir(path))?;
                }
                Backend::Snapshot(SnapshotEngine::new(&vfs, path, codec, options.durability))
            }
        };

        let store = Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                mode: options.mode,
                state: RwLock::new(state),
                writer: Mutex::new(Writer {
                    backend,
                    codec,
                    extras,
                    dirty: Vec::new(),
                    poisoned: false,
                    snapshot_len: snapshot_len as u64,
                    journal_limit: options.journal_limit,
                    pending: VecDeque::new(),
                    _lock: lock,
                }),
                group: GroupSync::default(),
            }),
        };
        if let Backend::Journal(journal) = &store.inner.writer.lock().backend {
            if journal.durability() == Durability::Sync {
                store.inner.group.set_handle(journal.sync_handle()?);
            }
        }
        // A journal that grew past the limit before a crash is folded now.
        store.maybe_compact(&mut store.inner.writer.lock());
        Ok(store)
    }

    /// The snapshot file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// True after an I/O failure that left disk and memory possibly
    /// disagreeing; every write then returns [`Error::Poisoned`] until the
    /// store is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.inner.writer.lock().poisoned
    }

    /// A shared read guard on the state. Hold it briefly: writers wait for it.
    pub fn read(&self) -> ReadGuard<'_, T> {
        ReadGuard(self.inner.state.read())
    }

    /// A clone of the whole state.
    pub fn get(&self) -> T {
        self.inner.state.read().clone()
    }

    /// Runs `f` on a copy of the state and commits the fields it changed as
    /// one atomic commit; returns what `f` returns. If `f` panics or the
    /// commit fails, the state is unchanged.
    ///
    /// Fields are compared with `PartialEq` where their type has it, else by
    /// their encoding; a call that changes nothing writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (memory unchanged), [`Error::Poisoned`], [`Error::Encode`].
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let writer = self.writer()?;
        let mut next = self.inner.state.read().clone();
        let out = f(&mut next);
        let changed = self.changed_fields(&writer, &self.inner.state.read(), &next)?;
        if !changed.is_empty() {
            self.persist(writer, Replace { next, changed })?;
        }
        Ok(out)
    }

    /// Starts a transaction: an exclusive, all-or-nothing change. It derefs
    /// to a working copy of the state; [`Transaction::commit`] writes the
    /// fields it changed as one record, and dropping it without committing
    /// discards them. Other writers wait until it ends; readers see the
    /// state before it.
    pub fn begin(&self) -> Transaction<'_, T> {
        let writer = self.inner.writer.lock();
        let working = self.inner.state.read().clone();
        Transaction::new(self, writer, working)
    }

    /// Runs `f` in a transaction: `Ok` commits it, `Err` (or a panic) rolls
    /// it back. Returns what `f` returns.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the commit's.
    pub fn transaction<R, E>(
        &self,
        f: impl FnOnce(&mut Transaction<'_, T>) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E>
    where
        E: From<Error>,
    {
        let mut tx = self.begin();
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// [`Mode::Batch`]: writes every field changed since the last commit as
    /// one atomic record. In [`Mode::WriteThrough`] there is never anything
    /// pending and this returns `Ok(())`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (the changes stay pending), [`Error::Poisoned`].
    pub fn commit(&self) -> Result<()> {
        let mut guard = self.writer()?;
        let writer = &mut *guard;
        if writer.dirty.is_empty() {
            return Ok(());
        }
        let state = self.inner.state.read();
        let result = match &mut writer.backend {
            Backend::Journal(journal) => {
                let sync = journal.durability() == Durability::Sync;
                let changes = CurrentFields {
                    state: &*state,
                    fields: &writer.dirty,
                };
                journal.append_commit(T::__FIELDS, &changes, sync).map(drop)
            }
            Backend::Snapshot(engine) => engine.write(&*state, &writer.extras),
        };
        drop(state);
        if let Err(failure) = result {
            return Err(writer.fail(failure));
        }
        writer.dirty.clear();
        self.maybe_compact(writer);
        Ok(())
    }

    /// Folds the journal into the snapshot now (fully synced). Nothing to do
    /// for [`Engine::Snapshot`].
    ///
    /// # Errors
    ///
    /// [`Error::Uncommitted`] in batch mode with pending changes,
    /// [`Error::Poisoned`], [`Error::Io`].
    pub fn compact(&self) -> Result<()> {
        let mut guard = self.writer()?;
        if !guard.dirty.is_empty() {
            return Err(Error::Uncommitted {
                path: self.inner.path.clone(),
            });
        }
        self.fold(&mut guard)
    }

    /// Compacts and drops this handle; the file lock is released once every
    /// clone is gone. Changes not committed in [`Mode::Batch`] are discarded.
    ///
    /// # Errors
    ///
    /// The compaction's error; the handle is dropped all the same.
    pub fn close(self) -> Result<()> {
        let mut guard = self.inner.writer.lock();
        guard.check(&self.inner.path)?;
        if !guard.dirty.is_empty() {
            log::warn!(
                "`{}`: discarding {} uncommitted field change(s) at close",
                self.inner.path.display(),
                guard.dirty.len()
            );
            // Memory holds uncommitted changes, so it is no snapshot to
            // write; the journal already holds every commit.
            return Ok(());
        }
        self.fold(&mut guard)
    }

    /// Compacts when the journal has records.
    fn fold(&self, writer: &mut Writer<T>) -> Result<()> {
        let Backend::Journal(journal) = &mut writer.backend else {
            return Ok(());
        };
        if !journal.has_records() {
            return Ok(());
        }
        let result = journal.compact(&*self.inner.state.read(), &writer.extras);
        match result {
            Ok(len) => {
                writer.snapshot_len = len;
                // The intent record's sync made every earlier record durable.
                writer.pending.clear();
                self.inner.group.all_synced();
                if journal.durability() == Durability::Sync {
                    match journal.sync_handle() {
                        Ok(handle) => self.inner.group.set_handle(handle),
                        Err(e) => {
                            writer.poisoned = true;
                            return Err(e);
                        }
                    }
                }
                Ok(())
            }
            Err(failure) => {
                let poison = failure.poison;
                let error = writer.fail(failure);
                if poison {
                    self.undo_pending(writer, &io::Error::other(error.to_string()));
                }
                Err(error)
            }
        }
    }

    /// Compacts when the journal outgrew its limit; a failure is logged (the
    /// commit before it is durable already) and poisons if it must.
    fn maybe_compact(&self, writer: &mut Writer<T>) {
        let Backend::Journal(journal) = &writer.backend else {
            return;
        };
        let limit = writer
            .journal_limit
            .max(writer.snapshot_len.saturating_mul(2));
        if journal.len() > limit && writer.dirty.is_empty() && !writer.poisoned {
            if let Err(e) = self.fold(writer) {
                log::warn!("compaction of `{}` failed: {e}", self.inner.path.display());
            }
        }
    }

    fn writer(&self) -> Result<MutexGuard<'_, Writer<T>>> {
        let writer = self.inner.writer.lock();
        writer.check(&self.inner.path)?;
        Ok(writer)
    }

    /// Records `m` (write-through) or marks its fields dirty (batch), then
    /// applies it to memory. On failure memory is unchanged. Takes the
    /// writer lock so a `Durability::Sync` commit can release it while it
    /// waits for its group's fsync.
    pub(crate) fn persist<M: Mutation<T>>(
        &self,
        mut guard: MutexGuard<'_, Writer<T>>,
        m: M,
    ) -> Result<M::Output> {
        let writer = &mut *guard;
        writer.check(&self.inner.path)?;
        if self.inner.mode == Mode::Batch {
            m.each(&mut |_, index, _| writer.mark_dirty(index));
            return Ok(m.apply(&mut self.inner.state.write()).0);
        }
        let (out, pos) = match &mut writer.backend {
            Backend::Journal(journal) => {
                let sync = journal.durability() == Durability::Sync;
                let len = match journal.append_commit(T::__FIELDS, &m, false) {
                    Ok(len) => len,
                    Err(failure) => return Err(writer.fail(failure)),
                };
                let (out, undo) = m.apply(&mut self.inner.state.write());
                if !sync {
                    self.maybe_compact(writer);
                    return Ok(out);
                }
                let pos = self.inner.group.wrote(len);
                let synced = self.inner.group.synced();
                while writer.pending.front().is_some_and(|(p, _)| *p <= synced) {
                    writer.pending.pop_front();
                }
                writer.pending.push_back((pos, undo));
                self.maybe_compact(writer);
                (out, pos)
            }
            Backend::Snapshot(engine) => {
                let mut next = self.inner.state.read().clone();
                let (out, _) = m.apply(&mut next);
                if let Err(failure) = engine.write(&next, &writer.extras) {
                    return Err(writer.fail(failure));
                }
                *self.inner.state.write() = next;
                return Ok(out);
            }
        };
        // Other writers append while this one waits: that is the group.
        drop(guard);
        self.wait_durable(pos)?;
        Ok(out)
    }

    /// Waits until the record ending at `pos` is durable (group commit).
    fn wait_durable(&self, pos: u64) -> Result<()> {
        let journal = journal_path(&self.inner.path);
        self.inner
            .group
            .wait_durable(pos, |error| {
                let mut writer = self.inner.writer.lock();
                if !writer.poisoned {
                    writer.poisoned = true;
                    log::error!(
                        "store poisoned until reopened: fdatasync of `{}` failed: {error}",
                        journal.display()
                    );
                }
                self.undo_pending(&mut writer, error);
            })
            .context("fdatasync", &journal)
    }

    /// Takes back every commit not known durable, newest first, and makes
    /// their writers' calls fail.
    fn undo_pending(&self, writer: &mut Writer<T>, error: &io::Error) {
        let synced = self.inner.group.synced();
        let mut state = self.inner.state.write();
        while let Some((pos, undo)) = writer.pending.pop_back() {
            if pos > synced {
                undo(&mut state);
            }
        }
        drop(state);
        self.inner.group.fail(error);
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

/// The methods `#[derive(Persisted)]` generates call these.
#[doc(hidden)]
impl<T: Persisted> Store<T> {
    pub fn __get<F: Field<T>>(&self) -> F::Value
    where
        F::Value: Clone,
    {
        F::get(&self.inner.state.read()).clone()
    }

    pub fn __set<F: Field<T>>(&self, value: F::Value) -> Result<()> {
        let writer = self.writer()?;
        self.persist(writer, SetValue::<T, F>(value, PhantomData))
    }

    pub fn __update<F: Field<T>, R>(&self, f: impl FnOnce(&mut F::Value) -> R) -> Result<R>
    where
        F::Value: Clone,
    {
        let writer = self.writer()?;
        let mut value = F::get(&self.inner.state.read()).clone();
        let out = f(&mut value);
        if F::eq(F::get(&self.inner.state.read()), &value) != Some(true) {
            self.persist(writer, SetValue::<T, F>(value, PhantomData))?;
        }
        Ok(out)
    }

    pub fn __push<F: Field<T>>(&self, value: <F::Value as SeqField>::Elem) -> Result<()>
    where
        F::Value: SeqField,
    {
        let writer = self.writer()?;
        self.persist(writer, mutation::push::<T, F>(value))
    }

    pub fn __extend<F: Field<T>, I>(&self, values: I) -> Result<()>
    where
        F::Value: SeqField,
        I: IntoIterator<Item = <F::Value as SeqField>::Elem>,
    {
        let values: Vec<_> = values.into_iter().collect();
        if values.is_empty() {
            return Ok(());
        }
        let writer = self.writer()?;
        self.persist(writer, mutation::extend::<T, F>(values))
    }

    pub fn __pop<F: Field<T>>(&self) -> Result<Option<<F::Value as SeqField>::Elem>>
    where
        F::Value: SeqField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).is_empty() {
            return Ok(None);
        }
        self.persist(writer, mutation::pop::<T, F>())
    }

    pub fn __clear<F: Field<T>>(&self) -> Result<()>
    where
        F::Value: SeqField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).is_empty() {
            return Ok(());
        }
        self.persist(writer, mutation::clear::<T, F>())
    }

    pub fn __map_insert<F: Field<T>>(
        &self,
        key: <F::Value as MapField>::Key,
        value: <F::Value as MapField>::Value,
    ) -> Result<Option<<F::Value as MapField>::Value>>
    where
        F::Value: MapField,
    {
        let writer = self.writer()?;
        self.persist(writer, mutation::map_insert::<T, F>(key, value))
    }

    pub fn __map_remove<F: Field<T>>(
        &self,
        key: &<F::Value as MapField>::Key,
    ) -> Result<Option<<F::Value as MapField>::Value>>
    where
        F::Value: MapField,
    {
        let writer = self.writer()?;
        if !F::get(&self.inner.state.read()).contains_key(key) {
            return Ok(None);
        }
        self.persist(writer, mutation::map_remove::<T, F>(key))
    }

    pub fn __set_insert<F: Field<T>>(&self, value: <F::Value as SetField>::Elem) -> Result<bool>
    where
        F::Value: SetField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).contains(&value) {
            return Ok(false);
        }
        self.persist(writer, mutation::set_insert::<T, F>(value))
    }

    pub fn __set_remove<F: Field<T>>(&self, value: &<F::Value as SetField>::Elem) -> Result<bool>
    where
        F::Value: SetField,
    {
        let writer = self.writer()?;
        if !F::get(&self.inner.state.read()).contains(value) {
            return Ok(false);
        }
        self.persist(writer, mutation::set_remove::<T, F>(value))
    }
}

impl<T: Persisted> Drop for Inner<T> {
    fn drop(&mut self) {
        let writer = self.writer.get_mut();
        if writer.poisoned || !writer.dirty.is_empty() {
            return;
        }
        let Backend::Journal(journal) = &mut writer.backend else {
            return;
        };
        if journal.has_records() {
            if let Err(failure) = journal.compact(self.state.get_mut(), &writer.extras) {
                log::warn!(
                    "compaction of `{}` at drop failed (the journal keeps every commit): {}",
                    self.path.display(),
                    failure.error
                );
            }
        }
    }
}
