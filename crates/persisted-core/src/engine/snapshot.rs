//! The snapshot engine: every commit rewrites the whole file atomically
//! (temp file, rename; with `Durability::Sync` also fsync of the file
//! before and of the directory after the rename). No sidecar files but the
//! lock. A commit costs the size of the state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Failure;
use crate::file::atomic::write_atomic;
use crate::file::vfs::Vfs;
use crate::format::{Codec, Extras};
use crate::options::Durability;
use crate::schema::Persisted;

pub(crate) struct SnapshotEngine {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    codec: Codec,
    durability: Durability,
    buf: Vec<u8>,
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
        }
    }

    /// Replaces the file with `state`.
    pub(crate) fn write<T: Persisted>(
        &mut self,
        state: &T,
        extras: &Extras,
    ) -> Result<(), Failure> {
        self.codec
            .encode_snapshot(&self.path, state, extras, &mut self.buf)
            .map_err(Failure::clean)?;
        write_atomic(
            &self.vfs,
            &self.path,
            &self.buf,
            self.durability == Durability::Sync,
        )
        .map_err(Failure::classify)
    }
}
