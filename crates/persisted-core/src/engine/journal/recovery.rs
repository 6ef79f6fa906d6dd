//! Opening a journal: verify, replay, cut a torn tail, recognise a stale or
//! orphaned journal (the rules are in the parent module's documentation).

use std::path::Path;
use std::sync::Arc;

use super::edits::{after_save_by_millisecond, BaseFields};
use super::frame::{
    commit_payload, decode_frame, decode_header, is_cut_header, Frame, Header, Kind, Layout,
};
use super::{compaction_reached_rename, journal_path, Journal};
use crate::checksum::fingerprint;
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, side_file, sync_dir, write_atomic, write_side_file};
use crate::file::vfs::Vfs;
use crate::format::{Codec, Extras};
use crate::options::Durability;
use crate::report::{Recovery, RecoveryEvent};
use crate::schema::Persisted;

/// The valid records of a journal and what follows them.
pub(super) struct Scan {
    pub(super) frames: Vec<Frame>,
    /// Offset just past the last valid record.
    pub(super) valid_end: usize,
    /// Valid records after `valid_end` that continue the sequence (a seq
    /// past the last valid one): damage, not a crash's torn tail.
    pub(super) continuing_later: usize,
    /// Valid records after `valid_end` that do not (stale copies of earlier
    /// records in reused blocks): part of a torn tail.
    pub(super) stale_later: bool,
}

/// Scans the records from `at` on, whose first must have seq `seq + 1`.
pub(super) fn scan_from(layout: Layout, bytes: &[u8], mut at: usize, mut seq: u64) -> Scan {
    // About one frame per 64 bytes of small records: no regrowth while
    // reading a long journal.
    let mut frames = Vec::with_capacity((bytes.len() - at.min(bytes.len())) / 64);
    while let Some(frame) = decode_frame(layout, bytes, at) {
        if seq.checked_add(1) != Some(frame.seq) {
            break;
        }
        seq = frame.seq;
        at = frame.end;
        frames.push(frame);
    }
    let (mut continuing_later, mut stale_later) = (0, false);
    for start in at + 1..bytes.len() {
        if let Some(frame) = decode_frame(layout, bytes, start) {
            if frame.seq > seq {
                continuing_later += 1;
            } else {
                stale_later = true;
            }
        }
    }
    Scan {
        frames,
        valid_end: at,
        continuing_later,
        stale_later,
    }
}

fn scan(bytes: &[u8], header: Header, header_len: usize) -> Scan {
    let layout = header.layout();
    scan_from(layout, bytes, header_len, header.seq)
}

/// Which records later ones make irrelevant: every field they touch is
/// replaced whole by a later record (version 2 frames list the fields a
/// record touches, `=` whole, `+` by an operation). Open skips those
/// without parsing their payload, so replaying a long journal of `set`s
/// costs little more than verifying it.
/// An encrypted journal's records are all opened, so that every tag is
/// checked: none is skipped unread.
pub(super) fn superseded(layout: Layout, bytes: &[u8], frames: &[Frame]) -> Vec<bool> {
    if layout.sealed {
        return vec![false; frames.len()];
    }
    // A handful of fields: a list searched in order beats hashing.
    let mut replaced_later: Vec<&[u8]> = Vec::new();
    let mut skip = vec![false; frames.len()];
    for (i, frame) in frames.iter().enumerate().rev() {
        let Some((start, end)) = frame.fields.filter(|_| frame.kind == Kind::Commit) else {
            continue;
        };
        let entries = bytes[start..end].split(|&b| b == b',');
        skip[i] = entries
            .clone()
            .all(|entry| entry.len() > 1 && replaced_later.contains(&&entry[1..]));
        for entry in entries {
            if entry.first() == Some(&b'=') && !replaced_later.contains(&&entry[1..]) {
                replaced_later.push(&entry[1..]);
            }
        }
    }
    skip
}

