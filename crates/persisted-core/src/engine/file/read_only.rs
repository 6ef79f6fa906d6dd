//! `.read_only(true)`: a backend that follows a store's files without any
//! lock and never writes: the journal's records as they are appended, the
//! files a compaction puts in place, or a snapshot-engine file as it is
//! replaced (switching to the journal as soon as one appears). Writes are
//! refused with [`Error::ReadOnly`].

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;

use super::journal_files::millis;
use super::sealing::{self, Sealing};
use super::{catch_up_failure, Files};
use crate::crypt::Key;
use crate::engine::backend::{Backend, Caps, Intent, Opened, Outcome, Proposal, Replaced};
use crate::engine::journal::{journal_path, Journal};
use crate::engine::snapshot::SnapshotEngine;
use crate::engine::Failure;
use crate::error::{Error, IoContext, Result};
use crate::file::vfs::Vfs;
use crate::format::Codec;
use crate::history::{Commit, KeepHistory};
use crate::notify::{replace_noting, Notes, Origin};
use crate::options::OpenOptions;
use crate::report::Recovery;
use crate::schema::Persisted;

/// How often a read-only store reads its history again when a compaction
/// replaced the files while it read them.
const RELOAD_TRIES: u32 = 50;

/// What a read-only handle follows.
enum Followed {
    Journal(Box<Journal>),
    /// A store without a journal (the snapshot engine, so far).
    Snapshot(SnapshotEngine),
}

pub(crate) struct ReadOnlyFiles {
    files: Files,
    followed: Followed,
    keep_history: KeepHistory,
}

/// Opens the store at `path` read-only: no lock, nothing written; the
/// files as they are.
pub(crate) fn open_read_only<T: Persisted>(
    vfs: Arc<dyn Vfs>,
    path: &Path,
    options: &OpenOptions<T>,
) -> Result<Opened<T>> {
    let codec = match sealing::codec(
        &vfs,
        path,
        options,
        Codec::new(options.resolve_format(path)?, path)?,
    )? {
        Sealing::Ready(codec) => codec,
        // Nothing is written read-only: a plain store stays plain.
        Sealing::ConvertFirst(_) => {
            return Err(Error::NotEncrypted {
                path: path.to_path_buf(),
            })
        }
    };
    let (followed, state, extras, snapshot_len) =
        match Journal::open_read_only::<T>(&vfs, path, codec.clone())? {
            Some((journal, state, extras, len)) => {
                (Followed::Journal(Box::new(journal)), state, extras, len)
            }
            None => {
                let bytes = vfs.read(path).context("read", path)?.ok_or_else(|| {
                    Error::io("open read-only", path, io::ErrorKind::NotFound.into())
                })?;
                let (state, extras) = codec.decode_snapshot::<T>(path, &bytes)?;
                let mut engine = SnapshotEngine::new(&vfs, path, codec.clone(), options.durability);
                engine.note_file()?;
                let len = bytes.len() as u64;
                (Followed::Snapshot(engine), state, extras, len)
            }
        };
    let files = Files {
        vfs,
        path: path.to_path_buf(),
        codec: codec.clone(),
        extras,
        snapshot_len,
        recover: options.recover,
        notes: Notes::default(),
        outside: Origin::OtherProcess,
    };
    Ok(Opened {
        backend: Box::new(ReadOnlyFiles {
            files,
            followed,
            keep_history: options.keep_history,
        }),
        state,
        codec,
        recovery: Recovery::default(),
    })
}

impl ReadOnlyFiles {
    fn refused(&self) -> Error {
        Error::ReadOnly {
            path: self.files.path.clone(),
        }
    }
}

impl<T: Persisted> Backend<T> for ReadOnlyFiles {
    fn caps(&self) -> Caps {
        Caps {
            follows: true,
            whole_state: false,
            group_commit: false,
        }
    }

    fn begin_write(
        &mut self,
        _state: &RwLock<T>,
        _intent: Intent<'_>,
    ) -> Result<Replaced, Failure> {
        Err(Failure::clean(self.refused()))
    }

    fn end_write(&mut self) {}

    fn catch_up(&mut self, state: &RwLock<T>, _locked: bool) -> Result<bool, Failure> {
        if let Followed::Snapshot(_) = self.followed {
            let journal = journal_path(&self.files.path);
            if self
                .files
                .vfs
                .stat(&journal)
                .context("stat", &journal)?
                .is_some()
            {
                if let Some((journal, next, extras, len)) = Journal::open_read_only::<T>(
                    &self.files.vfs,
                    &self.files.path,
                    self.files.codec.clone(),
                )? {
                    self.followed = Followed::Journal(Box::new(journal));
                    replace_noting(
                        state,
                        next,
                        &mut self.files.notes,
                        Origin::OtherProcess,
                        &self.files.codec,
                        &self.files.path,
                    );
                    self.files.extras = extras;
                    self.files.snapshot_len = len;
                    return Ok(true);
                }
            }
        }
        let mut view = self.files.view(state);
        match &mut self.followed {
            Followed::Journal(journal) => journal
                .catch_up(&mut view, false)
                .map_err(|failure| catch_up_failure(&self.files.path, failure)),
            Followed::Snapshot(engine) => Ok(engine.catch_up(&mut view)?),
        }
    }

    fn commit(
        &mut self,
        _state: &RwLock<T>,
        _proposal: Proposal<'_, T>,
    ) -> Result<Outcome, Failure> {
        Err(Failure::clean(self.refused()))
    }

    fn rekey(&mut self, _state: &RwLock<T>, _key: &Key) -> Result<Replaced, Failure> {
        Err(Failure::clean(self.refused()))
    }

    fn take_notes(&mut self) -> Notes {
        std::mem::take(&mut self.files.notes)
    }

    fn seq(&self) -> u64 {
        match &self.followed {
            Followed::Journal(journal) => journal.seq(),
            Followed::Snapshot(_) => 0,
        }
    }

    fn watched_files(&self) -> Vec<std::path::PathBuf> {
        vec![
            self.files.path.clone(),
            crate::engine::journal::journal_path(&self.files.path),
        ]
    }

    fn history(&mut self) -> Result<Vec<Commit>> {
        self.files
            .with_history(self.keep_history, RELOAD_TRIES, |history, _, _| {
                Ok(history.commits())
            })
    }

    fn state_at(&mut self, seq: u64) -> Result<T> {
        self.files
            .with_history(self.keep_history, RELOAD_TRIES, |history, vfs, codec| {
                history.state_at(vfs, codec, seq)
            })
    }

    fn state_as_of(&mut self, time: SystemTime) -> Result<T> {
        let ms = millis(time);
        self.files
            .with_history(self.keep_history, RELOAD_TRIES, |history, vfs, codec| {
                history.state_as_of(vfs, codec, ms)
            })
    }
}
