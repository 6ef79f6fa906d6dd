//! Change notifications: `Store::subscribe`, `Store::on_change`,
//! `Store::snapshot`, and `OpenOptions::watch`.
//!
//! * `change.rs`: what a subscriber is told ([`Change`], [`Origin`]) and
//!   what a commit or a catch-up noted for it (`Notes`).
//! * `hub.rs`: one per store: the changes since each subscriber's last
//!   wake-up, kept coalesced (a version per field and per origin, never a
//!   queue), and the waiting: a condvar for threads, wakers for futures.
//! * `subscription.rs`: [`Subscription`] (`wait_timeout`, `iter`,
//!   `changed`) and the [`OnChange`] guard of a callback.
//! * `watcher.rs`: one OS watcher per process on the stores' directories,
//!   a safety poll, and the thread that brings watched stores up to date.

mod change;
pub(crate) mod hub;
mod subscription;
mod watcher;

pub(crate) use self::change::{replace_noting, Notes};
pub use self::change::{Change, Origin};
pub(crate) use self::hub::Hub;
pub use self::subscription::{Changed, Iter, OnChange, Subscription};
pub(crate) use self::watcher::{watch_store, WatchHandle, Watched};

use std::time::Duration;

/// Whether a store also watches for changes made outside this process
/// (`OpenOptions::watch`). Commits of this process reach subscribers
/// whatever it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Watch {
    /// Only this process's commits (the default): no watcher.
    #[default]
    Off,
    /// Also other processes' commits (shared mode), a person's edit of the
    /// snapshot (adopted at once, exclusive mode too) and other clients'
    /// commits on Redis and PostgreSQL, each within about 100 ms: one OS
    /// watcher per process on the stores' directories (inotify on Linux,
    /// through `notify`), plus a safety poll every 2 s; servers are polled
    /// every 100 ms.
    Auto,
    /// Like `Auto`, but checks every given interval instead of using OS
    /// events (network file systems, where events may not come).
    Poll(Duration),
}
