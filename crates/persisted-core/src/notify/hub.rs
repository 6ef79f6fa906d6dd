//! One per store: what changed, kept coalesced for every subscriber at
//! once, and the waiting.
//!
//! A publish stamps each changed field and origin with a new version, in
//! O(the fields changed), whatever the number of subscribers; a subscriber
//! remembers the version it last returned and, when it wakes, gathers the
//! fields and origins stamped after it. So a subscriber that never waits
//! costs nothing and memory stays flat, and a publisher never waits for a
//! subscriber: it holds the hub's mutex only to stamp, and wakes waiters
//! without waiting for them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::change::{Change, Notes, Origin};
use crate::error::{Error, Result};
use crate::schema::FieldSpec;

/// A reload error, kept to be returned to each subscriber once.
#[derive(Debug, Clone)]
struct Failed {
    path: PathBuf,
    line: usize,
    column: usize,
    message: String,
    parse: bool,
}

impl Failed {
    fn of(error: &Error) -> Failed {
        match error {
            Error::Parse {
                path,
                line,
                column,
                message,
            } => Failed {
                path: path.clone(),
                line: *line,
                column: *column,
                message: message.clone(),
                parse: true,
            },
            other => Failed {
                path: PathBuf::new(),
                line: 0,
                column: 0,
                message: other.to_string(),
                parse: false,
            },
        }
    }

    fn error(&self, store: &std::path::Path) -> Error {
        match self.parse {
            true => Error::Parse {
                path: self.path.clone(),
                line: self.line,
                column: self.column,
                message: self.message.clone(),
            },
            false => Error::Io {
                op: "watch",
                path: store.to_path_buf(),
                source: std::io::Error::other(self.message.clone()),
            },
        }
    }
}

#[derive(Default)]
struct State {
    /// Bumped by every publish.
    version: u64,
    /// The newest sequence number published (or, where the backend
    /// numbers none, the number of commits published).
    seq: u64,
    /// Commits published, in total.
    commits: u64,
    /// The version at which each field (by index) last changed.
    field_at: Vec<u64>,
    /// The version at which each origin last appeared.
    origin_at: [u64; 4],
    /// Failures published, in total, and the last one.
    failures: u64,
    failed: Option<Failed>,
    /// The store was closed (its last handle dropped, or `close()`).
    closed: bool,
    /// Futures waiting, by subscriber id.
    wakers: Vec<(u64, Waker)>,
    next_id: u64,
}

/// Where a subscriber is: what it has returned so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    version: u64,
    commits: u64,
    failures: u64,
}

pub(crate) struct Hub {
    state: Mutex<State>,
    ready: Condvar,
    /// The store's path, for errors.
    path: PathBuf,
    /// The fields, by index.
    fields: &'static [FieldSpec],
}

/// What [`Hub::poll`] found.
pub(crate) enum Polled {
    Change(Change),
    Failed(Error),
    Closed,
    Nothing,
}

