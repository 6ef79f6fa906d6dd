//! Redis as a backend: the constructor that checks a Redis store's
//! options, and the [`Backend`] a `Store` drives.
//!
//! A commit is optimistic at the version this handle knows: when another
//! commit came first, the handle catches up and sends the same change
//! again on the new state (a generated operation is data, not a closure).
//! A closure (`update`, a transaction) runs on the lease, taken in
//! [`Backend::begin_write`]: if the lease was lost before its commit, the
//! commit is refused whole ([`Error::Conflict`]).

use std::time::SystemTime;

use parking_lot::RwLock;

use super::{Outcome as Sent, RedisBackend};
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
    /// Opens the store kept under `key` on the Redis server at `url` with
    /// the default options (feature `redis`); see
    /// [`OpenOptions::open_redis`].
    ///
    /// # Errors
    ///
    /// See [`OpenOptions::open_redis`].
    pub fn open_redis(url: &str, key: &str) -> Result<Store<T>> {
        open_store(OpenOptions::default(), url, key)
    }
}

/// Opens the store kept under `key` on the Redis server at `url`, as a
/// `Store` named by the server (without its password) and key.
pub(crate) fn open_store<T: Persisted>(
    options: OpenOptions<T>,
    url: &str,
    key: &str,
) -> Result<Store<T>> {
    crate::server::open_store(options, url, key, "Redis", |connect| {
        RedisBackend::open(connect, T::default())
    })
}

impl<T: Persisted> Backend<T> for RedisBackend {
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

    /// A closure takes the lease and catches up, so it runs once on the
    /// current state; other commits are optimistic.
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
        Ok(RedisBackend::catch_up(self, state)?)
    }

    fn commit(&mut self, state: &RwLock<T>, proposal: Proposal<'_, T>) -> Result<Outcome, Failure> {
        let changes = match proposal {
            Proposal::Changes(changes) => changes,
            Proposal::Batch(changes) => {
                let sent =
                    RedisBackend::commit(self, T::__FIELDS, changes, &*state.read(), true, false)?;
                return match sent {
                    Sent::Committed => Ok(Outcome::Durable),
                    _ => Err(Failure::clean(Error::Conflict {
                        path: self.target.clone(),
                        reason: "another process committed since this batch began; the batch \
                                 stays pending (`refresh()` does not drop it: reopen to \
                                 discard it)"
                            .into(),
                    })),
                };
            }
            Proposal::Whole(_) => {
                return Err(Failure::clean(Error::Unsupported {
                    path: self.target.clone(),
                    reason: "Redis stores record changes, not whole states".into(),
                }))
            }
        };
        loop {
            let leased = self.leased;
            let sent =
                RedisBackend::commit(self, T::__FIELDS, changes, &*state.read(), false, leased)?;
            match sent {
                Sent::Committed => return Ok(Outcome::Durable),
                Sent::Behind | Sent::Leased if leased => {
                    self.release();
                    return Err(Failure::clean(Error::Conflict {
                        path: self.target.clone(),
                        reason: "the lease ran out before the change was committed and another \
                                 process committed meanwhile; nothing was applied (a longer \
                                 `lock_timeout` gives closures more time)"
                            .into(),
                    }));
                }
                Sent::Behind => drop(RedisBackend::catch_up(self, state)?),
                Sent::Leased => self.lock(state)?,
            }
        }
    }

    /// Wraps the data key with `key` and keeps the new envelope on the
    /// server: the old key no longer opens the store. The values stay as
    /// they are (the data key is the same).
    fn rekey(&mut self, _state: &RwLock<T>, key: &Key) -> Result<Replaced, Failure> {
        Ok(RedisBackend::rekey(self, key).map(|()| false)?)
    }

    fn history(&mut self) -> Result<Vec<Commit>> {
        Ok(RedisBackend::history(self)?
            .into_iter()
            .map(|(commit, _)| commit)
            .collect())
    }

    fn state_at(&mut self, seq: u64) -> Result<T> {
        RedisBackend::state_at(self, seq)
    }

    fn state_as_of(&mut self, time: SystemTime) -> Result<T> {
        RedisBackend::state_as_of(self, time)
    }
}
