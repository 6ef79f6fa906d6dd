//! Opening a journal: verify, replay, cut a torn tail, recognise a stale or
//! orphaned journal (the rules are in the parent module's documentation).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::{decode_frame, decode_header, decode_intent, Frame, Header, Kind};
use super::{journal_path, Journal};
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, sibling, sync_dir, unix_time};
use crate::file::vfs::Vfs;
use crate::format::Codec;
use crate::options::Durability;
use crate::report::{Recovery, RecoveryEvent};
use crate::schema::Persisted;

/// The valid records of a journal and what follows them.
struct Scan {
    frames: Vec<Frame>,
    /// Offset just past the last valid record.
    valid_end: usize,
    /// A valid frame exists somewhere in the bytes after `valid_end`.
    valid_frame_later: bool,
}

fn scan(codec: Codec, bytes: &[u8], header: Header, header_len: usize) -> Scan {
    let format = codec.format();
    let mut frames = Vec::new();
    let mut at = header_len;
    let mut seq = header.seq;
    while let Some(frame) = decode_frame(format, bytes, at) {
        if seq.checked_add(1) != Some(frame.seq) {
            break;
        }
        seq = frame.seq;
        at = frame.end;
        frames.push(frame);
    }
    let valid_frame_later =
        (at + 1..bytes.len()).any(|start| decode_frame(format, bytes, start).is_some());
    Scan {
        frames,
        valid_end: at,
        valid_frame_later,
    }
}

/// Opens the journal beside `snapshot_path`, applying its commits to `state`
/// when it belongs to the snapshot whose fingerprint is `snapshot_fp`.
pub(crate) fn open<T: Persisted>(
    vfs: &Arc<dyn Vfs>,
    snapshot_path: &Path,
    codec: Codec,
    durability: Durability,
    state: &mut T,
    snapshot_fp: u64,
    report: &mut Recovery,
) -> Result<Journal> {
    let path = journal_path(snapshot_path);
    let bytes = vfs.read(&path).context("read", &path)?.unwrap_or_default();
    if bytes.is_empty() {
        return Journal::create(vfs, snapshot_path, codec, durability, snapshot_fp, 0);
    }
    let Some((header, header_len)) = decode_header(&bytes) else {
        return Err(Error::corrupt(
            &path,
            "the journal header does not verify; move the file away to open the snapshot alone",
        ));
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
    let scan = scan(codec, &bytes, header, header_len);
    let last_seq = scan.frames.last().map_or(header.seq, |f| f.seq);
    let commits = scan
        .frames
        .iter()
        .filter(|f| f.kind == Kind::Commit)
        .count();

    if header.base == snapshot_fp {
        for frame in scan.frames.iter().filter(|f| f.kind == Kind::Commit) {
            replay(codec, &path, &bytes, frame, state)?;
            report.replayed += 1;
        }
        let mut file = vfs
            .open_append(&path)
            .context("open for appending", &path)?;
        if scan.valid_end < bytes.len() {
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
        );
        journal.make_entry_durable()?;
        return Ok(journal);
    }

    let compacted = scan.frames.iter().any(|f| {
        f.kind == Kind::Intent
            && decode_intent(codec.format(), &bytes[f.payload_at..f.end]) == Some(snapshot_fp)
    });
    if compacted {
        // The snapshot already holds every record: a compaction finished
        // but was cut short before the journal was reset.
        report.push(RecoveryEvent::StaleJournalReset {
            journal: path.clone(),
        });
    } else if commits == 0 && scan.valid_end == bytes.len() {
        report.push(RecoveryEvent::HandEditAdopted {
            path: snapshot_path.to_path_buf(),
        });
    } else {
        let kept = sibling(&path, &format!(".orphaned-{}", unix_time()));
        vfs.rename(&path, &kept)
            .context("set aside orphaned journal", &path)?;
        sync_dir(&**vfs, &parent_dir(&path))?;
        report.push(RecoveryEvent::JournalOrphaned {
            path: snapshot_path.to_path_buf(),
            commits: commits as u64,
            kept_at: kept,
        });
    }
    Journal::create(vfs, snapshot_path, codec, durability, snapshot_fp, last_seq)
}

fn replay<T: Persisted>(
    codec: Codec,
    path: &Path,
    bytes: &[u8],
    frame: &Frame,
    state: &mut T,
) -> Result<()> {
    let payload = &bytes[frame.payload_at..frame.end];
    codec.replay_payload(payload, state).map_err(|e| {
        if codec.is_text() {
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

/// Reports the bytes after the last valid record; when they hold a valid
/// record (more than a torn tail), first copies them aside.
fn keep_dropped_bytes(
    vfs: &dyn Vfs,
    path: &Path,
    bytes: &[u8],
    scan: &Scan,
    report: &mut Recovery,
) -> Result<()> {
    let dropped = &bytes[scan.valid_end..];
    if !scan.valid_frame_later {
        report.push(RecoveryEvent::TornTail {
            journal: path.to_path_buf(),
            offset: scan.valid_end as u64,
            bytes: dropped.len() as u64,
        });
        return Ok(());
    }
    let kept: PathBuf = sibling(path, &format!(".dropped-{}", unix_time()));
    let mut file = vfs.create_new(&kept, path).context("create", &kept)?;
    file.write_all(dropped).context("write", &kept)?;
    file.sync_all().context("fsync", &kept)?;
    sync_dir(vfs, &parent_dir(path))?;
    report.push(RecoveryEvent::DamageSetAside {
        journal: path.to_path_buf(),
        offset: scan.valid_end as u64,
        bytes: dropped.len() as u64,
        kept_at: kept,
    });
    Ok(())
}
