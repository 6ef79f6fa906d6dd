//! The history files: the records compaction folds, kept beside the store
//! (layout in the parent module's documentation), and reading them back.
//!
//! A *segment* is a pair of files: `<file>.history-<S>.snapshot`, the state
//! at sequence number `S` (a snapshot, as the store writes its own), and
//! `<file>.history-<S>`, a journal whose header names that checkpoint and
//! whose records continue from `S`. Compaction appends the journal it folds
//! to the newest segment, starts a new segment when the policy says the
//! newest is full, and removes the oldest ones once the policy keeps none
//! of their commits. A segment is never rewritten.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::{
    decode_header, encode_frame, encode_header, Frame, Header, Kind, Layout, Meta, VERSION,
};
use super::recovery::{replay, scan_from, superseded};
use super::{journal_path, now_ms};
use crate::checksum::fingerprint;
use crate::crypt::{RecordAad, ENVELOPE};
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, sibling, side_file, sync_dir, write_atomic};
use crate::file::vfs::Vfs;
use crate::format::Codec;
use crate::history::{point_as_of, Commit, Dated, KeepHistory, NoPoint, Point, Span};
use crate::options::Format;
use crate::schema::Persisted;

/// A `Forever` segment grows to about this size before the next one starts.
const FOREVER_SEGMENT: u64 = 64 << 20;

/// `<file>.history-<seq>`: the records after checkpoint `seq`.
fn records_path(snapshot: &Path, seq: u64) -> PathBuf {
    sibling(snapshot, &format!(".history-{seq}"))
}

/// `<file>.history-<seq>.snapshot`: the state at `seq`.
fn checkpoint_path(snapshot: &Path, seq: u64) -> PathBuf {
    sibling(snapshot, &format!(".history-{seq}.snapshot"))
}

