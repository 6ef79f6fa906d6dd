//! One store in a PostgreSQL database: opening (tables, durability check,
//! the first commit), loading, committing (with a lost reply resolved by
//! its commit id), catching up from the log, and the row lock a closure
//! runs under.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use serde_json::Value as Json;

use super::connection::{is_connection_error, literal, Connection};
use super::tables::{Tables, LOAD, SEALED};
use crate::change::Changes;
use crate::crypt::{Crypt, Key};
use crate::error::{Error, Result};
use crate::format::Codec;
use crate::history::{Commit, KeepHistory};
use crate::notify::{replace_noting, Notes, Origin};
use crate::options::{Durability, Format};
use crate::schema::{FieldSpec, Persisted};
use crate::server::{
    check_same, decode, encode_for, envelope_text, note_kinds, now_ms, open_object, open_record,
    record_field_indices, record_fields, replay_log, replay_log_as_of, unique_id, unlock,
    AllFields, Connect, Kind, ServerOp,
};

/// The log is trimmed to about this many entries unless history asks for
/// more (lost-reply resolution and catching up read it).
const DEFAULT_LOG: u64 = 10_000;

/// At most this many log entries are read at once.
const LOG_PAGE: i64 = 1000;

const COMMIT: &str =
    "SELECT persisted_commit($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8::text::jsonb, $9, $10)";

/// What claiming a new store came to.
enum Claim {
    /// Claimed by this handle.
    Made,
    /// Claimed by another client with this envelope (empty: plain).
    Taken(String),
    /// Made by another client already (or gone): load it.
    Committed,
}

/// What a commit attempt came to.
pub(crate) enum Sent {
    /// Applied on the server (memory may now apply it too).
    Committed,
    /// Another commit came first: nothing applied.
    Behind,
}

/// A connection to one store in one database.
pub(crate) struct PgBackend {
    conn: Connection,
    /// The server and database (without the password) and the key: names
    /// the store in errors and logs.
    pub(crate) target: PathBuf,
    key: String,
    lock_timeout: Duration,
    /// The version this handle's memory is at.
    version: u64,
    kinds: HashMap<String, Kind>,
    keep: KeepHistory,
    codec: Codec,
    /// This handle holds the store's row lock in an open transaction (a
    /// closure is running); its commit ends it.
    pub(crate) locked: bool,
    /// Other clients' commits caught up with, for subscribers.
    pub(crate) notes: Notes,
    /// An encrypted store's data key: each field's value is sealed
    /// (`server/seal.rs`).
    crypt: Option<Crypt>,
}

impl PgBackend {
    /// Connects, makes the tables, checks the durability asked for, and
    /// loads the store (creating it from `initial` when missing).
    pub(crate) fn open<T: Persisted>(connect: Connect<'_>, initial: T) -> Result<(Self, T)> {
        let target = connect.target.clone();
        let ms = |d: Duration| d.as_millis().max(1);
        // A statement may wait for a row lock up to the lock timeout; a
        // session idle inside a transaction (a vanished client holding a
        // closure's lock) is ended after twice that.
        let options = format!(
            "-c synchronous_commit=on -c standard_conforming_strings=on -c \
             statement_timeout={} -c idle_in_transaction_session_timeout={}",
            ms(connect.timeout + connect.lock_timeout),
            ms(connect.lock_timeout * 2),
        );
        if connect.key.contains('\0') {
            return Err(Error::Remote {
                path: target,
                op: "open",
                message: "a store's key cannot hold a NUL character".into(),
            });
        }
        let conn = Connection::start(connect.url, target.clone(), connect.timeout, &options)?;
        let mut backend = PgBackend {
            conn,
            target,
            key: connect.key.to_string(),
            lock_timeout: connect.lock_timeout,
            version: 0,
            kinds: HashMap::new(),
            keep: connect.keep,
            codec: Codec::new(Format::Json, &connect.target)?,
            locked: false,
            notes: Notes::default(),
            crypt: None,
        };
        backend.conn.with_retry("create the tables of", |session| {
            let mut tx = session.client().transaction()?;
            tx.batch_execute(include_str!("schema.sql"))?;
            tx.commit()
        })?;
        if connect.durability == Durability::Sync {
            backend.check_fsync()?;
        }
        let key = backend.key.clone();
        backend.conn.with_retry("create", move |session| {
            session.query(
                "INSERT INTO persisted_state (key) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&key],
            )
        })?;
        loop {
            if let Some(state) = backend.load::<T>(connect.encryption)? {
                // Opened (the key, if any, unlocked it): the whole log
                // trimmed to this handle's keep (commits trim only what
                // falls out with them).
                let key = backend.key.clone();
                let (keep, keep_after) = backend.trim();
                backend.conn.with_retry("trim the log of", move |session| {
                    session.query(
                        "SELECT persisted_trim($1, version, $2, $3, true) FROM persisted_state \
                         WHERE key = $1",
                        &[&key, &keep, &keep_after],
                    )
                })?;
                return Ok((backend, state));
            }
            // A new store: its first commit sets every field, sealed when
            // a key was given. It is claimed first, with the envelope of a
            // new data key or, without a key, an empty one: a process with
            // a key and one without cannot both make it.
            if backend.crypt.is_none() {
                let crypt = unlock(&backend.target, None, connect.encryption, false)?;
                let envelope = crypt.as_ref().map_or(String::new(), envelope_text);
                match backend.claim(&envelope)? {
                    Claim::Made => backend.crypt = crypt,
                    // Claimed without a key by another: plain it is.
                    Claim::Taken(other) if other.is_empty() && crypt.is_some() => {
                        return Err(Error::NotEncrypted {
                            path: backend.target.clone(),
                        })
                    }
                    Claim::Taken(other) if other.is_empty() => {}
                    // Claimed for a key by another: load unlocks it with
                    // this key (or says why not).
                    Claim::Taken(_) | Claim::Committed => continue,
                }
            }
            let all = AllFields(&initial, T::__FIELDS.len());
            if let Sent::Committed = backend.commit(T::__FIELDS, &all, &initial, true)? {
                return Ok((backend, initial));
            }
        }
    }

