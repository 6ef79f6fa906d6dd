//! History and time travel: what the backend kept of past commits.

use std::time::SystemTime;

use super::{Store, WriterGuard};
use crate::error::Result;
use crate::history::Commit;
use crate::reentry;
use crate::schema::Persisted;

impl<T: Persisted> Store<T> {
    /// The commits kept in this store's history, oldest first: those
    /// [`OpenOptions::keep_history`] keeps, and every commit made since the
    /// last compaction (all there is with the default, `KeepHistory::None`).
    /// A store of the snapshot engine keeps none: an empty history.
    ///
    /// ```
    /// use persisted_state::{KeepHistory, Persisted, Store};
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Job {
    ///     done: Vec<String>,
    ///     last: u64,
    /// }
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::<Job>::options()
    ///     .keep_history(KeepHistory::Last(10_000))
    ///     .open(dir.path().join("job.json"))?;
    /// store.push_done("a".into())?;
    /// store.set_last(1)?;
    /// store.compact()?;
    /// for c in store.history()? {
    ///     println!("{} {:?} {:?}", c.seq, c.time, c.fields);
    /// }
    /// assert_eq!(store.history()?[1].fields, ["last"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io); [`Error::Corrupt`](crate::Error::Corrupt)
    /// naming a history file and offset when one is damaged;
    /// [`Error::Reentrant`](crate::Error::Reentrant);
    /// [`Error::LockTimeout`](crate::Error::LockTimeout) (shared mode takes
    /// the writer lock while it reads).
    ///
    /// [`OpenOptions::keep_history`]: crate::OpenOptions::keep_history
    pub fn history(&self) -> Result<Vec<Commit>> {
        self.with_backend(|backend| backend.history())
    }

    /// The state right after commit `seq` (a [`Commit::seq`] from
    /// [`history`](Store::history)), rebuilt from the kept records.
    ///
    /// # Errors
    ///
    /// [`Error::NotInHistory`](crate::Error::NotInHistory) when `seq` is not
    /// a kept commit (older than the policy keeps, a compaction's number,
    /// or never made): never a guess. Otherwise as
    /// [`history`](Store::history), and [`Error::Parse`](crate::Error::Parse)
    /// for a kept record the type cannot read.
    pub fn state_at(&self, seq: u64) -> Result<T> {
        self.with_backend(|backend| backend.state_at(seq))
    }

    /// The state as of `time`: right after the last kept commit made at or
    /// before it (commit times are the committing process's wall clock).
    /// Where the history has a gap (commits folded by a run that kept no
    /// history), a time inside it has no answer, and a time after it is
    /// answered from the state after the gap: never an older state.
    ///
    /// # Errors
    ///
    /// [`Error::NotInHistory`](crate::Error::NotInHistory) when no kept
    /// commit is that old, or the time falls in a gap. Otherwise as
    /// [`state_at`](Store::state_at).
    pub fn state_as_of(&self, time: SystemTime) -> Result<T> {
        self.with_backend(|backend| backend.state_as_of(time))
    }

    /// Runs `f` on the backend with the writer mutex held (no compaction of
    /// this process runs meanwhile); the backend takes what else it needs
    /// (shared mode's writer lock), released when this returns.
    fn with_backend<R>(
        &self,
        f: impl FnOnce(&mut dyn crate::engine::backend::Backend<T>) -> Result<R>,
    ) -> Result<R> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        let mut writer = WriterGuard::new(self.inner.writer.lock());
        f(&mut *writer.backend)
    }
}
