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

mod backend;
mod scripts;

pub(crate) use self::backend::open_store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{
    Client, Connection, ErrorKind, RedisError, RedisResult, Script, ServerErrorKind, Value,
};
use serde_json::Value as Json;

use crate::change::{Changes, FieldOf};
use crate::collection::Op;
use crate::error::{Error, Result};
use crate::format::Codec;
use crate::history::{Commit, KeepHistory};
use crate::options::{Durability, Format};
use crate::schema::{FieldSpec, Persisted};
use parking_lot::RwLock;

/// How a field is kept on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A native list of JSON elements.
    List,
    /// A native hash: key text -> JSON value.
    Hash,
}

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

/// `EVALSHA` of `script`, built as one command (a `ScriptInvocation`
/// copies every argument once more); the script is loaded again when the
/// server does not have it (a restart or `SCRIPT FLUSH`).
fn evalsha(script: &Script, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

fn run_script(conn: &mut Connection, script: &Script, cmd: &redis::Cmd) -> RedisResult<Value> {
    match cmd.query(conn) {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load(conn)?;
            cmd.query(conn)
        }
        other => other,
    }
}

/// The scripts, hashed once per process (`EVALSHA`, loaded again after a
/// server restart flushed them).
fn scripts() -> &'static [Script; 5] {
    static SCRIPTS: std::sync::LazyLock<[Script; 5]> = std::sync::LazyLock::new(|| {
        [
            Script::new(scripts::LOAD),
            Script::new(scripts::COMMIT),
            Script::new(scripts::LOCK),
            Script::new(scripts::RELEASE),
            Script::new(scripts::RENEW),
        ]
    });
    &SCRIPTS
}

/// A process-wide unique id: time, process and a counter, hashed.
fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let hash = xxhash_rust::xxh3::xxh3_128(seed.as_bytes());
    format!("{hash:032x}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `url` with its password (if any) replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split_once(':').map_or("", |(name, _)| name);
            format!("{scheme}://{name}:***@{host}")
        }
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_string(),
    }
}

/// Everything [`RedisBackend::open`] needs.
pub(crate) struct Connect<'a> {
    pub(crate) url: &'a str,
    pub(crate) key: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) lock_timeout: Duration,
    pub(crate) durability: Durability,
    pub(crate) keep: KeepHistory,
}

impl RedisBackend {
    /// The name errors give the store: the URL without its password, and
    /// the key.
    pub(crate) fn target_of(url: &str, key: &str) -> PathBuf {
        PathBuf::from(format!("{} key {key}", redact(url)))
    }

