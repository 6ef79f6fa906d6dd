//! The one seam between [`Store`](crate::Store) and the places a state
//! lives: the file journal, the whole-file snapshot, a read-only follower of
//! either, Redis. `Store` keeps what is the same for every backend (the
//! state and its reads, the re-entrancy guard, `Mode::Batch` changes,
//! applying a mutation and its undo, the poison latch, the waiting half of
//! group commit) and asks its `Box<dyn Backend<T>>` for the rest; it never
//! asks which backend it has, only what it can do ([`Caps`]).
//!
//! Learnt from redb's `StorageBackend` (a narrow object-safe trait, the
//! cache and the fsync-failed latch above it), object_store's `ObjectStore`
//! (one trait object for many stores; a write at a stale version is a
//! precondition failure the caller resolves, here inside the backend) and
//! OpenDAL's capabilities (ask, do not match). A backend is made by one
//! constructor of its own module that checks its own options
//! (`engine::file::open`, `engine::file::open_read_only`, `remote::open`).

use std::time::SystemTime;

use parking_lot::RwLock;

use super::Failure;
use crate::change::Changes;
use crate::changeset::ChangeSet;
use crate::crypt::Key;
use crate::error::Result;
use crate::file::vfs::VfsFile;
use crate::format::Codec;
use crate::history::Commit;
use crate::notify::Notes;
use crate::report::Recovery;

/// What a backend does, for `Store` to ask instead of matching on kinds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Caps {
    /// Others may change the state (other processes, other hosts, the
    /// files a read-only handle follows): reads catch up first.
    pub(crate) follows: bool,
    /// A commit writes the whole state: [`Backend::commit`] is given
    /// [`Proposal::Whole`], the state after the change.
    pub(crate) whole_state: bool,
    /// `Durability::Sync` commits of this process share syncs (group
    /// commit): a commit returns [`Outcome::Pending`], and
    /// [`Backend::sync_handle`] gives the file the group syncs.
    pub(crate) group_commit: bool,
}

/// What a write about to begin needs ordered before it.
pub(crate) struct Intent<'a> {
    /// An `update` or transaction closure: it must run once, on the
    /// current state, with no other writer anywhere in between (what the
    /// Redis backend takes its lease for; the file backends order every
    /// write alike).
    #[allow(dead_code)] // read by the Redis backend only
    pub(crate) closure: bool,
    /// The `Mode::Batch` changes not committed yet (kept on top of what a
    /// catch-up reloads).
    pub(crate) batch: &'a ChangeSet,
    /// Another writer of this process held the store when this one came:
    /// part of a burst of commits.
    pub(crate) contended: bool,
}

/// A commit, as a backend is given it.
pub(crate) enum Proposal<'a, T> {
    /// Changes made on the state in memory, applied to it once committed.
    Changes(&'a dyn Changes),
    /// A `Mode::Batch` commit: the state in memory already holds them.
    Batch(&'a dyn Changes),
    /// The whole state after the change ([`Caps::whole_state`]).
    Whole(&'a T),
}

/// How far a commit got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// As durable as the store's `Durability` promises: apply it.
    Durable,
    /// Written (a record of `len` bytes), durable once a sync of the group
    /// covers it ([`Caps::group_commit`]).
    Pending { len: u64 },
}

/// Whether an operation replaced the files a store writes to (a
/// compaction, an adopted hand edit): every commit before it is then
/// durable, and group commit syncs the new journal.
pub(crate) type Replaced = bool;

/// A backend, made by its module's constructor.
pub(crate) struct Opened<T> {
    pub(crate) backend: Box<dyn Backend<T>>,
    pub(crate) state: T,
    /// How values are encoded (to compare fields without `PartialEq`).
    pub(crate) codec: Codec,
    /// What opening found and did.
    pub(crate) recovery: Recovery,
}

/// The places a state lives. Object-safe; every method is called with the
/// store's writer mutex held, so a backend needs no lock of its own.
pub(crate) trait Backend<T>: Send {
    /// What this backend does.
    fn caps(&self) -> Caps;

    /// Before a write: takes what orders it against every other writer
    /// (shared mode's writer lock; on Redis, for a closure, the lease) and
    /// brings `state` up to date, so the write is made on the current
    /// state. A refused write (read-only) is an error here.
    fn begin_write(&mut self, state: &RwLock<T>, intent: Intent<'_>) -> Result<Replaced, Failure>;

    /// Gives up what [`begin_write`](Backend::begin_write) took, if still
    /// held (the Redis lease before the file lock). Called when the
    /// writer mutex is released; may be called when nothing is held.
    fn end_write(&mut self);

    /// Brings `state` up to date with what others committed (reads,
    /// `refresh()`); `locked`: this handle holds the writer lock. Returns
    /// whether the state changed.
    fn catch_up(&mut self, state: &RwLock<T>, locked: bool) -> Result<bool, Failure>;

    /// Makes a commit durable (or [`Outcome::Pending`]), without applying
    /// it to `state` (the caller does, once this returns `Ok`). A backend
    /// that must first catch up with another writer's commit (Redis, at a
    /// version another client moved on) does, and commits on top of it.
    fn commit(&mut self, state: &RwLock<T>, proposal: Proposal<'_, T>) -> Result<Outcome, Failure>;

    /// After a commit: folds the journal if it outgrew its limit.
    fn maybe_compact(&mut self, state: &RwLock<T>) -> Result<Replaced, Failure> {
        let _ = state;
        Ok(false)
    }

    /// `compact()`: folds the journal now (adopting a hand edit first).
    fn compact(&mut self, state: &RwLock<T>) -> Result<Replaced, Failure> {
        let _ = state;
        Ok(false)
    }

    /// `close()`; `last_handle`: no other handle of this store is open in
    /// this process (shared mode folds only as the last participant).
    fn close(&mut self, state: &RwLock<T>, last_handle: bool) -> Result<Replaced, Failure> {
        let _ = (state, last_handle);
        Ok(false)
    }

    /// The last handle was dropped without `close()`: best effort, logs
    /// what it could not do.
    fn drop_last(&mut self, state: &RwLock<T>) {
        let _ = state;
    }

    /// `Store::rekey`: the data key wrapped by `key` from now on, in every
    /// file. Unsupported by a backend that does not encrypt.
    fn rekey(&mut self, state: &RwLock<T>, key: &Key) -> Result<Replaced, Failure>;

    /// What catching up changed since the last call (other processes'
    /// commits, a person's edit, other clients' commits), for
    /// subscribers.
    fn take_notes(&mut self) -> Notes {
        Notes::default()
    }

    /// The newest commit's sequence number (the version on a server); 0
    /// where commits are not numbered.
    fn seq(&self) -> u64 {
        0
    }

    /// The files a watch looks at (none: a server, polled).
    fn watched_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// The file group commit syncs ([`Caps::group_commit`]).
    fn sync_handle(&self) -> Result<Option<Box<dyn VfsFile>>> {
        Ok(None)
    }

    /// The commits kept in the history, oldest first.
    fn history(&mut self) -> Result<Vec<Commit>>;

    /// The state right after commit `seq`.
    fn state_at(&mut self, seq: u64) -> Result<T>;

    /// The state as of `time`.
    fn state_as_of(&mut self, time: SystemTime) -> Result<T>;
}
