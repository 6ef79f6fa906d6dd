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
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::file::vfs::VfsFile;

/// How many scheduler turns a leader waits for writers to join its sync.
const GATHER_TURNS: usize = 8;

#[derive(Default)]
struct State {
    /// Bytes appended so far.
    written: u64,
    /// Records appended so far, and how many the last sync covered.
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
            // Lead. When writers are committing concurrently (the last sync
            // covered several), first let the ones already on their way
            // append, so this sync covers them too: wait while `written`
            // keeps growing, a few scheduler turns at most. A lone writer
            // syncs at once.
            st.syncing = true;
            let concurrent = st.last_group > 1;
            let mut seen = st.written;
            drop(st);
            for _ in 0..if concurrent { GATHER_TURNS } else { 0 } {
                std::thread::yield_now();
                let now = self.lock().written;
                if now == seen {
                    break;
                }
                seen = now;
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