/// The error for damage followed by valid records, unless recovery was
/// opted into.
pub(super) fn damage_error(path: &Path, offset: usize, continuing: usize) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset: Some(offset as u64),
        reason: format!(
            "a damaged record is followed by {continuing} valid record(s) that continue the \
             journal, so replaying up to the damage would lose acknowledged commits; open with \
             `.recover(true)` to replay up to the damage and keep every byte after it in a \
             `.dropped-<time>` file beside the journal"
        ),
    }
}

/// A journal file read and its records verified: what [`open`] works
/// from. Reading and verifying a long journal can run on another thread
/// while the snapshot is parsed.
pub(crate) struct Prepared {
    bytes: Vec<u8>,
    /// The header, its length and the scan of the records after it; `None`
    /// when the header does not verify.
    scanned: Option<(Header, usize, Scan)>,
    /// Which of the scanned records later ones make irrelevant.
    skip: Vec<bool>,
}

/// Reads the journal beside `snapshot_path` and verifies its records.
pub(crate) fn prepare(vfs: &dyn Vfs, snapshot_path: &Path) -> Result<Prepared> {
    let path = journal_path(snapshot_path);
    let bytes = vfs.read(&path).context("read", &path)?.unwrap_or_default();
    let scanned = decode_header(&bytes).map(|(header, header_len)| {
        let scan = scan(&bytes, header, header_len);
        (header, header_len, scan)
    });
    let skip = scanned
        .as_ref()
        .map(|(header, _, scan)| superseded(header.layout(), &bytes, &scan.frames))
        .unwrap_or_default();
    Ok(Prepared {
        bytes,
        scanned,
        skip,
    })
}

