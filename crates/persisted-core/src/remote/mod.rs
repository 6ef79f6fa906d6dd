//! The Redis backend (feature `redis`): the store lives on a Redis server
//! and every process on every host that opens the same URL and key shares
//! it, with the guarantees of shared mode.
//!
//! * **Layout** (readable with `redis-cli`; see `scripts.rs` for the keys):
//!   plain fields as JSON in one hash `{P}:state`; a field whose value is a
//!   list or a map is kept as a native Redis list or hash `{P}:c:<field>`
//!   (elements and values as JSON, map keys as their text), so collection
//!   operations cost O(the change) on the server. Fields the struct does
//!   not know are never touched.
//! * **Commits** are one Lua script each: compare-and-set on the version in
//!   `{P}:meta`, the operations, the version bump and a log entry
//!   (`{P}:log`, a stream: version, commit id, time, the journal record), in
//!   one round trip. Generated operations are optimistic: they commit at
//!   the version this handle knows and, when another commit came first,
//!   catch up and recompute. Closures (`update`, `transaction`, `begin`)
//!   take the lease `{P}:lease` first, so they run once on the current
//!   state; the commit is still fenced by the version.
//! * **Lost replies**: a commit whose reply is lost is sent again with the
//!   same commit id and expected version; when the version moved, the log
//!   says whether the commit id is in it. Never a blind retry.
//!
//! The parts: `backend.rs` (the constructor and the `Backend` a `Store`
//! drives), `connection.rs`, `state.rs` (loading and encoding the state),
//! `commit.rs`, `catch_up.rs` (following the log), `lease.rs`,
//! `history.rs`, and the Lua scripts (`scripts.rs`). The imports below are
//! what the parts share (`use super::*`).

mod backend;
mod catch_up;
mod commit;
mod connection;
mod history;
mod lease;
mod scripts;
mod state;

pub(crate) use self::backend::open_store;
use self::{catch_up::*, connection::*};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::RwLock;
use redis::{
    Client, Connection, ErrorKind, RedisError, RedisResult, Script, ServerErrorKind, Value,
};
use serde_json::Value as Json;

use crate::change::Changes;
use crate::crypt::{Crypt, Key};
use crate::error::{Error, Result};
use crate::format::Codec;
use crate::history::{Commit, KeepHistory};
use crate::notify::Notes;
use crate::options::{Durability, Format};
use crate::schema::{FieldSpec, Persisted};
use crate::server::{
    check_same, decode, encode_for, envelope_text, note_kinds, now_ms, open_object, open_record,
    record_fields, replay_log, replay_log_as_of, unique_id, unlock, AllFields, Connect, Kind,
    ServerOp,
};

/// What a commit attempt came to.
pub(crate) enum Outcome {
    /// Applied on the server (memory may now apply it too).
    Committed,
    /// Another commit came first: nothing applied.
    Behind,
    /// Another handle holds the lease: nothing applied.
    Leased,
}

/// How long a handle keeps the lease after a closure's commit when nobody
/// waits for it, so that its next `update` need not wait for a round trip
/// to take it: it renews the lease (for the whole lease time, as taking it
/// does) with a request whose reply it reads only after sending the
/// commit. The lease is given up at the next commit once someone waits,
/// and expires by itself after this.
const KEEP_LEASE: Duration = Duration::from_millis(100);

/// How long a failed attempt to take the lease marks it wanted.
const WAITING_MS: u64 = 250;

/// The log is trimmed to about this many entries unless history asks for
/// more (lost-reply resolution and catching up read it).
const DEFAULT_LOG: u64 = 10_000;

/// A connection to one store on one server.
pub(crate) struct RedisBackend {
    client: Client,
    conn: Option<Connection>,
    /// `redis://host:port/db` without the password, and the key: names the
    /// store in errors and logs.
    target: PathBuf,
    /// `{key}`: the hash tag every key of the store starts with.
    prefix: String,
    /// The names of the store's keys that every commit names.
    keys: std::sync::Arc<Keys>,
    timeout: Duration,
    lease_ttl: Duration,
    lock_timeout: Duration,
    /// The version this handle's memory is at, and the log entry of it.
    version: u64,
    last_id: String,
    kinds: HashMap<String, Kind>,
    /// This handle's lease token, and whether it holds the lease now.
    token: String,
    pub(crate) leased: bool,
    /// Until when the lease kept after the last commit can be used without
    /// waiting to take it again (half its life after that commit was sent).
    kept_until: Option<Instant>,
    /// A renewal of the kept lease was sent and its reply not read yet: it
    /// is read after the next commit is sent (one round trip for both), or
    /// before any other use of the connection.
    renewing: bool,
    keep: KeepHistory,
    codec: Codec,
    /// Other clients' commits caught up with, for subscribers.
    pub(crate) notes: Notes,
    /// An encrypted store's data key: each field's value is sealed
    /// (`server/seal.rs`).
    crypt: Option<Crypt>,
}

