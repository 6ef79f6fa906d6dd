//! Following the files while other processes write them (shared mode and
//! read-only opens): applying the records they append, reloading after
//! their compactions, finishing or voiding a compaction a dead process left
//! half done, and adopting a snapshot a person edited.
//!
//! A process that does not hold the writer lock only reads: it applies the
//! records that verify and stops at the first that does not (a peer may be
//! writing it right now). The holder of the writer lock is the only one
//! that cuts a torn tail, finishes or voids an intent, or adopts an edit:
//! no one else can be writing then.
//!
//! Compaction never rewrites a journal in place: it appends an intent (the
//! *seal*) to the old journal, renames the new snapshot over the old one
//! and a new journal over the old journal. A process that reads the seal
//! through its open descriptor compares the journal path's inode with its
//! own; once they differ it reloads both files from their paths and pairs
//! them by the fingerprint the new journal's header names.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use super::edits::frame_fields;
use super::edits::FieldsOf;
use super::frame::{decode_frame, decode_header, encode_intent, Frame, Kind, VERSION};
use super::recovery::{damage_error, opened, pairing, replay, scan_from, superseded, Pairing};
use super::{journal_path, Journal};
use crate::change::Payload;
use crate::checksum::fingerprint;
use crate::engine::Failure;
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, remove_leftovers, side_file, sync_dir, write_side_file};
use crate::file::vfs::{read_with_id, FileId, Vfs, VfsFile};
use crate::format::{Codec, Extras};
use crate::history::KeepHistory;
use crate::notify::{replace_noting, Notes, Origin};
use crate::options::Durability;
use crate::report::RecoveryEvent;
use crate::schema::Persisted;

/// How often a reload retries when the snapshot and the journal it read do
/// not pair (a compaction ran between the two reads).
const RELOAD_TRIES: u32 = 50;

/// The state and the unknown snapshot keys a catch-up may replace.
pub(crate) struct View<'a, T> {
    pub(crate) state: &'a RwLock<T>,
    pub(crate) extras: &'a mut Extras,
    /// The snapshot's size, for the compaction threshold.
    pub(crate) snapshot_len: &'a mut u64,
    /// `.recover(true)`: damage followed by valid records is set aside
    /// instead of being an error.
    pub(crate) recover: bool,
    /// What catching up changed, for subscribers.
    pub(crate) notes: &'a mut Notes,
    /// Where a reloaded file came from (another process, a person).
    pub(crate) outside: Origin,
}

/// A snapshot read through one descriptor, with the identity of exactly
/// the file read.
struct SnapshotRead {
    bytes: Vec<u8>,
    id: FileId,
}

fn read_snapshot(vfs: &dyn Vfs, path: &Path) -> Result<Option<SnapshotRead>> {
    Ok(read_with_id(vfs, path)?.map(|(bytes, id)| SnapshotRead { bytes, id }))
}

impl Journal {
    /// A handle on the journal `file`, not read yet (see [`Journal::pair`]).
    fn unread(
        vfs: &Arc<dyn Vfs>,
        snapshot_path: &Path,
        file: Box<dyn VfsFile>,
        codec: Codec,
        durability: Durability,
    ) -> Journal {
        Journal::resume(
            vfs,
            file,
            snapshot_path,
            codec,
            durability,
            0,
            0,
            0,
            0,
            VERSION,
        )
    }

