//! What the `persisted` command-line tool needs of the files without the
//! Rust type: the verified records of a journal, the history files, the
//! store's lock, replacing the snapshot the way compaction does, and
//! setting damaged bytes aside. Reached through `persisted_state_core::__tool`;
//! not public API.

use std::path::{Path, PathBuf};

pub use super::edits::made_after_save;
use super::frame::{decode_header, decode_intent, is_cut_header, Kind};
pub use super::recovery::Pairing;
use super::recovery::{self, scan_from};
use super::{history, journal_path, Journal};
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, sibling, side_file, sync_dir};
use crate::file::lock::LockFile;
use crate::file::vfs::RealFs;
use crate::format::Codec;
use crate::history::KeepHistory;
pub use crate::history::{point_as_of, Dated, NoPoint, Point, Span};
use crate::options::{Durability, Format};

/// A journal's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// The format its records are in.
    pub format: Format,
    /// Fingerprint of the snapshot the records apply to.
    pub base: u64,
    /// The sequence number that snapshot is at.
    pub seq: u64,
}

/// One verified record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// A compaction intent rather than a commit.
    pub intent: bool,
    /// Its sequence number.
    pub seq: u64,
    /// Version 2: the commit time in ms since the Unix epoch.
    pub time_ms: Option<u64>,
    /// Version 2: the fields list (`=a,+b`), unless it is `*`.
    pub fields: Option<String>,
    /// Offset of the frame's first byte.
    pub start: usize,
    /// Offset of the payload's first byte.
    pub payload_at: usize,
    /// Offset just past the record.
    pub end: usize,
}

/// What a journal file holds.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// `None` when the header does not verify.
    pub header: Option<Header>,
    /// With no header: the file ends inside its first line (no record can
    /// follow: what a crash leaves, not damage).
    pub cut_header: bool,
    /// The valid records, in order, each continuing the sequence.
    pub records: Vec<Record>,
    /// Offset just past the last valid record (the file's length when
    /// nothing follows them).
    pub valid_end: usize,
    /// Valid records after `valid_end` that continue the sequence: damage.
    pub continuing_later: usize,
}

/// Reads and verifies the records of journal (or history file) `bytes`.
pub fn read_records(bytes: &[u8]) -> Records {
    let Some((header, header_len)) = decode_header(bytes) else {
        return Records {
            cut_header: is_cut_header(bytes),
            ..Records::default()
        };
    };
    let layout = header.layout();
    let scan = scan_from(layout, bytes, header_len, header.seq);
    let mut start = header_len;
    let records = scan
        .frames
        .iter()
        .map(|frame| Record {
            intent: frame.kind == Kind::Intent,
            seq: frame.seq,
            time_ms: frame.time_ms,
            fields: frame
                .fields
                .map(|(s, e)| String::from_utf8_lossy(&bytes[s..e]).into_owned()),
            start: std::mem::replace(&mut start, frame.end),
            payload_at: frame.payload_at,
            end: frame.end,
        })
        .collect();
    Records {
        header: Some(Header {
            version: header.version,
            format: header.format,
            base: header.base,
            seq: header.seq,
        }),
        cut_header: false,
        records,
        valid_end: scan.valid_end,
        continuing_later: scan.continuing_later,
    }
}

/// How the journal whose `bytes` hold `records` relates to `snapshot` (the
/// bytes of the file at `snapshot_path`), by the rule open follows; `None`
/// when its header does not verify.
pub fn pairing(
    snapshot_path: &Path,
    snapshot: &[u8],
    records: &Records,
    bytes: &[u8],
) -> Result<Option<Pairing>> {
    let Some(header) = records.header else {
        return Ok(None);
    };
    let intents = records
        .records
        .iter()
        .filter(|r| r.intent)
        .map(|r| decode_intent(header.format, &bytes[r.payload_at..r.end]));
    let holds_more = records.records.iter().any(|r| !r.intent) || records.valid_end < bytes.len();
    recovery::pairing(
        &*RealFs::shared(),
        &journal_path(snapshot_path),
        fingerprint(snapshot),
        header.base,
        intents,
        holds_more,
    )
    .map(Some)
}

