//! `SimFs`: an in-memory file system behind the [`Vfs`] seam.
//!
//! * It **records** every operation in order (for protocol-order tests).
//! * It **fails** a chosen operation with EIO or ENOSPC, once or from then on.
//! * It **crashes** at a chosen operation: that operation and every later
//!   one fail (a crashing `write` may land a prefix of its bytes, as a
//!   process killed mid-`write(2)` can), and the disk can then be read as a
//!   process crash leaves it (everything written survives) or as a power
//!   cut leaves it: per file, only what was fsynced is sure; the unsynced
//!   tail may be lost, cut short, zeroed or garbage; a directory entry not
//!   yet made durable by a directory fsync may show its old target.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::rng::Rng;
use crate::file::vfs::{FileId, LockGuard, Vfs, VfsFile, VfsLock};

/// What an operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Read,
    CreateNew,
    OpenAppend,
    Write,
    SetLen,
    SyncData,
    SyncAll,
    Rename,
    Remove,
    SyncDir,
    ListDir,
    Lock,
    OpenRead,
    Stat,
    Fstat,
    ReadAt,
    Unlock,
}

impl OpKind {
    pub(crate) fn is_sync(self) -> bool {
        matches!(self, OpKind::SyncData | OpKind::SyncAll | OpKind::SyncDir)
    }
}

/// A recorded operation: its kind and the path it was on (the target, for
/// a rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Traced {
    pub(crate) kind: OpKind,
    pub(crate) path: PathBuf,
}

/// A failure to inject.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    /// 1-based index of the operation that fails.
    pub(crate) at: u64,
    pub(crate) kind: io::ErrorKind,
    /// Every operation from `at` on fails, not only that one.
    pub(crate) persistent: bool,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
    /// The modification time: the wall clock at the last change, made to
    /// grow at every change (so a change is always seen).
    mtime_ns: i128,
}

/// Where the simulated clock starts (2025-11-24), so crash images are the
/// same bytes in every run.
const CLOCK_START_NS: i128 = 1_764_000_000_000_000_000;

/// How far the simulated clock moves at each operation.
const NS_PER_OP: i128 = 1_000;

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    /// What a lookup sees now.
    names: BTreeMap<PathBuf, usize>,
    /// What a power cut is sure to keep.
    durable: BTreeMap<PathBuf, usize>,
    /// Lifetime locks: how many shared holders, or -1 for an exclusive one.
    locks: BTreeMap<PathBuf, i64>,
    /// Locks taken per commit: shared holders, or -1 for an exclusive one.
    writer_locks: BTreeMap<PathBuf, i64>,
    trace: Vec<Traced>,
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    /// With `Some`, the crash kills only that process: the others go on.
    crash_actor: Option<usize>,
    /// How long a sync takes after its data is on the disk: other threads
    /// run meanwhile, as they do during a real `fdatasync`.
    sync_delay: std::time::Duration,
    fault: Option<Fault>,
    rng: Option<Rng>,
    /// The simulated wall clock: `CLOCK_START_NS` plus `NS_PER_OP` per
    /// operation.
    clock_ns: i128,
}

impl State {
    fn now_ns(&self) -> i128 {
        CLOCK_START_NS + self.clock_ns
    }

    /// A change to `inode`: its modification time is now.
    fn touch(&mut self, inode: usize) {
        let now = self.now_ns();
        let node = &mut self.inodes[inode];
        node.mtime_ns = (node.mtime_ns + 1).max(now);
    }
}

/// The simulated file system; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimFs {
    state: Arc<Mutex<State>>,
    /// Which simulated process makes the operations through this handle.
    actor: usize,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

impl SimFs {
    pub(crate) fn new() -> SimFs {
        SimFs::default()
    }

