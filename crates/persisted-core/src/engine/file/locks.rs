//! Who else may write a store's files, and the locks a handle holds for it.
//!
//! * **Exclusive** (the default): the lifetime lock `<file>.lock` is held
//!   exclusively; nobody else writes, so nothing needs catching up.
//! * **Shared** (`.shared(true)`): every participant holds the lifetime
//!   lock shared (so an exclusive opener is refused, and the reverse). Each
//!   commit takes the writer lock `<file>.writer.lock` exclusively (after
//!   this process's own writer mutex), catches up with everything other
//!   processes did, makes its change, and releases it: one order for every
//!   commit of every process, and `update` closures that run exactly once.
//! * **Read-only** (`.read_only(true)`, `engine::file::read_only`): no
//!   lock at all.

use std::path::Path;
use std::time::Duration;

use crate::error::{IoContext, Result};
use crate::file::atomic::sibling;
use crate::file::lock::{LockFile, WriterLock};
use crate::file::vfs::Vfs;

/// The locks a writing handle holds.
pub(crate) enum Locks {
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
}

impl Locks {
    /// Takes the lifetime lock of the store at `path`, and in shared mode
    /// opens the writer lock and takes it too (open's recovery may cut,
    /// reset or create files: nobody else may write meanwhile; the
    /// store's writer guard releases it).
    pub(crate) fn acquire(
        vfs: &dyn Vfs,
        path: &Path,
        shared: bool,
        timeout: Duration,
    ) -> Result<Locks> {
        let lock = sibling(path, ".lock");
        if !shared {
            return Ok(Locks::Exclusive {
                _lifetime: LockFile::acquire(vfs, &lock, path, false)?,
            });
        }
        let lifetime = LockFile::acquire(vfs, &lock, path, true)?;
        let writer_lock = WriterLock::open(vfs, path)?;
        writer_lock.lock(path, timeout)?;
        Ok(Locks::Shared {
            lifetime: Some(lifetime),
            writer_lock,
            timeout,
            held: true,
        })
    }

    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Locks::Shared { .. })
    }

    /// Shared mode: this handle's hold was given up by its last close.
    pub(crate) fn given_up(&self) -> bool {
        matches!(self, Locks::Shared { lifetime: None, .. })
    }

    /// Shared mode: takes the writer lock (waiting at most the lock
    /// timeout) unless this handle holds it. Nothing to do when exclusive.
    pub(crate) fn lock(&mut self, path: &Path) -> Result<()> {
        if let Locks::Shared {
            writer_lock,
            timeout,
            held,
            ..
        } = self
        {
            if !*held {
                writer_lock.lock(path, *timeout)?;
                *held = true;
            }
        }
        Ok(())
    }

    /// Releases the writer lock if this handle holds it.
    pub(crate) fn release(&mut self) {
        if let Locks::Shared {
            writer_lock, held, ..
        } = self
        {
            if std::mem::take(held) {
                if let Err(e) = writer_lock.unlock() {
                    // Closing the descriptor releases it at the latest.
                    log::error!("{e}");
                }
            }
        }
    }

    /// At the close of the last handle of a shared store: gives up this
    /// process's shared hold and, if no other participant has the store
    /// open, holds it exclusively while the caller compacts. Returns that
    /// hold; exclusive handles hold it already (`Some` of nothing to keep).
    pub(crate) fn last_out(&mut self, vfs: &dyn Vfs, path: &Path) -> Result<Option<LastOut>> {
        let Locks::Shared { lifetime, .. } = self else {
            return Ok(Some(LastOut { _hold: None }));
        };
        if lifetime.is_none() {
            return Ok(None);
        }
        drop(lifetime.take());
        let lock = sibling(path, ".lock");
        Ok(vfs
            .try_lock(&lock, false)
            .context("lock", &lock)?
            .map(|guard| LastOut {
                _hold: Some(LockFile::from_guard(guard)),
            }))
    }
}

/// The exclusive hold of a store its last participant compacts under.
pub(crate) struct LastOut {
    _hold: Option<LockFile>,
}
