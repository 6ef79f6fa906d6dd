//! Who else may write the files, and what a handle does about it.
//!
//! * **Exclusive** (the default): the lifetime lock `<file>.lock` is held
//!   exclusively; nobody else writes, so nothing needs catching up.
//! * **Shared** (`.shared(true)`): every participant holds the lifetime
//!   lock shared (so an exclusive opener is refused, and the reverse). Each
//!   commit takes the writer lock `<file>.writer.lock` exclusively (after
//!   this process's own writer mutex), catches up with everything other
//!   processes did, makes its change, and releases it: one order for every
//!   commit of every process, and `update` closures that run exactly once.
//! * **Read-only** (`.read_only(true)`): no lock at all; reads and
//!   `refresh()` follow the files; writes are refused.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::change::Payload;
use crate::engine::journal::group::GroupSync;
use crate::engine::journal::{journal_path, Journal, View};
use crate::engine::Failure;
use crate::error::{Error, IoContext, Result};
use crate::file::lock::{LockFile, WriterLock};
use crate::file::vfs::Vfs;
use crate::schema::Persisted;
use crate::store::{Backend, Writer};

/// The locks a handle holds, by how it shares the store.
pub(crate) enum Sharing {
    Exclusive {
        _lifetime: LockFile,
    },
    Shared {
        /// `None` once given up at the last participant's close.
        lifetime: Option<LockFile>,
        writer_lock: WriterLock,
        timeout: Duration,
        /// This handle holds the writer lock now.
        held: bool,
    },
    ReadOnly,
    /// The Redis backend: the server orders commits (a version check, and a
    /// lease for closures); no file lock.
    #[cfg(feature = "redis")]
    Remote,
}

impl Sharing {
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Sharing::Shared { .. })
    }
}

/// The writer mutex and, in shared mode, the writer lock: taken together,
/// released together (the file lock first) when this guard drops.
pub(crate) struct WriterGuard<'a, T> {
    guard: MutexGuard<'a, Writer<T>>,
    /// Group commit, where the writer counts as on its way to appending
    /// (`Writer::arrived`) until its record is written or this drops.
    group: Option<&'a GroupSync>,
}

impl<'a, T> WriterGuard<'a, T> {
    /// The writer mutex alone, without the file lock.
    pub(crate) fn new(guard: MutexGuard<'a, Writer<T>>) -> Self {
        WriterGuard { guard, group: None }
    }

    /// The writer mutex, taken by a writer that group commit counts as on
    /// its way (so a syncing leader waits for its record) from before it
    /// waits for the mutex.
    pub(crate) fn arriving(mutex: &'a Mutex<Writer<T>>, group: &'a GroupSync) -> Self {
        let counted = group.arrive();
        let mut guard = mutex.lock();
        guard.arrived = counted;
        WriterGuard {
            guard,
            group: Some(group),
        }
    }

    /// Shared mode: takes the writer lock (waiting at most the lock
    /// timeout). Nothing to do in the other modes.
    pub(crate) fn lock_file(&mut self, path: &Path) -> Result<()> {
        if let Sharing::Shared {
            writer_lock,
            timeout,
            held,
            ..
        } = &mut self.guard.sharing
        {
            if !*held {
                writer_lock.lock(path, *timeout)?;
                *held = true;
            }
        }
        Ok(())
    }
}

impl<T> Deref for WriterGuard<'_, T> {
    type Target = Writer<T>;
    fn deref(&self) -> &Writer<T> {
        &self.guard
    }
}

impl<T> DerefMut for WriterGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut Writer<T> {
        &mut self.guard
    }
}

impl<T> Drop for WriterGuard<'_, T> {
    fn drop(&mut self) {
        if let (true, Some(group)) = (std::mem::take(&mut self.guard.arrived), self.group) {
            group.depart();
        }
        #[cfg(feature = "redis")]
        if let Backend::Redis(remote) = &mut self.guard.backend {
            remote.release();
        }
        release(&mut self.guard.sharing);
    }
}

