//! The journal engine as a backend: a snapshot and an append-only journal
//! of the changes since, exclusive or shared between processes.
//!
//! A commit appends one record (`journal::Journal::append_commit`): with
//! `Durability::Sync` in an exclusive store, the record's sync is left to
//! group commit ([`Outcome::Pending`]); in shared mode it is synced before
//! the writer lock is released. The journal is folded into the snapshot
//! past its limit, on `compact()` and at close; a snapshot a person edited
//! is adopted first (`journal::follow`).

use std::time::SystemTime;

use parking_lot::RwLock;

use super::locks::Locks;
use super::{catch_up_failure, Files};
use crate::crypt::Key;
use crate::engine::backend::{Backend, Caps, Intent, Outcome, Proposal, Replaced};
use crate::engine::journal::{self, Journal};
use crate::engine::Failure;
use crate::error::{Error, Result};
use crate::file::vfs::VfsFile;
use crate::history::{Commit, KeepHistory};
use crate::notify::Notes;
use crate::options::Durability;
use crate::schema::Persisted;

pub(crate) struct JournalFiles {
    files: Files,
    journal: Journal,
    locks: Locks,
    /// Fold the journal once it is longer than this (or than twice the
    /// snapshot).
    journal_limit: u64,
    /// Which folded commits are kept (`OpenOptions::keep_history`).
    keep_history: KeepHistory,
}

impl JournalFiles {
    pub(crate) fn new(
        files: Files,
        journal: Journal,
        locks: Locks,
        journal_limit: u64,
        keep_history: KeepHistory,
    ) -> JournalFiles {
        JournalFiles {
            files,
            journal,
            locks,
            journal_limit,
            keep_history,
        }
    }

    fn sync(&self) -> bool {
        self.journal.durability() == Durability::Sync
    }

    /// Compacts when the journal has records; first adopts the snapshot if
    /// a person edited it while the store was open (the edit is never
    /// overwritten).
    fn fold<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<Replaced, Failure> {
        let mut view = self.files.view(state);
        if self.journal.adopt_edit_if_any(&mut view)? {
            return Ok(true);
        }
        if !self.journal.has_records() {
            return Ok(false);
        }
        let len = self.journal.compact(&*state.read(), &self.files.extras)?;
        self.files.snapshot_len = len;
        Ok(true)
    }

    /// Catches up with what other processes did (shared mode). A record
    /// another process wrote that verifies but cannot be applied leaves
    /// memory possibly half-changed: that poisons.
    fn follow<T: Persisted>(&mut self, state: &RwLock<T>, locked: bool) -> Result<bool, Failure> {
        let mut view = self.files.view(state);
        self.journal
            .catch_up(&mut view, locked)
            .map_err(|failure| catch_up_failure(&self.files.path, failure))
    }
}

impl<T: Persisted> Backend<T> for JournalFiles {
    fn caps(&self) -> Caps {
        let shared = self.locks.is_shared();
        Caps {
            follows: shared,
            whole_state: false,
            group_commit: self.sync() && !shared,
        }
    }

    fn begin_write(&mut self, state: &RwLock<T>, intent: Intent<'_>) -> Result<Replaced, Failure> {
        if self.locks.is_shared() {
            self.locks.lock(&self.files.path)?;
            self.follow(state, true)?;
            return Ok(false);
        }
        // An exclusive store looks for a hand edit (not with a batch
        // pending: adopting rewrites the snapshot from memory, and the
        // batch's commit is kept on top of an edit anyway).
        if intent.batch.is_empty() && self.journal.edit_check_due(intent.contended) {
            let mut view = self.files.view(state);
            return self.journal.adopt_edit_if_any(&mut view);
        }
        Ok(false)
    }

    fn end_write(&mut self) {
        self.locks.release();
    }

    fn catch_up(&mut self, state: &RwLock<T>, locked: bool) -> Result<bool, Failure> {
        if !self.locks.is_shared() {
            return Ok(false);
        }
        self.follow(state, locked)
    }