    /// `Durability::Sync` needs a server that fsyncs its write-ahead log.
    fn check_fsync(&mut self) -> Result<()> {
        let fsync: String = self.conn.with_retry("check the durability of", |session| {
            session.query_one("SHOW fsync", &[]).map(|row| row.get(0))
        })?;
        if fsync != "on" {
            return Err(Error::Unsupported {
                path: self.target.clone(),
                reason: format!(
                    "`Durability::Sync` needs the server's `fsync` on (it is {fsync}): set \
                     `fsync = on` in postgresql.conf, or open with `Durability::Flush`"
                ),
            });
        }
        Ok(())
    }

    /// Reads the whole store in one statement (one consistent snapshot):
    /// the version, the plain fields and every native collection. `None`
    /// for a store whose first commit has not been made.
    /// `key`: what to unlock an encrypted store with when this handle has
    /// not yet (at open).
    pub(crate) fn load<T: Persisted>(&mut self, key: Option<&Key>) -> Result<Option<T>> {
        let name = self.key.clone();
        let row = self.conn.with_retry("load", move |session| {
            session.query_opt(LOAD, &[&name]).map(|row| {
                row.map(|r| {
                    let tables = Tables {
                        version: r.get(0),
                        state: r.get(1),
                        kinds: r.get(2),
                        lists: r.get(3),
                        maps: r.get(4),
                    };
                    (tables, r.get::<_, Option<String>>(5))
                })
            })
        })?;
        let Some((tables, claimed)) = row else {
            return Err(self
                .conn
                .error("load", "the store was deleted from the database"));
        };
        let mut assembled = tables.assemble().map_err(|(what, e)| Error::Parse {
            path: self.target.clone(),
            line: e.line(),
            column: e.column(),
            message: format!("{what}: {e}"),
        })?;
        for problem in &assembled.problems {
            log::warn!("`{}`: {problem}", self.target.display());
        }
        // An empty envelope claims a store for plain values.
        let stored = claimed.filter(|envelope| !envelope.is_empty());
        self.kinds = assembled.kinds.clone();
        self.version = assembled.version;
        match &self.crypt {
            Some(crypt) => check_same(&self.target, crypt, stored.as_deref())?,
            // A new store nobody has claimed for a key yet.
            None if stored.is_none() && self.version == 0 => {}
            None => self.crypt = unlock(&self.target, stored.as_deref(), key, true)?,
        }
        if self.version == 0 {
            return Ok(None);
        }
        let place = "persisted_state.state";
        if let Some(crypt) = &self.crypt {
            assembled
                .unwrap_sealed_rows()
                .map_err(|e| self.conn.error("load", e))?;
            open_object::<T>(crypt, &self.target, place, &mut assembled.object)?;
        }
        decode::<T>(&self.target, place, assembled.object).map(Some)
    }

