//! A store's files read without its Rust type: the snapshot, the journal
//! and the history files, paired the way the library pairs them on open.

use std::path::{Path, PathBuf};

pub use persisted_state_core::__tool::Pairing;
use persisted_state_core::__tool::{self, Dated, NoPoint, Point, Record, Records, Span};
use persisted_state_core::Format;
use serde_json::Value;

use crate::dynamic::{self, line_col};
use crate::replay;

/// A file of records (the journal, or a history file) with its bytes.
pub struct RecordFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub records: Records,
    /// Where the state the records apply to is: the snapshot, or a
    /// history file's checkpoint.
    pub checkpoint: PathBuf,
}

impl RecordFile {
    pub fn read(path: PathBuf, checkpoint: PathBuf) -> Result<Option<RecordFile>, String> {
        let Some(bytes) = read(&path)? else {
            return Ok(None);
        };
        let records = __tool::read_records(&bytes);
        Ok(Some(RecordFile {
            path,
            bytes,
            records,
            checkpoint,
        }))
    }

    pub fn commits(&self) -> impl Iterator<Item = &Record> {
        self.records.records.iter().filter(|r| !r.intent)
    }

    /// A commit's payload, opened when the file is an encrypted store's.
    pub fn payload(&self, record: &Record) -> Result<std::borrow::Cow<'_, [u8]>, String> {
        crate::sealed::payload(&self.path, &self.bytes, record)
    }

    /// `path:line:col` (text) or `path: offset N` (bincode) for `offset`.
    pub fn position(&self, format: Format, offset: usize) -> String {
        if format == Format::Bincode {
            format!("{}: offset {offset}", self.path.display())
        } else {
            let (line, column) = line_col(&self.bytes, offset);
            format!("{}:{line}:{column}", self.path.display())
        }
    }

    /// A commit's entries, or where and why they do not parse.
    pub fn entries(&self, format: Format, record: &Record) -> Result<dynamic::Entries, String> {
        let payload = self.payload(record)?;
        dynamic::parse_payload(format, &payload).map_err(|e| {
            let (line, column) = line_col(&self.bytes, record.payload_at);
            let column = if e.line <= 1 {
                column + e.column.saturating_sub(1)
            } else {
                e.column
            };
            format!(
                "{}:{}:{column}: record {}: {}",
                self.path.display(),
                line + e.line.saturating_sub(1),
                record.seq,
                e.message
            )
        })
    }

    /// Applies the commits up to and including `upto` to `state`.
    pub fn replay(&self, format: Format, state: &mut Value, upto: u64) -> Result<(), String> {
        self.replay_where(format, state, |r| r.seq <= upto)
    }

    /// Applies the commits `which` picks to `state`, in order.
    pub fn replay_where(
        &self,
        format: Format,
        state: &mut Value,
        which: impl Fn(&Record) -> bool,
    ) -> Result<(), String> {
        for record in self.commits().filter(|r| which(r)) {
            let entries = self.entries(format, record)?;
            replay::apply(state, &entries.0).map_err(|e| {
                format!(
                    "{}: record {}: {e}",
                    self.position(format, record.start),
                    record.seq
                )
            })?;
        }
        Ok(())
    }
}

/// A file's bytes; `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
    }
}

/// Reads a snapshot as a value, naming the file and position on failure.
/// An encrypted store's snapshot is opened first.
pub fn parse_snapshot(path: &Path, format: Format, bytes: &[u8]) -> Result<Value, String> {
    let plain = crate::sealed::snapshot(path, bytes)?;
    dynamic::parse_snapshot(format, &plain).map_err(|e| format!("{}:{e}", path.display()))
}

/// The snapshot and journal of a store as one consistent pair.
pub struct Store {
    pub path: PathBuf,
    pub format: Format,
    pub snapshot: Vec<u8>,
    pub journal: Option<RecordFile>,
    /// How the journal relates to the snapshot, by the library's rule;
    /// `None` without a journal (or one whose header does not verify).
    pub pairing: Option<Pairing>,
}