    /// A disk holding `files`, all durable.
    pub(crate) fn from_image(files: &BTreeMap<PathBuf, Vec<u8>>) -> SimFs {
        let sim = SimFs::new();
        {
            let mut st = sim.lock();
            for (path, data) in files {
                let inode = st.inodes.len();
                st.inodes.push(Inode {
                    data: data.clone(),
                    synced: data.clone(),
                    mtime_ns: CLOCK_START_NS,
                });
                st.names.insert(path.clone(), inode);
                st.durable.insert(path.clone(), inode);
            }
        }
        sim
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Crash at the `at`-th operation from now on (1-based, counting every
    /// operation since the disk was made); `seed` drives torn writes.
    pub(crate) fn crash_at(&self, at: u64, seed: u64) {
        let mut st = self.lock();
        st.crash_at = Some(at);
        st.rng = Some(Rng::new(seed));
    }

    /// Another simulated process on the same disk.
    pub(crate) fn actor(&self, actor: usize) -> SimFs {
        SimFs {
            state: Arc::clone(&self.state),
            actor,
        }
    }

    /// Kills process `actor` at the `at`-th operation (counted over every
    /// process): that operation and every later one of that process fail
    /// (a write may land partly), while the other processes go on.
    pub(crate) fn crash_actor_at(&self, actor: usize, at: u64, seed: u64) {
        let mut st = self.lock();
        st.crash_at = Some(at);
        st.crash_actor = Some(actor);
        st.rng = Some(Rng::new(seed));
    }

    /// Makes every sync take `delay` after it has made the data durable.
    pub(crate) fn slow_syncs(&self, delay: std::time::Duration) {
        self.lock().sync_delay = delay;
    }

    pub(crate) fn inject(&self, fault: Fault) {
        self.lock().fault = Some(fault);
    }

    pub(crate) fn has_crashed(&self) -> bool {
        self.lock().crashed
    }

    pub(crate) fn ops(&self) -> u64 {
        self.lock().ops
    }

    pub(crate) fn trace(&self) -> Vec<Traced> {
        self.lock().trace.clone()
    }

    /// Counts an operation; fails it if it is the crash or a fault.
    /// Returns `Ok(true)` when a crashing write should land partly.
    fn begin(st: &mut State, actor: usize, kind: OpKind, path: &Path) -> io::Result<bool> {
        let dead = st.crashed && st.crash_actor.is_none_or(|a| a == actor);
        if dead {
            return Err(crashed());
        }
        st.ops += 1;
        st.clock_ns += NS_PER_OP;
        st.trace.push(Traced {
            kind,
            path: path.to_path_buf(),
        });
        // A crash of one process comes at its first operation from `at` on.
        let due = st.crash_at.is_some_and(|at| st.ops >= at) && !st.crashed;
        if due && st.crash_actor.is_none_or(|a| a == actor) {
            st.crashed = true;
            return if kind == OpKind::Write {
                Ok(true)
            } else {
                Err(crashed())
            };
        }
        if let Some(fault) = st.fault {
            if st.ops == fault.at || (fault.persistent && st.ops > fault.at) {
                return Err(io::Error::from(fault.kind));
            }
        }
        Ok(false)
    }

    /// The files a process crash right now leaves: everything written.
    pub(crate) fn process_crash_image(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let st = self.lock();
        st.names
            .iter()
            .map(|(path, &inode)| (path.clone(), st.inodes[inode].data.clone()))
            .collect()
    }

    /// The files a power cut right now may leave, chosen by `seed`. Each
    /// name changed since its directory's last fsync shows its new target
    /// or its old one, independently of the others; but a rename is
    /// atomic, as journaling file systems make it: the file shows at its
    /// old name exactly when its new name kept its old target.
    pub(crate) fn power_loss_image(&self, seed: u64) -> BTreeMap<PathBuf, Vec<u8>> {
        let st = self.lock();
        let mut rng = Rng::new(seed);
        let mut chosen: BTreeMap<&PathBuf, usize> = BTreeMap::new();
        for (path, &now) in &st.names {
            let sure = st.durable.get(path).copied();
            let inode = if Some(now) == sure || rng.chance(2) {
                Some(now)
            } else {
                sure
            };
            if let Some(inode) = inode {
                chosen.insert(path, inode);
            }
        }
        // Names gone since the last directory fsync: removed, or renamed.
        for (path, &sure) in &st.durable {
            if st.names.contains_key(path) {
                continue;
            }
            let renamed = st.names.values().any(|&inode| inode == sure);
            let shows = match renamed {
                true => !chosen.values().any(|&inode| inode == sure),
                false => rng.chance(2),
            };
            if shows {
                chosen.insert(path, sure);
            }
        }
        chosen
            .into_iter()
            .map(|(path, inode)| (path.clone(), survivor(&st.inodes[inode], &mut rng)))
            .collect()
    }
}

/// What of a file's data survives a power cut: the synced bytes, and maybe
/// some of what was written after.
fn survivor(inode: &Inode, rng: &mut Rng) -> Vec<u8> {
    if inode.data == inode.synced {
        return inode.data.clone();
    }
    if !inode.data.starts_with(&inode.synced) {
        // Truncated since the last sync: either version, or the newer bytes
        // over the older, longer file (the truncation lost, the writes
        // after it kept).
        return match rng.below(3) {
            0 => inode.synced.clone(),
            1 => inode.data.clone(),
            _ => {
                let mut out = inode.data.clone();
                if let Some(rest) = inode.synced.get(inode.data.len()..) {
                    out.extend_from_slice(rest);
                }
                out
            }
        };
    }
    let extra = &inode.data[inode.synced.len()..];
    let mut out = inode.synced.clone();
    match rng.below(5) {
        0 => {}
        1 => out.extend_from_slice(extra),
        2 => out.extend_from_slice(&extra[..rng.below(extra.len() as u64 + 1) as usize]),
        3 => {
            let keep = rng.below(extra.len() as u64 + 1) as usize;
            out.extend_from_slice(&extra[..keep]);
            out.resize(inode.synced.len() + extra.len(), 0);
        }
        _ => {
            let keep = rng.below(extra.len() as u64 + 1) as usize;
            out.extend_from_slice(&extra[..keep]);
            for _ in keep..extra.len() {
                out.push(rng.next() as u8);
            }
        }
    }
    out
}

struct SimFile {
    sim: SimFs,
    inode: usize,
    path: PathBuf,
}

impl VfsFile for SimFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.sim.lock();
        let partial = SimFs::begin(&mut st, self.sim.actor, OpKind::Write, &self.path)?;
        if partial {
            let keep = match st.rng.as_mut() {
                Some(rng) => rng.below(bytes.len() as u64 + 1) as usize,
                None => 0,
            };
            st.inodes[self.inode].data.extend_from_slice(&bytes[..keep]);
            st.touch(self.inode);
            return Err(crashed());
        }
        st.inodes[self.inode].data.extend_from_slice(bytes);
        st.touch(self.inode);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut st = self.sim.lock();
        if SimFs::begin(&mut st, self.sim.actor, OpKind::SetLen, &self.path)? {
            return Err(crashed());
        }
        st.inodes[self.inode].data.resize(len as usize, 0);
        st.touch(self.inode);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync(OpKind::SyncData)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync(OpKind::SyncAll)
    }