/// Opens the journal beside `snapshot_path` (read and verified by
/// [`prepare`]), applying its commits to `state` when it belongs to the
/// snapshot whose fingerprint is `snapshot_fp`.
#[allow(clippy::too_many_arguments)] // each is one fact about the open
pub(crate) fn open<T: Persisted>(
    vfs: &Arc<dyn Vfs>,
    snapshot_path: &Path,
    codec: Codec,
    durability: Durability,
    state: &mut T,
    extras: &Extras,
    mut snapshot_fp: u64,
    recover: bool,
    report: &mut Recovery,
    prepared: Prepared,
) -> Result<Journal> {
    let path = journal_path(snapshot_path);
    let Prepared {
        bytes,
        scanned,
        skip,
    } = prepared;
    if bytes.is_empty() {
        return Journal::create(vfs, snapshot_path, codec, durability, snapshot_fp, 0);
    }
    let Some((header, header_len, scan)) = scanned else {
        if !is_cut_header(&bytes) {
            return Err(Error::corrupt(
                &path,
                "the journal header does not verify and records follow it; move the file away \
                 to open the snapshot alone",
            ));
        }
        // Cut inside its first line: no record can follow. The snapshot
        // alone is the state; the cut file is kept for a person to see.
        let kept = side_file(&**vfs, &path, "dropped")?;
        vfs.rename(&path, &kept).context("set aside", &path)?;
        sync_dir(&**vfs, &parent_dir(&path))?;
        report.push(RecoveryEvent::HeaderCut {
            journal: path.clone(),
            kept_at: kept,
        });
        return Journal::create(vfs, snapshot_path, codec, durability, snapshot_fp, 0);
    };
    if header.format != codec.format() {
        return Err(Error::corrupt(
            &path,
            format!(
                "the journal is in {:?} but the store is opened as {:?}",
                header.format,
                codec.format()
            ),
        ));
    }
    let last_seq = scan.frames.last().map_or(header.seq, |f| f.seq);
    let commits = scan
        .frames
        .iter()
        .filter(|f| f.kind == Kind::Commit)
        .count();

    let intents = scan.frames.iter().map(|f| f.intent(codec.format(), &bytes));
    let holds_more = commits > 0 || scan.valid_end < bytes.len();
    let pairing = pairing(&**vfs, &path, snapshot_fp, header.base, intents, holds_more)?;
    if pairing == Pairing::Applies {
        let mut base_fields = BaseFields::default();
        for (frame, skip) in scan.frames.iter().zip(skip) {
            if frame.kind == Kind::Commit {
                base_fields.note_frame(&codec, snapshot_path, state, frame, &bytes);
                if !skip {
                    replay(&codec, &path, &bytes, frame, state)?;
                }
                report.replayed += 1;
            }
        }
        let mut file = vfs
            .open_append(&path)
            .context("open for appending", &path)?;
        if scan.valid_end < bytes.len() {
            if scan.continuing_later > 0 && !recover {
                return Err(damage_error(&path, scan.valid_end, scan.continuing_later));
            }
            keep_dropped_bytes(&**vfs, &path, &bytes, &scan, report)?;
            // Cut the tail before appending, or every later commit would
            // sit behind it and be lost at the next open.
            file.set_len(scan.valid_end as u64)
                .context("truncate torn tail of", &path)?;
            file.sync_data().context("fdatasync", &path)?;
        }
        let journal = Journal::resume(
            vfs,
            file,
            snapshot_path,
            codec,
            durability,
            scan.valid_end,
            header_len,
            last_seq,
            header.base,
            header.version,
        )
        .with_base_fields(base_fields);
        journal.make_entry_durable()?;
        return Ok(journal);
    }

    if pairing == Pairing::Stale {
        // The snapshot already holds every record: a compaction finished
        // but was cut short before the journal was reset.
        report.push(RecoveryEvent::StaleJournalReset {
            journal: path.clone(),
        });
    } else if pairing == Pairing::Edited {
        report.push(RecoveryEvent::HandEditAdopted {
            path: snapshot_path.to_path_buf(),
        });
    } else {
        // Edited after the journal was written (a crash, or a person's
        // save while the program ran): the edit wins over the commits made
        // before the save, and those made after it are kept on top of it.
        let saved_ns = vfs
            .stat(snapshot_path)
            .context("stat", snapshot_path)?
            .map_or(0, |id| id.mtime_ns);
        let later: Vec<&Frame> = scan
            .frames
            .iter()
            .filter(|frame| after_save_by_millisecond(frame, saved_ns))
            .collect();
        let kept = if later.is_empty() {
            let kept = side_file(&**vfs, &path, "orphaned")?;
            vfs.rename(&path, &kept)
                .context("set aside orphaned journal", &path)?;
            sync_dir(&**vfs, &parent_dir(&path))?;
            kept
        } else {
            for frame in &later {
                replay(&codec, &path, &bytes, frame, state)?;
            }
            let mut merged = Vec::new();
            codec.encode_snapshot(snapshot_path, state, extras, &mut merged)?;
            // Kept before the snapshot changes: a crash in between finds
            // the journal still in place and does this again.
            let kept = write_side_file(&**vfs, &path, "orphaned", &bytes)?;
            write_atomic(vfs, snapshot_path, &merged, true)?;
            snapshot_fp = fingerprint(&merged);
            kept
        };
        report.push(RecoveryEvent::JournalOrphaned {
            path: snapshot_path.to_path_buf(),
            commits: commits as u64,
            kept_on_top: later.len() as u64,
            kept_at: kept,
        });
    }
    // An edit changed the state without a commit: its number marks the
    // change, so the history shows a gap there instead of an older state.
    let seq = match pairing {
        Pairing::Stale => last_seq,
        _ => last_seq.saturating_add(1),
    };
    Journal::create(vfs, snapshot_path, codec, durability, snapshot_fp, seq)
}