/// The names of a store's keys, made once (every commit sends them).
struct Keys {
    meta: String,
    state: String,
    log: String,
    lease: String,
    wake: String,
    waiting: String,
}

impl Keys {
    fn of(prefix: &str) -> Keys {
        let key = |name: &str| format!("{prefix}:{name}");
        Keys {
            meta: key("meta"),
            state: key("state"),
            log: key("log"),
            lease: key("lease"),
            wake: key("wake"),
            waiting: key("waiting"),
        }
    }
}

impl RedisBackend {
    /// Connects, checks the server can give `durability`, and loads the
    /// store into `T` (creating it from `initial` when it does not exist).
    pub(crate) fn open<T: Persisted>(connect: Connect<'_>, initial: T) -> Result<(Self, T)> {
        let target = connect.target.clone();
        if connect.key.is_empty() || connect.key.contains(['{', '}']) {
            return Err(Error::Unsupported {
                path: target,
                reason: "the key must be non-empty and hold no `{` or `}` (it becomes the \
                         hash tag of every key of the store)"
                    .into(),
            });
        }
        let client = Client::open(connect.url).map_err(|e| Error::Remote {
            path: target.clone(),
            op: "open",
            message: redact_error(&e, connect.url),
        })?;
        let prefix = format!("{{{}}}", connect.key);
        let mut backend = RedisBackend {
            client,
            conn: None,
            target,
            keys: std::sync::Arc::new(Keys::of(&prefix)),
            prefix,
            timeout: connect.timeout,
            lease_ttl: connect.lock_timeout.max(Duration::from_secs(1)),
            lock_timeout: connect.lock_timeout,
            version: 0,
            last_id: "0-0".into(),
            kinds: HashMap::new(),
            token: unique_id(),
            leased: false,
            kept_until: None,
            renewing: false,
            keep: connect.keep,
            codec: Codec::new(Format::Json, Path::new(connect.key))?,
            notes: Notes::default(),
            crypt: None,
        };
        if connect.durability == Durability::Sync {
            backend.check_sync()?;
        }
        if let Some(state) = backend.load::<T>(connect.encryption)? {
            return Ok((backend, state));
        }
        // A new store: its first commit sets every field (and keeps the
        // envelope of a new data key, when encrypted).
        backend.crypt = unlock(&backend.target, None, connect.encryption, false)?;
        let all = AllFields(&initial, T::__FIELDS.len());
        match backend.commit(T::__FIELDS, &all, &initial, false, false)? {
            Outcome::Committed => Ok((backend, initial)),
            // Another process created it first: load theirs.
            Outcome::Behind | Outcome::Leased => {
                backend.crypt = None;
                match backend.load::<T>(connect.encryption)? {
                    Some(state) => Ok((backend, state)),
                    None => Err(backend.error("open", "the store vanished while it was created")),
                }
            }
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    fn error(&self, op: &'static str, message: impl ToString) -> Error {
        Error::Remote {
            path: self.target.clone(),
            op,
            message: message.to_string(),
        }
    }
}

impl RedisBackend {
    /// The version this handle's memory is at.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }
}

impl Drop for RedisBackend {
    /// Gives up a lease this handle kept after its last commit, so nobody
    /// waits for it to expire: one attempt on the connection there is
    /// (a store dropped while the server is down does not wait).
    fn drop(&mut self) {
        if self.kept_until.take().is_none() && !self.leased {
            return;
        }
        if self.conn.is_none() {
            return;
        }
        let call = self.release_call();
        let released = self
            .connection()
            .and_then(|conn| run_script(conn, &scripts()[3], &call));
        if let Err(e) = released {
            log::warn!(
                "release the lease of `{}`: {} (it expires by itself)",
                self.target.display(),
                redact_error(&e, "")
            );
        }
    }
}
