//! Reads: from memory, after catching up with other writers when the
//! backend follows them (shared mode, read-only, Redis).

use std::fmt;
use std::ops::Deref;

use parking_lot::RwLockReadGuard;

use super::{Store, WriterGuard};
use crate::error::Result;
use crate::reentry::{self, Held, Hold};
use crate::schema::Persisted;

/// A shared read guard from [`Store::read`]; derefs to `&T`. Writers wait
/// while it is held; a write from the thread that holds it returns
/// [`Error::Reentrant`](crate::Error::Reentrant).
pub struct ReadGuard<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    _held: Held,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: fmt::Debug> fmt::Debug for ReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Persisted> Store<T> {
    /// A shared read guard on the state. Hold it briefly: writers wait for
    /// it, and a write from this thread while it is held returns
    /// [`Error::Reentrant`](crate::Error::Reentrant).
    ///
    /// In shared mode, read-only and on Redis, it first catches up with
    /// other writers' commits (one `fstat` when nothing changed). It never
    /// fails: a failure to catch up is logged, and returned by the next
    /// write or [`refresh`](Store::refresh).
    pub fn read(&self) -> ReadGuard<'_, T> {
        let key = self.key();
        // A thread that already holds this state may not queue behind a
        // waiting writer, or it would wait on itself; nor may it change
        // what it holds by catching up.
        let guard = match reentry::held(key) {
            Some(_) => self.inner.state.read_recursive(),
            None => {
                if self.inner.follows {
                    self.follow();
                }
                self.inner.state.read()
            }
        };
        ReadGuard {
            guard,
            _held: Held::new(key, Hold::Read),
        }
    }

    /// Catches up with other writers before a read, unless another thread
    /// of this process is writing (its commit catches up itself).
    fn follow(&self) {
        let Some(writer) = self.inner.writer.try_lock() else {
            return;
        };
        let mut writer = WriterGuard::new(writer);
        if writer.poisoned {
            return;
        }
        let caught = writer.backend.catch_up(&self.inner.state, false);
        match caught {
            Ok(_) => writer.catch_up_failed = false,
            Err(failure) => {
                let e = writer.fail(failure);
                if !std::mem::replace(&mut writer.catch_up_failed, true) {
                    log::warn!(
                        "`{}`: reads show the last state caught up with: {e}",
                        self.inner.path.display()
                    );
                }
            }
        }
    }

    /// Catches up now with every commit others made (shared mode,
    /// read-only, Redis), and returns whether the state changed. Reads do
    /// this by themselves; `refresh` also reports a failure to. A store
    /// nobody else writes has nobody to catch up with: `Ok(false)`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io), [`Error::Parse`](crate::Error::Parse)
    /// (a record or an edited snapshot that does not parse),
    /// [`Error::Poisoned`](crate::Error::Poisoned),
    /// [`Error::Reentrant`](crate::Error::Reentrant).
    pub fn refresh(&self) -> Result<bool> {
        if let Some(hold) = reentry::held(self.key()) {
            return Err(self.reentrant(hold));
        }
        if !self.inner.follows {
            return Ok(false);
        }
        let mut writer = WriterGuard::new(self.inner.writer.lock());
        writer.check(&self.inner.path)?;
        let caught = writer.backend.catch_up(&self.inner.state, false);
        caught.map_err(|failure| writer.fail(failure))
    }

    /// A clone of the whole state.
    pub fn get(&self) -> T {
        self.read().clone()
    }
}