    /// Claims a new store for `envelope` (a data key's; empty for a plain
    /// store) in its row, unless another client claimed or made it first.
    fn claim(&mut self, envelope: &str) -> Result<Claim> {
        let (key, envelope) = (self.key.clone(), envelope.to_string());
        // The outer query sees the row as it was before the update.
        let (claimed, current, version): (i64, Option<String>, i64) =
            self.conn.with_retry("create", move |session| {
                session
                    .query_one(
                        "WITH claimed AS (UPDATE persisted_state SET envelope = $2 \
                         WHERE key = $1 AND version = 0 AND envelope IS NULL RETURNING 1) \
                         SELECT (SELECT count(*) FROM claimed), envelope, version \
                         FROM persisted_state WHERE key = $1",
                        &[&key, &envelope],
                    )
                    .map(|row| (row.get(0), row.get(1), row.get(2)))
            })?;
        Ok(match (claimed, current) {
            (1, _) => Claim::Made,
            (_, Some(other)) if version == 0 => Claim::Taken(other),
            _ => Claim::Committed,
        })
    }

    /// Wraps the data key with `key` and keeps the envelope in the row.
    pub(crate) fn rekey(&mut self, key: &Key) -> Result<()> {
        let Some(crypt) = &self.crypt else {
            return Err(Error::NotEncrypted {
                path: self.target.clone(),
            });
        };
        crypt.rewrap(key, &self.target)?;
        let (name, envelope) = (self.key.clone(), envelope_text(crypt));
        self.conn.with_retry("rekey", move |session| {
            session
                .query(
                    "UPDATE persisted_state SET envelope = $2 WHERE key = $1",
                    &[&name, &envelope],
                )
                .map(drop)
        })
    }

    /// How much of the log a commit keeps: entries, and entries since.
    fn trim(&self) -> (i64, i64) {
        match self.keep {
            KeepHistory::Forever => (0, 0),
            KeepHistory::Last(n) => (i64::try_from(n.max(1)).unwrap_or(i64::MAX), 0),
            KeepHistory::For(age) => {
                let since = now_ms().saturating_sub(age.as_millis() as u64);
                (0, i64::try_from(since).unwrap_or(0).max(1))
            }
            KeepHistory::None => (DEFAULT_LOG as i64, 0),
        }
    }