/// The checkpoint sequence numbers of the segments beside `snapshot`,
/// oldest first.
fn segments(vfs: &dyn Vfs, snapshot: &Path) -> Result<Vec<u64>> {
    let dir = parent_dir(snapshot);
    let mut prefix: OsString = snapshot.file_name().unwrap_or_default().to_os_string();
    prefix.push(".history-");
    let prefix = prefix.to_string_lossy().into_owned();
    let mut seqs: Vec<u64> = vfs
        .list_dir(&dir)
        .context("list", &dir)?
        .iter()
        .filter_map(|name| {
            let digits = name.to_str()?.strip_prefix(&prefix)?;
            let canonical = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            canonical.then(|| digits.parse().ok()).flatten()
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The segments beside `snapshot`, oldest first: sequence number, records
/// file, checkpoint file.
pub(crate) fn files(vfs: &dyn Vfs, snapshot: &Path) -> Result<Vec<(u64, PathBuf, PathBuf)>> {
    Ok(segments(vfs, snapshot)?
        .into_iter()
        .map(|seq| {
            (
                seq,
                records_path(snapshot, seq),
                checkpoint_path(snapshot, seq),
            )
        })
        .collect())
}

/// One journal-framed file of records and where the state they apply to
/// is: a segment, or the store's own journal and snapshot.
struct Run {
    records: PathBuf,
    checkpoint: PathBuf,
    /// The fingerprint of the checkpoint the records apply to.
    base: u64,
    /// The sequence number of the checkpoint.
    from: u64,
    bytes: Vec<u8>,
    layout: Layout,
    header_len: usize,
    frames: Vec<Frame>,
    /// Offset just past the last valid record.
    valid_end: usize,
    /// Valid records after damage: the run cannot be trusted past it.
    damaged: bool,
}

impl Run {
    fn read(
        vfs: &dyn Vfs,
        records: PathBuf,
        checkpoint: PathBuf,
        format: Format,
    ) -> Result<Option<Run>> {
        let Some(bytes) = vfs.read(&records).context("read", &records)? else {
            return Ok(None);
        };
        let Some((header, header_len)) = decode_header(&bytes) else {
            return Err(Error::corrupt(&records, "the header does not verify"));
        };
        if header.format != format {
            return Err(Error::corrupt(
                &records,
                format!("it holds {:?} records, not {format:?}", header.format),
            ));
        }
        let layout = header.layout();
        let scan = scan_from(layout, &bytes, header_len, header.seq);
        Ok(Some(Run {
            records,
            checkpoint,
            base: header.base,
            from: header.seq,
            layout,
            header_len,
            frames: scan.frames,
            valid_end: scan.valid_end,
            damaged: scan.continuing_later > 0,
            bytes,
        }))
    }

    /// The sequence number of the last valid record.
    fn last(&self) -> u64 {
        self.frames.last().map_or(self.from, |f| f.seq)
    }

    fn commits(&self) -> impl Iterator<Item = (usize, &Frame)> {
        self.frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == Kind::Commit)
    }

    /// The error for reading a run whose records are damaged.
    fn damage(&self) -> Error {
        Error::Corrupt {
            path: self.records.clone(),
            offset: Some(self.valid_end as u64),
            reason: "a damaged record in the history, so the history after it cannot be \
                     read; move the file away to read the rest"
                .into(),
        }
    }
}

/// What [`keep`] is given of the compaction it runs inside.
pub(crate) struct Folding<'a> {
    pub(crate) vfs: &'a Arc<dyn Vfs>,
    pub(crate) snapshot_path: &'a Path,
    pub(crate) codec: &'a Codec,
    pub(crate) policy: KeepHistory,
    /// The fingerprint of the snapshot the folded journal applies to.
    pub(crate) base: u64,
    /// The snapshot the compaction is about to write, and the sequence
    /// number it is at (the journal's intent record, already durable).
    pub(crate) new_snapshot: &'a [u8],
    pub(crate) new_seq: u64,
}

/// Appends every record of the journal being folded that the history does
/// not hold yet to the newest segment (starting a segment when there is
/// none, or when the history stops short of the journal), durably; then
/// starts a new segment if the policy says so and removes the segments it
/// no longer needs. Runs after the compaction's intent is durable and
/// before the new snapshot is renamed into place, so a crash at any point
/// leaves every record in the journal or the history (or both, and the
/// next compaction appends only what the history lacks).
pub(crate) fn keep(fold: &Folding<'_>) -> Result<()> {
    let vfs = &**fold.vfs;
    let format = fold.codec.format();
    let journal_path = journal_path(fold.snapshot_path);
    let Some(journal) = Run::read(vfs, journal_path, fold.snapshot_path.into(), format)? else {
        return Ok(());
    };
    let seqs = segments(vfs, fold.snapshot_path)?;
    let newest = match seqs.last() {
        Some(&seq) => Run::read(
            vfs,
            records_path(fold.snapshot_path, seq),
            checkpoint_path(fold.snapshot_path, seq),
            format,
        )?,
        None => None,
    };
    let newest = match newest {
        Some(run) if run.damaged => {
            log::warn!(
                "history file `{}` is damaged at offset {}; a new one starts here",
                run.records.display(),
                run.valid_end
            );
            None
        }
        // The history reaches the journal: append what it lacks.
        Some(run) if run.last() >= journal.from => Some(run),
        // It stops short (history was off meanwhile): a new segment.
        _ => None,
    };
    let mut out = Vec::new();
    let layout = Layout {
        format,
        version: VERSION,
        sealed: fold.codec.crypt().is_some(),
    };
    let segment = match newest {
        Some(run) => {
            let copied = copy_records(&journal, run.last(), run.layout, &mut out);
            append(vfs, &run, &out)?;
            Segment::of(&run, copied)
        }
        None => {
            // A segment that starts where the journal does: its checkpoint
            // is the snapshot the journal applies to, still in place.
            let old = vfs
                .read(fold.snapshot_path)
                .context("read", fold.snapshot_path)?
                .unwrap_or_default();
            if fingerprint(&old) == fold.base {
                let copied = copy_records(&journal, journal.from, layout, &mut out);
                start(fold, &old, journal.from, &out, copied)?
            } else {
                log::warn!(
                    "the commits folded into `{}` are not kept in its history: its snapshot \
                     is not the one they apply to",
                    fold.snapshot_path.display()
                );
                start_at_new_snapshot(fold)?
            }
        }
    };
    if segment.is_full(fold.policy, now_ms()) && segment.from != fold.new_seq {
        start_at_new_snapshot(fold)?;
    }
    prune(fold)
}

/// What [`keep`] needs to know of the newest segment to decide whether a
/// new one starts.
struct Segment {
    from: u64,
    len: u64,
    commits: u64,
    first_time: Option<u64>,
}

impl Segment {
    /// The newest segment `run` after `copied` was appended to it.
    fn of(run: &Run, copied: Copied) -> Segment {
        Segment {
            from: run.from,
            len: (run.valid_end + copied.bytes) as u64,
            commits: run.commits().count() as u64 + copied.commits,
            first_time: run
                .commits()
                .next()
                .and_then(|(_, f)| f.time_ms)
                .or(copied.first_time),
        }
    }

    fn is_full(&self, policy: KeepHistory, now_ms: u64) -> bool {
        match policy {
            KeepHistory::None => false,
            KeepHistory::Last(n) => self.commits >= n.max(1),
            KeepHistory::For(age) => self.first_time.is_some_and(|t| {
                now_ms.saturating_sub(t) > u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
            }),
            KeepHistory::Forever => self.len >= FOREVER_SEGMENT,
        }
    }
}

/// What [`copy_records`] copied.
#[derive(Default)]
struct Copied {
    bytes: usize,
    commits: u64,
    first_time: Option<u64>,
}

/// Appends to `out` the records of `run` after sequence number `after`,
/// framed for `layout` (copied as they are when the layouts agree; records
/// of a version 1 journal carry no time and get time 0).
fn copy_records(run: &Run, after: u64, layout: Layout, out: &mut Vec<u8>) -> Copied {
    let mut copied = Copied::default();
    let before = out.len();
    let mut frame_start = run.header_len;
    for frame in &run.frames {
        let start = std::mem::replace(&mut frame_start, frame.end);
        if frame.seq <= after {
            continue;
        }
        if frame.kind == Kind::Commit {
            copied.commits += 1;
            copied.first_time = copied.first_time.or(Some(frame.time_ms.unwrap_or(0)));
        }
        if run.layout == layout {
            out.extend_from_slice(&run.bytes[start..frame.end]);
            continue;
        }
        let fields = match (frame.kind, frame.fields) {
            (Kind::Intent, _) => &b"-"[..],
            (Kind::Commit, Some((s, e))) => &run.bytes[s..e],
            (Kind::Commit, None) => &b"*"[..],
        };
        let meta = Meta {
            time_ms: frame.time_ms.unwrap_or(0),
            fields,
        };
        let payload = &run.bytes[frame.payload_at..frame.end];
        encode_frame(layout, frame.kind, frame.seq, meta, payload, out);
    }
    copied.bytes = out.len() - before;
    copied
}

/// Appends `records` to the segment `run`, first cutting a torn tail a
/// crash left (the records in it are still in the journal), and syncs.
fn append(vfs: &dyn Vfs, run: &Run, records: &[u8]) -> Result<()> {
    let path = &run.records;
    let torn = run.valid_end < run.bytes.len();
    if records.is_empty() && !torn {
        return Ok(());
    }
    let mut file = vfs.open_append(path).context("open for appending", path)?;
    if torn {
        file.set_len(run.valid_end as u64)
            .context("truncate torn tail of", path)?;
    }
    file.write_all(records).context("append records to", path)?;
    file.sync_data().context("fdatasync", path)
}

/// Starts a segment at `seq` with checkpoint `state` followed by
/// `records`, each file written whole and renamed into place.
fn start(
    fold: &Folding<'_>,
    state: &[u8],
    seq: u64,
    records: &[u8],
    copied: Copied,
) -> Result<Segment> {
    let path = records_path(fold.snapshot_path, seq);
    if fold.vfs.stat(&path).context("stat", &path)?.is_some() {
        // A damaged segment starting at the same place: kept for a person.
        let aside = side_file(&**fold.vfs, &path, "damaged")?;
        fold.vfs.rename(&path, &aside).context("set aside", &path)?;
    }
    let checkpoint = checkpoint_path(fold.snapshot_path, seq);
    write_atomic(fold.vfs, &checkpoint, state, true)?;
    let envelope = fold.codec.crypt().map(|crypt| crypt.envelope());
    let mut bytes = encode_header(
        Header {
            format: fold.codec.format(),
            version: VERSION,
            base: fingerprint(state),
            seq,
            sealed: envelope.is_some(),
        },
        envelope.as_deref(),
    );
    bytes.extend_from_slice(records);
    write_atomic(
        fold.vfs,
        &records_path(fold.snapshot_path, seq),
        &bytes,
        true,
    )?;
    Ok(Segment {
        from: seq,
        len: bytes.len() as u64,
        commits: copied.commits,
        first_time: copied.first_time,
    })
}

/// Starts an empty segment whose checkpoint is the snapshot the compaction
/// writes, at the compaction's sequence number.
fn start_at_new_snapshot(fold: &Folding<'_>) -> Result<Segment> {
    start(
        fold,
        fold.new_snapshot,
        fold.new_seq,
        &[],
        Copied::default(),
    )
}

/// Removes the segments, oldest first, none of whose commits the policy
/// keeps any longer (the next segment's checkpoint covers what follows).
fn prune(fold: &Folding<'_>) -> Result<()> {
    let vfs = &**fold.vfs;
    let seqs = segments(vfs, fold.snapshot_path)?;
    if seqs.len() < 2 {
        return Ok(());
    }
    if fold.policy == KeepHistory::Forever {
        return Ok(());
    }
    let mut per_segment = Vec::new();
    let mut times = Vec::new();
    for &seq in &seqs {
        let run = Run::read(
            vfs,
            records_path(fold.snapshot_path, seq),
            checkpoint_path(fold.snapshot_path, seq),
            fold.codec.format(),
        )?;
        let before = times.len();
        if let Some(run) = run {
            if run.damaged {
                // Left for a person to look at, and so is all after it.
                break;
            }
            times.extend(run.commits().map(|(_, f)| f.time_ms.unwrap_or(0)));
        }
        per_segment.push(times.len() - before);
    }
    let expired = fold.policy.expired(&times, now_ms());
    let mut passed = 0;
    let mut removed = false;
    // Never the newest: it is where the next compaction appends.
    for (&seq, &count) in seqs.iter().zip(&per_segment).take(seqs.len() - 1) {
        passed += count;
        if passed > expired {
            break;
        }
        let records = records_path(fold.snapshot_path, seq);
        vfs.remove(&records).context("remove", &records)?;
        let checkpoint = checkpoint_path(fold.snapshot_path, seq);
        vfs.remove(&checkpoint).context("remove", &checkpoint)?;
        removed = true;
    }
    if removed {
        sync_dir(vfs, &parent_dir(fold.snapshot_path))?;
    }
    Ok(())
}

/// A store's history as read from its files: the segments the policy
/// reads, then the store's own journal.
pub(crate) struct History {
    runs: Vec<Run>,
    /// Every commit, oldest first, once each, with where it is.
    commits: Vec<(Commit, usize, usize)>,
    /// How many of `commits` the policy no longer keeps.
    expired: usize,
    snapshot_path: PathBuf,
}

impl History {
    /// Reads the history files (none with `KeepHistory::None`) and the
    /// journal beside `snapshot_path`.
    pub(crate) fn read(
        vfs: &dyn Vfs,
        snapshot_path: &Path,
        codec: &Codec,
        policy: KeepHistory,
    ) -> Result<History> {
        let format = codec.format();
        let mut runs = Vec::new();
        if policy != KeepHistory::None {
            for seq in segments(vfs, snapshot_path)? {
                let records = records_path(snapshot_path, seq);
                let checkpoint = checkpoint_path(snapshot_path, seq);
                runs.extend(Run::read(vfs, records, checkpoint, format)?);
            }
        }
        let segment_runs = runs.len();
        let journal = journal_path(snapshot_path);
        runs.extend(Run::read(vfs, journal, snapshot_path.into(), format)?);
        let mut commits = Vec::new();
        let mut last = None;
        for (r, run) in runs.iter().enumerate() {
            // Bytes after a history file's last valid record are what a
            // compaction cut short left, whose records the next file (the
            // journal) still holds; if it does not, they are damage.
            let covered = runs.get(r + 1).is_some_and(|next| next.from <= run.last());
            let torn = run.valid_end < run.bytes.len() && r < segment_runs && !covered;
            if run.damaged || torn {
                return Err(run.damage());
            }
            for (i, frame) in run.commits() {
                if last.is_some_and(|last| frame.seq <= last) {
                    // The journal may still hold what the history holds (a
                    // compaction cut short); two history files never do.
                    if r < segment_runs {
                        return Err(Error::corrupt(
                            &run.records,
                            format!("commit {} is kept twice", frame.seq),
                        ));
                    }
                    continue;
                }
                last = Some(frame.seq);
                let fields = frame
                    .fields
                    .map(|(s, e)| field_names(&run.bytes[s..e]))
                    .unwrap_or_default();
                let commit = Commit::new(frame.seq, frame.time_ms.unwrap_or(0), fields);
                commits.push((commit, r, i));
            }
        }
        let times: Vec<u64> = commits
            .iter()
            .map(|&(_, r, i)| runs[r].frames[i].time_ms.unwrap_or(0))
            .collect();
        let expired = policy.expired(&times, now_ms());
        Ok(History {
            runs,
            commits,
            expired,
            snapshot_path: snapshot_path.to_path_buf(),
        })
    }

    /// The kept commits, oldest first.
    pub(crate) fn commits(&self) -> Vec<Commit> {
        self.kept().iter().map(|(c, _, _)| c.clone()).collect()
    }

    fn kept(&self) -> &[(Commit, usize, usize)] {
        &self.commits[self.expired..]
    }

    /// The state as of `time_ms`: right after the last kept commit made at
    /// or before it, or, past a gap in the history, the checkpoint after
    /// the gap; never an older state (see [`point_as_of`]).
    pub(crate) fn state_as_of<T: Persisted>(
        &self,
        vfs: &dyn Vfs,
        codec: &Codec,
        time_ms: u64,
    ) -> Result<T> {
        let mut spans = Vec::with_capacity(self.runs.len());
        for run in &self.runs {
            let checkpoint_ms = vfs
                .stat(&run.checkpoint)
                .context("stat", &run.checkpoint)?
                .map_or(u64::MAX, |id| {
                    u64::try_from(id.mtime_ns.div_euclid(1_000_000)).unwrap_or(0)
                });
            spans.push(Span {
                from: run.from,
                last: run.last(),
                checkpoint_ms,
            });
        }
        let dated: Vec<Dated> = self
            .commits
            .iter()
            .map(|&(ref c, r, i)| Dated {
                seq: c.seq,
                time_ms: self.runs[r].frames[i].time_ms.unwrap_or(0),
                span: r,
            })
            .collect();
        match point_as_of(&spans, &dated, self.expired, time_ms) {
            Ok(Point::Commit(i)) => self.state_at(vfs, codec, self.commits[i].0.seq),
            Ok(Point::Checkpoint(r)) => self.replay(vfs, codec, &self.runs[r], None),
            Err(NoPoint::TooOld) => Err(self.not_kept(format!(
                "no kept commit was made at or before {time_ms} ms after the Unix epoch"
            ))),
            Err(NoPoint::InGap { after, until }) => Err(self.not_kept(format!(
                "{time_ms} ms after the Unix epoch falls in a gap of the history: the commits \
                 after {after} up to {until} were folded while history was not kept, so their \
                 times are unknown"
            ))),
        }
    }

    /// The state right after commit `seq`.
    pub(crate) fn state_at<T: Persisted>(
        &self,
        vfs: &dyn Vfs,
        codec: &Codec,
        seq: u64,
    ) -> Result<T> {
        let Some((_, r, i)) = self.kept().iter().find(|(c, _, _)| c.seq == seq) else {
            return Err(self.not_kept(format!("commit {seq} is not kept")));
        };
        self.replay(vfs, codec, &self.runs[*r], Some(*i))
    }

    /// The checkpoint of `run` with its records up to the `upto`-th
    /// applied (none with `None`).
    fn replay<T: Persisted>(
        &self,
        vfs: &dyn Vfs,
        codec: &Codec,
        run: &Run,
        upto: Option<usize>,
    ) -> Result<T> {
        let bytes = vfs
            .read(&run.checkpoint)
            .context("read", &run.checkpoint)?
            .unwrap_or_default();
        if fingerprint(&bytes) != run.base {
            return Err(Error::corrupt(
                &run.checkpoint,
                "it is not the state the records beside it apply to (changed since they were \
                 written)",
            ));
        }
        let (mut state, _) = codec.decode_snapshot::<T>(&run.checkpoint, &bytes)?;
        let frames = upto.map_or(&[][..], |i| &run.frames[..=i]);
        for (frame, skip) in frames
            .iter()
            .zip(superseded(run.layout, &run.bytes, frames))
        {
            if frame.kind == Kind::Commit && !skip {
                replay(codec, &run.records, &run.bytes, frame, &mut state)?;
            }
        }
        Ok(state)
    }

    fn not_kept(&self, what: String) -> Error {
        let kept = self.kept();
        let holds = match (kept.first(), kept.last()) {
            (Some(first), Some(last)) => {
                format!(
                    "the history holds commits {} to {}",
                    first.0.seq, last.0.seq
                )
            }
            _ => "the history holds no commit".to_string(),
        };
        Error::NotInHistory {
            path: self.snapshot_path.clone(),
            reason: format!("{what}; {holds} (see `OpenOptions::keep_history`)"),
        }
    }
}

/// The names in a fields list (`=a,+b,+a` -> `a`, `b`), each once.
fn field_names(list: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for entry in list.split(|&b| b == b',') {
        let name = String::from_utf8_lossy(entry.get(1..).unwrap_or_default()).into_owned();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// `.encrypt_existing(true)`: rewrites every history file of the store at
/// `snapshot_path`, written by `plain`, sealed by `sealed`: each checkpoint
/// sealed whole, each commit's payload sealed for its frame, the frames
/// rewritten binary after the envelope.
pub(crate) fn seal_history(
    vfs: &Arc<dyn Vfs>,
    snapshot_path: &Path,
    plain: &Codec,
    sealed: &Codec,
) -> Result<()> {
    let Some(crypt) = sealed.crypt() else {
        return Ok(());
    };
    let envelope = crypt.envelope();
    for (_, records, checkpoint) in files(&**vfs, snapshot_path)? {
        let Some(run) = Run::read(&**vfs, records.clone(), checkpoint.clone(), plain.format())?
        else {
            continue;
        };
        let old = vfs
            .read(&checkpoint)
            .context("read", &checkpoint)?
            .unwrap_or_default();
        let mut new_checkpoint = Vec::new();
        crypt.seal_snapshot(&old, &mut new_checkpoint);
        let layout = Layout {
            format: plain.format(),
            version: VERSION,
            sealed: true,
        };
        let mut out = encode_header(
            Header {
                format: plain.format(),
                version: VERSION,
                base: fingerprint(&new_checkpoint),
                seq: run.from,
                sealed: true,
            },
            Some(&envelope),
        );
        for frame in &run.frames {
            let time_ms = frame.time_ms.unwrap_or(0);
            let fields = frame.fields_bytes(&run.bytes);
            let payload = &run.bytes[frame.payload_at..frame.end];
            let mut sealed_payload = Vec::new();
            let payload = match frame.kind {
                Kind::Commit => {
                    let aad = RecordAad {
                        tag: frame.kind.binary_tag(),
                        seq: frame.seq,
                        time_ms,
                        fields,
                    };
                    crypt.seal_record(aad, payload, &mut sealed_payload);
                    &sealed_payload[..]
                }
                Kind::Intent => payload,
            };
            let meta = Meta { time_ms, fields };
            encode_frame(layout, frame.kind, frame.seq, meta, payload, &mut out);
        }
        write_atomic(vfs, &checkpoint, &new_checkpoint, true)?;
        write_atomic(vfs, &records, &out, true)?;
    }
    Ok(())
}

/// `Store::rekey`: every history file of the store at `snapshot_path`
/// starts with `codec`'s envelope (its data key wrapped by the new key);
/// nothing else changes but the records' header, which names the
/// checkpoint's new fingerprint.
pub(crate) fn rewrap_history(
    vfs: &Arc<dyn Vfs>,
    snapshot_path: &Path,
    codec: &Codec,
) -> Result<()> {
    let Some(crypt) = codec.crypt() else {
        return Ok(());
    };
    let envelope = crypt.envelope();
    for (_, records, checkpoint) in files(&**vfs, snapshot_path)? {
        let old = vfs
            .read(&checkpoint)
            .context("read", &checkpoint)?
            .unwrap_or_default();
        let Some(sealed) = old.get(ENVELOPE..) else {
            return Err(Error::corrupt(&checkpoint, "it is shorter than its header"));
        };
        let mut new_checkpoint = envelope.clone();
        new_checkpoint.extend_from_slice(sealed);
        let bytes = vfs
            .read(&records)
            .context("read", &records)?
            .unwrap_or_default();
        let Some((header, header_len)) = decode_header(&bytes) else {
            return Err(Error::corrupt(&records, "the header does not verify"));
        };
        let mut out = encode_header(
            Header {
                base: fingerprint(&new_checkpoint),
                ..header
            },
            Some(&envelope),
        );
        out.extend_from_slice(&bytes[header_len..]);
        write_atomic(vfs, &checkpoint, &new_checkpoint, true)?;
        write_atomic(vfs, &records, &out, true)?;
    }
    Ok(())
}
