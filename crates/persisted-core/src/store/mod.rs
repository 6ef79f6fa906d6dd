//! `Store<T>`: a shared handle to one persisted struct, whatever keeps it
//! (`engine::backend`).
//!
//! * `mod.rs`: the handle, what it holds, opening.
//! * `read.rs`: reads, and catching up with other writers before them.
//! * `commit.rs`: writes: the writer lock, `update`, transactions, batches,
//!   a mutation made durable then applied.
//! * `durable.rs`: the waiting half of group commit, and what a failed
//!   sync or a replaced journal does to the commits not yet durable.
//! * `maintenance.rs`: `compact`, `close`, and dropping the last handle.
//! * `history.rs`: `history`, `state_at`, `state_as_of`.
//! * `notify.rs`: `subscribe`, `on_change`, `snapshot`, and what a watch
//!   does when the files or the server changed.
//! * `generated.rs`: what `#[derive(Persisted)]`'s methods call.
//! * `writer.rs`: the writer mutex held together with the backend's
//!   ordering (file lock, lease).

mod commit;
mod durable;
mod generated;
mod history;
mod maintenance;
mod notify;
mod read;
mod writer;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use self::read::ReadGuard;
pub(crate) use self::writer::WriterGuard;
use crate::changeset::ChangeSet;
use crate::engine::backend::{Backend, Opened};
use crate::engine::journal::group::GroupSync;
use crate::engine::{file, Failure};
use crate::error::{Error, Result};
use crate::file::atomic::parent_dir;
use crate::file::vfs::{RealFs, Vfs};
use crate::format::Codec;
use crate::mutation::Undo;
use crate::notify::{Hub, Notes, Watch, WatchHandle};
use crate::options::{Mode, OpenOptions};
use crate::reentry::Hold;
use crate::report::Recovery;
use crate::schema::Persisted;

/// A persisted struct: a shared, cheap-to-clone handle to a `T` that lives
/// in a file.
///
/// Reads come from memory. In [`Mode::WriteThrough`] (the default) every
/// write — a generated setter, [`update`](Store::update), a
/// [`Transaction`](crate::Transaction) — is one atomic commit, on disk when
/// the call returns; if it fails, memory keeps none of it. Clones share the
/// state; the file lock is released when the last clone is dropped.
///
/// Writes are serialized by one writer lock. A write from a thread that
/// would wait on itself — it holds a [`read`](Store::read) guard, runs an
/// [`update`](Store::update) closure, or has a
/// [`Transaction`](crate::Transaction) open on this store — returns
/// [`Error::Reentrant`] at once, saying what to do instead
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
    /// Others may change the state: reads catch up first.
    follows: bool,
    /// Group commit for `Durability::Sync` (the journal engine).
    group: GroupSync,
    /// What open did.
    recovery: Recovery,
    /// Change notifications: what changed, for every subscriber.
    pub(crate) hub: Arc<Hub>,
    /// `snapshot()`: the last `Arc<T>` handed out, with the hub version and
    /// the count of batch changes it was made at.
    snapshot: Mutex<Option<(u64, u64, Arc<T>)>>,
    /// Changes applied to memory without a commit (`Mode::Batch`).
    batch_edits: std::sync::atomic::AtomicU64,
    /// The watch (`OpenOptions::watch`), unregistered with the store.
    watch: Mutex<Option<WatchHandle>>,
}

/// Everything a write needs, behind the writer mutex.
pub(crate) struct Writer<T> {
    pub(crate) backend: Box<dyn Backend<T>>,
    codec: Codec,
    /// Changes since the last commit (`Mode::Batch`).
    pub(crate) batch: ChangeSet,
    pub(crate) poisoned: bool,
    /// The last catch-up before a read failed (logged once).
    catch_up_failed: bool,
    /// Group commit: commits applied to memory whose record is written but
    /// not yet known durable, with their end position and undo.
    pending: VecDeque<(u64, Undo<T>)>,
    /// Group commit counts this writer as on its way to append (see
    /// `WriterGuard::arriving`).
    pub(crate) arrived: bool,
    /// What changed while this writer held the mutex, published to `hub`
    /// when it is let go.
    pub(crate) notes: Notes,
    pub(crate) hub: Arc<Hub>,
}

impl<T> Writer<T> {
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
        let opened = match options.read_only {
            true => file::open_read_only(vfs, path, &options)?,
            false => file::open(vfs, path, &options, initial)?,
        };
        Store::from_backend(path, options.mode, options.watch, opened)
    }

    /// The store over a backend its constructor opened (`path` names it
    /// in errors: a file, or a server and key).
    pub(crate) fn from_backend(
        path: &Path,
        mode: Mode,
        watch: Watch,
        opened: Opened<T>,
    ) -> Result<Store<T>> {
        let Opened {
            backend,
            state,
            codec,
            recovery,
        } = opened;
        let caps = backend.caps();
        let hub = Arc::new(Hub::new(path.to_path_buf(), T::__FIELDS));
        let store = Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                mode,
                state: RwLock::new(state),
                follows: caps.follows,
                writer: Mutex::new(Writer {
                    backend,
                    codec,
                    batch: ChangeSet::default(),
                    poisoned: false,
                    catch_up_failed: false,
                    pending: VecDeque::new(),
                    arrived: false,
                    notes: Notes::default(),
                    hub: Arc::clone(&hub),
                }),
                group: GroupSync::default(),
                recovery,
                hub,
                snapshot: Mutex::new(None),
                batch_edits: Default::default(),
                watch: Mutex::new(None),
            }),
        };
        {
            let mut writer = WriterGuard::new(store.inner.writer.lock());
            if caps.group_commit {
                if let Some(handle) = writer.backend.sync_handle()? {
                    store.inner.group.set_handle(handle);
                }
            }
            // A journal that grew past the limit before a crash is folded now.
            store.maybe_compact(&mut writer);
            // Dropping the guard releases what open held (shared mode's
            // writer lock).
        }
        store.start_watch(watch);
        Ok(store)
    }

    /// The snapshot file's path (for a Redis store, the server and key).
    /// An associated function, not a method, so that a field named `path`
    /// gets its generated getter: `Store::file_path(&store)`.
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
    /// aside (with the files they were kept in), a hand edit adopted,
    /// unknown keys kept.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// This store's identity in the per-thread record of what is held.
    fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }

    fn reentrant(&self, hold: Hold) -> Error {
        Error::Reentrant {
            path: self.inner.path.clone(),
            advice: hold.advice(),
        }
    }
}
