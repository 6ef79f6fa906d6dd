//! Folding the journal (`compact`), closing, and dropping the last handle.

use std::sync::Arc;

use super::{Inner, Store, Writer};
use crate::error::{Error, Result};
use crate::schema::Persisted;

impl<T: Persisted> Store<T> {
    /// Folds the journal into the snapshot now (fully synced), adopting a
    /// snapshot a person edited first. Nothing to do for
    /// [`Engine::Snapshot`](crate::Engine::Snapshot) or Redis.
    ///
    /// # Errors
    ///
    /// [`Error::Uncommitted`] in batch mode with pending changes,
    /// [`Error::Poisoned`], [`Error::Io`], [`Error::Reentrant`].
    pub fn compact(&self) -> Result<()> {
        let mut guard = self.writer()?;
        self.check_committed(&guard)?;
        let writer = &mut *guard;
        let compacted = writer.backend.compact(&self.inner.state);
        self.files_replaced(writer, compacted)
    }

    /// Compacts and drops this handle; the file lock is released once every
    /// clone is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Uncommitted`] in [`Mode::Batch`](crate::Mode::Batch) with
    /// changes not committed: nothing is written and they are discarded
    /// with the handle (call [`commit`](Store::commit) first). Otherwise
    /// the compaction's error; the handle is dropped all the same and the
    /// journal keeps every commit.
    ///
    /// In shared mode the journal is folded only by the last participant to
    /// close (other processes may be appending to it).
    pub fn close(self) -> Result<()> {
        let mut guard = self.writer()?;
        self.check_committed(&guard)?;
        let last_handle = Arc::strong_count(&self.inner) == 1;
        let writer = &mut *guard;
        let closed = writer.backend.close(&self.inner.state, last_handle);
        self.files_replaced(writer, closed)
    }

    /// Encrypted stores: from now on the store's data key is wrapped by
    /// `key` in every file (the snapshot and journal are written anew by a
    /// compaction, the history files get the new envelope); the old key no
    /// longer opens it. O(1) cryptography: the data itself is not
    /// re-encrypted. In shared mode, the other participants keep their
    /// unlocked data key and take the new envelope from the files the
    /// compaction wrote.
    ///
    /// ```
    /// use persisted_state::{Key, Persisted, Store};
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Secrets {
    ///     token: String,
    /// }
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("secrets.json.enc");
    /// let store = Store::<Secrets>::options().encryption(Key::from_bytes([1; 32])).open(&path)?;
    /// store.set_token("t".into())?;
    /// store.rekey(Key::from_bytes([2; 32]))?;
    /// store.close()?;
    /// let err = Store::<Secrets>::options().encryption(Key::from_bytes([1; 32])).open(&path);
    /// assert!(matches!(err, Err(persisted_state::Error::WrongKey { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotEncrypted`] for a store opened without encryption;
    /// [`Error::Uncommitted`], [`Error::Io`], [`Error::Poisoned`],
    /// [`Error::ReadOnly`], [`Error::Reentrant`].
    pub fn rekey(&self, key: crate::Key) -> Result<()> {
        let mut guard = self.writer()?;
        self.check_committed(&guard)?;
        let writer = &mut *guard;
        let rekeyed = writer.backend.rekey(&self.inner.state, &key);
        self.files_replaced(writer, rekeyed)
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

    /// Folds the journal when it outgrew its limit; a failure is logged
    /// (the commit before it is durable already) and poisons if it must.
    pub(super) fn maybe_compact(&self, writer: &mut Writer<T>) {
        if !writer.batch.is_empty() || writer.poisoned {
            return;
        }
        let folded = writer.backend.maybe_compact(&self.inner.state);
        if let Err(e) = self.files_replaced(writer, folded) {
            log::warn!("compaction of `{}` failed: {e}", self.inner.path.display());
        }
    }
}

impl<T: Persisted> Drop for Inner<T> {
    /// Best effort: folds the journal into the snapshot (in shared mode
    /// only as the last participant), and logs what it could not do.
    fn drop(&mut self) {
        // Waits end; the watch stops.
        self.hub.close();
        drop(self.watch.get_mut().take());
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
        if writer.poisoned {
            return;
        }
        writer.backend.drop_last(&self.state);
    }
}