impl Store {
    /// Reads the snapshot and the journal. Takes no lock: when a program
    /// compacts between the two reads, they are read again.
    pub fn read(path: &Path, format: Format) -> Result<Store, String> {
        for _ in 0..50 {
            let Some(snapshot) = read(path)? else {
                return Err(format!("`{}` does not exist", path.display()));
            };
            let journal = RecordFile::read(__tool::journal_of(path), path.to_path_buf())?;
            let again = read(path)?;
            if again.as_deref() == Some(&snapshot[..]) {
                let pairing = match &journal {
                    Some(j) => __tool::pairing(path, &snapshot, &j.records, &j.bytes)
                        .map_err(|e| e.to_string())?,
                    None => None,
                };
                return Ok(Store {
                    path: path.to_path_buf(),
                    format,
                    snapshot,
                    journal,
                    pairing,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(format!(
            "`{}` kept changing while it was read; try again",
            path.display()
        ))
    }

    /// The current state, as the next open will see it: the snapshot with
    /// the journal's commits applied when they belong to it, or, when the
    /// snapshot was edited after the journal was written, with the commits
    /// made after the edit was saved.
    pub fn current(&self) -> Result<Value, String> {
        let mut state = parse_snapshot(&self.path, self.format, &self.snapshot)?;
        match (self.pairing, &self.journal) {
            (Some(Pairing::Applies), Some(journal)) => {
                journal.replay(self.format, &mut state, u64::MAX)?
            }
            (Some(Pairing::Orphaned), Some(journal)) => {
                let saved_ns = std::fs::metadata(&self.path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i128);
                journal.replay_where(self.format, &mut state, |record| {
                    __tool::made_after_save(record.time_ms, saved_ns)
                })?
            }
            _ => {}
        }
        Ok(state)
    }
}

/// One commit of the history, with where it is.
pub struct Commit {
    pub seq: u64,
    pub time_ms: u64,
    /// Index into [`History::files`] and into that file's records.
    pub file: usize,
    pub record: usize,
}

/// Every commit kept: the history files, then the journal.
pub struct History {
    pub files: Vec<RecordFile>,
    pub commits: Vec<Commit>,
}

impl History {
    pub fn read(store: &Store) -> Result<History, String> {
        let mut files = Vec::new();
        for (_, records, checkpoint) in
            __tool::history_files(&store.path).map_err(|e| e.to_string())?
        {
            files.extend(RecordFile::read(records, checkpoint)?);
        }
        if store.pairing == Some(Pairing::Applies) {
            if let Some(journal) = &store.journal {
                files.push(
                    RecordFile::read(journal.path.clone(), store.path.clone())?.ok_or_else(
                        || format!("`{}` vanished while it was read", journal.path.display()),
                    )?,
                );
            }
        }
        let mut commits: Vec<Commit> = Vec::new();
        for (f, file) in files.iter().enumerate() {
            for (r, record) in file.records.records.iter().enumerate() {
                if record.intent || commits.last().is_some_and(|c| c.seq >= record.seq) {
                    continue;
                }
                commits.push(Commit {
                    seq: record.seq,
                    time_ms: record.time_ms.unwrap_or(0),
                    file: f,
                    record: r,
                });
            }
        }
        Ok(History { files, commits })
    }

    /// The state right after commit `seq`.
    pub fn state_at(&self, format: Format, seq: u64) -> Result<Value, String> {
        let Some(commit) = self.commits.iter().find(|c| c.seq == seq) else {
            return Err(match (self.commits.first(), self.commits.last()) {
                (Some(first), Some(last)) => format!(
                    "commit {seq} is not kept: the history holds commits {} to {}",
                    first.seq, last.seq
                ),
                _ => format!("commit {seq} is not kept: the history holds no commit"),
            });
        };
        let file = &self.files[commit.file];
        let bytes = read(&file.checkpoint)?.unwrap_or_default();
        if file.records.header.map(|h| h.base) != Some(__tool::fingerprint(&bytes)) {
            return Err(format!(
                "`{}` is not the state `{}` applies to",
                file.checkpoint.display(),
                file.path.display()
            ));
        }
        let mut state = parse_snapshot(&file.checkpoint, format, &bytes)?;
        file.replay(format, &mut state, seq)?;
        Ok(state)
    }

    /// The state as of `time_ms`, by the library's rule: never an older
    /// state across a gap in the history.
    pub fn state_as_of(&self, format: Format, time_ms: u64) -> Result<Value, String> {
        let spans: Vec<Span> = self
            .files
            .iter()
            .map(|file| {
                let from = file.records.header.map_or(0, |h| h.seq);
                Span {
                    from,
                    last: file.records.records.last().map_or(from, |r| r.seq),
                    checkpoint_ms: std::fs::metadata(&file.checkpoint)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(u64::MAX, |d| d.as_millis() as u64),
                }
            })
            .collect();
        let dated: Vec<Dated> = self
            .commits
            .iter()
            .map(|c| Dated {
                seq: c.seq,
                time_ms: c.time_ms,
                span: c.file,
            })
            .collect();
        match __tool::point_as_of(&spans, &dated, 0, time_ms) {
            Ok(Point::Commit(i)) => self.state_at(format, self.commits[i].seq),
            Ok(Point::Checkpoint(f)) => {
                let file = &self.files[f];
                let bytes = read(&file.checkpoint)?.unwrap_or_default();
                parse_snapshot(&file.checkpoint, format, &bytes)
            }
            Err(NoPoint::TooOld) => Err("no kept commit was made at or before that time".into()),
            Err(NoPoint::InGap { after, until }) => Err(format!(
                "that time falls in a gap of the history: the commits after {after} up to \
                 {until} were folded while history was not kept, so their times are unknown"
            )),
        }
    }
}
