//! The advisory lock: `flock` (via `File::try_lock`) on a dedicated
//! `<file>.lock` that is never renamed or removed, held as long as any
//! handle to the store is open.
//!
//! A child process forked by another thread inherits the lock until it
//! execs, so a store closed and reopened while the program spawns processes
//! can look locked for a moment: the lock is retried for a short, bounded
//! time before it is reported held.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::file::atomic::sibling;
use crate::file::vfs::{LockGuard, Vfs, VfsLock};

/// How long a held lock is retried before [`Error::Locked`].
const RETRY_FOR: Duration = Duration::from_millis(80);
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// The held lifetime lock; dropping it releases it.
pub(crate) struct LockFile {
    _guard: Box<dyn LockGuard>,
}

impl LockFile {
    /// A lock already taken.
    pub(crate) fn from_guard(guard: Box<dyn LockGuard>) -> LockFile {
        LockFile { _guard: guard }
    }

    /// Takes the lifetime lock `lock_path` of the store at `store_path`:
    /// shared (shared mode: every participant holds it shared) or
    /// exclusive (one process, one handle).
    pub(crate) fn acquire(
        vfs: &dyn Vfs,
        lock_path: &Path,
        store_path: &Path,
        shared: bool,
    ) -> Result<LockFile> {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            match vfs.try_lock(lock_path, shared).context("lock", lock_path)? {
                Some(guard) => return Ok(LockFile { _guard: guard }),
                None if Instant::now() < deadline => thread::sleep(RETRY_EVERY),
                None => {
                    // A shared request is refused only by an exclusive
                    // holder; an exclusive one by either: ask which.
                    let holder = match shared {
                        true => "exclusive",
                        false => match vfs.try_lock(lock_path, true).context("lock", lock_path)? {
                            Some(_probe) => "shared",
                            None => "exclusive",
                        },
                    };
                    return Err(Error::Locked {
                        path: PathBuf::from(store_path),
                        holder,
                    });
                }
            }
        }
    }
}

/// The per-commit writer lock of shared mode, `<file>.writer.lock`: one
/// open file description per participant, locked exclusively for each
/// commit (and each transaction, recovery and compaction), never renamed.
///
/// `flock` is not fair: a process that commits in a tight loop takes the
/// lock again before a waiter that sleeps between tries wakes up. So a
/// participant that has waited [`FIRST_IN_LINE_AFTER`] takes the
/// turnstile `<file>.wait.lock` exclusively. A participant checks that the
/// turnstile is free (a shared try, two system calls) before the first try
/// of every [`CHECK_EVERY`]th lock and every `CHECK_EVERY`th try of a wait,
/// and once it finds it held, before every try until it gets the lock: a
/// busy participant lets the one that waited long in within that many
/// commits.
pub(crate) struct WriterLock {
    file: Box<dyn VfsLock>,
    path: PathBuf,
    turnstile: Box<dyn VfsLock>,
    turnstile_path: PathBuf,
    /// Calls to `lock`, to check the turnstile on every `CHECK_EVERY`th.
    tries: std::sync::atomic::AtomicU32,
}

/// How often an uncontended lock checks the turnstile.
const CHECK_EVERY: u32 = 8;

/// The longest pause between two tries of a held writer lock.
const MAX_BACKOFF: Duration = Duration::from_millis(1);
/// How long a participant waits before it claims the turnstile: well past
/// the waits of ordinary contention, so that only starvation uses it.
const FIRST_IN_LINE_AFTER: Duration = Duration::from_millis(20);
/// The longest pause between tries of the participant first in line: the
/// others stand back, so the lock must not sit idle while it sleeps.
const FIRST_IN_LINE_BACKOFF: Duration = Duration::from_micros(20);