    fn try_clone(&self) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(SimFile {
            sim: self.sim.clone(),
            inode: self.inode,
            path: self.path.clone(),
        }))
    }

    fn id(&self) -> io::Result<FileId> {
        let mut st = self.sim.lock();
        if SimFs::begin(&mut st, self.sim.actor, OpKind::Fstat, &self.path)? {
            return Err(crashed());
        }
        Ok(inode_id(&st, self.inode))
    }

    fn read_from(&self, offset: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let mut st = self.sim.lock();
        if SimFs::begin(&mut st, self.sim.actor, OpKind::ReadAt, &self.path)? {
            return Err(crashed());
        }
        let data = &st.inodes[self.inode].data;
        if let Some(rest) = data.get(offset as usize..) {
            out.extend_from_slice(rest);
        }
        Ok(())
    }
}

fn inode_id(st: &State, inode: usize) -> FileId {
    let node = &st.inodes[inode];
    FileId {
        dev: 1,
        ino: inode as u64,
        len: node.data.len() as u64,
        mtime_ns: node.mtime_ns,
    }
}

impl SimFile {
    fn sync(&mut self, kind: OpKind) -> io::Result<()> {
        let mut st = self.sim.lock();
        if SimFs::begin(&mut st, self.sim.actor, kind, &self.path)? {
            return Err(crashed());
        }
        let inode = &mut st.inodes[self.inode];
        inode.synced = inode.data.clone();
        let delay = st.sync_delay;
        drop(st);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Ok(())
    }
}

struct SimLock {
    sim: SimFs,
    path: PathBuf,
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.sim.lock();
        let release = match st.locks.get_mut(&self.path) {
            Some(holders) if *holders > 1 => {
                *holders -= 1;
                false
            }
            _ => true,
        };
        if release {
            st.locks.remove(&self.path);
        }
    }
}

struct SimWriterLock {
    sim: SimFs,
    path: PathBuf,
    /// What this description holds: 0 nothing, 1 shared, -1 exclusive.
    held: std::sync::atomic::AtomicI64,
}

