//! The log `{P}:log` (a stream): catching up with other clients' commits
//! from it, or reloading when it no longer reaches back.

use std::borrow::Cow;

use super::*;
use crate::notify::{replace_noting, Origin};
use crate::server::record_field_indices;

impl RedisBackend {
    /// Up to 1000 log entries from `from` (an entry id, `(id` for after
    /// it, or `-` for the first).
    pub(super) fn log_from(&mut self, op: &'static str, from: &str) -> Result<Vec<LogEntry>> {
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
    pub(super) fn follow<T: Persisted>(&mut self, state: &RwLock<T>, v: u64) -> Result<bool> {
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
    pub(super) fn apply_entries<T: Persisted>(
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
            let rec = self.open_record(entry)?;
            self.codec
                .replay_payload(rec.as_bytes(), &mut *state)
                .map_err(|e| Error::Parse {
                    path: self.target.clone(),
                    line: 0,
                    column: e.column,
                    message: format!(
                        "log entry {} (version {}): {}",
                        entry.id, entry.v, e.message
                    ),
                })?;
            note_kinds(&mut self.kinds, &entry.rec, &*state);
            self.notes
                .note(Origin::Remote, record_field_indices::<T>(&entry.rec), 1);
            self.version = entry.v;
            self.last_id = entry.id.clone();
        }
        Ok(true)
    }

    /// A log entry's record ready to replay: an encrypted store's with its
    /// values opened.
    pub(super) fn open_record<'e>(&self, entry: &'e LogEntry) -> Result<Cow<'e, str>> {
        let place = || format!("log entry {} (version {})", entry.id, entry.v);
        open_record(self.crypt.as_ref(), &self.target, place, &entry.rec)
    }

    pub(super) fn reload<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<bool> {
        match self.load::<T>(None)? {
            Some(loaded) => {
                replace_noting(
                    state,
                    loaded,
                    &mut self.notes,
                    Origin::Remote,
                    &self.codec,
                    &self.target,
                );
                Ok(true)
            }
            None => Err(self.error("read", "the store was deleted from the server")),
        }
    }
}

/// One entry of the log stream.
pub(super) struct LogEntry {
    pub(super) id: String,
    pub(super) v: u64,
    pub(super) cid: String,
    pub(super) ts: u64,
    pub(super) rec: String,
}

pub(super) fn log_entries(value: &Value) -> Vec<LogEntry> {
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

pub(super) fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => as_string(other)?.parse().ok(),
    }
}

/// A flat `[k1, v1, k2, v2, ...]` reply as pairs.
pub(super) fn pairs(value: &Value) -> Vec<(String, String)> {
    let items: &[Value] = match value {
        Value::Array(items) => items,
        _ => return Vec::new(),
    };
    items
        .chunks(2)
        .filter_map(|pair| Some((as_string(pair.first()?)?, as_string(pair.get(1)?)?)))
        .collect()
}