    /// Opens the journal beside `snapshot_path` to follow it without ever
    /// writing (`.read_only(true)`): the state is the snapshot with the
    /// journal's valid records applied, under the same pairing rules as a
    /// writer's open, but nothing is cut, renamed or created. `None` when
    /// there is no journal (a store of the snapshot engine).
    pub(crate) fn open_read_only<T: Persisted>(
        vfs: &Arc<dyn Vfs>,
        snapshot_path: &Path,
        codec: Codec,
    ) -> Result<Option<(Journal, T, Extras, u64)>> {
        for _ in 0..RELOAD_TRIES {
            let Some(snapshot) = read_snapshot(&**vfs, snapshot_path)? else {
                return Err(Error::io(
                    "open read-only",
                    snapshot_path,
                    std::io::ErrorKind::NotFound.into(),
                ));
            };
            let path = journal_path(snapshot_path);
            let Some(file) = vfs.open_read(&path).context("open", &path)? else {
                return Ok(None);
            };
            let unread =
                Journal::unread(vfs, snapshot_path, file, codec.clone(), Durability::Flush);
            if let Some(opened) = unread.pair(snapshot)? {
                return Ok(Some(opened));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Err(Error::corrupt(
            snapshot_path,
            "the snapshot and its journal do not belong together (edited by hand while a \
             program had them open?); open it for writing to adopt the snapshot",
        ))
    }

    /// Catches up with what other processes did since this handle last
    /// looked: the records they appended, their compactions and, with
    /// `locked` (this process holds the writer lock), a torn tail a dead
    /// writer left (cut), an intent a dead compactor left (finished or
    /// voided) and a snapshot edited by hand (adopted). Returns whether the
    /// state changed.
    pub(crate) fn catch_up<T: Persisted>(
        &mut self,
        view: &mut View<'_, T>,
        locked: bool,
    ) -> Result<bool, Failure> {
        let mut changed = self.read_appended(view.state, locked, view.recover, view.notes)?;
        if let Some(sealed) = self.sealed {
            let ours = self.file.id().context("fstat", &self.path)?;
            let now = self.vfs.stat(&self.path).context("stat", &self.path)?;
            if now.is_none_or(|now| !now.same_file(&ours)) {
                // A compaction (or an adopted edit) replaced the files.
                return Ok(self.reload(view, locked)? || changed);
            }
            if locked {
                changed |= self.resolve_intent(sealed, view)?;
            }
        }
        if locked {
            changed |= self.adopt_edit_if_any(view)?;
        }
        Ok(changed)
    }

    /// Applies the valid records appended since `self.len`.
    fn read_appended<T: Persisted>(
        &mut self,
        state: &RwLock<T>,
        locked: bool,
        recover: bool,
        notes: &mut Notes,
    ) -> Result<bool> {
        let now = self.file.id().context("fstat", &self.path)?;
        if now.len <= self.len {
            return Ok(false);
        }
        let mut bytes = Vec::new();
        self.file
            .read_from(self.len, &mut bytes)
            .context("read", &self.path)?;
        let format = self.codec.format();
        let scan = scan_from(self.layout(), &bytes, 0, self.seq);
        if locked && scan.continuing_later > 0 && !recover {
            // Nobody else is writing: valid records after invalid bytes are
            // acknowledged commits behind damage, not a record in progress.
            return Err(damage_error(
                &self.path,
                self.len as usize + scan.valid_end,
                scan.continuing_later,
            ));
        }
        let (frames, at) = (scan.frames, scan.valid_end);
        let seq = frames.last().map_or(self.seq, |f| f.seq);
        let changed = frames.iter().any(|f| f.kind == Kind::Commit);
        if changed {
            let mut state = state.write();
            for frame in frames.iter().filter(|f| f.kind == Kind::Commit) {
                self.base_fields.note_frame(
                    &self.codec,
                    &self.snapshot_path,
                    &*state,
                    frame,
                    &bytes,
                );
                self.apply(&bytes, frame, &mut *state)?;
                notes.note(Origin::OtherProcess, frame_fields::<T>(frame, &bytes), 1);
            }
        }
        if let Some(last) = frames.last() {
            self.sealed = last.intent(format, &bytes);
        }
        self.len += at as u64;
        self.seq = seq;
        if at < bytes.len() && locked {
            // Nobody else writes while this process holds the lock: the
            // bytes are what a writer killed mid-record left. Cut them
            // before appending, or every later record would sit behind
            // them. Copy them aside first if a valid record follows.
            if scan.continuing_later > 0 || scan.stale_later {
                write_side_file(&*self.vfs, &self.path, "dropped", &bytes[at..])?;
            }
            log::warn!(
                "`{}`: cut {} bytes a writer left unfinished at offset {}",
                self.path.display(),
                bytes.len() - at,
                self.len
            );
            self.file
                .set_len(self.len)
                .context("truncate torn tail of", &self.path)?;
            self.file.sync_data().context("fdatasync", &self.path)?;
        }
        Ok(changed)
    }

    fn apply<T: Persisted>(&self, bytes: &[u8], frame: &Frame, state: &mut T) -> Result<()> {
        let payload = opened(&self.codec, &self.path, bytes, frame)?;
        self.codec
            .replay_payload(&payload, state)
            .map_err(|e| Error::Parse {
                path: self.path.clone(),
                line: 0,
                column: 0,
                message: format!(
                    "record {} (appended by another process): {}",
                    frame.seq, e.message
                ),
            })
    }

    /// The files changed under this handle: reads the snapshot and the
    /// journal from their paths and takes the pair over.
    fn reload<T: Persisted>(
        &mut self,
        view: &mut View<'_, T>,
        locked: bool,
    ) -> Result<bool, Failure> {
        for _ in 0..RELOAD_TRIES {
            let Some(snapshot) = read_snapshot(&*self.vfs, &self.snapshot_path)? else {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            };
            let file = match self.file_for(&self.path)? {
                Some(file) => file,
                None => {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
            };
            let next = Journal::unread(
                &self.vfs,
                &self.snapshot_path,
                file,
                self.codec.clone(),
                self.durability,
            );
            match next.pair::<T>(snapshot)? {
                Some((journal, state, extras, len)) => {
                    journal.make_entry_durable()?;
                    let mut journal = journal;
                    journal.history = self.history;
                    *self = journal;
                    replace_noting(
                        view.state,
                        state,
                        view.notes,
                        Origin::OtherProcess,
                        &self.codec,
                        &self.snapshot_path,
                    );
                    *view.extras = extras;
                    *view.snapshot_len = len;
                    return Ok(true);
                }
                None => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        if locked {
            // With the lock held no compaction can be racing: the snapshot
            // was edited by hand.
            return self.adopt_edit_if_any(view);
        }
        Ok(false)
    }

    /// A journal file for this handle: read and append for a writer, read
    /// only for a read-only follower.
    fn file_for(&self, path: &Path) -> Result<Option<Box<dyn VfsFile>>> {
        match self.vfs.open_append(path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            // A read-only follower may not be allowed to write the file.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                self.vfs.open_read(path).context("open", path)
            }
            Err(e) => Err(Error::io("open", path, e)),
        }
    }

    /// Takes `self.file` (an unread journal) with `snapshot` as the state:
    /// the journal's records replayed when its header names the snapshot,
    /// none when an intent in it does (a compaction's rename happened and
    /// its new journal is not in place yet). `None` when they do not pair.
    fn pair<T: Persisted>(
        mut self,
        snapshot: SnapshotRead,
    ) -> Result<Option<(Journal, T, Extras, u64)>> {
        let mut bytes = Vec::new();
        self.file
            .read_from(0, &mut bytes)
            .context("read", &self.path)?;
        let Some((header, header_len)) = decode_header(&bytes) else {
            // Journals are created whole (temp file, rename), so a header
            // that does not verify is damage, not a race.
            return Err(Error::corrupt(
                &self.path,
                "the journal header does not verify; move the file away to open the snapshot alone",
            ));
        };
        let format = self.codec.format();
        self.version = header.version;
        let layout = self.layout();
        let mut frames = Vec::new();
        let mut at = header_len;
        let mut seq = header.seq;
        while let Some(frame) = decode_frame(layout, &bytes, at) {
            if seq.checked_add(1) != Some(frame.seq) {
                break;
            }
            seq = frame.seq;
            at = frame.end;
            frames.push(frame);
        }
        let fp = fingerprint(&snapshot.bytes);
        let intent_of = |f: &Frame| f.intent(format, &bytes);
        let intents = frames.iter().map(intent_of);
        // Whether it holds more does not matter: a follower never settles
        // a mismatch, the next writer does.
        let replay = match pairing(&*self.vfs, &self.path, fp, header.base, intents, false)? {
            Pairing::Applies => true,
            Pairing::Stale => false,
            Pairing::Edited | Pairing::Orphaned => return Ok(None),
        };
        let (mut state, extras) = self
            .codec
            .decode_snapshot::<T>(&self.snapshot_path, &snapshot.bytes)?;
        if let Some(crypt) = self.codec.crypt() {
            crypt.adopt(&snapshot.bytes);
        }
        if replay {
            let skip = superseded(layout, &bytes, &frames);
            for (frame, skip) in frames.iter().zip(skip) {
                if frame.kind == Kind::Commit && !skip {
                    self.apply(&bytes, frame, &mut state)?;
                }
            }
        }
        self.len = at as u64;
        self.header_len = header_len as u64;
        self.seq = seq;
        self.base = header.base;
        self.sealed = frames.last().and_then(intent_of);
        if !replay {
            // The journal is stale until the compactor (or the next lock
            // holder) puts the new one in place: keep watching its path.
            self.sealed = Some(fp);
        }
        self.snapshot_id = Some(snapshot.id);
        self.clock.unchanged(self.seq, self.vfs.now_ns());
        let len = snapshot.bytes.len() as u64;
        Ok(Some((self, state, extras, len)))
    }

    /// With the writer lock held, the last record is an intent in a
    /// journal still at its path: its compactor died. Finishes the
    /// compaction if its rename happened, else voids the intent (records
    /// appended after it void it).
    fn resolve_intent<T: Persisted>(
        &mut self,
        intent: u64,
        view: &mut View<'_, T>,
    ) -> Result<bool> {
        let Some(snapshot) = read_snapshot(&*self.vfs, &self.snapshot_path)? else {
            return Ok(false);
        };
        let fp = fingerprint(&snapshot.bytes);
        if fp == intent {
            log::info!(
                "`{}`: finishing a compaction another process left half done",
                self.path.display()
            );
            self.restart(fp, snapshot.id)?;
            // The dead compactor's new journal, if it got as far.
            remove_leftovers(&*self.vfs, &self.path)?;
            // The state already is the snapshot's: every record before the
            // intent was applied.
            *view.snapshot_len = snapshot.bytes.len() as u64;
            return Ok(false);
        }
        if fp == self.base {
            log::info!(
                "`{}`: voiding a compaction another process left before its rename",
                self.path.display()
            );
            self.sealed = None;
            remove_leftovers(&*self.vfs, &self.path)?;
            return Ok(false);
        }
        // Neither: edited by hand, which the caller checks next.
        Ok(false)
    }

    /// With the writer lock held: when the snapshot is no longer the file
    /// this handle read or wrote, and its content is not the base either,
    /// a person edited it. The edit wins over the commits made before the
    /// save; every commit made after it is kept on top of it (see
    /// `edits`). The journal is kept aside as `*.orphaned-<time>` and
    /// replaced by one based on the edit (sealed first, so other processes
    /// reload); when commits came after the save, the snapshot is first
    /// rewritten as the edit with them applied, by a compaction. An edit
    /// that does not parse is an error and changes nothing.
    pub(crate) fn adopt_edit_if_any<T: Persisted>(
        &mut self,
        view: &mut View<'_, T>,
    ) -> Result<bool, Failure> {
        let now = self
            .vfs
            .stat(&self.snapshot_path)
            .context("stat", &self.snapshot_path)?;
        if now.is_some() && now == self.snapshot_id {
            self.clock.unchanged(self.seq, self.vfs.now_ns());
            return Ok(false);
        }
        let Some(snapshot) = read_snapshot(&*self.vfs, &self.snapshot_path)? else {
            // Between an editor's rename steps: looked at again later.
            return Ok(false);
        };
        let fp = fingerprint(&snapshot.bytes);
        if fp == self.base || Some(fp) == self.sealed {
            self.snapshot_id = Some(snapshot.id);
            self.clock.unchanged(self.seq, self.vfs.now_ns());
            return Ok(false);
        }
        let (mut state, extras) = self
            .codec
            .decode_snapshot::<T>(&self.snapshot_path, &snapshot.bytes)?;
        RecoveryEvent::warn_unknown_keys(&self.snapshot_path, &extras);
        let (journal, later) = self.commits_after_save(snapshot.id.mtime_ns)?;
        // The fields the save left as the base had them keep the commits'
        // values (the person never saw those: they were in the journal).
        let left = self
            .base_fields
            .left_by(&self.codec, &self.snapshot_path, &state)?;
        let kept = if later.is_empty() && left.is_empty() {
            self.payload = encode_intent(self.codec.format(), fp);
            self.append(Kind::Intent, true)?;
            let kept = side_file(&*self.vfs, &self.path, "orphaned")?;
            self.vfs
                .rename(&self.path, &kept)
                .context("set aside the journal of", &self.path)?;
            sync_dir(&*self.vfs, &parent_dir(&self.path))?;
            self.restart(fp, snapshot.id)?;
            *view.snapshot_len = snapshot.bytes.len() as u64;
            kept
        } else {
            for frame in &later {
                replay(&self.codec, &self.path, &journal, frame, &mut state)?;
            }
            if !left.is_empty() {
                let mut payload = Vec::new();
                let memory = view.state.read();
                let changes = FieldsOf(&*memory, &left);
                self.codec.encode_payload(
                    &self.path,
                    &Payload {
                        fields: T::__FIELDS,
                        changes: &changes,
                    },
                    &mut payload,
                )?;
                drop(memory);
                self.codec
                    .replay_payload(&payload, &mut state)
                    .map_err(|e| Error::encode(&self.snapshot_path, e.message))?;
            }
            let mut merged = Vec::new();
            self.codec
                .encode_snapshot(&self.snapshot_path, &state, &extras, &mut merged)?;
            let kept = write_side_file(&*self.vfs, &self.path, "orphaned", &journal)?;
            // The records before the save are not the history of the edit.
            let history = std::mem::replace(&mut self.history, KeepHistory::None);
            let compacted = self.compact_to(&merged);
            self.history = history;
            *view.snapshot_len = compacted?;
            kept
        };
        let names = |fields: &[usize]| {
            fields
                .iter()
                .map(|&i| format!("`{}`", T::__FIELDS[i].name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        log::warn!(
            "`{}` was edited while the store was open: the edit wins over the commits made \
             before it was saved{}{}; the journal it replaces is kept as `{}`",
            self.snapshot_path.display(),
            match left.len() {
                0 => String::new(),
                _ => format!(
                    " (the fields the save left as they were keep the commits' values: {})",
                    names(&left)
                ),
            },
            match later.len() {
                0 => String::new(),
                n => format!(", and the {n} commit(s) made after it are kept on top of it"),
            },
            kept.display()
        );
        replace_noting(
            view.state,
            state,
            view.notes,
            Origin::FileEdit,
            &self.codec,
            &self.snapshot_path,
        );
        *view.extras = extras;
        Ok(true)
    }

    /// The journal's bytes, and the commits in it made after a save whose
    /// file time is `saved_ns`.
    fn commits_after_save(&mut self, saved_ns: i128) -> Result<(Vec<u8>, Vec<Frame>)> {
        let mut bytes = Vec::new();
        self.file
            .read_from(0, &mut bytes)
            .context("read", &self.path)?;
        let Some((header, header_len)) = decode_header(&bytes) else {
            return Ok((bytes, Vec::new()));
        };
        let scan = scan_from(self.layout(), &bytes, header_len, header.seq);
        let later = scan
            .frames
            .into_iter()
            .filter(|frame| self.clock.after_save(frame, saved_ns))
            .collect();
        Ok((bytes, later))
    }

    /// Whether a commit should first look for an edit of the snapshot (see
    /// `edits`); `burst`: another commit of this process was in progress
    /// when it came.
    pub(crate) fn edit_check_due(&self, burst: bool) -> bool {
        self.clock.due(self.vfs.now_ns(), burst)
    }

    /// Continues in a new journal (a new file, renamed into place) based on
    /// the snapshot whose fingerprint is `base`, read as file `snapshot`.
    fn restart(&mut self, base: u64, snapshot: FileId) -> Result<()> {
        let mut fresh = Journal::create(
            &self.vfs,
            &self.snapshot_path,
            self.codec.clone(),
            self.durability,
            base,
            self.seq,
        )?;
        fresh.snapshot_id = Some(snapshot);
        fresh.clock.unchanged(fresh.seq, fresh.vfs.now_ns());
        fresh.history = self.history;
        *self = fresh;
        Ok(())
    }

    /// Records the snapshot file as this handle last saw it.
    pub(crate) fn note_snapshot(&mut self) -> Result<()> {
        self.snapshot_id = self
            .vfs
            .stat(&self.snapshot_path)
            .context("stat", &self.snapshot_path)?;
        self.clock.unchanged(self.seq, self.vfs.now_ns());
        Ok(())
    }
}
