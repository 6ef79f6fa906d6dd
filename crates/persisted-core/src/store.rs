//! `Store<T>`: a shared handle to one persisted struct.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use crate::change::FieldOf;
use crate::changeset::ChangeSet;
use crate::checksum::fingerprint;
use crate::collection::{DequeField, MapField, MapLookup, SeqField, SetField, SetLookup};
use crate::engine::journal::group::GroupSync;
use crate::engine::journal::{self, journal_path, Journal};
use crate::engine::journal::{History, View};
use crate::engine::snapshot::SnapshotEngine;
use crate::engine::Failure;

/// A journal at least this long is read and verified beside the snapshot's
/// parse, on a second thread.
const PARALLEL_OPEN: u64 = 1 << 20;

/// How often a read-only store reads its history again when a compaction
/// replaced the files while it read them.
const RELOAD_TRIES: u32 = 50;
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, remove_leftovers, sibling, sync_dir, write_atomic};
use crate::file::lock::{LockFile, WriterLock};
use crate::file::vfs::{RealFs, Vfs};
use crate::format::{Codec, Extras};
use crate::history::{Commit, KeepHistory};
use crate::mutation::{self, Mutation, Replace, SetValue, Undo};
use crate::options::{Durability, Engine, Mode, OpenOptions};
use crate::reentry::{self, Held, Hold};
use crate::report::{Recovery, RecoveryEvent};
use crate::schema::{Field, Persisted};
use crate::sharing::{catch_up, last_out, release, Sharing, WriterGuard};
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
/// Writes are serialized by one writer lock. A write from a thread that
/// would wait on itself — it holds a [`read`](Store::read) guard, runs an
/// [`update`](Store::update) closure, or has a [`Transaction`] open on this
/// store — returns [`Error::Reentrant`] at once, saying what to do instead
/// ([`begin`](Store::begin), which returns no `Result`, panics with that
/// message).
///
/// # Examples
///
/// ```
/// use persisted_state::{Persisted, Store};
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone, Debug)]
/// struct Counter {
///     n: u64,
///     log: Vec<String>,
/// }
///
/// # let dir = tempfile::tempdir()?;
/// let store: Store<Counter> = Store::open(dir.path().join("counter.json"))?;
/// store.set_n(store.n() + 1)?;                      // generated getter and setter
/// store.push_log("bumped".into())?;                 // journaled as the element
/// let n = store.update(|c| { c.n += 1; c.n })?;    // any change, O(state)
/// assert_eq!(store.read().n, n);
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
    /// Other processes may change the files (shared or read-only): reads
    /// catch up first.
    follows: bool,
    /// Group commit for `Durability::Sync` (journal engine).
    group: GroupSync,
    /// What open did.
    recovery: Recovery,
    vfs: Arc<dyn Vfs>,
}

/// Everything a write needs, behind the writer lock.
pub(crate) struct Writer<T> {
    pub(crate) backend: Backend,
    codec: Codec,
    pub(crate) extras: Extras,
    /// Changes since the last commit (`Mode::Batch`).
    pub(crate) batch: ChangeSet,
    pub(crate) poisoned: bool,
    /// The last catch-up before a read failed (logged once).
    catch_up_failed: bool,
    pub(crate) snapshot_len: u64,
    journal_limit: u64,
    /// Group commit: commits applied to memory whose record is written but
    /// not yet known durable, with their end position and undo.
    pending: VecDeque<(u64, Undo<T>)>,
    /// Exclusive, shared or read-only, with the locks that go with it.
    pub(crate) sharing: Sharing,
    /// `.recover(true)`: damage found while catching up is set aside.
    pub(crate) recover: bool,
    /// Group commit counts this writer as on its way to append (see
    /// `WriterGuard::arriving`).
    pub(crate) arrived: bool,
    /// Which folded commits are kept (`OpenOptions::keep_history`).
    keep_history: KeepHistory,
}

// One per store, behind the writer mutex: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Journal(Journal),
    Snapshot(SnapshotEngine),
    /// The Redis backend (feature `redis`).
    #[cfg(feature = "redis")]
    Redis(Box<crate::remote::RedisBackend>),
}

impl<T> Writer<T> {
    fn new<S>(
        backend: Backend,
        codec: Codec,
        extras: Extras,
        snapshot_len: u64,
        options: &OpenOptions<S>,
        sharing: Sharing,
    ) -> Writer<T> {
        Writer {
            backend,
            codec,
            extras,
            batch: ChangeSet::default(),
            poisoned: false,
            catch_up_failed: false,
            snapshot_len,
            journal_limit: options.journal_limit,
            pending: VecDeque::new(),
            sharing,
            recover: options.recover,
            arrived: false,
            keep_history: options.keep_history,
        }
    }

    pub(crate) fn codec(&self) -> Codec {
        self.codec
    }