    /// Tries to commit `changes` (made on `state`, at this handle's
    /// version; `applied`: `state` holds them already). A reply lost with
    /// the connection is resolved by the commit id.
    pub(crate) fn commit<T: Persisted>(
        &mut self,
        fields: &'static [FieldSpec],
        changes: &dyn Changes,
        state: &T,
        applied: bool,
    ) -> Result<Sent> {
        let crypt = self.crypt.as_ref();
        let (mut ops, record, mut kinds) = encode_for(
            crypt,
            &self.target,
            &self.kinds,
            fields,
            changes,
            state,
            applied,
        )?;
        if crypt.is_some() {
            // Each sealed value is a row of its own (a one-entry map in
            // persisted_entry, which has no index on values): a commit
            // rewrites the rows of the fields it changes, never the whole
            // state.
            for op in &mut ops {
                kinds.insert(op.field.clone(), Kind::Hash);
                op.code = "H";
                op.args.insert(0, SEALED.to_string());
            }
        }
        let Split { set, unkind, ops } = Split::of(&ops);
        let cid = unique_id();
        let expected = i64::try_from(self.version).unwrap_or(i64::MAX);
        let (keep, keep_after) = self.trim();
        let key = self.key.clone();
        let time = i64::try_from(now_ms()).unwrap_or(0);
        let locked = self.locked;
        let sent = match locked {
            // The closure's transaction: the commit and its end in one
            // round trip (under the row lock no other commit comes
            // first; should one have, nothing was applied and the empty
            // transaction ends).
            true => {
                let unkind: Vec<String> = unkind.iter().map(|f| literal(f)).collect();
                let sql = format!(
                    "SELECT persisted_commit({}, {expected}, {}, {time}, {}, {}::jsonb, \
                     ARRAY[{}]::text[], {}::jsonb, {keep}, {keep_after}); COMMIT",
                    literal(&key),
                    literal(&cid),
                    literal(&record),
                    literal(&set),
                    unkind.join(", "),
                    literal(&ops),
                );
                self.conn.once(move |session| {
                    let v = session.simple(&sql);
                    if v.as_ref().is_err_and(|e| !is_connection_error(e)) {
                        let _ = session.client().batch_execute("ROLLBACK");
                    }
                    Ok(v?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1))
                })?
            }
            false => {
                let (cid, record) = (cid.clone(), record);
                self.conn.once(move |session| {
                    let params: [&(dyn postgres::types::ToSql + Sync); 10] = [
                        &key,
                        &expected,
                        &cid,
                        &time,
                        &record,
                        &set,
                        &unkind,
                        &ops,
                        &keep,
                        &keep_after,
                    ];
                    Ok(session.query_one(COMMIT, &params)?.get(0))
                })?
            }
        };
        self.locked = false;
        let v = match sent {
            Ok(v) => v,
            Err(e) if is_connection_error(&e) => match self.find_commit(&cid)? {
                Some(v) => v,
                None if locked => {
                    return Err(Error::Conflict {
                        path: self.target.clone(),
                        reason: "the connection was lost before the commit reached the \
                                 server; nothing was applied"
                            .into(),
                    })
                }
                // Not there: never applied; the caller sends it again.
                None => -1,
            },
            Err(e) => return Err(self.conn.db_error("commit to", &e)),
        };
        if v < 0 {
            return Ok(Sent::Behind);
        }
        self.version = u64::try_from(v).unwrap_or(0);
        self.kinds = kinds;
        Ok(Sent::Committed)
    }

    /// The version commit id `cid` was committed at, if it was (looked up
    /// once the connection is back).
    fn find_commit(&mut self, cid: &str) -> Result<Option<i64>> {
        let (key, cid) = (self.key.clone(), cid.to_string());
        self.conn.with_retry("resolve a commit to", move |session| {
            session
                .query_opt(
                    "SELECT seq FROM persisted_log WHERE key = $1 AND cid = $2",
                    &[&key, &cid],
                )
                .map(|row| row.map(|r| r.get(0)))
        })
    }

    /// Catches up with commits other clients made: one round trip when
    /// there are none. Applies the log's records, or reloads everything
    /// when the log no longer reaches back to this handle's version.
    pub(crate) fn catch_up<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<bool> {
        let key = self.key.clone();
        let v: Option<i64> = self.conn.with_retry("read", move |session| {
            session
                .query_opt(
                    "SELECT version FROM persisted_state WHERE key = $1",
                    &[&key],
                )
                .map(|row| row.map(|r| r.get(0)))
        })?;
        let v = u64::try_from(v.unwrap_or(0)).unwrap_or(0);
        if v == self.version {
            return Ok(false);
        }
        self.follow(state, v)
    }

    /// Applies the log entries after this handle's version up to `v`.
    fn follow<T: Persisted>(&mut self, state: &RwLock<T>, v: u64) -> Result<bool> {
        while self.version < v {
            let entries = self.log_after(self.version, LOG_PAGE)?;
            if entries.first().map(|(seq, _, _)| *seq) != Some(self.version + 1) {
                // Trimmed away: read everything again.
                let Some(loaded) = self.load::<T>(None)? else {
                    return Err(self.conn.error("read", "the store was emptied"));
                };
                replace_noting(
                    state,
                    loaded,
                    &mut self.notes,
                    Origin::Remote,
                    &self.codec,
                    &self.target,
                );
                return Ok(true);
            }
            let mut state = state.write();
            for (seq, _, record) in entries {
                let plain = self.open_record(seq, &record)?;
                self.codec
                    .replay_payload(plain.as_bytes(), &mut *state)
                    .map_err(|e| Error::Parse {
                        path: self.target.clone(),
                        line: 0,
                        column: e.column,
                        message: format!("log entry of version {seq}: {}", e.message),
                    })?;
                // (An encrypted store's fields are always one sealed row.)
                if self.crypt.is_none() {
                    note_kinds(&mut self.kinds, &record, &*state);
                }
                self.notes
                    .note(Origin::Remote, record_field_indices::<T>(&record), 1);
                self.version = seq;
            }
        }
        Ok(true)
    }

    /// Up to `limit` log entries after version `after`: version, time and
    /// record.
    fn log_after(&mut self, after: u64, limit: i64) -> Result<Vec<(u64, u64, String)>> {
        let key = self.key.clone();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.conn.with_retry("read the log of", move |session| {
            session
                .query(
                    "SELECT seq, time_ms, record FROM persisted_log
                     WHERE key = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&key, &after, &limit],
                )
                .map(|rows| {
                    rows.iter()
                        .map(|r| {
                            let seq: i64 = r.get(0);
                            let time: i64 = r.get(1);
                            (seq as u64, time as u64, r.get::<_, String>(2))
                        })
                        .collect()
                })
        })
    }

    /// Locks the store's row for a closure (waiting at most the lock
    /// timeout) in a transaction its commit ends, and catches up inside
    /// it: the closure runs once, on the current state, with no other
    /// commit anywhere until this one.
    pub(crate) fn lock<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<()> {
        let wait = self.lock_timeout.as_millis().max(1);
        let started = std::time::Instant::now();
        // One round trip: the transaction, its lock timeout, the lock.
        let sql = format!(
            "BEGIN; SET LOCAL lock_timeout = {wait}; SELECT version FROM persisted_state WHERE \
             key = {} FOR UPDATE",
            literal(&self.key)
        );
        let v: Result<i64> =
            self.conn
                .with_retry("lock", move |session| match session.simple(&sql) {
                    // No row: the store was deleted (-1, said below).
                    Ok(v) => Ok(v.and_then(|v| v.parse().ok()).unwrap_or(-1)),
                    Err(e) => {
                        if !is_connection_error(&e) {
                            let _ = session.client().batch_execute("ROLLBACK");
                        }
                        Err(e)
                    }
                });
        let v = match v {
            Ok(v) => v,
            Err(Error::LockTimeout { path, .. }) => {
                return Err(Error::LockTimeout {
                    path,
                    waited: started.elapsed(),
                })
            }
            Err(e) => return Err(e),
        };
        self.locked = true;
        let Ok(v) = u64::try_from(v) else {
            self.release();
            return Err(self
                .conn
                .error("lock", "the store was deleted from the database"));
        };
        if v != self.version {
            if let Err(e) = self.follow(state, v) {
                self.release();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Ends a closure's transaction that did not commit (rolled back).
    pub(crate) fn release(&mut self) {
        if !std::mem::take(&mut self.locked) {
            return;
        }
        let ended = self
            .conn
            .once(|session| session.client().batch_execute("ROLLBACK"));
        if let Ok(Err(e)) = ended {
            log::warn!(
                "`{}`: {e} (the server ends the transaction with the connection)",
                self.target.display()
            );
        }
    }

    /// The log as history: every entry kept, oldest first, each record as
    /// the database keeps it.
    pub(crate) fn history(&mut self) -> Result<Vec<(Commit, String)>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let entries = self.log_after(after, LOG_PAGE)?;
            let Some(&(last, _, _)) = entries.last() else {
                break;
            };
            after = last;
            for (seq, time, record) in entries {
                let fields = record_fields(&record);
                out.push((Commit::new(seq, time, fields), record));
            }
        }
        Ok(out)
    }

    pub(crate) fn state_at<T: Persisted>(&mut self, seq: u64) -> Result<T> {
        let log = self.history()?;
        replay_log(&self.target, &self.codec, self.crypt.as_ref(), &log, seq)
    }

    pub(crate) fn state_as_of<T: Persisted>(&mut self, time: SystemTime) -> Result<T> {
        let log = self.history()?;
        replay_log_as_of(&self.target, &self.codec, self.crypt.as_ref(), &log, time)
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// A log record ready to replay: an encrypted store's with its values
    /// opened.
    fn open_record<'r>(&self, seq: u64, record: &'r str) -> Result<std::borrow::Cow<'r, str>> {
        let place = || format!("persisted_log entry of version {seq}");
        open_record(self.crypt.as_ref(), &self.target, place, record)
    }

    pub(crate) fn target(&self) -> &Path {
        &self.target
    }
}

