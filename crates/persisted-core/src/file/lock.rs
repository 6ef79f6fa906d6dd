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
use crate::file::vfs::{LockGuard, Vfs};

/// How long a held lock is retried before [`Error::Locked`].
const RETRY_FOR: Duration = Duration::from_millis(80);
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// The held lock; dropping it releases it.
pub(crate) struct LockFile {
    _guard: Box<dyn LockGuard>,
}

impl LockFile {
    /// Takes the lock `lock_path` for the store at `store_path`.
    pub(crate) fn acquire(vfs: &dyn Vfs, lock_path: &Path, store_path: &Path) -> Result<LockFile> {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            match vfs.try_lock(lock_path).context("lock", lock_path)? {
                Some(guard) => return Ok(LockFile { _guard: guard }),
                None if Instant::now() < deadline => thread::sleep(RETRY_EVERY),
                None => {
                    return Err(Error::Locked {
                        path: PathBuf::from(store_path),
                    })
                }
            }
        }
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
        let first = LockFile::acquire(&RealFs, &lock, &store).unwrap();
        let err = LockFile::acquire(&RealFs, &lock, &store).err().unwrap();
        assert!(matches!(err, Error::Locked { ref path } if path == &store));
        assert!(err.to_string().contains("s.json"));
        drop(first);
        LockFile::acquire(&RealFs, &lock, &store).unwrap();
    }
}
