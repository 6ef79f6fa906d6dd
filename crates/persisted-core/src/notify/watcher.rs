//! One watcher per process: the stores opened with `Watch::Auto` or
//! `Watch::Poll` are registered here, and one thread brings each up to
//! date when its files change (or its server may have), outside every
//! lock of the OS watcher.
//!
//! The OS watcher (`notify`: inotify on Linux) watches each store's
//! *directory*, not its files: an editor's rename-over save replaces the
//! file, and a watch on the file itself dies with the old one. One
//! instance for the whole process: Linux allows 128 per user, so one per
//! store would fail at the 129th. Events are matched to stores by file
//! name; a burst of them (an editor's save is several) is folded into one
//! check after [`SETTLE`] (a journal's appends at once). A slow poll covers what events miss (an
//! overflowing queue, network file systems), and stores on a server are
//! polled only.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::Error;

/// An event on a store's snapshot is acted on this long after the first
/// of a burst: an editor's save is several events, and a file written in
/// place is briefly cut.
pub(crate) const SETTLE: Duration = Duration::from_millis(30);

/// An event on its journal (another process appended) at once: a record
/// still being written is read again when complete.
const SETTLE_JOURNAL: Duration = Duration::from_millis(1);

/// What a watched store does when looked at.
pub(crate) trait Watched: Send + Sync {
    /// Brings the store up to date; `Err` for what could not be taken
    /// (a save that does not parse). `None`: the store is gone.
    fn check(&self) -> Option<Result<(), Error>>;
    /// A check failed: tell subscribers (once per distinct failure).
    fn failed(&self, error: &Error);
}

struct Entry {
    /// The directory watched and the file names that matter there.
    dir: Option<PathBuf>,
    names: Vec<OsString>,
    target: Arc<dyn Watched>,
    every: Duration,
    next_poll: Instant,
    /// When the events not acted on yet are due (the earliest).
    due_at: Option<Instant>,
    /// The last failure told (a failure is told once, until it changes).
    told: Option<String>,
}

#[derive(Default)]
struct Registry {
    entries: HashMap<u64, Entry>,
    next_id: u64,
    /// The thread that checks is running.
    running: bool,
}

/// The OS watcher and the directories it watches, with how many stores
/// need each. Its own mutex, never taken with `registry` held: `notify`
/// calls [`on_event`] (which takes `registry`) from a thread that a
/// `watch`/`unwatch` call waits for.
#[derive(Default)]
struct OsWatch {
    os: Option<notify::RecommendedWatcher>,
    dirs: HashMap<PathBuf, usize>,
}

struct Shared {
    registry: Mutex<Registry>,
    os: Mutex<OsWatch>,
    wake: Condvar,
}

fn shared() -> &'static Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    SHARED.get_or_init(|| {
        Arc::new(Shared {
            registry: Mutex::new(Registry::default()),
            os: Mutex::new(OsWatch::default()),
            wake: Condvar::new(),
        })
    })
}

/// A store's registration: dropping it unregisters the store (and the
/// directory, once no store needs it).
pub(crate) struct WatchHandle {
    id: u64,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let shared = shared();
        let entry = shared.registry.lock().entries.remove(&self.id);
        let Some(dir) = entry.and_then(|e| e.dir) else {
            return;
        };
        let mut os = shared.os.lock();
        let last = match os.dirs.get_mut(&dir) {
            Some(count) => {
                *count -= 1;
                *count == 0
            }
            None => false,
        };
        if last {
            os.dirs.remove(&dir);
            if let Some(watcher) = os.os.as_mut() {
                use notify::Watcher;
                let _ = watcher.unwatch(&dir);
            }
        }
    }
}

/// Registers a store: `files` (its snapshot and journal; none for a
/// server) watched through OS events when `events`, and checked every
/// `every` in any case.
pub(crate) fn watch_store(
    files: Vec<PathBuf>,
    every: Duration,
    events: bool,
    target: Arc<dyn Watched>,
) -> WatchHandle {
    let shared = shared();
    let dir = files
        .first()
        .map(|f| crate::file::atomic::parent_dir(f))
        .filter(|_| events)
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
        .filter(|dir| watch_dir(&mut shared.os.lock(), dir));
    let names = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_os_string()))
        .collect();
    let mut registry = shared.registry.lock();
    registry.next_id += 1;
    let id = registry.next_id;
    registry.entries.insert(
        id,
        Entry {
            dir,
            names,
            target,
            every,
            next_poll: Instant::now() + every,
            due_at: None,
            told: None,
        },
    );
    if !registry.running {
        let spawned = std::thread::Builder::new()
            .name("persisted-watch".into())
            .spawn(|| run(self::shared()));
        match spawned {
            Ok(_) => registry.running = true,
            Err(e) => log::error!(
                "cannot start the watch thread: {e}; changes from outside this process are \
                 not seen"
            ),
        }
    }
    drop(registry);
    shared.wake.notify_all();
    WatchHandle { id }
}

