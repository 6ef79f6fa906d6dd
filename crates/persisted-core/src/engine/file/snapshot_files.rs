//! The snapshot engine as a backend: every commit rewrites the whole file
//! atomically (`engine::snapshot`), exclusive or shared between processes.
//! Before every write it reloads the file if it changed (another process's
//! commit, or a person's edit), keeping a pending `Mode::Batch` on top of
//! it, so no commit overwrites an edit.

use std::time::SystemTime;

use parking_lot::RwLock;

use super::journal_files::millis;
use super::locks::Locks;
use super::Files;
use crate::change::Payload;
use crate::crypt::Key;
use crate::engine::backend::{Backend, Caps, Intent, Outcome, Proposal, Replaced};
use crate::engine::snapshot::SnapshotEngine;
use crate::engine::Failure;
use crate::error::{Error, Result};
use crate::history::{Commit, KeepHistory};
use crate::notify::Notes;
use crate::schema::Persisted;

pub(crate) struct SnapshotFiles {
    files: Files,
    engine: SnapshotEngine,
    locks: Locks,
}

impl SnapshotFiles {
    pub(crate) fn new(files: Files, engine: SnapshotEngine, locks: Locks) -> SnapshotFiles {
        SnapshotFiles {
            files,
            engine,
            locks,
        }
    }
}

impl<T: Persisted> Backend<T> for SnapshotFiles {
    fn caps(&self) -> Caps {
        Caps {
            follows: self.locks.is_shared(),
            whole_state: true,
            group_commit: false,
        }
    }

    fn begin_write(&mut self, state: &RwLock<T>, intent: Intent<'_>) -> Result<Replaced, Failure> {
        self.locks.lock(&self.files.path)?;
        // A batch not yet committed is kept on top of what is reloaded: its
        // changes are encoded now and applied again to the new state.
        let rebase = match intent.batch.is_empty() {
            true => None,
            false => {
                let mut payload = Vec::new();
                self.files.codec.encode_payload(
                    &self.files.path,
                    &Payload {
                        fields: T::__FIELDS,
                        changes: &intent.batch.changes(&*state.read()),
                    },
                    &mut payload,
                )?;
                Some(payload)
            }
        };
        let mut view = self.files.view(state);
        let reloaded = self.engine.catch_up(&mut view)?;
        if let (true, Some(payload)) = (reloaded, rebase) {
            self.files
                .codec
                .replay_payload(&payload, &mut *state.write())
                .map_err(|e| Error::Parse {
                    path: self.files.path.clone(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "the changes not yet committed do not apply to the file as it now \
                         is: {}",
                        e.message
                    ),
                })?;
        }
        Ok(false)
    }

    fn end_write(&mut self) {
        self.locks.release();
    }

    fn catch_up(&mut self, state: &RwLock<T>, _locked: bool) -> Result<bool, Failure> {
        let mut view = self.files.view(state);
        Ok(self.engine.catch_up(&mut view)?)
    }

    fn commit(
        &mut self,
        _state: &RwLock<T>,
        proposal: Proposal<'_, T>,
    ) -> Result<Outcome, Failure> {
        let Proposal::Whole(next) = proposal else {
            return Err(Failure::clean(Error::Unsupported {
                path: self.files.path.clone(),
                reason: "the snapshot engine writes whole states, not changes".into(),
            }));
        };
        self.engine.write(next, &self.files.extras)?;
        Ok(Outcome::Durable)
    }

    /// Wraps the data key with `key` and rewrites the file with it.
    fn rekey(&mut self, state: &RwLock<T>, key: &Key) -> Result<Replaced, Failure> {
        self.files.crypt()?.rewrap(key, &self.files.path)?;
        self.engine.write(&*state.read(), &self.files.extras)?;
        Ok(false)
    }

    /// Keeps no records: an empty history.
    fn take_notes(&mut self) -> Notes {
        std::mem::take(&mut self.files.notes)
    }

    fn watched_files(&self) -> Vec<std::path::PathBuf> {
        vec![self.files.path.clone()]
    }

    fn history(&mut self) -> Result<Vec<Commit>> {
        self.files
            .with_history(KeepHistory::None, 1, |history, _, _| Ok(history.commits()))
    }

    fn state_at(&mut self, seq: u64) -> Result<T> {
        self.files
            .with_history(KeepHistory::None, 1, |history, vfs, codec| {
                history.state_at(vfs, codec, seq)
            })
    }

    fn state_as_of(&mut self, time: SystemTime) -> Result<T> {
        let ms = millis(time);
        self.files
            .with_history(KeepHistory::None, 1, |history, vfs, codec| {
                history.state_as_of(vfs, codec, ms)
            })
    }
}
