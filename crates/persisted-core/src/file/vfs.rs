//! The I/O seam: every file operation the engines perform goes through
//! [`Vfs`], so tests can record the order of operations, inject failures
//! and simulate what a power cut leaves on disk. [`RealFs`] is the only
//! implementation outside tests; one dynamic call per system call costs
//! nanoseconds against the microseconds of the call itself.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// A file opened for writing.
pub(crate) trait VfsFile: Send + Sync {
    /// One `write_all` (for the journal: one record, one `write(2)`).
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `ftruncate`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&mut self) -> io::Result<()>;
    /// `fsync`.
    fn sync_all(&mut self) -> io::Result<()>;
    /// Another handle on the same open file (`dup`), e.g. to sync it
    /// from another thread.
    fn try_clone(&self) -> io::Result<Box<dyn VfsFile>>;
}

/// A held advisory lock; released when dropped.
pub(crate) trait LockGuard: Send + Sync {}

/// The file operations of the engines.
pub(crate) trait Vfs: Send + Sync + fmt::Debug {
    /// The whole file, or `None` if it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Creates a new file (`O_EXCL`), with the permission bits of `like`
    /// if that file exists.
    fn create_new(&self, path: &Path, like: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Opens an existing file for appending (`O_APPEND`).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// `rename(2)`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `unlink(2)`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable (`fsync` on the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names in a directory.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Takes the exclusive lock on `path` without waiting; `None` if held.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>>;
}

/// The operating system's file system.
#[derive(Debug, Default)]
pub(crate) struct RealFs;

impl RealFs {
    pub(crate) fn shared() -> Arc<dyn Vfs> {
        Arc::new(RealFs)
    }
}

struct RealFile(File);

impl VfsFile for RealFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn try_clone(&self) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(RealFile(self.0.try_clone()?)))
    }
}

struct RealLock(#[allow(dead_code)] File);

impl LockGuard for RealLock {}

impl Vfs for RealFs {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create_new(&self, path: &Path, like: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        if let Ok(meta) = fs::metadata(like) {
            file.set_permissions(meta.permissions())?;
        }
        Ok(Box::new(RealFile(file)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(RealFile(
            OpenOptions::new().append(true).open(path)?,
        )))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(RealLock(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