/// Adds a watch on `dir` (counted); false when the OS refuses (then the
/// store is polled only, which the caller's `every` still does).
fn watch_dir(registry: &mut OsWatch, dir: &Path) -> bool {
    use notify::Watcher;
    if let Some(count) = registry.dirs.get_mut(dir) {
        *count += 1;
        return true;
    }
    if registry.os.is_none() {
        match notify::recommended_watcher(on_event) {
            Ok(os) => registry.os = Some(os),
            Err(e) => {
                log::warn!("cannot start the OS file watcher ({e}); watched stores are polled");
                return false;
            }
        }
    }
    let Some(os) = registry.os.as_mut() else {
        return false;
    };
    match os.watch(dir, notify::RecursiveMode::NonRecursive) {
        Ok(()) => {
            registry.dirs.insert(dir.to_path_buf(), 1);
            true
        }
        Err(e) => {
            log::warn!(
                "cannot watch `{}` ({e}); its stores are polled",
                dir.display()
            );
            false
        }
    }
}

/// An OS event (on `notify`'s thread): marks the stores whose files it
/// names; the check runs on the watch thread.
fn on_event(event: notify::Result<notify::Event>) {
    let shared = shared();
    let mut registry = shared.registry.lock();
    let now = Instant::now();
    let mut marked = false;
    match event {
        Ok(event) => {
            for path in &event.paths {
                let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                    continue;
                };
                for entry in registry.entries.values_mut() {
                    if entry.dir.as_deref() != Some(dir) {
                        continue;
                    }
                    // The first name is the snapshot's, the rest journals.
                    let settle = match entry.names.iter().position(|n| n == name) {
                        Some(0) => SETTLE,
                        Some(_) => SETTLE_JOURNAL,
                        None => continue,
                    };
                    let at = now + settle;
                    entry.due_at = Some(entry.due_at.map_or(at, |due| due.min(at)));
                    marked = true;
                }
            }
        }
        // Events were lost (a queue overflow): look at every store.
        Err(_) => {
            for entry in registry.entries.values_mut() {
                entry.due_at.get_or_insert(now + SETTLE);
                marked = true;
            }
        }
    }
    drop(registry);
    if marked {
        shared.wake.notify_all();
    }
}

/// The watch thread: checks each store when its burst of events settled or
/// its poll is due; sleeps until the next of those otherwise.
fn run(shared: &'static Arc<Shared>) {
    loop {
        let due: Vec<(u64, Arc<dyn Watched>)> = {
            let mut registry = shared.registry.lock();
            loop {
                let now = Instant::now();
                let mut next: Option<Instant> = None;
                let mut due = Vec::new();
                for (&id, entry) in registry.entries.iter_mut() {
                    let at = match entry.due_at {
                        Some(due) => due.min(entry.next_poll),
                        None => entry.next_poll,
                    };
                    if at <= now {
                        entry.due_at = None;
                        entry.next_poll = now + entry.every;
                        due.push((id, Arc::clone(&entry.target)));
                    } else {
                        next = Some(next.map_or(at, |n: Instant| n.min(at)));
                    }
                }
                if !due.is_empty() {
                    break due;
                }
                match next {
                    Some(at) => {
                        shared.wake.wait_until(&mut registry, at);
                    }
                    None => shared.wake.wait(&mut registry),
                }
            }
        };
        for (id, target) in due {
            let outcome = target.check();
            let mut registry = shared.registry.lock();
            let Some(entry) = registry.entries.get_mut(&id) else {
                continue;
            };
            match outcome {
                None | Some(Ok(())) => entry.told = None,
                Some(Err(error)) => {
                    let text = error.to_string();
                    if entry.told.as_deref() != Some(text.as_str()) {
                        entry.told = Some(text);
                        drop(registry);
                        target.failed(&error);
                    }
                }
            }
        }
    }
}