/// Releases the writer lock if this handle holds it.
pub(crate) fn release(sharing: &mut Sharing) {
    if let Sharing::Shared {
        writer_lock, held, ..
    } = sharing
    {
        if std::mem::take(held) {
            if let Err(e) = writer_lock.unlock() {
                // Closing the descriptor releases it at the latest.
                log::error!("{e}");
            }
        }
    }
}

/// Catches up with what other processes did to the files (see
/// `engine::journal::follow`); `locked`: this handle holds the writer lock
/// (or the store is exclusive). A read-only handle of a store without a
/// journal switches to the journal as soon as one appears. Returns whether
/// the state changed. A record that verifies but cannot be applied leaves
/// memory possibly half-changed: the store is poisoned.
pub(crate) fn catch_up<T: Persisted>(
    vfs: &std::sync::Arc<dyn Vfs>,
    path: &Path,
    state: &RwLock<T>,
    writer: &mut Writer<T>,
    locked: bool,
) -> Result<bool> {
    if let (Sharing::ReadOnly, Backend::Snapshot(_)) = (&writer.sharing, &writer.backend) {
        let journal = journal_path(path);
        if vfs.stat(&journal).context("stat", &journal)?.is_some() {
            if let Some((journal, next, extras, len)) =
                Journal::open_read_only::<T>(vfs, path, writer.codec())?
            {
                writer.backend = Backend::Journal(journal);
                *state.write() = next;
                writer.extras = extras;
                writer.snapshot_len = len;
                return Ok(true);
            }
        }
    }
    // A batch not yet committed is kept on top of what the snapshot engine
    // reloads (another process's commit, a person's edit): its changes are
    // encoded now and applied again to the new state.
    let rebase = match (&writer.backend, writer.batch.is_empty()) {
        (Backend::Snapshot(_), false) => {
            let mut payload = Vec::new();
            writer.codec().encode_payload(
                path,
                &Payload {
                    fields: T::__FIELDS,
                    changes: &writer.batch.changes(&*state.read()),
                },
                &mut payload,
            )?;
            Some(payload)
        }
        _ => None,
    };
    let codec = writer.codec();
    let Writer {
        backend,
        extras,
        snapshot_len,
        recover,
        ..
    } = writer;
    let mut view = View {
        state,
        extras,
        snapshot_len,
        recover: *recover,
    };
    let result = match backend {
        Backend::Journal(journal) => journal.catch_up(&mut view, locked),
        Backend::Snapshot(engine) => engine.catch_up(&mut view).map_err(Failure::from),
        #[cfg(feature = "redis")]
        Backend::Redis(remote) => remote.catch_up(&mut view).map_err(Failure::from),
    };
    let result = result.map_err(|failure| writer.fail(failure));
    if let (Ok(true), Some(payload)) = (&result, rebase) {
        codec
            .replay_payload(&payload, &mut *state.write())
            .map_err(|e| Error::Parse {
                path: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!(
                    "the changes not yet committed do not apply to the file as it now is: {}",
                    e.message
                ),
            })?;
    }
    if let Err(Error::Parse { path: failed, .. }) = &result {
        if *failed == journal_path(path) && !writer.poisoned {
            writer.poisoned = true;
            log::error!(
                "store `{}` poisoned until reopened: a record another process wrote \
                 cannot be applied",
                path.display()
            );
        }
    }
    result
}

/// At the close of the last handle of a shared store: gives up this
/// process's shared hold and, if no other participant has the store open,
/// holds it exclusively while the caller compacts. Returns that hold.
pub(crate) fn last_out(
    vfs: &dyn Vfs,
    path: &Path,
    sharing: &mut Sharing,
) -> Result<Option<LockFile>> {
    let Sharing::Shared { lifetime, .. } = sharing else {
        return Ok(None);
    };
    drop(lifetime.take());
    let lock = crate::file::atomic::sibling(path, ".lock");
    Ok(vfs
        .try_lock(&lock, false)
        .context("lock", &lock)?
        .map(LockFile::from_guard))
}
