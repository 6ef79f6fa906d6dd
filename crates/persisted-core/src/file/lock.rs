//! The advisory lock: `flock` (via `File::try_lock`) on a dedicated
//! `<file>.lock` that is never renamed or removed, held as long as any
//! handle to the store is open.
//!
//! A child process forked by another thread inherits the lock until it
//! execs, so a store closed and reopened while the program spawns processes
//! can look locked for a moment: the lock is retried for a short, bounded
//! time before it is reported held.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

/// How long a held lock is retried before [`Error::Locked`].
const RETRY_FOR: Duration = Duration::from_millis(200);
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct LockFile {
    _file: File,
}

impl LockFile {
    /// Takes the lock `lock_path` for the store at `store_path`.
    pub(crate) fn acquire(lock_path: &Path, store_path: &Path) -> Result<LockFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path)
            .context("open lock file", lock_path)?;
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(LockFile { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(RETRY_EVERY);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        path: PathBuf::from(store_path),
                    })
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io("lock", lock_path, e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_the_same_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("s.json.lock");
        let store = dir.path().join("s.json");
        let first = LockFile::acquire(&lock, &store).unwrap();
        let err = LockFile::acquire(&lock, &store).unwrap_err();
        assert!(matches!(err, Error::Locked { ref path } if path == &store));
        assert!(err.to_string().contains("s.json"));
        drop(first);
        LockFile::acquire(&lock, &store).unwrap();
    }
}