/// How a journal relates to the snapshot beside it: the rule open follows
/// (and the command-line tool, which reads the files without the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// The journal's records apply to the snapshot.
    Applies,
    /// A compaction finished but was cut short before the journal was
    /// reset: the snapshot holds every record; open resets the journal.
    Stale,
    /// The snapshot was changed (by hand) after the journal was written,
    /// and the journal holds nothing more: open adopts the edit.
    Edited,
    /// The snapshot was changed after the journal was written, and the
    /// journal holds commits: the edit wins; open sets the journal aside
    /// as `*.orphaned-*`, never replaying it.
    Orphaned,
}

/// Pairs the journal at `journal` with the snapshot of fingerprint
/// `snapshot_fp`: `base` is its header's, `intents` the fingerprints its
/// intent records name, `holds_more` whether it holds commits (or bytes
/// past its records). A compaction's intent record is not synced, so when
/// none names the snapshot, a new journal's temp file that does (synced
/// before the compaction's rename) proves the journal stale.
pub(crate) fn pairing(
    vfs: &dyn Vfs,
    journal: &Path,
    snapshot_fp: u64,
    base: u64,
    mut intents: impl Iterator<Item = Option<u64>>,
    holds_more: bool,
) -> Result<Pairing> {
    Ok(if base == snapshot_fp {
        Pairing::Applies
    } else if intents.any(|fp| fp == Some(snapshot_fp))
        || compaction_reached_rename(vfs, journal, snapshot_fp)?
    {
        Pairing::Stale
    } else if holds_more {
        Pairing::Orphaned
    } else {
        Pairing::Edited
    })
}

pub(super) fn replay<T: Persisted>(
    codec: &Codec,
    path: &Path,
    bytes: &[u8],
    frame: &Frame,
    state: &mut T,
) -> Result<()> {
    let payload = opened(codec, path, bytes, frame)?;
    codec.replay_payload(&payload, state).map_err(|e| {
        if codec.is_text() && codec.crypt().is_none() {
            let first_line = 1 + bytes[..frame.payload_at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            Error::Parse {
                path: path.to_path_buf(),
                line: if e.line == 0 {
                    first_line
                } else {
                    first_line + e.line - 1
                },
                column: e.column,
                message: format!("record {}: {}", frame.seq, e.message),
            }
        } else {
            Error::corrupt(
                path,
                format!("record {} does not decode: {}", frame.seq, e.message),
            )
        }
    })
}

/// The plaintext payload of commit `frame`: in an encrypted store's
/// journal, opened; one whose checksum is good but whose tag is not is
/// [`Error::Decrypt`], never taken for a torn tail.
pub(super) fn opened<'a>(
    codec: &Codec,
    path: &Path,
    bytes: &'a [u8],
    frame: &Frame,
) -> Result<std::borrow::Cow<'a, [u8]>> {
    commit_payload(codec.crypt(), bytes, frame).ok_or_else(|| Error::Decrypt {
        path: path.to_path_buf(),
        offset: frame.payload_at as u64,
    })
}

/// Reports the bytes after the last valid record; when they hold a valid
/// record (damage set aside, or stale copies), first copies them aside.
fn keep_dropped_bytes(
    vfs: &dyn Vfs,
    path: &Path,
    bytes: &[u8],
    scan: &Scan,
    report: &mut Recovery,
) -> Result<()> {
    let dropped = &bytes[scan.valid_end..];
    let kept = if scan.continuing_later > 0 || scan.stale_later {
        Some(write_side_file(vfs, path, "dropped", dropped)?)
    } else {
        None
    };
    report.push(match kept {
        Some(kept_at) if scan.continuing_later > 0 => RecoveryEvent::DamageSetAside {
            journal: path.to_path_buf(),
            offset: scan.valid_end as u64,
            bytes: dropped.len() as u64,
            kept_at,
        },
        kept_at => RecoveryEvent::TornTail {
            journal: path.to_path_buf(),
            offset: scan.valid_end as u64,
            bytes: dropped.len() as u64,
            kept_at,
        },
    });
    Ok(())
}
