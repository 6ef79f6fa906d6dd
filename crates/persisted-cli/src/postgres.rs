//! A store kept in PostgreSQL (`postgres://user@host/db#key`): `show`,
//! `log` and `verify` read its tables in one read-only snapshot, as they
//! read a file store's snapshot and journal. They take no lock and write
//! nothing. An encrypted store's values are opened with the key from
//! `PERSISTED_KEY` or `--key-file`, as a file store's are.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::time::Duration;

use persisted_state_core::__tool::{self, Unlocked};
use persisted_state_core::Format;
use postgres::{Client, IsolationLevel, Transaction};
use serde_json::{Map, Value};

use crate::commands::{log_line, parse_time, print, Outcome, Report};
use crate::{dynamic, replay, sealed};

/// A store named by `postgres://...#key`.
pub struct Remote {
    url: String,
    key: String,
    /// An encrypted store's data key, once unlocked (`None`: plain).
    unlocked: OnceCell<Option<Unlocked>>,
}

impl Remote {
    /// `Some` when `arg` is a PostgreSQL URL (`postgres://` or
    /// `postgresql://`); an error when its `#key` is missing.
    pub fn parse(arg: &std::path::Path) -> Option<Result<Remote, String>> {
        let text = arg.to_str()?;
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return None;
        }
        Some(match text.rsplit_once('#') {
            Some((url, key)) if !key.is_empty() => Ok(Remote {
                url: url.to_string(),
                key: key.to_string(),
                unlocked: OnceCell::new(),
            }),
            _ => Err(format!(
                "`{}` names no store: add its key after `#`, e.g. postgres://user@host/db#settings",
                redact(text)
            )),
        })
    }

    /// Names the store in messages (without a password).
    fn name(&self) -> String {
        format!("{}#{}", redact(&self.url), self.key)
    }

    fn connect(&self) -> Result<Client, String> {
        persisted_state_core::__tool::postgres::connect(&self.url, Duration::from_secs(10))
            .map_err(|e| format!("cannot connect to `{}`: {e}", redact(&self.url)))
    }

    /// Runs `read` in one read-only, repeatable-read transaction: every
    /// query sees the same commit.
    fn read<R>(
        &self,
        read: impl FnOnce(&mut Transaction<'_>) -> Result<R, String>,
    ) -> Result<R, String> {
        let mut client = self.connect()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| self.sql_error(e))?;
        let out = read(&mut tx)?;
        tx.commit().map_err(|e| self.sql_error(e))?;
        Ok(out)
    }

    fn sql_error(&self, e: postgres::Error) -> String {
        let missing = e
            .as_db_error()
            .is_some_and(|d| d.code() == &postgres::error::SqlState::UNDEFINED_TABLE);
        match missing {
            true => format!(
                "`{}` holds no persisted-state store (no table persisted_state)",
                redact(&self.url)
            ),
            false => format!("`{}`: {e}", self.name()),
        }
    }

    /// An encrypted store's data key, unlocked with the command's key the
    /// first time; `None` for a plain store.
    fn unlocked(&self, tx: &mut Transaction<'_>) -> Result<Option<&Unlocked>, String> {
        if let Some(unlocked) = self.unlocked.get() {
            return Ok(unlocked.as_ref());
        }
        // Read through `to_jsonb` so that tables made before the column
        // existed read as a plain store.
        let envelope: Option<String> = tx
            .query_opt(
                "SELECT to_jsonb(s)->>'envelope' FROM persisted_state s WHERE key = $1",
                &[&self.key],
            )
            .map_err(|e| self.sql_error(e))?
            .and_then(|row| row.get::<_, Option<String>>(0))
            // Empty: claimed for plain values.
            .filter(|envelope| !envelope.is_empty());
        let unlocked = match envelope {
            Some(envelope) => {
                let name = PathBuf::from(self.name());
                let key = sealed::key(&name)?;
                Some(__tool::unlock_server(&key, &name, &envelope).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        Ok(self.unlocked.get_or_init(|| unlocked).as_ref())
    }

    /// `value` of field `name` opened with `unlocked`, or an error naming
    /// where it was read.
    fn open(
        &self,
        unlocked: &Unlocked,
        place: &str,
        name: &str,
        value: &Value,
    ) -> Result<Value, String> {
        unlocked.open_value(name, value).ok_or_else(|| {
            format!(
                "`{}`: {place} field `{name}` does not authenticate (written with another key, \
                 moved, or tampered with)",
                self.name()
            )
        })
    }

    /// The current state and what does not fit the layout.
    fn current(&self, tx: &mut Transaction<'_>) -> Result<(u64, Value, Vec<String>), String> {
        use persisted_state_core::__tool::postgres::{Tables, LOAD};
        let row = tx
            .query_opt(LOAD, &[&self.key])
            .map_err(|e| self.sql_error(e))?;
        let Some(row) = row else {
            let keys: Vec<String> = tx
                .query("SELECT key FROM persisted_state ORDER BY key LIMIT 20", &[])
                .map_err(|e| self.sql_error(e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            return Err(format!(
                "`{}` holds no store `{}`; its stores: {}",
                redact(&self.url),
                self.key,
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            ));
        };
        let tables = Tables {
            version: row.get(0),
            state: row.get(1),
            kinds: row.get(2),
            lists: row.get(3),
            maps: row.get(4),
        };
        let mut assembled = tables
            .assemble()
            .map_err(|(column, e)| format!("`{}`: {column} is not JSON: {e}", self.name()))?;
        if let Some(unlocked) = self.unlocked(tx)? {
            assembled
                .unwrap_sealed_rows()
                .map_err(|e| format!("`{}`: {e}", self.name()))?;
            for (name, value) in assembled.object.iter_mut() {
                *value = self.open(unlocked, "persisted_state.state", name, value)?;
            }
        }
        Ok((
            assembled.version,
            Value::Object(assembled.object),
            assembled.problems,
        ))
    }

    /// Every kept log entry, oldest first.
    fn log(&self, tx: &mut Transaction<'_>) -> Result<Vec<Entry>, String> {
        let rows = tx
            .query(
                "SELECT seq, time_ms, record FROM persisted_log WHERE key = $1 ORDER BY seq",
                &[&self.key],
            )
            .map_err(|e| self.sql_error(e))?;
        let mut entries: Vec<Entry> = rows
            .iter()
            .map(|r| Entry {
                seq: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                time_ms: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                record: r.get(2),
            })
            .collect();
        if let Some(unlocked) = self.unlocked(tx)? {
            for entry in &mut entries {
                let place = format!("persisted_log entry {}", entry.seq);
                let mut opened = Map::new();
                for (key, value) in entry.changes()? {
                    let name = key.split_once(' ').map_or(key.as_str(), |(_, f)| f);
                    let plain = self.open(unlocked, &place, name, &value)?;
                    opened.insert(key, plain);
                }
                entry.record = Value::Object(opened).to_string();
            }
        }
        Ok(entries)
    }
}

/// One row of `persisted_log`.
struct Entry {
    seq: u64,
    time_ms: u64,
    record: String,
}

impl Entry {
    /// The commit's changes, `(operation, field)` with the argument, in
    /// order; an error when the record is not a commit's.
    fn changes(&self) -> Result<Vec<(String, Value)>, String> {
        match serde_json::from_str::<Value>(&self.record) {
            Ok(Value::Object(map)) => Ok(map.into_iter().collect()),
            Ok(_) => Err(format!("log entry {}: not a JSON object", self.seq)),
            Err(e) => Err(format!("log entry {}: {e}", self.seq)),
        }
    }
}

/// `password` in a URL replaced by `***`.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) if user.contains(':') => {
                let name = user.split_once(':').map_or("", |(name, _)| name);
                format!("{scheme}://{name}:***@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The state right after commit `seq`, replayed from the log (which must
/// still reach back to the store's first commit, which sets every field).
fn replay_to(log: &[Entry], seq: u64) -> Result<Value, String> {
    let holds = match (log.first(), log.last()) {
        (Some(a), Some(b)) => format!("the log holds commits {} to {}", a.seq, b.seq),
        _ => "the log holds no commit".to_string(),
    };
    if !log.iter().any(|e| e.seq == seq) {
        return Err(format!("commit {seq} is not kept: {holds}"));
    }
    if log.first().map(|e| e.seq) != Some(1) {
        return Err(format!(
            "commit {seq}: the log no longer reaches back to the store's creation (keep more \
             with `keep_history`); {holds}"
        ));
    }
    let mut state = Value::Object(Map::new());
    for entry in log.iter().take_while(|e| e.seq <= seq) {
        replay::apply(&mut state, &entry.changes()?)
            .map_err(|e| format!("log entry {}: {e}", entry.seq))?;
    }
    Ok(state)
}

pub fn show(
    remote: &Remote,
    at: Option<u64>,
    as_of: Option<&str>,
    output: Option<Format>,
) -> Outcome {
    let as_of = as_of.map(parse_time).transpose()?;
    let state = remote.read(|tx| match (at, as_of) {
        (Some(seq), _) => replay_to(&remote.log(tx)?, seq),
        (None, Some(time_ms)) => {
            let log = remote.log(tx)?;
            let seq = log
                .iter()
                .take_while(|e| e.time_ms <= time_ms)
                .last()
                .map(|e| e.seq)
                .ok_or("no kept commit was made at or before that time")?;
            replay_to(&log, seq)
        }
        (None, None) => remote.current(tx).map(|(_, state, _)| state),
    })?;
    print(&dynamic::encode(output.unwrap_or(Format::Json), &state)?)
}

pub fn log(remote: &Remote, fields: &[String], limit: Option<usize>) -> Outcome {
    let log = remote.read(|tx| remote.log(tx))?;
    let mut out = String::new();
    let mut shown = 0;
    for entry in log.iter().rev() {
        if limit.is_some_and(|n| shown >= n) {
            break;
        }
        let changes: Vec<(String, String)> = entry
            .changes()?
            .into_iter()
            .filter_map(|(key, _)| {
                let (op, field) = key.split_once(' ')?;
                Some((op.to_string(), field.to_string()))
            })
            .collect();
        if !fields.is_empty() && !changes.iter().any(|(_, f)| fields.contains(f)) {
            continue;
        }
        out.push_str(&log_line(entry.seq, Some(entry.time_ms), &changes));
        shown += 1;
    }
    print(out.as_bytes())
}

/// Checks the store's rows: the layout, the log (one entry per commit, in
/// sequence, ending at the store's version, each a commit's record), and,
/// when the log reaches back to the first commit, that replaying it gives
/// the state the tables hold.
pub fn verify(remote: &Remote) -> Outcome {
    let mut report = Report::default();
    let (version, state, log) = remote.read(|tx| {
        let (version, state, problems) = remote.current(tx)?;
        report.problems.extend(problems);
        Ok((version, state, remote.log(tx)?))
    })?;
    let mut expected = log.first().map_or(0, |e| e.seq);
    for entry in &log {
        if entry.seq != expected {
            report.problems.push(format!(
                "persisted_log: entry {} follows {} (entries {expected} to {} are missing)",
                entry.seq,
                expected - 1,
                entry.seq - 1
            ));
        }
        expected = entry.seq + 1;
        if let Err(e) = entry.changes() {
            report.problems.push(format!("persisted_log: {e}"));
        }
    }
    match log.last() {
        Some(last) if last.seq != version => report.problems.push(format!(
            "persisted_log ends at commit {}, the store is at version {version}",
            last.seq
        )),
        None if version > 0 => report.problems.push(format!(
            "persisted_log holds no entry, the store is at version {version}"
        )),
        _ => {}
    }
    match log.first() {
        Some(first) if first.seq == 1 && report.problems.is_empty() => {
            let replayed = replay_to(&log, version)?;
            compare(&replayed, &state, &mut report);
        }
        Some(first) => report.notes.push(format!(
            "the log starts at commit {} (older entries trimmed by `keep_history`): the \
             state is not checked against it",
            first.seq
        )),
        None => {}
    }
    report.finish(&remote.name())
}

/// Adds a problem for each field whose replayed value differs from the
/// tables' (a set's elements compared in any order: the server appends).
fn compare(replayed: &Value, tables: &Value, report: &mut Report) {
    let (Value::Object(replayed), Value::Object(tables)) = (replayed, tables) else {
        return;
    };
    for (field, value) in replayed {
        let held = tables.get(field).unwrap_or(&Value::Null);
        if !same(value, held) {
            report.problems.push(format!(
                "field `{field}`: the log replays to {value}, the tables hold {held}"
            ));
        }
    }
}

/// Equal as JSON, numbers by value (jsonb may write `1.50` as `1.5`),
/// lists in either order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len()
                && (x.iter().zip(y).all(|(x, y)| same(x, y))
                    || x.iter().all(|e| y.iter().any(|f| same(e, f))))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// What the file-only commands say to a PostgreSQL store.
pub fn files_only(command: &str) -> Outcome {
    Err(format!(
        "`{command}` works on file stores; a PostgreSQL store is changed through the \
         library, whose commits every process sharing it follows (`show`, `log` and `verify` \
         read it)"
    ))
}