    /// Latches the poison flag when a failure leaves disk and memory unsure.
    pub(crate) fn fail(&mut self, failure: Failure) -> Error {
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
}

/// A shared read guard from [`Store::read`]; derefs to `&T`. Writers wait
/// while it is held; a write from the thread that holds it returns
/// [`Error::Reentrant`].
pub struct ReadGuard<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    _held: Held,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
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
    /// Opens the store at `path` with the default options; a missing or
    /// empty (0-byte) file starts from `T::default()`. The format comes
    /// from the extension. The directory must exist (it is not created).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the directory when it does not exist,
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

    /// Opens the store kept under `key` on the Redis server at `url` with
    /// the default options (feature `redis`); see
    /// [`OpenOptions::open_redis`].
    ///
    /// # Errors
    ///
    /// See [`OpenOptions::open_redis`].
    #[cfg(feature = "redis")]
    pub fn open_redis(url: &str, key: &str) -> Result<Store<T>> {
        Store::open_remote(OpenOptions::default(), url, key, None)
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
        // Not created: a missing directory is more often a typo than a
        // place the program means to start.
        let dir = parent_dir(path);
        if let Err(e) = std::fs::metadata(&dir) {
            if e.kind() == io::ErrorKind::NotFound {
                return Err(Error::io("open a store in the directory", &dir, e));
            }
        }
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
        if options.read_only {
            return Store::open_read_only(vfs, path, options, codec);
        }
        let sharing = if options.shared {
            if !cfg!(unix) {
                return Err(Error::Unsupported {
                    path: path.to_path_buf(),
                    reason: "shared mode is implemented on Unix only".into(),
                });
            }
            if options.mode == Mode::Batch {
                return Err(Error::Unsupported {
                    path: path.to_path_buf(),
                    reason: "`Mode::Batch` cannot be shared: changes held back until `commit()` \
                             would have to be rebased onto other processes' commits; use \
                             transactions for all-or-nothing changes"
                        .into(),
                });
            }
            let lifetime = LockFile::acquire(&*vfs, &sibling(path, ".lock"), path, true)?;
            let writer_lock = WriterLock::open(&*vfs, path)?;
            // Recovery may cut, reset or create files: nobody else may be
            // writing meanwhile.
            writer_lock.lock(path, options.lock_timeout)?;
            Sharing::Shared {
                lifetime: Some(lifetime),
                writer_lock,
                timeout: options.lock_timeout,
                held: true,
            }
        } else {
            Sharing::Exclusive {
                _lifetime: LockFile::acquire(&*vfs, &sibling(path, ".lock"), path, false)?,
            }
        };
        remove_leftovers(&*vfs, path)?;
        let journal_file = journal_path(path);
        let mut recovery = Recovery::default();

        // A long journal is read and verified on a second thread while this
        // one parses the snapshot: the two are independent until replay.
        let journal_len = vfs
            .stat(&journal_file)
            .context("stat", &journal_file)?
            .map_or(0, |id| id.len);
        let in_parallel = options.engine == Engine::Journal && journal_len >= PARALLEL_OPEN;
        let (snapshot, mut prepared) = std::thread::scope(|scope| {
            let prepared = in_parallel.then(|| scope.spawn(|| journal::prepare(&*vfs, path)));
            let snapshot = Self::read_snapshot(&vfs, path, codec, initial, &mut recovery);
            let prepared = prepared.map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            (snapshot, prepared)
        });
        let (mut state, extras, base, snapshot_len) = snapshot?;
        if let Some(event) = RecoveryEvent::unknown_keys(path, &extras) {
            recovery.push(event);
        }

        let durability = options.durability;
        let mut open_journal = |state: &mut T, recovery: &mut Recovery| {
            let recover = options.recover;
            let prepared = match prepared.take() {
                Some(prepared) => prepared?,
                None => journal::prepare(&*vfs, path)?,
            };
            journal::open(
                &vfs, path, codec, durability, state, &extras, base, recover, recovery, prepared,
            )
        };
        let backend = match options.engine {
            Engine::Journal => {
                let mut journal = open_journal(&mut state, &mut recovery)?;
                journal.note_snapshot()?;
                journal.keep_history(options.keep_history);
                Backend::Journal(journal)
            }
            Engine::Snapshot if options.keep_history != KeepHistory::None => {
                return Err(Error::Unsupported {
                    path: path.to_path_buf(),
                    reason: "`keep_history` needs the journal engine: `Engine::Snapshot` keeps \
                             no records"
                        .into(),
                })
            }
            Engine::Snapshot => {
                if vfs
                    .read(&journal_file)
                    .context("read", &journal_file)?
                    .is_some()
                {
                    // Left by the journal engine: fold it in, then remove it.
                    let journal = open_journal(&mut state, &mut recovery)?;
                    if journal.has_records() {
                        let mut bytes = Vec::new();
                        codec.encode_snapshot(path, &state, &extras, &mut bytes)?;
                        write_atomic(&vfs, path, &bytes, true)?;
                    }
                    drop(journal);
                    vfs.remove(&journal_file).context("remove", &journal_file)?;
                    sync_dir(&*vfs, &parent_dir(path))?;
                }
                let mut engine = SnapshotEngine::new(&vfs, path, codec, durability);
                engine.note_file()?;
                Backend::Snapshot(engine)
            }
        };
        // Only now: a new journal's temp file left by a compaction cut
        // short is what told the journal's open that the compaction
        // reached its rename.
        remove_leftovers(&*vfs, &journal_file)?;
        let store = Store::assemble(
            vfs,
            path,
            options,
            state,
            Writer::new(
                backend,
                codec,
                extras,
                snapshot_len as u64,
                &options,
                sharing,
            ),
            recovery,
        );
        {
            let mut writer = WriterGuard::new(store.inner.writer.lock());
            if let Backend::Journal(journal) = &writer.backend {
                if journal.durability() == Durability::Sync && !writer.sharing.is_shared() {
                    store.inner.group.set_handle(journal.sync_handle()?);
                }
            }
            // A journal that grew past the limit before a crash is folded now.
            store.maybe_compact(&mut writer);
            // Dropping the guard releases the writer lock taken above.
        }
        Ok(store)
    }

