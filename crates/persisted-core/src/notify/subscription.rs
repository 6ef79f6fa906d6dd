//! A subscriber's side: [`Subscription`] and its three ways to wait, and
//! the [`OnChange`] guard of a callback.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;

use super::change::Change;
use super::hub::{result, Hub, Polled, Seen};
use crate::error::{Error, Result};

/// A subscriber to a store's changes ([`Store::subscribe`](crate::Store::subscribe)).
///
/// Changes coalesce: each wait returns everything since the previous one
/// as one [`Change`], so a subscription that is not waited on costs
/// nothing and holds no queue, and no writer ever waits for it. `Send` and
/// `Sync`; it does not keep the store open.
///
/// ```
/// use persisted_state::{Persisted, Store};
/// use std::time::Duration;
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
/// struct Jobs { queue: Vec<String> }
///
/// # let dir = tempfile::tempdir()?;
/// let store: Store<Jobs> = Store::open(dir.path().join("jobs.json"))?;
/// let sub = store.subscribe();
/// let writer = store.clone();
/// std::thread::spawn(move || writer.push_queue("job-1".into()));
/// let change = sub.wait_timeout(Duration::from_secs(5))?.expect("a change");
/// assert_eq!(change.fields, ["queue"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("store", &self.hub.path())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(hub: Arc<Hub>) -> Subscription {
        let (id, seen) = hub.join();
        Subscription {
            hub,
            id,
            seen: Mutex::new(seen),
        }
    }

    /// Waits up to `timeout` for a change; returns every change since the
    /// last wait as one, at once if there is one. `Ok(None)` when none
    /// came in time, or the store is closed.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] once for a save of the file that does not parse
    /// (`Watch::Auto`): the state and the file stay as they were, and the
    /// fixed save is adopted.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<Change>> {
        let mut seen = self.seen.lock();
        result(self.hub.wait(&mut seen, Hub::deadline(timeout), None))
    }

    /// The changes as they come, each wait blocking; ends when the store
    /// is closed (its last handle dropped, or `close()`).
    pub fn iter(&self) -> Iter<'_> {
        Iter { subscription: self }
    }

    /// A future of the next change, for any executor (no runtime
    /// dependency). Cancel-safe: dropping it loses no change, the next
    /// wait returns it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the store is closed first; [`Error::Parse`]
    /// as for [`wait_timeout`](Subscription::wait_timeout).
    pub fn changed(&self) -> Changed<'_> {
        Changed { subscription: self }
    }

    /// Waits for the next change; `cancel` ends the wait (`Closed`).
    pub(crate) fn next(&self, cancel: Option<&AtomicBool>) -> Polled {
        let mut seen = self.seen.lock();
        self.hub.wait(&mut seen, None, cancel)
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.forget(self.id);
    }
}

/// The iterator of [`Subscription::iter`]: each item blocks until a
/// change; ends when the store is closed.
#[derive(Debug)]
pub struct Iter<'a> {
    subscription: &'a Subscription,
}

impl Iterator for Iter<'_> {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Result<Change>> {
        match self.subscription.next(None) {
            Polled::Change(change) => Some(Ok(change)),
            Polled::Failed(error) => Some(Err(error)),
            Polled::Closed | Polled::Nothing => None,
        }
    }
}

/// The future of [`Subscription::changed`].
#[derive(Debug)]
#[must_use = "a future does nothing unless awaited"]
pub struct Changed<'a> {
    subscription: &'a Subscription,
}

impl Future for Changed<'_> {
    type Output = Result<Change>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Change>> {
        let subscription = self.subscription;
        let mut seen = subscription.seen.lock();
        match subscription
            .hub
            .poll(&mut seen, subscription.id, Some(cx.waker()))
        {
            Polled::Change(change) => Poll::Ready(Ok(change)),
            Polled::Failed(error) => Poll::Ready(Err(error)),
            Polled::Closed => Poll::Ready(Err(Error::Closed {
                path: subscription.hub.path().to_path_buf(),
            })),
            Polled::Nothing => Poll::Pending,
        }
    }
}

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        self.subscription.hub.forget(self.subscription.id);
    }
}

/// The guard of a callback ([`Store::on_change`](crate::Store::on_change)):
/// dropping it stops the callback (one already under way finishes on its
/// thread; the drop never waits for it, so it never deadlocks a writer).
#[must_use = "dropping the guard stops the callback"]
pub struct OnChange {
    stop: Arc<AtomicBool>,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for OnChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnChange")
            .field("store", &self.hub.path())
            .finish_non_exhaustive()
    }
}

impl OnChange {
    pub(crate) fn new(stop: Arc<AtomicBool>, hub: Arc<Hub>) -> OnChange {
        OnChange { stop, hub }
    }
}

impl Drop for OnChange {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.hub.nudge();
    }
}