impl SimWriterLock {
    fn take(&self, shared: bool) -> io::Result<bool> {
        let mut st = self.sim.lock();
        if SimFs::begin(&mut st, self.sim.actor, OpKind::Lock, &self.path)? {
            return Err(crashed());
        }
        let holders = st.writer_locks.get(&self.path).copied().unwrap_or(0);
        let next = match (shared, holders) {
            (true, h) if h >= 0 => h + 1,
            (false, 0) => -1,
            _ => return Ok(false),
        };
        st.writer_locks.insert(self.path.clone(), next);
        let mode = if shared { 1 } else { -1 };
        self.held.store(mode, std::sync::atomic::Ordering::SeqCst);
        Ok(true)
    }

    fn release(&self, st: &mut State) {
        match self.held.swap(0, std::sync::atomic::Ordering::SeqCst) {
            0 => {}
            held => {
                let holders = st.writer_locks.get(&self.path).copied().unwrap_or(0);
                if held == 1 && holders > 1 {
                    st.writer_locks.insert(self.path.clone(), holders - 1);
                } else {
                    st.writer_locks.remove(&self.path);
                }
            }
        }
    }
}

impl VfsLock for SimWriterLock {
    fn try_lock(&self) -> io::Result<bool> {
        self.take(false)
    }

    fn try_lock_shared(&self) -> io::Result<bool> {
        self.take(true)
    }

    fn unlock(&self) -> io::Result<()> {
        let mut st = self.sim.lock();
        // Unlocking cannot fail for real: a crashed process's locks go with it.
        self.release(&mut st);
        if SimFs::begin(&mut st, self.sim.actor, OpKind::Unlock, &self.path)? {
            return Err(crashed());
        }
        Ok(())
    }
}

impl Drop for SimWriterLock {
    fn drop(&mut self) {
        let mut st = self.sim.lock();
        self.release(&mut st);
    }
}

impl Vfs for SimFs {
    fn now_ns(&self) -> i128 {
        self.lock().now_ns()
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::Read, path)? {
            return Err(crashed());
        }
        Ok(st.names.get(path).map(|&i| st.inodes[i].data.clone()))
    }

    fn create_new(&self, path: &Path, _like: &Path) -> io::Result<Box<dyn VfsFile>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::CreateNew, path)? {
            return Err(crashed());
        }
        if st.names.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let inode = st.inodes.len();
        st.inodes.push(Inode::default());
        st.names.insert(path.to_path_buf(), inode);
        Ok(Box::new(SimFile {
            sim: self.clone(),
            inode,
            path: path.to_path_buf(),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::OpenAppend, path)? {
            return Err(crashed());
        }
        let inode = *st
            .names
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Box::new(SimFile {
            sim: self.clone(),
            inode,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::Rename, to)? {
            return Err(crashed());
        }
        let inode = st
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.names.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::Remove, path)? {
            return Err(crashed());
        }
        st.names
            .remove(path)
            .map(drop)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::SyncDir, dir)? {
            return Err(crashed());
        }
        let st = &mut *st;
        st.durable.retain(|path, _| path.parent() != Some(dir));
        for (path, &inode) in &st.names {
            if path.parent() == Some(dir) {
                st.durable.insert(path.clone(), inode);
            }
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::ListDir, dir)? {
            return Err(crashed());
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect())
    }

    fn try_lock(&self, path: &Path, shared: bool) -> io::Result<Option<Box<dyn LockGuard>>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::Lock, path)? {
            return Err(crashed());
        }
        let holders = st.locks.get(path).copied().unwrap_or(0);
        let next = match (shared, holders) {
            (true, h) if h >= 0 => h + 1,
            (false, 0) => -1,
            _ => return Ok(None),
        };
        st.locks.insert(path.to_path_buf(), next);
        Ok(Some(Box::new(SimLock {
            sim: self.clone(),
            path: path.to_path_buf(),
        })))
    }

    fn open_lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::Lock, path)? {
            return Err(crashed());
        }
        Ok(Box::new(SimWriterLock {
            sim: self.clone(),
            path: path.to_path_buf(),
            held: std::sync::atomic::AtomicI64::new(0),
        }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Option<Box<dyn VfsFile>>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::OpenRead, path)? {
            return Err(crashed());
        }
        Ok(st.names.get(path).map(|&inode| {
            Box::new(SimFile {
                sim: self.clone(),
                inode,
                path: path.to_path_buf(),
            }) as Box<dyn VfsFile>
        }))
    }

    fn stat(&self, path: &Path) -> io::Result<Option<FileId>> {
        let mut st = self.lock();
        if SimFs::begin(&mut st, self.actor, OpKind::Stat, path)? {
            return Err(crashed());
        }
        Ok(st.names.get(path).map(|&inode| inode_id(&st, inode)))
    }
}