    /// Reads and parses the snapshot; a missing or empty one becomes
    /// `initial` (or the default), written now so that the journal has a
    /// snapshot to name. Returns the state, the unknown keys kept, the
    /// snapshot's fingerprint and its size.
    fn read_snapshot(
        vfs: &Arc<dyn Vfs>,
        path: &Path,
        codec: Codec,
        initial: Option<T>,
        recovery: &mut Recovery,
    ) -> Result<(T, Extras, u64, usize)> {
        match vfs.read(path).context("read", path)? {
            Some(bytes) if !bytes.is_empty() => {
                let (state, extras) = codec.decode_snapshot::<T>(path, &bytes)?;
                Ok((state, extras, fingerprint(&bytes), bytes.len()))
            }
            existing => {
                recovery.push(match existing {
                    Some(_) => RecoveryEvent::EmptySnapshot {
                        path: path.to_path_buf(),
                    },
                    None => RecoveryEvent::Created {
                        path: path.to_path_buf(),
                    },
                });
                let state = initial.unwrap_or_default();
                let mut bytes = Vec::new();
                codec.encode_snapshot(path, &state, &Extras::None, &mut bytes)?;
                write_atomic(vfs, path, &bytes, true)?;
                Ok((state, Extras::None, fingerprint(&bytes), bytes.len()))
            }
        }
    }

    /// `.read_only(true)`: no lock, nothing written; the files as they are.
    fn open_read_only(
        vfs: Arc<dyn Vfs>,
        path: &Path,
        options: OpenOptions<T>,
        codec: Codec,
    ) -> Result<Store<T>> {
        let (backend, state, extras, snapshot_len) =
            match Journal::open_read_only::<T>(&vfs, path, codec)? {
                Some((journal, state, extras, len)) => {
                    (Backend::Journal(journal), state, extras, len)
                }
                None => {
                    let bytes = vfs.read(path).context("read", path)?.ok_or_else(|| {
                        Error::io("open read-only", path, io::ErrorKind::NotFound.into())
                    })?;
                    let (state, extras) = codec.decode_snapshot::<T>(path, &bytes)?;
                    let mut engine = SnapshotEngine::new(&vfs, path, codec, options.durability);
                    engine.note_file()?;
                    (Backend::Snapshot(engine), state, extras, bytes.len() as u64)
                }
            };
        Ok(Store::assemble(
            vfs,
            path,
            options,
            state,
            Writer::new(
                backend,
                codec,
                extras,
                snapshot_len,
                &options,
                Sharing::ReadOnly,
            ),
            Recovery::default(),
        ))
    }

    /// Opens the store kept under `key` on the Redis server at `url`.
    #[cfg(feature = "redis")]
    pub(crate) fn open_remote(
        options: OpenOptions<T>,
        url: &str,
        key: &str,
        initial: Option<T>,
    ) -> Result<Store<T>> {
        use crate::remote::{Connect, RedisBackend};
        let target = RedisBackend::target_of(url, key);
        let refuse = |what: &str| Error::Unsupported {
            path: target.clone(),
            reason: format!("{what} has no meaning for a Redis store"),
        };
        if options
            .format
            .is_some_and(|f| f != crate::options::Format::Json)
        {
            return Err(refuse("a format other than JSON (values are JSON)"));
        }
        if options.engine != Engine::Journal {
            return Err(refuse("`Engine::Snapshot`"));
        }
        if options.read_only {
            return Err(refuse("`read_only`"));
        }
        let (backend, state) = RedisBackend::open(
            Connect {
                url,
                key,
                timeout: options.timeout,
                lock_timeout: options.lock_timeout,
                durability: options.durability,
                keep: options.keep_history,
            },
            initial.unwrap_or_default(),
        )?;
        let codec = Codec::new(crate::options::Format::Json, &target)?;
        let writer = Writer::new(
            Backend::Redis(Box::new(backend)),
            codec,
            Extras::None,
            0,
            &options,
            Sharing::Remote,
        );
        Ok(Store::assemble(
            RealFs::shared(),
            &target,
            options,
            state,
            writer,
            Recovery::default(),
        ))
    }