    /// Connects, checks the server can give `durability`, and loads the
    /// store into `T` (creating it from `initial` when it does not exist).
    pub(crate) fn open<T: Persisted>(connect: Connect<'_>, initial: T) -> Result<(Self, T)> {
        let target = Self::target_of(connect.url, connect.key);
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
        };
        if connect.durability == Durability::Sync {
            backend.check_sync()?;
        }
        if let Some(state) = backend.load::<T>()? {
            return Ok((backend, state));
        }
        // A new store: its first commit sets every field.
        let all = AllFields(&initial, T::__FIELDS.len());
        match backend.commit(T::__FIELDS, &all, &initial, false, false)? {
            Outcome::Committed => Ok((backend, initial)),
            // Another process created it first: load theirs.
            Outcome::Behind | Outcome::Leased => match backend.load::<T>()? {
                Some(state) => Ok((backend, state)),
                None => Err(backend.error("open", "the store vanished while it was created")),
            },
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

    /// A connection with every timeout set, made when there is none, with
    /// no reply left to read.
    fn connection(&mut self) -> std::result::Result<&mut Connection, RedisError> {
        self.raw_connection()?;
        if std::mem::take(&mut self.renewing) {
            if let Err(e) = self.raw_connection()?.recv_response() {
                self.conn = None;
                return Err(e);
            }
        }
        self.raw_connection()
    }

    /// The connection (made when there is none), a renewal's reply perhaps
    /// still unread.
    fn raw_connection(&mut self) -> std::result::Result<&mut Connection, RedisError> {
        if self.conn.is_none() {
            self.renewing = false;
            let mut conn = self.client.get_connection_with_timeout(self.timeout)?;
            conn.set_read_timeout(Some(self.timeout))?;
            conn.set_write_timeout(Some(self.timeout))?;
            // Sent without waiting for its reply, the lease renewal cannot
            // load itself when the server lacks it.
            scripts()[4].load(&mut conn)?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => unreachable!("a connection was just made"),
        }
    }

    /// Runs `f` on the connection; a connection failure drops it and tries
    /// again with a new one until the timeout has passed, and so does a
    /// server still loading its data after a restart (`LOADING`: it ran
    /// nothing). `f` must be safe to repeat (reads; a commit repeats with
    /// the same id and version).
    fn with_retry<R>(
        &mut self,
        op: &'static str,
        mut f: impl FnMut(&mut Connection, &[Script; 5]) -> redis::RedisResult<R>,
    ) -> Result<R> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let result = self.connection().and_then(|conn| f(conn, scripts()));
            match result {
                Ok(value) => return Ok(value),
                Err(e) if is_connection_error(&e) || is_loading(&e) => {
                    if !is_loading(&e) {
                        self.conn = None;
                    }
                    if start.elapsed() + pause >= self.timeout {
                        return Err(self.error(op, redact_error(&e, "")));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(self.error(op, redact_error(&e, ""))),
            }
        }
    }

    /// `Durability::Sync` needs a server that fsyncs its append-only file
    /// before it replies.
    fn check_sync(&mut self) -> Result<()> {
        let config: Vec<String> = self.with_retry("check the durability of", |conn, _| {
            redis::cmd("CONFIG").arg("GET").arg("append*").query(conn)
        })?;
        let setting = |name: &str| {
            config
                .chunks(2)
                .find(|pair| pair[0] == name)
                .and_then(|pair| pair.get(1).cloned())
                .unwrap_or_default()
        };
        let (only, fsync) = (setting("appendonly"), setting("appendfsync"));
        if only != "yes" || fsync != "always" {
            return Err(Error::Unsupported {
                path: self.target.clone(),
                reason: format!(
                    "`Durability::Sync` needs the server to fsync every write before it \
                     replies: configure `appendonly yes` and `appendfsync always` (it has \
                     appendonly {only}, appendfsync {fsync}), or open with \
                     `Durability::Flush` (acknowledged by the server)"
                ),
            });
        }
        Ok(())
    }

    /// Reads the whole store atomically; `None` when it does not exist.
    fn load<T: Persisted>(&mut self) -> Result<Option<T>> {
        let mut call = evalsha(
            &scripts()[0],
            &[&self.keys.meta, &self.keys.state, &self.keys.log],
        );
        call.arg(&self.prefix);
        let reply: Value =
            self.with_retry("load", |conn, scripts| run_script(conn, &scripts[0], &call))?;
        let Value::Array(parts) = reply else {
            return Err(self.error("load", "unexpected reply"));
        };
        if parts.first().and_then(as_u64) != Some(1) {
            return Ok(None);
        }
        let [_, meta, state, natives, last] = &parts[..] else {
            return Err(self.error("load", "unexpected reply"));
        };
        let meta = pairs(meta);
        self.version = meta
            .iter()
            .find(|(k, _)| k == "v")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if let Some((_, layout)) = meta.iter().find(|(k, _)| k == "layout") {
            if layout != "1" {
                return Err(self.error(
                    "load",
                    format!("layout {layout} was written by a newer release"),
                ));
            }
        }
        self.last_id = as_string(last).unwrap_or_else(|| "0-0".into());
        self.kinds.clear();
        let mut object = serde_json::Map::new();
        let state_key = self.keys.state.clone();
        for (field, text) in pairs(state) {
            let value = self.parse(&state_key, &field, &text)?;
            object.insert(field, value);
        }
        if let Value::Array(natives) = natives {
            for native in natives {
                let Value::Array(parts) = native else {
                    continue;
                };
                let [field, kind, contents] = &parts[..] else {
                    continue;
                };
                let field = as_string(field).unwrap_or_default();
                let key = self.key(&format!("c:{field}"));
                let value = match as_string(kind).as_deref() {
                    Some("list") => {
                        self.kinds.insert(field.clone(), Kind::List);
                        let mut items = Vec::new();
                        if let Value::Array(elements) = contents {
                            for (i, element) in elements.iter().enumerate() {
                                let text = as_string(element).unwrap_or_default();
                                items.push(self.parse(&key, &format!("[{i}]"), &text)?);
                            }
                        }
                        Json::Array(items)
                    }
                    _ => {
                        self.kinds.insert(field.clone(), Kind::Hash);
                        let mut map = serde_json::Map::new();
                        for (k, text) in pairs(contents) {
                            let value = self.parse(&key, &k, &text)?;
                            map.insert(k, value);
                        }
                        Json::Object(map)
                    }
                };
                object.insert(field, value);
            }
        }
        let state = self.decode::<T>(object)?;
        Ok(Some(state))
    }

    fn parse(&self, key: &str, field: &str, text: &str) -> Result<Json> {
        serde_json::from_str(text).map_err(|e| Error::Parse {
            path: self.target.clone(),
            line: e.line(),
            column: e.column(),
            message: format!("key `{key}` field `{field}`: {e}"),
        })
    }

    /// The struct from the fields read; an error names the field that does
    /// not fit.
    fn decode<T: Persisted>(&self, object: serde_json::Map<String, Json>) -> Result<T> {
        let state_key = self.keys.state.clone();
        match serde_json::from_value::<T>(Json::Object(object.clone())) {
            Ok(state) => Ok(state),
            Err(e) => {
                let mut probe = T::default();
                for (index, spec) in T::__FIELDS.iter().enumerate() {
                    if let Some(value) = object.get(spec.name) {
                        if let Err(e) = probe.__deserialize_field(index, value.clone()) {
                            return Err(Error::Parse {
                                path: self.target.clone(),
                                line: 0,
                                column: 0,
                                message: format!("key `{state_key}` field `{}`: {e}", spec.name),
                            });
                        }
                    }
                }
                Err(Error::Parse {
                    path: self.target.clone(),
                    line: 0,
                    column: 0,
                    message: format!("key `{state_key}`: {e}"),
                })
            }
        }
    }

    /// The log trimming each commit asks for.
    fn trim(&self) -> (&'static str, String) {
        match self.keep {
            KeepHistory::Forever => ("", String::new()),
            KeepHistory::Last(n) => ("MAXLEN", n.max(DEFAULT_LOG).to_string()),
            KeepHistory::For(age) => {
                let cutoff = now_ms().saturating_sub(age.as_millis() as u64);
                ("MINID", cutoff.to_string())
            }
            KeepHistory::None => ("MAXLEN", DEFAULT_LOG.to_string()),
        }
    }

    /// Tries to commit `changes` (made on `state`, at this handle's
    /// version). On [`Outcome::Committed`] the caller applies them to
    /// memory; the version moves on.
    /// `applied`: `state` already holds the changes (a batch); otherwise
    /// it is the state they apply to. `release`: give the lease up with
    /// the commit.
    pub(crate) fn commit<T: Persisted>(
        &mut self,
        fields: &'static [FieldSpec],
        changes: &dyn Changes,
        state: &T,
        applied: bool,
        release: bool,
    ) -> Result<Outcome> {
        let (ops, record, kinds) = self.encode(fields, changes, state, applied)?;
        let keys = std::sync::Arc::clone(&self.keys);
        let cid = unique_id();
        let expected = self.version;
        let (trim, trim_arg) = self.trim();
        // A closure's commit asks to keep the lease; the reply says whether
        // it did. Any other commit while this handle keeps it names it (or
        // its own lease would refuse it) and leaves it as it is.
        let kept = self.kept_until.is_some_and(|until| Instant::now() < until);
        let hold = if self.leased && release {
            self.kept_until = None;
            format!("keep:{}", KEEP_LEASE.as_millis())
        } else {
            String::from("0")
        };
        let token = if self.leased || kept {
            self.token.as_str()
        } else {
            ""
        };
        let mut call = evalsha(
            &scripts()[1],
            &[
                &keys.meta,
                &keys.state,
                &keys.log,
                &keys.lease,
                &keys.wake,
                &keys.waiting,
            ],
        );
        let sent = Instant::now();
        call.arg(&self.prefix)
            .arg(expected)
            .arg(&cid)
            .arg(&record)
            .arg(now_ms())
            .arg(token)
            .arg(&hold)
            .arg(trim)
            .arg(&trim_arg)
            .arg(ops.len());
        for op in &ops {
            call.arg(op.code).arg(&op.field).arg(op.args.len());
            for arg in &op.args {
                call.arg(&arg[..]);
            }
        }
        let mut attempt = 0;
        let reply = match self.commit_after_renewal(&call) {
            Some(Ok(reply)) => Ok(reply),
            Some(Err(e)) if !is_connection_error(&e) && !is_loading(&e) => {
                Err(self.error("commit to", redact_error(&e, "")))
            }
            first => {
                if first.is_some() {
                    // Sent, perhaps: resent below with the same id.
                    attempt = 1;
                    self.conn = None;
                }
                self.with_retry("commit to", |conn, scripts| {
                    attempt += 1;
                    run_script(conn, &scripts[1], &call)
                })
            }
        };
        let reply = match reply {
            Ok(reply) => reply,
            // Sent, maybe applied, never answered: memory keeps nothing;
            // the next call catches up with whatever the server has.
            Err(Error::Remote { path, op, message }) if attempt > 0 => {
                return Err(Error::Remote {
                    path,
                    op,
                    message: format!(
                        "{message} (the commit may or may not have been applied: it is not in \
                         memory; the next call catches up with the server)"
                    ),
                })
            }
            Err(e) => return Err(e),
        };
        let Value::Array(parts) = reply else {
            return Err(self.error("commit to", "unexpected reply"));
        };
        if parts.first().and_then(as_u64) != Some(1) {
            // Refused: a lease this handle kept is gone (or soon will be).
            self.kept_until = None;
        }
        match parts.first().and_then(as_u64) {
            Some(1) => {
                self.version = parts.get(1).and_then(as_u64).unwrap_or(expected + 1);
                self.last_id = parts.get(2).and_then(as_string).unwrap_or_default();
                self.kinds = kinds;
                if release {
                    self.leased = false;
                }
                if parts.get(3).and_then(as_u64) == Some(1) {
                    self.kept_until = Some(sent + KEEP_LEASE / 2);
                }
                Ok(Outcome::Committed)
            }
            Some(0) if attempt > 1 => {
                // Sent more than once: the first may have been applied
                // before its reply was lost. The log says.
                if let Some((v, id)) = self.find_commit(&cid)? {
                    self.version = v;
                    self.last_id = id;
                    self.kinds = kinds;
                    if release {
                        self.release();
                    }
                    return Ok(Outcome::Committed);
                }
                Ok(Outcome::Behind)
            }
            Some(0) => Ok(Outcome::Behind),
            Some(3) => {
                let field = parts.get(1).and_then(as_string).unwrap_or_default();
                let found = parts.get(2).and_then(as_string).unwrap_or_default();
                Err(self.error(
                    "commit to",
                    format!(
                        "key `{}` holds a {found}, not what field `{field}` needs (changed \
                         outside this library?); nothing was written",
                        self.key(&format!("c:{field}"))
                    ),
                ))
            }
            _ => Ok(Outcome::Leased),
        }
    }

    /// While a renewal of the lease is in flight: sends the commit behind
    /// it, reads the renewal's reply (what it says, the commit's fence
    /// decides again), then the commit's. `None` when no renewal waits.
    fn commit_after_renewal(&mut self, call: &redis::Cmd) -> Option<RedisResult<Value>> {
        if !std::mem::take(&mut self.renewing) {
            return None;
        }
        let conn = self.conn.as_mut()?;
        let no_script = |e: &RedisError| e.kind() == ErrorKind::Server(ServerErrorKind::NoScript);
        let mut renewed = Ok(Value::Nil);
        let result = (|| {
            conn.send_packed_command(&call.get_packed_command())?;
            renewed = conn.recv_response()?.extract_error();
            conn.recv_response()?.extract_error()
        })();
        let result = match result {
            Err(e) if no_script(&e) => run_script(conn, &scripts()[1], call),
            other => other,
        };
        // The server lost the renewal script (a restart): load it for next
        // time.
        if renewed.as_ref().is_err_and(no_script) {
            if let Err(e) = scripts()[4].load(conn) {
                log::debug!("load the lease renewal script: {}", redact_error(&e, ""));
            }
        }
        Some(result)
    }

    /// Up to 1000 log entries from `from` (an entry id, `(id` for after
    /// it, or `-` for the first).
    fn log_from(&mut self, op: &'static str, from: &str) -> Result<Vec<LogEntry>> {
        let log = std::sync::Arc::clone(&self.keys);
        let entries: Value = self.with_retry(op, |conn, _| {
            redis::cmd("XRANGE")
                .arg(&log.log)
                .arg(from)
                .arg("+")
                .arg("COUNT")
                .arg(1000)
                .query(conn)
        })?;
        Ok(log_entries(&entries))
    }

    /// The log entry of commit `cid` after this handle's version, if any.
    fn find_commit(&mut self, cid: &str) -> Result<Option<(u64, String)>> {
        let from = format!("({}", self.last_id);
        for entry in self.log_from("resolve a commit with", &from)? {
            if entry.cid == cid {
                // Only the entries before ours are missing from memory,
                // and the caller applies ours: the ones before it mean
                // another commit came first, which a CAS would have
                // refused; so ours is the next one.
                if entry.v == self.version + 1 {
                    return Ok(Some((entry.v, entry.id)));
                }
                return Err(self.error(
                    "resolve a commit with",
                    format!(
                        "commit {cid} was applied at an unexpected version {}",
                        entry.v
                    ),
                ));
            }
        }
        Ok(None)
    }

    /// The commit for the server: each change as a native command on the
    /// field's key (converting a field to a native collection the first
    /// time a collection operation meets it), and the record for the log,
    /// a JSON object like a journal record's, each value serialized once.
    /// Returns the kinds the fields will have once the commit is applied.
    fn encode<T: Persisted>(
        &self,
        fields: &'static [FieldSpec],
        changes: &dyn Changes,
        state: &T,
        applied: bool,
    ) -> Result<(Vec<ServerOp>, String, HashMap<String, Kind>)> {
        let mut kinds = self.kinds.clone();
        let mut ops = Vec::new();
        let mut record = String::from("{");
        let mut failed = None;
        changes.each(&mut |op, index, value| {
            if failed.is_some() {
                return;
            }
            let name = fields.get(index).map_or("", |f| f.name);
            let result = (|| -> serde_json::Result<()> {
                let text = serde_json::to_string(value)?;
                if record.len() > 1 {
                    record.push(',');
                }
                record.push_str(&serde_json::to_string(&format!("{op} {name}"))?);
                record.push(':');
                record.push_str(&text);
                if op == Op::Set {
                    ops.push(whole(name, text, &mut kinds)?);
                    return Ok(());
                }
                if !kinds.contains_key(name) {
                    // First collection operation on a field kept as JSON:
                    // it becomes native, from its value before the
                    // operation (or, when `state` holds the change already,
                    // the value after it, which then stands for the
                    // operation).
                    let current = serde_json::to_string(&FieldOf(state, index))?;
                    ops.push(whole(name, current, &mut kinds)?);
                    if applied {
                        return Ok(());
                    }
                }
                let hash = kinds.get(name) == Some(&Kind::Hash);
                ops.push(match op {
                    Op::Push => ServerOp::new("push", name, vec![text]),
                    Op::Extend => {
                        let items: Vec<Json> = serde_json::from_str(&text)?;
                        ServerOp::new("push", name, items.iter().map(Json::to_string).collect())
                    }
                    Op::PushFront => ServerOp::new("push_front", name, vec![text]),
                    Op::Pop => ServerOp::new("pop", name, vec![]),
                    Op::PopFront => ServerOp::new("pop_front", name, vec![]),
                    Op::Clear => ServerOp::new("clear", name, vec![]),
                    Op::Insert if hash => {
                        let (key, value): (Json, Json) = serde_json::from_str(&text)?;
                        ServerOp::new("minsert", name, vec![map_key(&key), value.to_string()])
                    }
                    Op::Remove if hash => {
                        let key: Json = serde_json::from_str(&text)?;
                        ServerOp::new("mremove", name, vec![map_key(&key)])
                    }
                    Op::Insert => ServerOp::new("sinsert", name, vec![text]),
                    Op::Remove => ServerOp::new("sremove", name, vec![text]),
                    Op::Set => unreachable!("handled above"),
                });
                Ok(())
            })();
            if let Err(e) = result {
                failed = Some(e.to_string());
            }
        });
        record.push('}');
        match failed {
            Some(e) => Err(Error::encode(&self.target, e)),
            None => Ok((ops, record, kinds)),
        }
    }

    /// Catches up with commits other handles made: one round trip when
    /// there are none. Applies the log's records, or reloads everything
    /// when the log no longer reaches back to this handle's version.
    pub(crate) fn catch_up<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<bool> {
        let keys = std::sync::Arc::clone(&self.keys);
        let v: Option<u64> = self.with_retry("read", |conn, _| {
            redis::cmd("HGET").arg(&keys.meta).arg("v").query(conn)
        })?;
        let v = v.unwrap_or(0);
        if v == self.version {
            return Ok(false);
        }
        self.follow(state, v)
    }

    /// Applies the log entries after this handle's version up to `v`.
    fn follow<T: Persisted>(&mut self, state: &RwLock<T>, v: u64) -> Result<bool> {
        while self.version < v {
            let from = format!("({}", self.last_id);
            let entries = self.log_from("read the log of", &from)?;
            if !self.apply_entries(state, &entries)? {
                return self.reload(state);
            }
        }
        Ok(true)
    }

    /// Applies `entries` in order; `false` when they do not continue this
    /// handle's version (trimmed away): the caller reloads.
    fn apply_entries<T: Persisted>(
        &mut self,
        state: &RwLock<T>,
        entries: &[LogEntry],
    ) -> Result<bool> {
        if entries.is_empty() || entries[0].v != self.version + 1 {
            return Ok(false);
        }
        let mut state = state.write();
        for entry in entries {
            if entry.v != self.version + 1 {
                return Ok(false);
            }
            self.codec
                .replay_payload(entry.rec.as_bytes(), &mut *state)
                .map_err(|e| Error::Parse {
                    path: self.target.clone(),
                    line: 0,
                    column: e.column,
                    message: format!(
                        "log entry {} (version {}): {}",
                        entry.id, entry.v, e.message
                    ),
                })?;
            self.note_kinds(&entry.rec, &*state);
            self.version = entry.v;
            self.last_id = entry.id.clone();
        }
        Ok(true)
    }

    /// Tracks which fields a replayed record left as native collections:
    /// a field set whole by the shape of its value; a field changed by an
    /// operation that this handle did not know as native (the committer
    /// converted it) by the shape of its value in `state`.
    fn note_kinds<T: Persisted>(&mut self, record: &str, state: &T) {
        let Ok(Json::Object(map)) = serde_json::from_str::<Json>(record) else {
            return;
        };
        for (key, value) in map {
            let Some((op, field)) = key.split_once(' ') else {
                continue;
            };
            let shape = match op {
                "set" => value,
                _ if self.kinds.contains_key(field) => continue,
                _ => match crate::schema::field_index(T::__FIELDS, field) {
                    Some(index) => serde_json::to_value(FieldOf(state, index)).unwrap_or_default(),
                    None => continue,
                },
            };
            match shape {
                Json::Array(_) => drop(self.kinds.insert(field.into(), Kind::List)),
                Json::Object(_) => drop(self.kinds.insert(field.into(), Kind::Hash)),
                _ => drop(self.kinds.remove(field)),
            }
        }
    }

    fn reload<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<bool> {
        match self.load::<T>()? {
            Some(loaded) => {
                *state.write() = loaded;
                Ok(true)
            }
            None => Err(self.error("read", "the store was deleted from the server")),
        }
    }

    /// Takes the lease (waiting at most the lock timeout) and catches up:
    /// what `update`, `transaction` and `begin` run on.
    pub(crate) fn lock<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<()> {
        let keys = std::sync::Arc::clone(&self.keys);
        // Kept since this handle's last commit (and for at least half its
        // life more): nobody else can have committed, so memory is
        // current. Renew it without waiting for the reply; should it have
        // run out after all, the commit, fenced by lease and version,
        // applies nothing.
        if self
            .kept_until
            .take()
            .is_some_and(|until| Instant::now() < until)
        {
            let mut renew = evalsha(&scripts()[4], &[&self.keys.lease]);
            renew
                .arg(&self.token)
                .arg(self.lease_ttl.as_millis() as u64);
            let renew = renew.get_packed_command();
            let sent = self
                .connection()
                .and_then(|conn| conn.send_packed_command(&renew));
            if sent.is_ok() {
                self.renewing = true;
                self.leased = true;
                return Ok(());
            }
            self.conn = None;
        }
        let start = Instant::now();
        loop {
            let call = self.lock_call();
            let reply: Value = self.with_retry("take the lease of", |conn, scripts| {
                run_script(conn, &scripts[2], &call)
            })?;
            let Value::Array(parts) = reply else {
                return Err(self.error("take the lease of", "unexpected reply"));
            };
            if parts.first().and_then(as_u64) == Some(1) {
                self.leased = true;
                let v = parts.get(1).and_then(as_u64).unwrap_or(0);
                if v != self.version {
                    let entries = parts.get(2).map(log_entries).unwrap_or_default();
                    let applied = self.apply_entries(state, &entries)?;
                    if !applied || self.version != v {
                        self.follow(state, v)?;
                    }
                }
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= self.lock_timeout {
                return Err(Error::LockTimeout {
                    path: self.target.clone(),
                    waited,
                });
            }
            // Block until the holder's release wakes us (or the lease can
            // have expired, or a short while has passed).
            let ttl = parts.get(1).and_then(as_u64).unwrap_or(0);
            let wait = Duration::from_millis(ttl.max(1))
                .min(self.lock_timeout - waited)
                .min(self.timeout / 2)
                .min(Duration::from_millis(100));
            self.with_retry("wait for the lease of", |conn, _| {
                redis::cmd("BLPOP")
                    .arg(&keys.wake)
                    .arg(wait.as_secs_f64())
                    .query::<Value>(conn)
            })?;
        }
    }

    /// The lease script's call: take or renew the lease, and the commits
    /// after this handle's version.
    fn lock_call(&self) -> redis::Cmd {
        let keys = &self.keys;
        let mut call = evalsha(
            &scripts()[2],
            &[&keys.meta, &keys.log, &keys.lease, &keys.waiting],
        );
        call.arg(&self.token)
            .arg(self.lease_ttl.as_millis() as u64)
            .arg(&self.last_id)
            .arg(self.version)
            .arg(WAITING_MS);
        call
    }

    /// The release script's call: give this handle's lease up and wake a
    /// waiter.
    fn release_call(&self) -> redis::Cmd {
        let mut call = evalsha(&scripts()[3], &[&self.keys.lease, &self.keys.wake]);
        call.arg(&self.token);
        call
    }

    /// Gives the lease up (a failure is left to its TTL).
    pub(crate) fn release(&mut self) {
        if !std::mem::take(&mut self.leased) {
            return;
        }
        self.kept_until = None;
        let call = self.release_call();
        let released: Result<Value> = self.with_retry("release the lease of", |conn, scripts| {
            run_script(conn, &scripts[3], &call)
        });
        if let Err(e) = released {
            log::warn!("{e} (the lease expires by itself)");
        }
    }

    /// The log as history: every entry kept, oldest first.
    pub(crate) fn history(&mut self) -> Result<Vec<(Commit, String)>> {
        let mut out = Vec::new();
        let mut from = "-".to_string();
        loop {
            let entries = self.log_from("read the log of", &from)?;
            let Some(last) = entries.last() else {
                break;
            };
            from = format!("({}", last.id);
            for entry in entries {
                let fields = record_fields(&entry.rec);
                out.push((Commit::new(entry.v, entry.ts, fields), entry.rec));
            }
        }
        Ok(out)
    }

    /// The state right after commit (version) `seq`, replayed from the
    /// store's first commit, which sets every field.
    pub(crate) fn state_at<T: Persisted>(&mut self, seq: u64) -> Result<T> {
        let log = self.history()?;
        self.replay_log(&log, seq)
    }

    /// The state right after the last commit made at or before `time`.
    pub(crate) fn state_as_of<T: Persisted>(&mut self, time: SystemTime) -> Result<T> {
        let log = self.history()?;
        let seq = log
            .iter()
            .take_while(|(c, _)| c.time <= time)
            .last()
            .map(|(c, _)| c.seq)
            .ok_or_else(|| {
                let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
                Error::NotInHistory {
                    path: self.target.clone(),
                    reason: format!(
                        "no kept commit was made at or before {ms} ms after the Unix epoch"
                    ),
                }
            })?;
        self.replay_log(&log, seq)
    }

    /// Replays `log` (from [`history`](Self::history)) up to commit `seq`.
    fn replay_log<T: Persisted>(&self, log: &[(Commit, String)], seq: u64) -> Result<T> {
        let first = log.first().map(|(c, _)| c.seq);
        if first != Some(1) || !log.iter().any(|(c, _)| c.seq == seq) {
            let holds = match (log.first(), log.last()) {
                (Some((a, _)), Some((b, _))) => format!("commits {} to {}", a.seq, b.seq),
                _ => "no commit".into(),
            };
            let why = if first.is_some_and(|f| f != 1) {
                "the log no longer reaches back to the store's creation (keep more with \
                 `keep_history`)"
            } else {
                "it is not a kept commit"
            };
            return Err(Error::NotInHistory {
                path: self.target.clone(),
                reason: format!("commit {seq}: {why}; the log holds {holds}"),
            });
        }
        let mut state = T::default();
        for (commit, rec) in log.iter().take_while(|(c, _)| c.seq <= seq) {
            self.codec
                .replay_payload(rec.as_bytes(), &mut state)
                .map_err(|e| Error::Parse {
                    path: self.target.clone(),
                    line: 0,
                    column: e.column,
                    message: format!("log entry of version {}: {}", commit.seq, e.message),
                })?;
        }
        Ok(state)
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

/// A field replaced whole, given as JSON text: JSON in the state hash, or
/// a native list or hash for a list or map value.
fn whole(
    name: &str,
    text: String,
    kinds: &mut HashMap<String, Kind>,
) -> serde_json::Result<ServerOp> {
    Ok(match text.as_bytes().first() {
        Some(b'[') => {
            let items: Vec<Json> = serde_json::from_str(&text)?;
            kinds.insert(name.to_string(), Kind::List);
            ServerOp::new("L", name, items.iter().map(Json::to_string).collect())
        }
        Some(b'{') => {
            let map: serde_json::Map<String, Json> = serde_json::from_str(&text)?;
            kinds.insert(name.to_string(), Kind::Hash);
            let mut args = Vec::with_capacity(map.len() * 2);
            for (k, v) in &map {
                args.push(k.clone());
                args.push(v.to_string());
            }
            ServerOp::new("H", name, args)
        }
        _ => {
            let code = match kinds.remove(name) {
                Some(_) => "JN",
                None => "J",
            };
            ServerOp::new(code, name, vec![text])
        }
    })
}

/// A map key as JSON objects hold it: strings as they are, others as their
/// JSON text.
fn map_key(key: &Json) -> String {
    match key {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One operation of a commit script.
struct ServerOp {
    code: &'static str,
    field: String,
    args: Vec<String>,
}

impl ServerOp {
    fn new(code: &'static str, field: &str, args: Vec<String>) -> ServerOp {
        ServerOp {
            code,
            field: field.to_string(),
            args,
        }
    }
}

/// Every field of a state, set whole: a new store's first commit.
struct AllFields<'a, T>(&'a T, usize);

impl<T: Persisted> Changes for AllFields<'_, T> {
    fn len(&self) -> usize {
        self.1
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        for index in 0..self.1 {
            emit(Op::Set, index, &FieldOf(self.0, index));
        }
    }
}

/// One entry of the log stream.
struct LogEntry {
    id: String,
    v: u64,
    cid: String,
    ts: u64,
    rec: String,
}

fn log_entries(value: &Value) -> Vec<LogEntry> {
    let Value::Array(entries) = value else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let id = as_string(parts.first()?)?;
            let fields = pairs(parts.get(1)?);
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            Some(LogEntry {
                id,
                v: get("v")?.parse().ok()?,
                cid: get("cid").unwrap_or_default(),
                ts: get("ts").and_then(|t| t.parse().ok()).unwrap_or(0),
                rec: get("rec")?,
            })
        })
        .collect()
}

/// The fields a record's keys name, each once.
fn record_fields(record: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(Json::Object(map)) = serde_json::from_str::<Json>(record) {
        for key in map.keys() {
            if let Some((_, field)) = key.split_once(' ') {
                if !names.iter().any(|n| n == field) {
                    names.push(field.to_string());
                }
            }
        }
    }
    names
}

fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => as_string(other)?.parse().ok(),
    }
}

/// A flat `[k1, v1, k2, v2, ...]` reply as pairs.
fn pairs(value: &Value) -> Vec<(String, String)> {
    let items: &[Value] = match value {
        Value::Array(items) => items,
        _ => return Vec::new(),
    };
    items
        .chunks(2)
        .filter_map(|pair| Some((as_string(pair.first()?)?, as_string(pair.get(1)?)?)))
        .collect()
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// The server is up but still loading its dataset (after a restart).
fn is_loading(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading)
}

/// A redis-rs error as text, with `url`'s password (if any) never in it.
fn redact_error(e: &RedisError, url: &str) -> String {
    let text = e.to_string();
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(password) => text.replace(password, "***"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redact("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://:s3cret@host/0"), "redis://:***@host/0");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("redis://token@host"), "redis://***@host");
    }
}