/// The fingerprint of snapshot bytes, as journal headers name it.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    crate::checksum::fingerprint(bytes)
}

/// The journal beside `snapshot`.
pub fn journal_of(snapshot: &Path) -> PathBuf {
    journal_path(snapshot)
}

/// The history files beside `snapshot`, oldest first: each segment's
/// sequence number, records file and checkpoint file.
pub fn history_files(snapshot: &Path) -> Result<Vec<(u64, PathBuf, PathBuf)>> {
    history::files(&*RealFs::shared(), snapshot)
}

/// Whether `bytes` (a file's first bytes) are an encrypted store's.
pub fn is_sealed(bytes: &[u8]) -> bool {
    crate::crypt::is_sealed(bytes)
}

/// An encrypted store's data key, unlocked with the caller's key: opens
/// and seals the store's files.
pub struct Unlocked {
    crypt: std::sync::Arc<crate::crypt::Crypt>,
}

/// Unlocks the envelope at the start of `file` (a file of the store at
/// `snapshot`) with `key`.
///
/// # Errors
///
/// [`Error::WrongKey`], or [`Error::Corrupt`] for a damaged envelope.
pub fn unlock(key: &crate::Key, snapshot: &Path, file: &[u8]) -> Result<Unlocked> {
    Ok(Unlocked {
        crypt: std::sync::Arc::new(crate::crypt::Crypt::unlock(key, snapshot, file)?),
    })
}

impl Unlocked {
    /// The plaintext of a sealed snapshot (or history checkpoint).
    ///
    /// # Errors
    ///
    /// [`Error::Decrypt`] when it does not authenticate.
    pub fn open_snapshot(&self, path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
        self.crypt.open_snapshot(path, bytes)
    }

    /// The plaintext payload of the commit `record` of a sealed journal
    /// (or history file) `bytes`; `None` when it does not authenticate.
    pub fn open_record(&self, bytes: &[u8], record: &Record) -> Option<Vec<u8>> {
        let aad = crate::crypt::RecordAad {
            tag: Kind::Commit.binary_tag(),
            seq: record.seq,
            time_ms: record.time_ms.unwrap_or(0),
            fields: record.fields.as_deref().unwrap_or("*").as_bytes(),
        };
        self.crypt
            .open_record(aad, &bytes[record.payload_at..record.end])
    }

    /// `plain` sealed as a snapshot of this store.
    pub fn seal_snapshot(&self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.crypt.seal_snapshot(plain, &mut out);
        out
    }

    /// The plain value of field `name` of a server store, read as `value`
    /// (a sealed value); `None` when it does not open.
    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub fn open_value(&self, name: &str, value: &serde_json::Value) -> Option<serde_json::Value> {
        crate::server::open_value(&self.crypt, Path::new(""), "", name, value).ok()
    }
}

/// Unlocks a server store's envelope (`envelope`, base64, as the server
/// keeps it; `store` names the store in errors) with `key`.
///
/// # Errors
///
/// [`Error::WrongKey`], or [`Error::Corrupt`] for a damaged envelope.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub fn unlock_server(key: &crate::Key, store: &Path, envelope: &str) -> Result<Unlocked> {
    match crate::server::unlock(store, Some(envelope), Some(key), true)? {
        Some(crypt) => Ok(Unlocked {
            crypt: std::sync::Arc::new(crypt),
        }),
        None => Err(crate::crypt::damaged(store)),
    }
}

/// The store's lifetime lock, held exclusively as a program holds it.
pub struct StoreLock {
    _lock: LockFile,
}

/// Takes the store's lock as a program opening it would; fails at once
/// with [`Error::Locked`] naming the holder's mode when a program has it.
pub fn lock(snapshot: &Path) -> Result<StoreLock> {
    let lock = LockFile::acquire(
        &*RealFs::shared(),
        &sibling(snapshot, ".lock"),
        snapshot,
        false,
    )?;
    Ok(StoreLock { _lock: lock })
}

