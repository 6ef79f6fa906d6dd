//! The snapshot engine: every commit rewrites the whole file atomically
//! (temp file, rename; with `Durability::Sync` also fsync of the file
//! before and of the directory after the rename). No sidecar files but the
//! lock. A commit costs the size of the state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::journal::View;
use super::Failure;
use crate::error::{IoContext, Result};
use crate::file::atomic::write_atomic;
use crate::file::vfs::{read_with_id, FileId, Vfs};
use crate::format::{Codec, Extras};
use crate::notify::replace_noting;
use crate::options::Durability;
use crate::report::RecoveryEvent;
use crate::schema::Persisted;

pub(crate) struct SnapshotEngine {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    codec: Codec,
    durability: Durability,
    buf: Vec<u8>,
    /// The file as this engine last read or wrote it.
    id: Option<FileId>,
}

impl SnapshotEngine {
    pub(crate) fn new(
        vfs: &Arc<dyn Vfs>,
        path: &Path,
        codec: Codec,
        durability: Durability,
    ) -> SnapshotEngine {
        SnapshotEngine {
            vfs: Arc::clone(vfs),
            path: path.to_path_buf(),
            codec,
            durability,
            buf: Vec::new(),
            id: None,
        }
    }

    /// Records the file as it is now (after open).
    pub(crate) fn note_file(&mut self) -> Result<()> {
        self.id = self.vfs.stat(&self.path).context("stat", &self.path)?;
        Ok(())
    }

    /// Reloads the state when the file is no longer the one this engine
    /// last read or wrote: another process's commit, or an edit by hand.
    /// A file that does not parse is an error and is left as it is.
    pub(crate) fn catch_up<T: Persisted>(&mut self, view: &mut View<'_, T>) -> Result<bool> {
        let now = self.vfs.stat(&self.path).context("stat", &self.path)?;
        if now.is_none() || now == self.id {
            return Ok(false);
        }
        let Some((bytes, id)) = read_with_id(&*self.vfs, &self.path)? else {
            return Ok(false);
        };
        let (state, extras) = self.codec.decode_snapshot::<T>(&self.path, &bytes)?;
        if let Some(crypt) = self.codec.crypt() {
            crypt.adopt(&bytes);
        }
        RecoveryEvent::warn_unknown_keys(&self.path, &extras);
        replace_noting(
            view.state,
            state,
            view.notes,
            view.outside,
            &self.codec,
            &self.path,
        );
        *view.extras = extras;
        *view.snapshot_len = bytes.len() as u64;
        self.id = Some(id);
        Ok(true)
    }

    /// Replaces the file with `state`.
    pub(crate) fn write<T: Persisted>(
        &mut self,
        state: &T,
        extras: &Extras,
    ) -> std::result::Result<(), Failure> {
        self.codec
            .encode_snapshot(&self.path, state, extras, &mut self.buf)
            .map_err(Failure::clean)?;
        write_atomic(
            &self.vfs,
            &self.path,
            &self.buf,
            self.durability == Durability::Sync,
        )
        .map_err(Failure::classify)?;
        // The file is ours now; if the stat fails, the next catch-up
        // reloads what was just written, which is harmless.
        self.id = self.vfs.stat(&self.path).ok().flatten();
        Ok(())
    }
}
