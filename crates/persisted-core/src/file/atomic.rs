//! Replacing a file atomically: write a temp file in the same directory,
//! fsync it, rename it over the target, fsync the directory.
//!
//! A crash at any point leaves either the old file or the new one, never a
//! mix; the temp file a crash leaves behind is removed by the next open
//! ([`remove_leftovers`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};
use crate::file::vfs::Vfs;

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` appended to its file name: `state.yaml` ->
/// `state.yaml.journal`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The name prefix of temp files made for `path`: `.state.yaml.tmp-`.
fn temp_prefix(path: &Path) -> String {
    format!(
        ".{}.tmp-",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Makes the directory entries of `dir` (a rename, a new file) durable.
pub(crate) fn sync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    vfs.sync_dir(dir).context("fsync directory", dir)
}

/// Seconds since the epoch, for the names of kept-aside files.
/// A name for a file set aside beside `path`, `<name>.<tag>-<unix time>`,
/// with `-2`, `-3`, ... added when one by that name exists already (two
/// recoveries in one second must not overwrite each other's kept files).
pub(crate) fn side_file(vfs: &dyn Vfs, path: &Path, tag: &str) -> Result<PathBuf> {
    let time = unix_time();
    for n in 1u32.. {
        let suffix = match n {
            1 => format!(".{tag}-{time}"),
            n => format!(".{tag}-{time}-{n}"),
        };
        let candidate = sibling(path, &suffix);
        if vfs.stat(&candidate).context("stat", &candidate)?.is_none() {
            return Ok(candidate);
        }
    }
    unreachable!("u32 names run out before a directory does")
}

/// Copies `bytes` durably into a new [`side_file`] of `path` tagged `tag`
/// (dropped journal bytes, a replaced journal), for a person to look at;
/// returns its path.
pub(crate) fn write_side_file(
    vfs: &dyn Vfs,
    path: &Path,
    tag: &str,
    bytes: &[u8],
) -> Result<PathBuf> {
    let kept = side_file(vfs, path, tag)?;
    let mut file = vfs.create_new(&kept, path).context("create", &kept)?;
    file.write_all(bytes).context("write", &kept)?;
    file.sync_all().context("fsync", &kept)?;
    sync_dir(vfs, &parent_dir(path))?;
    Ok(kept)
}

pub(crate) fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_dir(path).join(format!(
        "{}{}-{nanos:08x}{n}",
        temp_prefix(path),
        std::process::id()
    ))
}

/// Replaces `path` with `bytes` atomically; with `sync`, durably (temp file
/// fsynced before the rename, directory fsynced after it). The new file
/// keeps the permission bits of the one it replaces.
pub(crate) fn write_atomic(
    vfs: &Arc<dyn Vfs>,
    path: &Path,
    bytes: &[u8],
    sync: bool,
) -> Result<()> {
    TempFile::write(vfs, path, bytes, sync)?.rename_over(path, sync)
}

/// A complete temp file beside its target, not yet renamed over it; removed
/// on drop unless [`TempFile::rename_over`] succeeded.
pub(crate) struct TempFile {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    renamed: bool,
}

impl TempFile {
    /// Writes `bytes` to a new temp file beside `target` (created with
    /// `create_new`, with `target`'s permission bits) and, with `sync`,
    /// fsyncs it.
    pub(crate) fn write(
        vfs: &Arc<dyn Vfs>,
        target: &Path,
        bytes: &[u8],
        sync: bool,
    ) -> Result<TempFile> {
        let path = temp_path(target);
        let mut file = vfs
            .create_new(&path, target)
            .context("create temp file", &path)?;
        let temp = TempFile {
            vfs: Arc::clone(vfs),
            path,
            renamed: false,
        };
        file.write_all(bytes).context("write", &temp.path)?;
        if sync {
            file.sync_all().context("fsync", &temp.path)?;
        }
        Ok(temp)
    }

    /// Renames the temp file over `target`; with `sync`, then fsyncs the
    /// directory so the rename itself is durable.
    pub(crate) fn rename_over(mut self, target: &Path, sync: bool) -> Result<()> {
        self.vfs
            .rename(&self.path, target)
            .context("rename temp file over", target)?;
        self.renamed = true;
        if sync {
            sync_dir(&*self.vfs, &parent_dir(target))?;
        }
        Ok(())
    }
}

impl TempFile {
    /// Leaves the temp file where it is, for the next open to judge.
    pub(crate) fn keep(mut self) {
        self.renamed = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: the next open removes it anyway.
            let _ = self.vfs.remove(&self.path);
        }
    }
}

/// The temp files a crashed write left beside `path` (only names this
/// module makes).
pub(crate) fn leftovers(vfs: &dyn Vfs, path: &Path) -> Result<Vec<PathBuf>> {
    let dir = parent_dir(path);
    let prefix = temp_prefix(path);
    let names = match vfs.list_dir(&dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(crate::Error::io("list directory", &dir, e)),
    };
    Ok(names
        .into_iter()
        .filter(|name| name.to_string_lossy().starts_with(&prefix))
        .map(|name| dir.join(name))
        .collect())
}

/// Removes the temp files a crashed write left beside `path`; returns how
/// many were removed.
pub(crate) fn remove_leftovers(vfs: &dyn Vfs, path: &Path) -> Result<usize> {
    let leftovers = leftovers(vfs, path)?;
    for leftover in &leftovers {
        vfs.remove(leftover)
            .context("remove leftover temp file", leftover)?;
        log::warn!(
            "removed `{}` left by an interrupted write",
            leftover.display()
        );
    }
    Ok(leftovers.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::vfs::RealFs;
    use std::fs;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&RealFs::shared(), &path, b"one", true).unwrap();
        write_atomic(&RealFs::shared(), &path, b"two", false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_keeps_permission_bits() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        fs::write(&path, b"x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&RealFs::shared(), &path, b"y", true).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn leftovers_of_this_file_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        fs::write(dir.path().join(".a.json.tmp-1-2"), b"x").unwrap();
        fs::write(dir.path().join(".b.json.tmp-1-2"), b"x").unwrap();
        fs::write(dir.path().join("a.json.tmp"), b"x").unwrap();
        assert_eq!(remove_leftovers(&RealFs, &path).unwrap(), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn sibling_appends_to_the_file_name() {
        assert_eq!(
            sibling(Path::new("d/state.yaml"), ".journal"),
            Path::new("d/state.yaml.journal")
        );
    }
}
