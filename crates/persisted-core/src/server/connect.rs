//! Opening a server store (Redis, PostgreSQL): the caller's options checked
//! for what a server store can do, what the backend's constructor needs,
//! and the `Store` made around the backend it returns.

use std::path::PathBuf;
use std::time::Duration;

use crate::crypt::Key;
use crate::engine::backend::{Backend, Opened};
use crate::error::{Error, Result};
use crate::format::Codec;
use crate::history::KeepHistory;
use crate::options::{Durability, Engine, Format, OpenOptions};
use crate::report::Recovery;
use crate::schema::Persisted;
use crate::store::Store;

use super::redact;

/// Everything a server backend's constructor needs.
pub(crate) struct Connect<'a> {
    pub(crate) url: &'a str,
    pub(crate) key: &'a str,
    /// The name errors give the store: the URL without its password, and
    /// the key.
    pub(crate) target: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) lock_timeout: Duration,
    pub(crate) durability: Durability,
    pub(crate) keep: KeepHistory,
    /// The key to open an encrypted store with (or make a new one).
    pub(crate) encryption: Option<&'a Key>,
}

/// Opens the store kept under `key` on the `server` (`Redis`,
/// `PostgreSQL`) at `url`: refuses the options that have no meaning there,
/// then makes the `Store` around the backend `connect` returns with the
/// store's state.
pub(crate) fn open_store<T, B>(
    options: OpenOptions<T>,
    url: &str,
    key: &str,
    server: &str,
    connect: impl FnOnce(Connect<'_>) -> Result<(B, T)>,
) -> Result<Store<T>>
where
    T: Persisted,
    B: Backend<T> + 'static,
{
    let target = PathBuf::from(format!("{} key {key}", redact(url)));
    let refuse = |what: &str| Error::Unsupported {
        path: target.clone(),
        reason: format!("{what} has no meaning for a {server} store"),
    };
    if options.format.is_some_and(|f| f != Format::Json) {
        return Err(refuse("a format other than JSON (values are JSON)"));
    }
    if options.engine != Engine::Journal {
        return Err(refuse("`Engine::Snapshot`"));
    }
    if options.read_only {
        return Err(refuse("`read_only`"));
    }
    if options.encrypt_existing {
        return Err(refuse(
            "`encrypt_existing` (its log holds the plain values: copy the state into an \
             encrypted store under a new key)",
        ));
    }
    let (backend, state) = connect(Connect {
        url,
        key,
        target: target.clone(),
        timeout: options.timeout,
        lock_timeout: options.lock_timeout,
        durability: options.durability,
        keep: options.keep_history,
        encryption: options.key.as_ref(),
    })?;
    let opened = Opened {
        backend: Box::new(backend),
        state,
        codec: Codec::new(Format::Json, &target)?,
        recovery: Recovery::default(),
    };
    Store::from_backend(&target, options.mode, options.watch, opened)
}