/// With the lock held: replaces the snapshot with `bytes` (the state after
/// the journal's last record, or an edit of it) the way compaction does —
/// intent, history (if the store keeps history files), rename, a new
/// journal — fully synced. The journal must belong to the current
/// snapshot and hold nothing after its last valid record. An encrypted
/// store's `bytes` are sealed already, and `sealing` writes its new journal.
pub fn replace_snapshot(
    _lock: &StoreLock,
    snapshot: &Path,
    format: Format,
    bytes: &[u8],
    sealing: Option<&Unlocked>,
) -> Result<()> {
    let vfs = RealFs::shared();
    let codec = match sealing {
        Some(unlocked) => {
            Codec::new(format, snapshot)?.sealed(std::sync::Arc::clone(&unlocked.crypt))
        }
        None => Codec::new(format, snapshot)?,
    };
    let path = journal_path(snapshot);
    let current = vfs.read(snapshot).context("read", snapshot)?;
    let journal = vfs.read(&path).context("read", &path)?;
    let Some(journal_bytes) = journal.filter(|j| !j.is_empty()) else {
        return crate::file::atomic::write_atomic(&vfs, snapshot, bytes, true);
    };
    let records = read_records(&journal_bytes);
    let Some(header) = records.header else {
        return Err(Error::corrupt(&path, "the journal header does not verify"));
    };
    if header.format != format {
        return Err(Error::corrupt(
            &path,
            format!("the journal is in {:?}, not {format:?}", header.format),
        ));
    }
    if Some(header.base) != current.as_deref().map(fingerprint) {
        return Err(Error::corrupt(
            &path,
            "the journal does not belong to the snapshot (a compaction or an edit was cut \
             short); open the store with its program once to settle it",
        ));
    }
    if records.valid_end != journal_bytes.len() {
        return Err(Error::corrupt(
            &path,
            "bytes follow the last valid record (a torn tail or damage); open the store with \
             its program, or run `persisted repair`, first",
        ));
    }
    let file = vfs
        .open_append(&path)
        .context("open for appending", &path)?;
    let mut journal = Journal::resume(
        &vfs,
        file,
        snapshot,
        codec,
        Durability::Sync,
        records.valid_end,
        records
            .records
            .first()
            .map_or(records.valid_end, |r| r.start),
        records.records.last().map_or(header.seq, |r| r.seq),
        header.base,
        header.version,
    );
    if !history_files(snapshot)?.is_empty() {
        // Keep the history going; the program prunes it by its policy.
        journal.keep_history(KeepHistory::Forever);
    }
    journal.compact_to(bytes).map(drop).map_err(|f| f.error)
}

/// With the lock held: copies every byte of `file` from `offset` on to a
/// new `<file>.dropped-<unix time>` beside it, durably, then cuts `file` at
/// `offset` and syncs it; returns the kept file.
pub fn set_aside_from(_lock: &StoreLock, file: &Path, offset: u64) -> Result<PathBuf> {
    let vfs = RealFs::shared();
    let bytes = vfs.read(file).context("read", file)?.unwrap_or_default();
    let from = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let kept = side_file(&*vfs, file, "dropped")?;
    let mut out = vfs.create_new(&kept, file).context("create", &kept)?;
    out.write_all(&bytes[from..]).context("write", &kept)?;
    out.sync_all().context("fsync", &kept)?;
    sync_dir(&*vfs, &parent_dir(file))?;
    let mut cut = vfs.open_append(file).context("open", file)?;
    cut.set_len(from as u64).context("truncate", file)?;
    cut.sync_all().context("fsync", file)?;
    Ok(kept)
}

/// With the lock held: moves `file` aside whole, to
/// `<file>.dropped-<unix time>`; returns where.
pub fn set_aside(_lock: &StoreLock, file: &Path) -> Result<PathBuf> {
    let vfs = RealFs::shared();
    let kept = side_file(&*vfs, file, "dropped")?;
    vfs.rename(file, &kept).context("set aside", file)?;
    sync_dir(&*vfs, &parent_dir(file))?;
    Ok(kept)
}

/// Checks a bincode snapshot's header, length and checksum (its payload
/// needs the type to decode).
pub fn check_bincode_snapshot(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::format::check_bincode_snapshot(path, bytes)
}