    /// The Redis backend, under the writer mutex; `None` for a file store.
    #[cfg(feature = "redis")]
    fn with_remote<R>(
        &self,
        f: impl FnOnce(&mut crate::remote::RedisBackend) -> Result<R>,
    ) -> Option<Result<R>> {
        if let Some(hold) = reentry::held(self.key()) {
            return Some(Err(self.reentrant(hold)));
        }
        let mut writer = self.inner.writer.lock();
        match &mut writer.backend {
            Backend::Redis(remote) => Some(f(remote)),
            _ => None,
        }
    }

    fn assemble(
        vfs: Arc<dyn Vfs>,
        path: &Path,
        options: OpenOptions<T>,
        state: T,
        writer: Writer<T>,
        recovery: Recovery,
    ) -> Store<T> {
        Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                mode: options.mode,
                state: RwLock::new(state),
                follows: !matches!(writer.sharing, Sharing::Exclusive { .. }),
                writer: Mutex::new(writer),
                group: GroupSync::default(),
                recovery,
                vfs,
            }),
        }
    }

    /// The snapshot file's path. An associated function, not a method, so
    /// that a field named `path` gets its generated getter:
    /// `Store::file_path(&store)`.
    pub fn file_path(this: &Self) -> &Path {
        &this.inner.path
    }

    /// True after an I/O failure that left disk and memory possibly
    /// disagreeing; every write then returns [`Error::Poisoned`] until the
    /// store is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.inner.writer.lock().poisoned
    }

    /// What opening the store did besides reading it: records replayed, a
    /// torn journal tail cut, damaged bytes or an orphaned journal set
    /// aside (with the files they were kept in), a hand edit adopted.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// This store's identity in the per-thread record of what is held.
    fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }

    /// A shared read guard on the state. Hold it briefly: writers wait for
    /// it, and a write from this thread while it is held returns
    /// [`Error::Reentrant`].
    ///
    /// In shared mode and read-only, it first catches up with other
    /// processes' commits (one `fstat` when nothing changed). It never
    /// fails: a failure to catch up is logged, and returned by the next
    /// write or [`refresh`](Store::refresh).
    pub fn read(&self) -> ReadGuard<'_, T> {
        let key = self.key();
        // A thread that already holds this state may not queue behind a
        // waiting writer, or it would wait on itself; nor may it change
        // what it holds by catching up.
        let guard = match reentry::held(key) {
            Some(_) => self.inner.state.read_recursive(),
            None => {
                if self.inner.follows {
                    self.follow();
                }
                self.inner.state.read()
            }
        };
        ReadGuard {
            guard,
            _held: Held::new(key, Hold::Read),
        }
    }

    /// Catches up with other processes before a read, unless another thread
    /// of this process is writing (its commit catches up itself).
    fn follow(&self) {
        let Some(mut writer) = self.inner.writer.try_lock() else {
            return;
        };
        if writer.poisoned {
            return;
        }
        let caught = catch_up(
            &self.inner.vfs,
            &self.inner.path,
            &self.inner.state,
            &mut writer,
            false,
        );
        match caught {
            Ok(_) => writer.catch_up_failed = false,
            Err(e) => {
                if !std::mem::replace(&mut writer.catch_up_failed, true) {
                    log::warn!(
                        "`{}`: reads show the last state caught up with: {e}",
                        self.inner.path.display()
                    );
                }
            }
        }
    }

    /// Shared mode and read-only: catches up now with every commit other
    /// processes made, and returns whether the state changed. Reads do this
    /// by themselves; `refresh` also reports a failure to. An exclusive
    /// store has nobody to catch up with: `Ok(false)`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], [`Error::Parse`] (a record or an edited snapshot that
    /// does not parse), [`Error::Poisoned`], [`Error::Reentrant`].
    pub fn refresh(&self) -> Result<bool> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        if !self.inner.follows {
            return Ok(false);
        }
        let mut writer = WriterGuard::new(self.inner.writer.lock());
        writer.check(&self.inner.path)?;
        catch_up(
            &self.inner.vfs,
            &self.inner.path,
            &self.inner.state,
            &mut writer,
            false,
        )
    }

    /// A clone of the whole state.
    pub fn get(&self) -> T {
        self.read().clone()
    }

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
    /// [`Error::Io`] (memory unchanged), [`Error::Poisoned`],
    /// [`Error::Encode`], [`Error::Reentrant`] (called from inside a
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
    /// returns [`Error::Reentrant`] instead.
    ///
    /// In shared mode it first takes the store's writer lock and catches
    /// up: other processes wait until it ends (keep it short). If the lock
    /// cannot be had within the lock timeout, the transaction shows the
    /// last state caught up with and its [`commit`](Transaction::commit)
    /// returns [`Error::LockTimeout`], writing nothing;
    /// [`transaction`](Store::transaction) returns the error without
    /// running its closure.
    pub fn begin(&self) -> Transaction<'_, T> {
        if let Some(hold) = reentry::held(self.key()) {
            panic!("{}", self.reentrant(hold));
        }
        let (writer, failed) = match self.lock_closure_writer() {
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
    /// `f`'s error, or the commit's; [`Error::Reentrant`] when this thread
    /// already holds a guard, a closure or a transaction on this store.
    pub fn transaction<R, E>(
        &self,
        f: impl FnOnce(&mut Transaction<'_, T>) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E>
    where
        E: From<Error>,
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
    /// [`Error::Io`] (the changes stay pending), [`Error::Poisoned`],
    /// [`Error::Reentrant`].
    pub fn commit(&self) -> Result<()> {
        let mut guard = self.writer()?;
        let writer = &mut *guard;
        if writer.batch.is_empty() {
            return Ok(());
        }
        let state = self.inner.state.read();
        let result = match &mut writer.backend {
            Backend::Journal(journal) => {
                let sync = journal.durability() == Durability::Sync;
                let changes = writer.batch.changes(&*state);
                journal.append_commit(T::__FIELDS, &changes, sync).map(drop)
            }
            Backend::Snapshot(engine) => engine.write(&*state, &writer.extras),
            #[cfg(feature = "redis")]
            Backend::Redis(remote) => {
                let changes = writer.batch.changes(&*state);
                let outcome = remote.commit(T::__FIELDS, &changes, &*state, true, false)?;
                match outcome {
                    crate::remote::Outcome::Committed => Ok(()),
                    _ => {
                        return Err(Error::Conflict {
                            path: self.inner.path.clone(),
                            reason: "another process committed since this batch began; the \
                                     batch stays pending (`refresh()` does not drop it: reopen \
                                     to discard it)"
                                .into(),
                        })
                    }
                }
            }
        };
        drop(state);
        if let Err(failure) = result {
            return Err(writer.fail(failure));
        }
        writer.batch.clear();
        self.maybe_compact(writer);
        Ok(())
    }

    /// The commits kept in this store's history, oldest first: those
    /// [`OpenOptions::keep_history`] keeps, and every commit made since the
    /// last compaction (all there is with the default, `KeepHistory::None`).
    ///
    /// ```
    /// use persisted_state::{KeepHistory, Persisted, Store};
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Job {
    ///     done: Vec<String>,
    ///     last: u64,
    /// }
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::<Job>::options()
    ///     .keep_history(KeepHistory::Last(10_000))
    ///     .open(dir.path().join("job.json"))?;
    /// store.push_done("a".into())?;
    /// store.set_last(1)?;
    /// store.compact()?;
    /// for c in store.history()? {
    ///     println!("{} {:?} {:?}", c.seq, c.time, c.fields);
    /// }
    /// assert_eq!(store.history()?[1].fields, ["last"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`]; [`Error::Corrupt`] naming a history file and offset
    /// when one is damaged; [`Error::Reentrant`]; [`Error::LockTimeout`]
    /// (shared mode takes the writer lock while it reads).
    ///
    /// [`OpenOptions::keep_history`]: crate::OpenOptions::keep_history
    pub fn history(&self) -> Result<Vec<Commit>> {
        #[cfg(feature = "redis")]
        if let Some(result) = self.with_remote(|remote| remote.history()) {
            return result.map(|log| log.into_iter().map(|(commit, _)| commit).collect());
        }
        self.with_history(|history, _, _| Ok(history.commits()))
    }

    /// The state right after commit `seq` (a [`Commit::seq`] from
    /// [`history`](Store::history)), rebuilt from the kept records.
    ///
    /// # Errors
    ///
    /// [`Error::NotInHistory`] when `seq` is not a kept commit (older than
    /// the policy keeps, a compaction's number, or never made): never a
    /// guess. Otherwise as [`history`](Store::history), and
    /// [`Error::Parse`] for a kept record the type cannot read.
    pub fn state_at(&self, seq: u64) -> Result<T> {
        #[cfg(feature = "redis")]
        if let Some(result) = self.with_remote(|remote| remote.state_at::<T>(seq)) {
            return result;
        }
        self.with_history(|history, vfs, codec| history.state_at(vfs, codec, seq))
    }

    /// The state as of `time`: right after the last kept commit made at or
    /// before it (commit times are the committing process's wall clock).
    ///
    /// # Errors
    ///
    /// [`Error::NotInHistory`] when no kept commit is that old. Otherwise
    /// as [`state_at`](Store::state_at).
    pub fn state_as_of(&self, time: std::time::SystemTime) -> Result<T> {
        let ms = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        #[cfg(feature = "redis")]
        if let Some(result) = self.with_remote(|remote| remote.state_as_of::<T>(time)) {
            return result;
        }
        self.with_history(|history, vfs, codec| history.state_as_of(vfs, codec, ms))
    }

    /// Runs `f` on the history files as they are now: with the writer
    /// mutex held (no compaction of this process runs meanwhile) and, in
    /// shared mode, the writer lock (nor of another). A read-only store
    /// holds no lock: it reads again when a compaction got in between.
    fn with_history<R>(&self, f: impl Fn(&History, &dyn Vfs, Codec) -> Result<R>) -> Result<R> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        let mut writer = WriterGuard::new(self.inner.writer.lock());
        writer.lock_file(&self.inner.path)?;
        let (codec, policy) = (writer.codec, writer.keep_history);
        let tries = if matches!(writer.sharing, Sharing::ReadOnly) {
            RELOAD_TRIES
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let result = History::read(&*self.inner.vfs, &self.inner.path, codec, policy)
                .and_then(|history| f(&history, &*self.inner.vfs, codec));
            match result {
                Err(Error::Corrupt { .. } | Error::Parse { .. }) if attempt < tries => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                result => return result,
            }
        }
    }

    /// Folds the journal into the snapshot now (fully synced). Nothing to do
    /// for [`Engine::Snapshot`].
    ///
    /// # Errors
    ///
    /// [`Error::Uncommitted`] in batch mode with pending changes,
    /// [`Error::Poisoned`], [`Error::Io`], [`Error::Reentrant`].
    pub fn compact(&self) -> Result<()> {
        let mut guard = self.writer()?;
        self.check_committed(&guard)?;
        self.fold(&mut guard)
    }

    /// Compacts and drops this handle; the file lock is released once every
    /// clone is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Uncommitted`] in [`Mode::Batch`] with changes not committed:
    /// nothing is written and they are discarded with the handle (call
    /// [`commit`](Store::commit) first). Otherwise the compaction's error;
    /// the handle is dropped all the same and the journal keeps every
    /// commit.
    ///
    /// In shared mode the journal is folded only by the last participant to
    /// close (other processes may be appending to it).
    pub fn close(self) -> Result<()> {
        let mut guard = self.writer()?;
        self.check_committed(&guard)?;
        if guard.sharing.is_shared() {
            if Arc::strong_count(&self.inner) > 1 {
                return Ok(());
            }
            let alone = last_out(&*self.inner.vfs, &self.inner.path, &mut guard.sharing)?;
            if alone.is_none() {
                return Ok(());
            }
            return self.fold(&mut guard);
        }
        self.fold(&mut guard)
    }

    fn check_committed(&self, writer: &Writer<T>) -> Result<()> {
        if writer.batch.is_empty() {
            return Ok(());
        }
        Err(Error::Uncommitted {
            path: self.inner.path.clone(),
            changes: writer.batch.len(),
            fields: writer.batch.field_names(T::__FIELDS),
        })
    }

    /// Compacts when the journal has records; first adopts the snapshot if
    /// a person edited it while the store was open (the edit is never
    /// overwritten).
    fn fold(&self, writer: &mut Writer<T>) -> Result<()> {
        let Writer {
            backend: Backend::Journal(journal),
            extras,
            snapshot_len,
            ..
        } = writer
        else {
            return Ok(());
        };
        let mut view = View {
            state: &self.inner.state,
            extras,
            snapshot_len,
            recover: false,
        };
        let result = match journal.adopt_edit_if_any(&mut view) {
            Ok(true) => Ok(None),
            Ok(false) if !journal.has_records() => return Ok(()),
            Ok(false) => journal.compact(&*self.inner.state.read(), extras).map(Some),
            Err(failure) => Err(failure),
        };
        self.files_replaced(writer, result)
    }

    /// An exclusive journal store's look for a hand edit before a commit
    /// (every `CHECK_EVERY`): an edit is adopted now, before this commit
    /// is appended, instead of at the next compaction.
    fn adopt_edit(&self, writer: &mut Writer<T>) -> Result<()> {
        let Writer {
            backend: Backend::Journal(journal),
            extras,
            snapshot_len,
            ..
        } = writer
        else {
            return Ok(());
        };
        let mut view = View {
            state: &self.inner.state,
            extras,
            snapshot_len,
            recover: false,
        };
        match journal.adopt_edit_if_any(&mut view) {
            Ok(false) => Ok(()),
            Ok(true) => self.files_replaced(writer, Ok(None)),
            Err(failure) => self.files_replaced(writer, Err(failure)),
        }
    }

    /// After a compaction or an adopted edit replaced the journal (`Ok`,
    /// with the new snapshot's size when a compaction wrote it): every
    /// earlier commit is durable in the new files (or in the journal kept
    /// aside), and group commit syncs the new journal. On failure, latches
    /// the poison flag if disk and memory may disagree.
    fn files_replaced(
        &self,
        writer: &mut Writer<T>,
        result: std::result::Result<Option<u64>, Failure>,
    ) -> Result<()> {
        match result {
            Ok(len) => {
                if let Some(len) = len {
                    writer.snapshot_len = len;
                }
                writer.pending.clear();
                self.inner.group.all_synced();
                let Backend::Journal(journal) = &writer.backend else {
                    return Ok(());
                };
                if journal.durability() == Durability::Sync && !writer.sharing.is_shared() {
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
        if journal.len() > limit && writer.batch.is_empty() && !writer.poisoned {
            if let Err(e) = self.fold(writer) {
                log::warn!("compaction of `{}` failed: {e}", self.inner.path.display());
            }
        }
    }

    fn reentrant(&self, hold: Hold) -> Error {
        Error::Reentrant {
            path: self.inner.path.clone(),
            advice: hold.advice(),
        }
    }

    /// The writer lock, unless this thread holds something a write would
    /// wait for, or the store is poisoned.
    fn writer(&self) -> Result<WriterGuard<'_, T>> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        self.lock_writer()
    }

    /// The writer for a closure (`update`, `transaction`, `begin`): as
    /// [`writer`](Store::writer), and on Redis also the lease and a
    /// catch-up, so the closure runs once on the current state.
    fn closure_writer(&self) -> Result<WriterGuard<'_, T>> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        self.lock_closure_writer()
    }

    fn lock_closure_writer(&self) -> Result<WriterGuard<'_, T>> {
        #[allow(unused_mut)]
        let mut writer = self.lock_writer()?;
        #[cfg(feature = "redis")]
        {
            let Writer {
                backend,
                extras,
                snapshot_len,
                ..
            } = &mut *writer;
            if let Backend::Redis(remote) = backend {
                let mut view = View {
                    state: &self.inner.state,
                    extras,
                    snapshot_len,
                    recover: false,
                };
                remote.lock(&mut view)?;
            }
        }
        Ok(writer)
    }

    /// The writer mutex; in shared mode also the writer lock and a catch-up
    /// with every commit made before (the snapshot engine checks for an
    /// edit by hand in every mode, so that no commit overwrites one).
    fn lock_writer(&self) -> Result<WriterGuard<'_, T>> {
        let mut writer = WriterGuard::arriving(&self.inner.writer, &self.inner.group);
        writer.check(&self.inner.path)?;
        let catch = match writer.sharing {
            Sharing::ReadOnly => {
                return Err(Error::ReadOnly {
                    path: self.inner.path.clone(),
                })
            }
            Sharing::Shared { .. } => {
                writer.lock_file(&self.inner.path)?;
                true
            }
            Sharing::Exclusive { .. } => match &writer.backend {
                Backend::Snapshot(_) => true,
                // Not with a batch pending: adopting compacts memory, and
                // the batch's commit is kept on top of an edit anyway.
                Backend::Journal(journal) if writer.batch.is_empty() => {
                    if journal.edit_check_due() {
                        self.adopt_edit(&mut writer)?;
                    }
                    false
                }
                _ => false,
            },
            // Commits are optimistic: the server checks the version.
            #[cfg(feature = "redis")]
            Sharing::Remote => false,
        };
        if catch {
            catch_up(
                &self.inner.vfs,
                &self.inner.path,
                &self.inner.state,
                &mut writer,
                true,
            )?;
        }
        Ok(writer)
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
            return Ok(m.apply(&mut state, Some(&mut writer.batch)).0);
        }
        #[cfg(feature = "redis")]
        if matches!(writer.backend, Backend::Redis(_)) {
            return self.persist_remote(guard, m);
        }
        // Shared mode syncs before it releases the writer lock: no group
        // commit across processes.
        let shared = writer.sharing.is_shared();
        let (out, pos) = match &mut writer.backend {
            Backend::Journal(journal) => {
                let sync = journal.durability() == Durability::Sync;
                let len = match journal.append_commit(T::__FIELDS, &m, sync && shared) {
                    Ok(len) => len,
                    Err(failure) => return Err(writer.fail(failure)),
                };
                let (out, undo) = m.apply(&mut self.inner.state.write(), None);
                if !sync || shared {
                    self.maybe_compact(writer);
                    return Ok(out);
                }
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
                (out, pos)
            }
            #[cfg(feature = "redis")]
            Backend::Redis(_) => unreachable!("handled above"),
            Backend::Snapshot(engine) => {
                let mut next = self.inner.state.read().clone();
                let (out, _) = m.apply(&mut next, None);
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

    /// A write-through commit to Redis: optimistic at the version this
    /// handle knows; when another commit came first, catch up and make the
    /// change again on the new state (a generated operation is data, not a
    /// closure). A closure's change holds the lease: if it was lost, the
    /// commit is refused whole ([`Error::Conflict`]).
    #[cfg(feature = "redis")]
    fn persist_remote<M: Mutation<T>>(
        &self,
        mut guard: WriterGuard<'_, T>,
        m: M,
    ) -> Result<M::Output> {
        use crate::remote::Outcome;
        let writer = &mut *guard;
        let Writer {
            backend: Backend::Redis(remote),
            extras,
            snapshot_len,
            ..
        } = writer
        else {
            unreachable!("persist_remote is called for the Redis backend");
        };
        let mut view = View {
            state: &self.inner.state,
            extras,
            snapshot_len,
            recover: false,
        };
        loop {
            let leased = remote.leased;
            let outcome = {
                let state = self.inner.state.read();
                remote.commit(T::__FIELDS, &m, &*state, false, leased)?
            };
            match outcome {
                Outcome::Committed => {
                    let (out, _) = m.apply(&mut self.inner.state.write(), None);
                    return Ok(out);
                }
                Outcome::Behind | Outcome::Leased if leased => {
                    remote.release();
                    return Err(Error::Conflict {
                        path: self.inner.path.clone(),
                        reason: "the lease ran out before the change was committed and another \
                                 process committed meanwhile; nothing was applied (a longer \
                                 `lock_timeout` gives closures more time)"
                            .into(),
                    });
                }
                Outcome::Behind => drop(remote.catch_up(&mut view)?),
                Outcome::Leased => remote.lock(&mut view)?,
            }
        }
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
    pub fn __get<F: Field<T>>(&self) -> F::Value {
        F::get(&self.read()).clone()
    }

    pub fn __set<F: Field<T>>(&self, value: F::Value) -> Result<()> {
        let writer = self.writer()?;
        self.persist(writer, SetValue::<T, F>(value, PhantomData))
    }

    pub fn __update<F: Field<T>, R>(&self, f: impl FnOnce(&mut F::Value) -> R) -> Result<R> {
        let writer = self.closure_writer()?;
        let mut value = F::get(&self.inner.state.read()).clone();
        let out = {
            let _held = Held::new(self.key(), Hold::Update);
            f(&mut value)
        };
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

    pub fn __push_front<F: Field<T>>(&self, value: <F::Value as SeqField>::Elem) -> Result<()>
    where
        F::Value: DequeField,
    {
        let writer = self.writer()?;
        self.persist(writer, mutation::push_front::<T, F>(value))
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

    pub fn __pop_front<F: Field<T>>(&self) -> Result<Option<<F::Value as SeqField>::Elem>>
    where
        F::Value: DequeField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).is_empty() {
            return Ok(None);
        }
        self.persist(writer, mutation::pop_front::<T, F>())
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

    pub fn __map_remove<F: Field<T>, Q: ?Sized>(
        &self,
        key: &Q,
    ) -> Result<Option<<F::Value as MapField>::Value>>
    where
        F::Value: MapLookup<Q>,
    {
        let writer = self.writer()?;
        let Some(key) = F::get(&self.inner.state.read()).find_key(key).cloned() else {
            return Ok(None);
        };
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

    pub fn __set_remove<F: Field<T>, Q: ?Sized>(&self, value: &Q) -> Result<bool>
    where
        F::Value: SetLookup<Q>,
    {
        let writer = self.writer()?;
        let Some(value) = F::get(&self.inner.state.read()).find(value).cloned() else {
            return Ok(false);
        };
        self.persist(writer, mutation::set_remove::<T, F>(value))
    }
}

impl<T: Persisted> Drop for Inner<T> {
    /// Best effort: folds the journal into the snapshot (in shared mode
    /// only as the last participant), and logs what it could not do.
    fn drop(&mut self) {
        let writer = self.writer.get_mut();
        if !writer.batch.is_empty() {
            log::warn!(
                "`{}` dropped with {} uncommitted change(s) to {} (Mode::Batch): discarded; \
                 call `commit()` before dropping the store to keep them",
                self.path.display(),
                writer.batch.len(),
                writer
                    .batch
                    .field_names(T::__FIELDS)
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return;
        }
        if writer.poisoned || !matches!(writer.backend, Backend::Journal(_)) {
            return;
        }
        let _alone = match &mut writer.sharing {
            Sharing::ReadOnly | Sharing::Shared { lifetime: None, .. } => return,
            #[cfg(feature = "redis")]
            Sharing::Remote => return,
            Sharing::Exclusive { .. } => None,
            Sharing::Shared {
                writer_lock,
                timeout,
                held,
                ..
            } => {
                if let Err(e) = writer_lock.lock(&self.path, *timeout) {
                    log::warn!("`{}`: not folded at close: {e}", self.path.display());
                    return;
                }
                *held = true;
                let alone = catch_up(&self.vfs, &self.path, &self.state, writer, true)
                    .and_then(|_| last_out(&*self.vfs, &self.path, &mut writer.sharing));
                match alone {
                    Ok(Some(alone)) => Some(alone),
                    Ok(None) => {
                        release(&mut writer.sharing);
                        return;
                    }
                    Err(e) => {
                        log::warn!("`{}`: not folded at close: {e}", self.path.display());
                        release(&mut writer.sharing);
                        return;
                    }
                }
            }
        };
        let Writer {
            backend: Backend::Journal(journal),
            extras,
            snapshot_len,
            sharing,
            ..
        } = writer
        else {
            return;
        };
        let mut view = View {
            state: &self.state,
            extras,
            snapshot_len,
            recover: false,
        };
        let folded = match journal.adopt_edit_if_any(&mut view) {
            Ok(true) => Ok(()),
            Ok(false) if journal.has_records() => journal
                .compact(&*self.state.read(), extras)
                .map(drop)
                .map_err(|failure| failure.error),
            Ok(false) => Ok(()),
            Err(failure) => Err(failure.error),
        };
        if let Err(e) = folded {
            log::warn!(
                "compaction of `{}` at drop failed (the journal keeps every commit): {e}",
                self.path.display()
            );
        }
        release(sharing);
    }
}
