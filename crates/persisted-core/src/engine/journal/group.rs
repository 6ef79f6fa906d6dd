//! Group commit for `Durability::Sync`: a writer appends its record under
//! the writer lock, releases it, then waits until an `fdatasync` that began
//! after its write has returned. One writer at a time (the leader) runs the
//! sync; writers whose records were written meanwhile share the next one,
//! so throughput grows with the number of writers while each call still
//! returns only once its own commit is durable.
//!
//! Positions count the bytes appended to journals since the store opened
//! (across compactions), so "durable up to" survives a journal reset.
//! A failed sync is never retried (see "fsyncgate"): the leader keeps the
//! sync slot while the store undoes every commit not known durable and
//! poisons itself, then every waiter gets the error.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::file::vfs::VfsFile;

/// How long at most a leader waits for writers on their way to append
/// before it syncs.
const GATHER_FOR: Duration = Duration::from_micros(1000);

#[derive(Default)]
struct State {
    /// Bytes appended so far.
    written: u64,
    /// Records appended so far, how many syncs covered, and how many the
    /// last sync covered.
    records: u64,
    records_synced: u64,
    last_group: u64,
    /// Everything up to here is durable.
    synced: u64,
    /// A leader is syncing (or handling its sync's failure).
    syncing: bool,
    /// The handle syncs use, and which journal it belongs to.
    handle: Option<Box<dyn VfsFile>>,
    generation: u64,
    /// The error of the sync that failed; set once, for good.
    failed: Option<(io::ErrorKind, String)>,
}

/// The shared sync slot of one store.
#[derive(Default)]
pub(crate) struct GroupSync {
    state: Mutex<State>,
    done: Condvar,
    /// Group commit is in use (`Durability::Sync`, journal, one process).
    active: AtomicBool,
    /// Writers between asking for the writer mutex and writing their
    /// record: a leader lets them join its sync.
    arriving: AtomicUsize,
}

impl GroupSync {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A record of `len` bytes was appended; returns its end position.
    pub(crate) fn wrote(&self, len: u64) -> u64 {
        let mut st = self.lock();
        st.written += len;
        st.records += 1;
        st.written
    }

    /// Everything written so far is durable (a compaction synced it).
    pub(crate) fn all_synced(&self) {
        let mut st = self.lock();
        st.synced = st.written;
        st.records_synced = st.records;
        drop(st);
        self.done.notify_all();
    }

    /// Position up to which everything is durable.
    pub(crate) fn synced(&self) -> u64 {
        self.lock().synced
    }

    /// Syncs go to `handle` from now on (a new journal after compaction).
    pub(crate) fn set_handle(&self, handle: Box<dyn VfsFile>) {
        let mut st = self.lock();
        st.handle = Some(handle);
        st.generation += 1;
        self.active.store(true, Ordering::Relaxed);
    }

    /// A writer is on its way to append; `false` (and nothing counted)
    /// when group commit is not in use.
    pub(crate) fn arrive(&self) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        self.arriving.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// That writer appended (or gave up).
    pub(crate) fn depart(&self) {
        self.arriving.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits until position `pos` is durable, syncing as the leader when no
    /// one else is. `on_failure` runs in the leader after a failed sync,
    /// before any waiter returns; it must undo what was not made durable.
    pub(crate) fn wait_durable(
        &self,
        pos: u64,
        on_failure: impl FnOnce(&io::Error),
    ) -> io::Result<()> {
        let mut on_failure = Some(on_failure);
        let mut st = self.lock();
        loop {
            if st.synced >= pos {
                return Ok(());
            }
            if let Some((kind, message)) = &st.failed {
                return Err(io::Error::new(*kind, message.clone()));
            }
            if st.syncing {
                st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Lead. First let the writers on their way (waiting for the
            // writer mutex, or encoding) append, and as many as the last
            // sync covered, so this sync covers them too; at most
            // `GATHER_FOR`. A lone writer syncs at once.
            st.syncing = true;
            let (expected, synced_records) = (st.last_group, st.records_synced);
            drop(st);
            let until = Instant::now() + GATHER_FOR;
            while Instant::now() < until {
                let arriving = self.arriving.load(Ordering::Acquire);
                let written = self.lock().records - synced_records;
                if arriving == 0 && written >= expected {
                    break;
                }
                std::thread::yield_now();
            }
            st = self.lock();
            let Some(mut handle) = st.handle.take() else {
                st.syncing = false;
                self.done.notify_all();
                return Err(io::Error::other("no journal to sync"));
            };
            let generation = st.generation;
            let target = st.written;
            let records = st.records;
            drop(st);
            let result = handle.sync_data();
            if let (Err(e), Some(on_failure)) = (&result, on_failure.take()) {
                on_failure(e);
            }
            st = self.lock();
            st.syncing = false;
            if st.generation == generation {
                st.handle = Some(handle);
            }
            match result {
                Ok(()) => {
                    st.synced = st.synced.max(target);
                    st.last_group = records - st.records_synced;
                    st.records_synced = records;
                }
                Err(e) => st.failed = Some((e.kind(), e.to_string())),
            }
            self.done.notify_all();
        }
    }

    /// A failure elsewhere (a compaction) poisoned the store: waiters stop.
    pub(crate) fn fail(&self, error: &io::Error) {
        let mut st = self.lock();
        if st.failed.is_none() {
            st.failed = Some((error.kind(), error.to_string()));
        }
        drop(st);
        self.done.notify_all();
    }
}
