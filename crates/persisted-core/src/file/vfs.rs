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

use crate::error::{IoContext, Result};

/// Which file a path or an open file is, with its size and modification
/// time: enough to tell whether a path still names the file a process has
/// open, and whether a file was changed since it was last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) len: u64,
    pub(crate) mtime_ns: i128,
}

impl FileId {
    /// The same file (inode), whatever its size or time. An open file's
    /// inode number is never reused while it is open, so comparing it with
    /// a path's is free of ABA.
    pub(crate) fn same_file(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// A file opened for writing (and, for journals, reading).
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
    /// `fstat`: which file this is, and its size now.
    fn id(&self) -> io::Result<FileId>;
    /// `pread` from `offset` to the end of the file, appended to `out`.
    fn read_from(&self, offset: u64, out: &mut Vec<u8>) -> io::Result<()>;
}

/// A held advisory lock; released when dropped.
pub(crate) trait LockGuard: Send + Sync {}

/// A lock file kept open to be locked and unlocked again and again (the
/// per-commit writer lock of shared mode) on one open file description.
pub(crate) trait VfsLock: Send + Sync {
    /// Takes the exclusive lock without waiting; `false` if it is held.
    fn try_lock(&self) -> io::Result<bool>;
    /// Takes the shared lock without waiting; `false` if it is held
    /// exclusively.
    fn try_lock_shared(&self) -> io::Result<bool>;
    /// Releases it.
    fn unlock(&self) -> io::Result<()>;
}

/// The file operations of the engines.
pub(crate) trait Vfs: Send + Sync + fmt::Debug {
    /// The whole file, or `None` if it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Creates a new file (`O_EXCL`), with the permission bits of `like`
    /// if that file exists.
    fn create_new(&self, path: &Path, like: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Opens an existing file for reading and appending (`O_APPEND`).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Opens an existing file for reading only; `None` if it does not exist.
    fn open_read(&self, path: &Path) -> io::Result<Option<Box<dyn VfsFile>>>;
    /// `stat`: which file `path` names now; `None` if none.
    fn stat(&self, path: &Path) -> io::Result<Option<FileId>>;
    /// `rename(2)`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `unlink(2)`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable (`fsync` on the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names in a directory.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Takes the lock on `path` — shared or exclusive — without waiting;
    /// `None` if it is held in a conflicting mode.
    fn try_lock(&self, path: &Path, shared: bool) -> io::Result<Option<Box<dyn LockGuard>>>;
    /// Opens (creating it if needed) a lock file to lock per commit.
    fn open_lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>>;
    /// The wall clock, in nanoseconds since the Unix epoch: what commit
    /// records are dated with, on the clock file times are set by.
    fn now_ns(&self) -> i128 {
        crate::engine::journal::now_ns()
    }
}

/// A file's bytes read through one descriptor, with the identity of
/// exactly the file read; `None` if it does not exist.
pub(crate) fn read_with_id(vfs: &dyn Vfs, path: &Path) -> Result<Option<(Vec<u8>, FileId)>> {
    let Some(file) = vfs.open_read(path).context("open", path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_from(0, &mut bytes).context("read", path)?;
    let id = file.id().context("fstat", path)?;
    Ok(Some((bytes, id)))
}

fn file_id(meta: &fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
    #[cfg(not(unix))]
    {
        // Shared mode, the only user of identities, is refused off Unix.
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        FileId {
            dev: 0,
            ino: 0,
            len: meta.len(),
            mtime_ns,
        }
    }
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
    fn id(&self) -> io::Result<FileId> {
        Ok(file_id(&self.0.metadata()?))
    }
    fn read_from(&self, offset: u64, out: &mut Vec<u8>) -> io::Result<()> {
        read_from(&self.0, offset, out)
    }
}

#[cfg(unix)]
fn read_from(file: &File, mut offset: u64, out: &mut Vec<u8>) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match file.read_at(&mut chunk, offset) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(not(unix))]
fn read_from(_file: &File, _offset: u64, _out: &mut Vec<u8>) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "positional reads are only implemented on Unix",
    ))
}

struct RealLock(#[allow(dead_code)] File);

impl LockGuard for RealLock {}

struct RealLockFile(File);

impl VfsLock for RealLockFile {
    fn try_lock(&self) -> io::Result<bool> {
        match self.0.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn try_lock_shared(&self) -> io::Result<bool> {
        match self.0.try_lock_shared() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn unlock(&self) -> io::Result<()> {
        self.0.unlock()
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

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
            OpenOptions::new().read(true).append(true).open(path)?,
        )))
    }

    fn open_read(&self, path: &Path) -> io::Result<Option<Box<dyn VfsFile>>> {
        match File::open(path) {
            Ok(file) => Ok(Some(Box::new(RealFile(file)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn stat(&self, path: &Path) -> io::Result<Option<FileId>> {
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(file_id(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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

    fn try_lock(&self, path: &Path, shared: bool) -> io::Result<Option<Box<dyn LockGuard>>> {
        let file = open_lock_file(path)?;
        let result = match shared {
            true => file.try_lock_shared(),
            false => file.try_lock(),
        };
        match result {
            Ok(()) => Ok(Some(Box::new(RealLock(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn open_lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        Ok(Box::new(RealLockFile(open_lock_file(path)?)))
    }
}