    fn commit(&mut self, state: &RwLock<T>, proposal: Proposal<'_, T>) -> Result<Outcome, Failure> {
        // Shared mode syncs before it releases the writer lock: no group
        // commit across processes. A batch syncs inline.
        let (changes, inline) = match proposal {
            Proposal::Changes(changes) => {
                self.journal.note_base(&*state.read(), changes, false);
                (changes, self.locks.is_shared())
            }
            Proposal::Batch(changes) => {
                self.journal.note_base(&*state.read(), changes, true);
                (changes, true)
            }
            Proposal::Whole(_) => {
                return Err(Failure::clean(Error::Unsupported {
                    path: self.files.path.clone(),
                    reason: "the journal engine records changes, not whole states".into(),
                }))
            }
        };
        let sync = self.sync();
        let len = self
            .journal
            .append_commit(T::__FIELDS, changes, sync && inline)?;
        Ok(match sync && !inline {
            true => Outcome::Pending { len },
            false => Outcome::Durable,
        })
    }

    fn maybe_compact(&mut self, state: &RwLock<T>) -> Result<Replaced, Failure> {
        let limit = self
            .journal_limit
            .max(self.files.snapshot_len.saturating_mul(2));
        if self.journal.len() <= limit {
            return Ok(false);
        }
        self.fold(state)
    }

    fn compact(&mut self, state: &RwLock<T>) -> Result<Replaced, Failure> {
        self.fold(state)
    }

    fn close(&mut self, state: &RwLock<T>, last_handle: bool) -> Result<Replaced, Failure> {
        if self.locks.is_shared() && !last_handle {
            return Ok(false);
        }
        // In shared mode, only the last participant folds (the others may
        // be appending); it holds the store exclusively meanwhile.
        let Some(_alone) = self.locks.last_out(&*self.files.vfs, &self.files.path)? else {
            return Ok(false);
        };
        self.fold(state)
    }

    fn drop_last(&mut self, state: &RwLock<T>) {
        if self.locks.given_up() {
            return;
        }
        let path = self.files.path.clone();
        let alone = match self.locks.is_shared() {
            false => self.locks.last_out(&*self.files.vfs, &path),
            true => self
                .locks
                .lock(&path)
                .map_err(Failure::clean)
                .and_then(|()| self.follow(state, true))
                .map_err(|failure| failure.error)
                .and_then(|_| self.locks.last_out(&*self.files.vfs, &path)),
        };
        let folded = match alone {
            Ok(Some(_alone)) => self.fold(state).map(drop).map_err(|f| f.error),
            Ok(None) => Ok(()),
            Err(e) => {
                log::warn!("`{}`: not folded at close: {e}", path.display());
                Ok(())
            }
        };
        if let Err(e) = folded {
            log::warn!(
                "compaction of `{}` at drop failed (the journal keeps every commit): {e}",
                path.display()
            );
        }
        self.locks.release();
    }

    /// Wraps the data key with `key`, then writes every file anew with the
    /// new envelope: a compaction for the snapshot and the journal, and
    /// each history file.
    fn rekey(&mut self, state: &RwLock<T>, key: &Key) -> Result<Replaced, Failure> {
        self.files.crypt()?.rewrap(key, &self.files.path)?;
        let len = self.journal.compact(&*state.read(), &self.files.extras)?;
        self.files.snapshot_len = len;
        journal::rewrap_history(&self.files.vfs, &self.files.path, &self.files.codec)?;
        Ok(true)
    }

    fn take_notes(&mut self) -> Notes {
        std::mem::take(&mut self.files.notes)
    }

    fn seq(&self) -> u64 {
        self.journal.seq()
    }

    /// The snapshot; in shared mode also the journal others append to
    /// (alone, this process's own appends would only wake the watch).
    fn watched_files(&self) -> Vec<std::path::PathBuf> {
        let mut files = self.journal.files();
        if !self.locks.is_shared() {
            files.truncate(1);
        }
        files
    }

    fn sync_handle(&self) -> Result<Option<Box<dyn VfsFile>>> {
        self.journal.sync_handle().map(Some)
    }

    fn history(&mut self) -> Result<Vec<Commit>> {
        self.locks.lock(&self.files.path)?;
        self.files
            .with_history(self.keep_history, 1, |history, _, _| Ok(history.commits()))
    }

    fn state_at(&mut self, seq: u64) -> Result<T> {
        self.locks.lock(&self.files.path)?;
        self.files
            .with_history(self.keep_history, 1, |history, vfs, codec| {
                history.state_at(vfs, codec, seq)
            })
    }

    fn state_as_of(&mut self, time: SystemTime) -> Result<T> {
        self.locks.lock(&self.files.path)?;
        let ms = millis(time);
        self.files
            .with_history(self.keep_history, 1, |history, vfs, codec| {
                history.state_as_of(vfs, codec, ms)
            })
    }
}

/// `time` in milliseconds since the Unix epoch (0 before it).
pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
