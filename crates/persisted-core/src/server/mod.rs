//! What the server backends (Redis, PostgreSQL) share: the state kept
//! field by field, collection fields as native collections so that their
//! operations cost O(the change) on the server; a commit's changes as
//! operations on them and as the record the log keeps (a JSON object like a
//! journal record); reading the fields back into the struct.

mod connect;
mod seal;

pub(crate) use self::connect::{open_store, Connect};
pub(crate) use self::seal::{
    check_same, envelope_text, open_object, open_record, open_value, unlock,
};

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;

use self::seal::SealedChanges;
use crate::change::{Changes, FieldOf};
use crate::collection::Op;
use crate::crypt::Crypt;
use crate::error::{Error, Result};
use crate::format::Codec;
use crate::history::Commit;
use crate::schema::{FieldSpec, Persisted};

/// How a field is kept on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A native list of JSON elements.
    List,
    /// A native hash: key text -> JSON value.
    Hash,
}

/// A process-wide unique id: time, process and a counter, hashed.
pub(crate) fn unique_id() -> String {
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

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The commit for the server: each change as a native command on the
/// field's key (converting a field to a native collection the first
/// time a collection operation meets it), and the record for the log,
/// a JSON object like a journal record's, each value serialized once.
/// Returns the kinds the fields will have once the commit is applied.
pub(crate) fn encode<T: Persisted>(
    target: &Path,
    known: &HashMap<String, Kind>,
    fields: &'static [FieldSpec],
    changes: &dyn Changes,
    state: &T,
    applied: bool,
) -> Result<(Vec<ServerOp>, String, HashMap<String, Kind>)> {
    let mut kinds = known.clone();
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
        Some(e) => Err(Error::encode(target, e)),
        None => Ok((ops, record, kinds)),
    }
}

/// [`encode`] for a store encrypted with `crypt` (each field the changes
/// touch, set whole to its new value, sealed) or a plain one (`None`).
pub(crate) fn encode_for<T: Persisted>(
    crypt: Option<&Crypt>,
    target: &Path,
    known: &HashMap<String, Kind>,
    fields: &'static [FieldSpec],
    changes: &dyn Changes,
    state: &T,
    applied: bool,
) -> Result<(Vec<ServerOp>, String, HashMap<String, Kind>)> {
    match crypt {
        Some(crypt) => {
            let sealed = SealedChanges::of(crypt, target, fields, changes, state, applied)?;
            encode(target, known, fields, &sealed, state, true)
        }
        None => encode(target, known, fields, changes, state, applied),
    }
}

/// Tracks which fields a replayed record left as native collections:
/// a field set whole by the shape of its value; a field changed by an
/// operation that this handle did not know as native (the committer
/// converted it) by the shape of its value in `state`.
pub(crate) fn note_kinds<T: Persisted>(kinds: &mut HashMap<String, Kind>, record: &str, state: &T) {
    let Ok(Json::Object(map)) = serde_json::from_str::<Json>(record) else {
        return;
    };
    for (key, value) in map {
        let Some((op, field)) = key.split_once(' ') else {
            continue;
        };
        let shape = match op {
            "set" => value,
            _ if kinds.contains_key(field) => continue,
            _ => match crate::schema::field_index(T::__FIELDS, field) {
                Some(index) => serde_json::to_value(FieldOf(state, index)).unwrap_or_default(),
                None => continue,
            },
        };
        match shape {
            Json::Array(_) => drop(kinds.insert(field.into(), Kind::List)),
            Json::Object(_) => drop(kinds.insert(field.into(), Kind::Hash)),
            _ => drop(kinds.remove(field)),
        }
    }
}

/// The struct from the fields read; an error names where they were read
/// (`container`) and the field that does not fit.
pub(crate) fn decode<T: Persisted>(
    target: &Path,
    container: &str,
    object: serde_json::Map<String, Json>,
) -> Result<T> {
    match serde_json::from_value::<T>(Json::Object(object.clone())) {
        Ok(state) => Ok(state),
        Err(e) => {
            let mut probe = T::default();
            for (index, spec) in T::__FIELDS.iter().enumerate() {
                if let Some(value) = object.get(spec.name) {
                    if let Err(e) = probe.__deserialize_field(index, value.clone()) {
                        return Err(Error::Parse {
                            path: target.to_path_buf(),
                            line: 0,
                            column: 0,
                            message: format!("{container} field `{}`: {e}", spec.name),
                        });
                    }
                }
            }
            Err(Error::Parse {
                path: target.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("{container}: {e}"),
            })
        }
    }
}

/// The fields a record's keys name, by index in `T` (for subscribers).
pub(crate) fn record_field_indices<T: Persisted>(record: &str) -> Vec<usize> {
    record_fields(record)
        .iter()
        .filter_map(|name| crate::schema::field_index(T::__FIELDS, name))
        .collect()
}

/// The fields a record's keys name, each once.
pub(crate) fn record_fields(record: &str) -> Vec<String> {
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

/// A field replaced whole, given as JSON text: JSON in the state hash, or
/// a native list or hash for a list or map value.
pub(crate) fn whole(
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
pub(crate) fn map_key(key: &Json) -> String {
    match key {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One operation of a commit script.
pub(crate) struct ServerOp {
    pub(crate) code: &'static str,
    pub(crate) field: String,
    pub(crate) args: Vec<String>,
}

impl ServerOp {
    pub(crate) fn new(code: &'static str, field: &str, args: Vec<String>) -> ServerOp {
        ServerOp {
            code,
            field: field.to_string(),
            args,
        }
    }
}

/// Every field of a state, set whole: a new store's first commit.
pub(crate) struct AllFields<'a, T>(pub(crate) &'a T, pub(crate) usize);

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

/// Replays `log` (every kept commit, oldest first, with its record as the
/// server keeps it: sealed with `crypt` for an encrypted store) up to
/// commit `seq`, from the store's first commit, which sets every field.
pub(crate) fn replay_log<T: Persisted>(
    target: &Path,
    codec: &Codec,
    crypt: Option<&Crypt>,
    log: &[(Commit, String)],
    seq: u64,
) -> Result<T> {
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
            path: target.to_path_buf(),
            reason: format!("commit {seq}: {why}; the log holds {holds}"),
        });
    }
    let mut state = T::default();
    for (commit, rec) in log.iter().take_while(|(c, _)| c.seq <= seq) {
        let place = || format!("log entry of version {}", commit.seq);
        let rec = open_record(crypt, target, place, rec)?;
        codec
            .replay_payload(rec.as_bytes(), &mut state)
            .map_err(|e| Error::Parse {
                path: target.to_path_buf(),
                line: 0,
                column: e.column,
                message: format!("log entry of version {}: {}", commit.seq, e.message),
            })?;
    }
    Ok(state)
}

/// The state right after the last commit of `log` made at or before
/// `time`.
pub(crate) fn replay_log_as_of<T: Persisted>(
    target: &Path,
    codec: &Codec,
    crypt: Option<&Crypt>,
    log: &[(Commit, String)],
    time: SystemTime,
) -> Result<T> {
    let seq = log
        .iter()
        .take_while(|(c, _)| c.time <= time)
        .last()
        .map(|(c, _)| c.seq)
        .ok_or_else(|| {
            let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            Error::NotInHistory {
                path: target.to_path_buf(),
                reason: format!(
                    "no kept commit was made at or before {ms} ms after the Unix epoch"
                ),
            }
        })?;
    replay_log(target, codec, crypt, log, seq)
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