impl Hub {
    pub(crate) fn new(path: PathBuf, fields: &'static [FieldSpec]) -> Hub {
        Hub {
            state: Mutex::new(State {
                field_at: vec![0; fields.len()],
                ..State::default()
            }),
            ready: Condvar::new(),
            path,
            fields,
        }
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A new subscriber's starting point: changes from now on.
    pub(crate) fn join(&self) -> (u64, Seen) {
        let mut state = self.state.lock();
        state.next_id += 1;
        let seen = Seen {
            version: state.version,
            commits: state.commits,
            failures: state.failures,
        };
        (state.next_id, seen)
    }

    /// How many changes have been published (for `snapshot()`).
    pub(crate) fn version(&self) -> u64 {
        self.state.lock().version
    }

    /// Publishes `notes` and wakes every waiter.
    pub(crate) fn publish(&self, notes: &Notes) {
        if notes.is_empty() {
            return;
        }
        let wakers = {
            let mut state = self.state.lock();
            state.version += 1;
            let version = state.version;
            state.commits += notes.commits;
            state.seq = match notes.seq {
                0 => state.seq + notes.commits,
                seq => seq.max(state.seq),
            };
            for index in notes.field_indices() {
                if let Some(at) = state.field_at.get_mut(index) {
                    *at = version;
                }
            }
            for origin in notes.origins() {
                state.origin_at[origin.bit()] = version;
            }
            std::mem::take(&mut state.wakers)
        };
        self.ready.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// A change from outside could not be taken (a save that does not
    /// parse): each subscriber's next wait returns it once.
    pub(crate) fn fail(&self, error: &Error) {
        let wakers = {
            let mut state = self.state.lock();
            state.failures += 1;
            state.failed = Some(Failed::of(error));
            std::mem::take(&mut state.wakers)
        };
        self.ready.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// The store is closed: waits end.
    pub(crate) fn close(&self) {
        let wakers = {
            let mut state = self.state.lock();
            state.closed = true;
            std::mem::take(&mut state.wakers)
        };
        self.ready.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    fn take(&self, state: &State, seen: &mut Seen) -> Polled {
        if state.failures > seen.failures {
            seen.failures = state.failures;
            if let Some(failed) = &state.failed {
                return Polled::Failed(failed.error(&self.path));
            }
        }
        if state.version > seen.version {
            let since = seen.version;
            let fields = state
                .field_at
                .iter()
                .enumerate()
                .filter(|(_, &at)| at > since)
                .filter_map(|(i, _)| self.fields.get(i).map(|f| f.name.to_string()))
                .collect();
            let origins = Origin::ALL
                .into_iter()
                .filter(|o| state.origin_at[o.bit()] > since)
                .collect();
            let change = Change {
                seq: state.seq,
                fields,
                origins,
                commits: state.commits - seen.commits,
            };
            seen.version = state.version;
            seen.commits = state.commits;
            return Polled::Change(change);
        }
        if state.closed {
            return Polled::Closed;
        }
        Polled::Nothing
    }

    /// What is there for `seen`, without waiting; registers `waker` when
    /// nothing is.
    pub(crate) fn poll(&self, seen: &mut Seen, id: u64, waker: Option<&Waker>) -> Polled {
        let mut state = self.state.lock();
        let polled = self.take(&state, seen);
        if let (Polled::Nothing, Some(waker)) = (&polled, waker) {
            match state.wakers.iter_mut().find(|(i, _)| *i == id) {
                Some((_, known)) => known.clone_from(waker),
                None => state.wakers.push((id, waker.clone())),
            }
        }
        polled
    }

    /// Forgets a future's waker (dropped).
    pub(crate) fn forget(&self, id: u64) {
        self.state.lock().wakers.retain(|(i, _)| *i != id);
    }

    /// Waits until there is something for `seen`, or `deadline` (`None`:
    /// forever), or `cancel` is set (then `Closed`; see [`Hub::nudge`]).
    pub(crate) fn wait(
        &self,
        seen: &mut Seen,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> Polled {
        let mut state = self.state.lock();
        loop {
            if cancel.is_some_and(|c| c.load(Ordering::Acquire)) {
                return Polled::Closed;
            }
            match self.take(&state, seen) {
                Polled::Nothing => {}
                found => return found,
            }
            match deadline {
                None => self.ready.wait(&mut state),
                Some(deadline) => {
                    if self.ready.wait_until(&mut state, deadline).timed_out() {
                        return self.take(&state, seen);
                    }
                }
            }
        }
    }

    /// Wakes every waiting thread to look at its cancel flag.
    pub(crate) fn nudge(&self) {
        let _state = self.state.lock();
        self.ready.notify_all();
    }

    /// A wait of `timeout` from now.
    pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
        Instant::now().checked_add(timeout)
    }
}

/// The result of a wait as the public API gives it.
pub(crate) fn result(polled: Polled) -> Result<Option<Change>> {
    match polled {
        Polled::Change(change) => Ok(Some(change)),
        Polled::Failed(error) => Err(error),
        Polled::Closed | Polled::Nothing => Ok(None),
    }
}