/// A commit's operations as the JSON array `persisted_commit` reads.
/// A commit's operations as `persisted_commit` takes them: the plain
/// fields set whole as one JSON object (merged with the version bump, one
/// row update), those of them that were collections, and the rest in
/// order. A field that the commit both sets plain and changes otherwise
/// (an `Option<Map>` set to `Some` then `None`) keeps all its operations
/// in order, in `ops`.
struct Split {
    set: String,
    unkind: Vec<String>,
    ops: String,
}

impl Split {
    fn of(all: &[ServerOp]) -> Split {
        let plain = |op: &ServerOp| op.code == "J" || op.code == "JN";
        let mixed: Vec<&str> = all
            .iter()
            .filter(|op| !plain(op))
            .map(|op| op.field.as_str())
            .collect();
        let mut set = String::from("{");
        let mut unkind = Vec::new();
        let mut ops = Vec::new();
        for op in all {
            if !plain(op) || mixed.contains(&op.field.as_str()) {
                ops.push(serde_json::json!({ "op": op.code, "f": op.field, "a": op.args }));
                continue;
            }
            if set.len() > 1 {
                set.push(',');
            }
            // The argument is JSON text already; a field set twice keeps
            // its last value (jsonb keeps the last of duplicate keys).
            set.push_str(&Json::String(op.field.clone()).to_string());
            set.push(':');
            set.push_str(op.args.first().map_or("null", String::as_str));
            if op.code == "JN" {
                unkind.push(op.field.clone());
            }
        }
        set.push('}');
        Split {
            set,
            unkind,
            ops: Json::Array(ops).to_string(),
        }
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        self.release();
    }
}
