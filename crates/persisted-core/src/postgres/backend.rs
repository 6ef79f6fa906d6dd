//! PostgreSQL as a backend: the constructor that checks a PostgreSQL
//! store's options, and the [`Backend`] a `Store` drives.

use std::time::SystemTime;

use parking_lot::RwLock;

use super::store::{PgBackend, Sent};
use crate::crypt::Key;
use crate::engine::backend::{Backend, Caps, Intent, Outcome, Proposal, Replaced};
use crate::engine::Failure;
use crate::error::{Error, Result};
use crate::history::Commit;
use crate::notify::Notes;
use crate::options::OpenOptions;
use crate::schema::Persisted;
use crate::store::Store;

impl<T: Persisted> Store<T> {
    /// Opens the store kept under `key` in the PostgreSQL database at `url`
    /// with the default options (feature `postgres`); see
    /// [`OpenOptions::open_postgres`].
    ///
    /// # Errors
    ///
    /// See [`OpenOptions::open_postgres`].
    pub fn open_postgres(url: &str, key: &str) -> Result<Store<T>> {
        open_store(OpenOptions::default(), url, key)
    }
}

/// Opens the store kept under `key` in the database at `url`, as a `Store`
/// named by the server and database (without the password) and key.
pub(crate) fn open_store<T: Persisted>(
    options: OpenOptions<T>,
    url: &str,
    key: &str,
) -> Result<Store<T>> {
    crate::server::open_store(options, url, key, "PostgreSQL", |connect| {
        PgBackend::open(connect, T::default())
    })
}

impl<T: Persisted> Backend<T> for PgBackend {
    fn take_notes(&mut self) -> Notes {
        std::mem::take(&mut self.notes)
    }

    fn seq(&self) -> u64 {
        self.version()
    }

    fn caps(&self) -> Caps {
        Caps {
            follows: true,
            whole_state: false,
            group_commit: false,
        }
    }

    /// A closure locks the store's row (and catches up) so it runs once on
    /// the current state; other commits are optimistic.
    fn begin_write(&mut self, state: &RwLock<T>, intent: Intent<'_>) -> Result<Replaced, Failure> {
        if intent.closure {
            self.lock(state)?;
        }
        Ok(false)
    }

    fn end_write(&mut self) {
        self.release();
    }

    /// A value another client wrote that does not parse is an error that
    /// does not poison: memory is left at the version before it.
    fn catch_up(&mut self, state: &RwLock<T>, _locked: bool) -> Result<bool, Failure> {
        Ok(PgBackend::catch_up(self, state)?)
    }

    fn commit(&mut self, state: &RwLock<T>, proposal: Proposal<'_, T>) -> Result<Outcome, Failure> {
        let (changes, applied) = match proposal {
            Proposal::Changes(changes) => (changes, false),
            Proposal::Batch(changes) => (changes, true),
            Proposal::Whole(_) => {
                return Err(Failure::clean(Error::Unsupported {
                    path: self.target().to_path_buf(),
                    reason: "PostgreSQL stores record changes, not whole states".into(),
                }))
            }
        };
        loop {
            let locked = self.locked;
            let sent = PgBackend::commit(self, T::__FIELDS, changes, &*state.read(), applied)?;
            match sent {
                Sent::Committed => return Ok(Outcome::Durable),
                // A closure's commit holds the row lock: it cannot be behind.
                Sent::Behind if locked || applied => {
                    return Err(Failure::clean(Error::Conflict {
                        path: self.target().to_path_buf(),
                        reason: "another process committed first; nothing was applied (a \
                                 batch stays pending: reopen to discard it)"
                            .into(),
                    }))
                }
                Sent::Behind => drop(PgBackend::catch_up(self, state)?),
            }
        }
    }

    /// Wraps the data key with `key` and keeps the new envelope in the
    /// store's row: the old key no longer opens the store. The values
    /// stay as they are (the data key is the same).
    fn rekey(&mut self, _state: &RwLock<T>, key: &Key) -> Result<Replaced, Failure> {
        Ok(PgBackend::rekey(self, key).map(|()| false)?)
    }

    fn history(&mut self) -> Result<Vec<Commit>> {
        Ok(PgBackend::history(self)?
            .into_iter()
            .map(|(commit, _)| commit)
            .collect())
    }

    fn state_at(&mut self, seq: u64) -> Result<T> {
        PgBackend::state_at(self, seq)
    }

    fn state_as_of(&mut self, time: SystemTime) -> Result<T> {
        PgBackend::state_as_of(self, time)
    }
}
