//! Change notifications on the store: `subscribe`, `on_change`,
//! `snapshot`, and what a watch does when the store's files or server may
//! have changed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Inner, Store};
use crate::error::{Error, Result};
use crate::notify::{watch_store, Change, OnChange, Subscription, Watch, Watched};
use crate::schema::Persisted;

/// How often `Watch::Auto` looks at a store's files when no event came
/// (events missed, a network file system), and at a server.
const SAFETY_POLL: Duration = Duration::from_secs(2);
const SERVER_POLL: Duration = Duration::from_millis(100);

impl<T: Persisted> Store<T> {
    /// A subscriber to this store's changes from now on: this process's
    /// commits always; with [`OpenOptions::watch`](crate::OpenOptions::watch)
    /// also other processes' commits, a person's saves and other clients'
    /// commits on a server. See [`Subscription`].
    pub fn subscribe(&self) -> Subscription {
        Subscription::new(Arc::clone(&self.inner.hub))
    }

    /// Calls `callback` on a thread of its own after each change (changes
    /// that come while it runs are folded into its next call), with the
    /// change and the state after it. The callback runs outside every
    /// lock: it may read and write the store. Dropping the guard stops it.
    ///
    /// ```
    /// use persisted_state::{Change, Persisted, Store};
    /// use std::sync::mpsc;
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Config { level: u8 }
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let store: Store<Config> = Store::open(dir.path().join("config.json"))?;
    /// let (tx, rx) = mpsc::channel();
    /// let _guard = store.on_change(move |change: &Change, config: &Config| {
    ///     let _ = tx.send((change.fields.clone(), config.level));
    /// });
    /// store.set_level(3)?;
    /// let (fields, level) = rx.recv_timeout(std::time::Duration::from_secs(5))?;
    /// assert_eq!((fields, level), (vec!["level".to_string()], 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_change<F>(&self, mut callback: F) -> OnChange
    where
        F: FnMut(&Change, &T) + Send + 'static,
    {
        let subscription = self.subscribe();
        let stop = Arc::new(AtomicBool::new(false));
        let hub = Arc::clone(subscription.hub());
        let store = Arc::downgrade(&self.inner);
        let stopped = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("persisted-on-change".into())
            .spawn(move || loop {
                use crate::notify::hub::Polled;
                match subscription.next(Some(&stopped)) {
                    Polled::Change(change) => {
                        let Some(inner) = store.upgrade() else {
                            return;
                        };
                        let state = Store { inner }.snapshot();
                        if stopped.load(Ordering::Acquire) {
                            return;
                        }
                        callback(&change, &state);
                    }
                    Polled::Failed(error) => log::warn!("{error}"),
                    Polled::Closed | Polled::Nothing => return,
                }
            });
        if let Err(e) = spawned {
            log::error!(
                "`{}`: cannot start the thread of an on_change callback: {e}",
                self.inner.path.display()
            );
        }
        OnChange::new(stop, hub)
    }

    /// The state as an `Arc<T>`, cloned only when it changed since the
    /// last call: cheap to call often, and to keep or send to another
    /// thread (a reader that must not hold a [`read`](Store::read) guard).
    pub fn snapshot(&self) -> Arc<T> {
        let guard = self.read();
        let at = (
            self.inner.hub.version(),
            self.inner.batch_edits.load(Ordering::Acquire),
        );
        let mut cached = self.inner.snapshot.lock();
        if let Some((version, edits, state)) = &*cached {
            if (*version, *edits) == at {
                return Arc::clone(state);
            }
        }
        let state = Arc::new((*guard).clone());
        *cached = Some((at.0, at.1, Arc::clone(&state)));
        state
    }

    /// Registers the store with the process's watcher.
    pub(crate) fn start_watch(&self, watch: Watch) {
        let files = self.inner.writer.lock().backend.watched_files();
        let (every, events) = match (watch, files.is_empty()) {
            (Watch::Off, _) => return,
            (Watch::Auto, true) => (SERVER_POLL, false),
            (Watch::Auto, false) => (SAFETY_POLL, true),
            (Watch::Poll(every), _) => (every.max(Duration::from_millis(1)), false),
        };
        let target = Arc::new(Target(Arc::downgrade(&self.inner)));
        *self.inner.watch.lock() = Some(watch_store(files, every, events, target));
    }

    /// Brings the store up to date with what changed outside this process:
    /// other writers' commits (catching up), and a person's save of the
    /// snapshot (adopted as before a commit). An empty snapshot is a save
    /// in progress: looked at again at the next event or poll.
    fn watch_check(&self) -> Result<()> {
        if self.inner.follows {
            self.refresh()?;
        }
        let empty = std::fs::metadata(&self.inner.path).is_ok_and(|m| m.len() == 0);
        if empty {
            return Ok(());
        }
        match self.lock_writer(false) {
            Ok(guard) => drop(guard),
            // A read-only handle only follows.
            Err(Error::ReadOnly { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// A watched store, held weakly: the watch never keeps it open.
struct Target<T: Persisted>(Weak<Inner<T>>);

impl<T: Persisted> Watched for Target<T> {
    fn check(&self) -> Option<Result<()>> {
        let inner = self.0.upgrade()?;
        let store = Store { inner };
        Some(store.watch_check())
    }

    fn failed(&self, error: &Error) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        match error {
            // What a person's save or another writer left: the subscribers'
            // next wait returns it.
            Error::Parse { .. } | Error::Corrupt { .. } | Error::Decrypt { .. } => {
                inner.hub.fail(error)
            }
            // A busy lock, a server down: the next check tries again.
            other => log::warn!("watching `{}`: {other}", inner.path.display()),
        }
    }
}