impl WriterLock {
    /// Opens the writer lock and the turnstile of the store at `store`.
    pub(crate) fn open(vfs: &dyn Vfs, store: &Path) -> Result<WriterLock> {
        let path = sibling(store, ".writer.lock");
        let turnstile_path = sibling(store, ".wait.lock");
        Ok(WriterLock {
            file: vfs.open_lock(&path).context("open", &path)?,
            turnstile: vfs
                .open_lock(&turnstile_path)
                .context("open", &turnstile_path)?,
            path,
            turnstile_path,
            tries: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// Takes the lock, waiting at most `timeout` (tries with a backoff
    /// from 1 µs doubling to 1 ms: `flock` has no timed wait).
    pub(crate) fn lock(&self, store_path: &Path, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(1);
        let mut first_in_line = false;
        let call = self
            .tries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Once the turnstile was found held, stand back on every try.
        let mut deferring = false;
        let mut tried = 0u32;
        let result = loop {
            let check = deferring
                || (tried == 0 && call.is_multiple_of(CHECK_EVERY))
                || (tried > 0 && tried.is_multiple_of(CHECK_EVERY));
            tried += 1;
            let free = match !first_in_line && check {
                true => self.turnstile_free(),
                false => Ok(true),
            };
            if let Ok(free) = free {
                deferring = !free;
            }
            let attempt = free.and_then(|free| match free {
                true => self.file.try_lock().context("lock", &self.path),
                false => Ok(false),
            });
            match attempt {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            let waited = start.elapsed();
            if waited >= timeout {
                break Err(Error::LockTimeout {
                    path: store_path.to_path_buf(),
                    waited,
                });
            }
            if !first_in_line && waited >= FIRST_IN_LINE_AFTER {
                match self
                    .turnstile
                    .try_lock()
                    .context("lock", &self.turnstile_path)
                {
                    Ok(taken) => first_in_line = taken,
                    Err(e) => break Err(e),
                }
            }
            thread::sleep(pause.min(timeout - waited));
            let cap = match first_in_line {
                true => FIRST_IN_LINE_BACKOFF,
                false => MAX_BACKOFF,
            };
            pause = (pause * 2).min(cap);
        };
        if first_in_line {
            // Closing the descriptor would release it too; a failure here
            // only delays the others by one try.
            let _ = self.turnstile.unlock();
        }
        result
    }

    /// True when no participant holds the turnstile (it is first in line).
    fn turnstile_free(&self) -> Result<bool> {
        let ts = &self.turnstile_path;
        if !self.turnstile.try_lock_shared().context("lock", ts)? {
            return Ok(false);
        }
        self.turnstile.unlock().context("unlock", ts)?;
        Ok(true)
    }

    pub(crate) fn unlock(&self) -> Result<()> {
        self.file.unlock().context("unlock", &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::vfs::RealFs;

    #[test]
    fn second_lock_in_the_same_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("s.json.lock");
        let store = dir.path().join("s.json");
        let first = LockFile::acquire(&RealFs, &lock, &store, false).unwrap();
        let err = LockFile::acquire(&RealFs, &lock, &store, false)
            .err()
            .unwrap();
        assert!(matches!(err, Error::Locked { ref path, holder: "exclusive" } if path == &store));
        assert!(err.to_string().contains("s.json"));
        drop(first);
        LockFile::acquire(&RealFs, &lock, &store, false).unwrap();
    }

    #[test]
    fn shared_holders_coexist_and_each_mode_names_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("s.json.lock");
        let store = dir.path().join("s.json");
        let a = LockFile::acquire(&RealFs, &lock, &store, true).unwrap();
        let b = LockFile::acquire(&RealFs, &lock, &store, true).unwrap();
        let err = LockFile::acquire(&RealFs, &lock, &store, false)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                Error::Locked {
                    holder: "shared",
                    ..
                }
            ),
            "{err:?}"
        );
        drop((a, b));
        let exclusive = LockFile::acquire(&RealFs, &lock, &store, false).unwrap();
        let err = LockFile::acquire(&RealFs, &lock, &store, true)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                Error::Locked {
                    holder: "exclusive",
                    ..
                }
            ),
            "{err:?}"
        );
        drop(exclusive);
    }

    #[test]
    fn a_held_writer_lock_times_out_with_the_time_waited() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.json");
        let first = WriterLock::open(&RealFs, &store).unwrap();
        let second = WriterLock::open(&RealFs, &store).unwrap();
        first.lock(&store, Duration::from_secs(1)).unwrap();
        let err = second.lock(&store, Duration::from_millis(30)).unwrap_err();
        match err {
            Error::LockTimeout { waited, .. } => assert!(waited >= Duration::from_millis(30)),
            other => panic!("{other:?}"),
        }
        first.unlock().unwrap();
        second.lock(&store, Duration::from_millis(30)).unwrap();
        second.unlock().unwrap();
    }

    #[test]
    fn a_participant_first_in_line_holds_the_others_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.json");
        let busy = WriterLock::open(&RealFs, &store).unwrap();
        // What a participant that waited long holds: the turnstile.
        let turnstile = RealFs.open_lock(&sibling(&store, ".wait.lock")).unwrap();
        assert!(turnstile.try_lock().unwrap());
        // The writer lock is free, yet the busy participant stands back.
        let err = busy.lock(&store, Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err:?}");
        turnstile.unlock().unwrap();
        busy.lock(&store, Duration::from_millis(20)).unwrap();
        busy.unlock().unwrap();
    }
}
