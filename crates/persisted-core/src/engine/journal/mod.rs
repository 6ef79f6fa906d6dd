#![doc = include_str!("FORMAT.md")]

mod edits;
mod follow;
mod frame;
pub(crate) mod group;
mod history;
mod recovery;
pub(crate) mod tool;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use follow::View;
pub(crate) use history::{rewrap_history, seal_history, History};
pub(crate) use recovery::{open, prepare};

pub(crate) use self::edits::now_ns;
use self::edits::{BaseFields, EditClock};
use self::frame::{
    decode_header, encode_frame, encode_header, encode_intent, Header, Kind, Layout, Meta,
    MAX_FIELDS, MAX_RECORD, VERSION,
};
use super::Failure;
use crate::change::{Changes, Payload};
use crate::checksum::fingerprint;
use crate::crypt::RecordAad;
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{leftovers, parent_dir, sibling, sync_dir, TempFile};
use crate::file::vfs::{FileId, Vfs, VfsFile};
use crate::format::{Codec, Extras};
use crate::history::KeepHistory;
use crate::options::Durability;
use crate::schema::Persisted;

/// The journal's path for a snapshot path.
pub(crate) fn journal_path(snapshot: &Path) -> PathBuf {
    sibling(snapshot, ".journal")
}

/// An open journal, positioned for appending.
pub(crate) struct Journal {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    snapshot_path: PathBuf,
    file: Box<dyn VfsFile>,
    codec: Codec,
    durability: Durability,
    /// Bytes in the file.
    len: u64,
    header_len: u64,
    /// The last sequence number in the file (the header's when empty).
    seq: u64,
    /// The fingerprint of the snapshot the header names.
    base: u64,
    /// The format version of this journal file (new ones: 2).
    version: u8,
    /// Reused buffer: the fields list of the record being written.
    fields: Vec<u8>,
    /// The fingerprint an intent record names, while that intent is the
    /// last record read: a compaction may be replacing the files.
    sealed: Option<u64>,
    /// The snapshot file as this handle last read or wrote it, to notice
    /// an edit by hand.
    snapshot_id: Option<FileId>,
    /// Reused buffers: the payload, sealed in an encrypted store, then the
    /// whole record.
    payload: Vec<u8>,
    sealing: Vec<u8>,
    record: Vec<u8>,
    /// Which folded records compaction keeps in the history files.
    history: KeepHistory,
    /// When this handle's commits were made relative to its last look at
    /// the snapshot: which of them came after a person's save.
    clock: EditClock,
    /// What the fields the records change held in the base snapshot: which
    /// of them a person's save left alone.
    base_fields: BaseFields,
}

impl Journal {
    /// Replaces the journal file with one holding only a header for `base`
    /// at `seq`, durably, and opens it for appending.
    pub(crate) fn create(
        vfs: &Arc<dyn Vfs>,
        snapshot_path: &Path,
        codec: Codec,
        durability: Durability,
        base: u64,
        seq: u64,
    ) -> Result<Journal> {
        let fresh = Fresh::write(vfs, snapshot_path, &codec.clone(), base, seq)?;
        Journal::install(vfs, fresh, snapshot_path, codec, durability)
    }

    /// Renames `fresh` over the journal, durably, and opens it for
    /// appending.
    fn install(
        vfs: &Arc<dyn Vfs>,
        fresh: Fresh,
        snapshot_path: &Path,
        codec: Codec,
        durability: Durability,
    ) -> Result<Journal> {
        let path = journal_path(snapshot_path);
        fresh.temp.rename_over(&path, true)?;
        let file = vfs
            .open_append(&path)
            .context("open for appending", &path)?;
        Ok(Journal::resume(
            vfs,
            file,
            snapshot_path,
            codec,
            durability,
            fresh.len,
            fresh.len,
            fresh.seq,
            fresh.base,
            VERSION,
        ))
    }

    /// Takes over an existing, verified journal file of `len` bytes whose
    /// last record has sequence number `seq`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resume(
        vfs: &Arc<dyn Vfs>,
        file: Box<dyn VfsFile>,
        snapshot_path: &Path,
        codec: Codec,
        durability: Durability,
        len: usize,
        header_len: usize,
        seq: u64,
        base: u64,
        version: u8,
    ) -> Journal {
        Journal {
            vfs: Arc::clone(vfs),
            path: journal_path(snapshot_path),
            snapshot_path: snapshot_path.to_path_buf(),
            file,
            codec,
            durability,
            len: len as u64,
            header_len: header_len as u64,
            seq,
            base,
            version,
            fields: Vec::new(),
            sealed: None,
            snapshot_id: None,
            payload: Vec::new(),
            sealing: Vec::new(),
            record: Vec::new(),
            history: KeepHistory::None,
            clock: EditClock::default(),
            base_fields: BaseFields::default(),
        }
    }

    /// With `Durability::Sync`, makes sure the directory entries of the
    /// journal and the snapshot are durable before commits are synced into
    /// them: a file found in place (a process that renamed it may have died
    /// before its directory fsync) could otherwise vanish in a power cut
    /// with every commit synced into it.
    pub(crate) fn make_entry_durable(&self) -> Result<()> {
        if self.durability == Durability::Sync {
            crate::file::atomic::sync_dir(
                &*self.vfs,
                &crate::file::atomic::parent_dir(&self.path),
            )?;
        }
        Ok(())
    }

    /// Makes compaction keep the records it folds as `policy` says.
    pub(crate) fn keep_history(&mut self, policy: KeepHistory) {
        self.history = policy;
    }

    /// Bytes in the journal file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// True when the journal holds records beyond its header.
    pub(crate) fn has_records(&self) -> bool {
        self.len > self.header_len
    }

    /// Before a commit of `changes`, made on `state` (`applied`: the state
    /// already holds them, a batch): notes what the fields they change held
    /// in the base snapshot.
    pub(crate) fn note_base<T: Persisted>(
        &mut self,
        state: &T,
        changes: &dyn Changes,
        applied: bool,
    ) {
        if applied {
            let count = T::__FIELDS.len();
            changes.each(&mut |_, index, _| self.base_fields.unknown(index, count));
        } else {
            self.base_fields
                .note_changes(&self.codec, &self.snapshot_path, state, changes);
        }
    }

    /// Takes over what open learnt of the base snapshot's fields.
    pub(crate) fn with_base_fields(mut self, base_fields: BaseFields) -> Journal {
        self.base_fields = base_fields;
        self
    }

    /// Appends one commit record holding `changes` with one `write(2)`,
    /// and with `sync`, `fdatasync`s it; returns the record's length.
    pub(crate) fn append_commit(
        &mut self,
        fields: &'static [crate::schema::FieldSpec],
        changes: &dyn Changes,
        sync: bool,
    ) -> Result<u64, Failure> {
        self.payload.clear();
        self.codec
            .encode_payload(&self.path, &Payload { fields, changes }, &mut self.payload)
            .map_err(Failure::clean)?;
        fields_list(fields, changes, &mut self.fields);
        self.append(Kind::Commit, sync)
    }

    /// How this journal's frames are laid out.
    pub(crate) fn layout(&self) -> Layout {
        Layout {
            format: self.codec.format(),
            version: self.version,
            sealed: self.codec.crypt().is_some(),
        }
    }

    /// The durability the journal was opened with.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// A second handle on the journal file, for syncing without the writer
    /// lock (group commit).
    /// The last sequence number in the journal.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The snapshot and the journal, as a watch looks at them.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        vec![self.snapshot_path.clone(), self.path.clone()]
    }

    pub(crate) fn sync_handle(&self) -> Result<Box<dyn VfsFile>> {
        self.file
            .try_clone()
            .context("open a sync handle on", &self.path)
    }

    /// Appends the record in `self.payload` with one write.
    fn append(&mut self, kind: Kind, sync: bool) -> Result<u64, Failure> {
        if self.payload.len() > MAX_RECORD {
            return Err(Failure::clean(Error::encode(
                &self.path,
                format!("a record of {} bytes is too large", self.payload.len()),
            )));
        }
        let Some(seq) = self.seq.checked_add(1) else {
            // Only a crafted journal gets here: sequence numbers are u64.
            return Err(Failure::clean(Error::corrupt(
                &self.path,
                "sequence numbers exhausted; move the journal away",
            )));
        };
        self.record.clear();
        if kind == Kind::Intent {
            self.fields.clear();
            self.fields.push(b'-');
        }
        let now = self.vfs.now_ns();
        let meta = Meta {
            time_ms: u64::try_from(now / 1_000_000).unwrap_or(0),
            fields: &self.fields,
        };
        let payload = match (kind, self.codec.crypt()) {
            (Kind::Commit, Some(crypt)) => {
                self.sealing.clear();
                let aad = RecordAad {
                    tag: kind.binary_tag(),
                    seq,
                    time_ms: meta.time_ms,
                    fields: meta.fields,
                };
                crypt.seal_record(aad, &self.payload, &mut self.sealing);
                &self.sealing
            }
            _ => &self.payload,
        };
        encode_frame(self.layout(), kind, seq, meta, payload, &mut self.record);
        if let Err(e) = self.file.write_all(&self.record) {
            let error = Error::io("append a record to", &self.path, e);
            // Cut a partial record off, or later commits would sit behind it.
            return Err(match self.file.set_len(self.len) {
                Ok(()) => Failure::clean(error),
                Err(_) => Failure::poison(error),
            });
        }
        self.len += self.record.len() as u64;
        self.seq = seq;
        if kind == Kind::Commit {
            self.clock.appended(seq, now);
        }
        if sync {
            self.file
                .sync_data()
                .context("fdatasync", &self.path)
                .map_err(Failure::poison)?;
        }
        Ok(self.record.len() as u64)
    }

    /// Folds the journal into a new snapshot of `state`; returns the new
    /// snapshot's size. Always fully synced.
    pub(crate) fn compact<T: Persisted>(
        &mut self,
        state: &T,
        extras: &Extras,
    ) -> Result<u64, Failure> {
        let mut bytes = Vec::new();
        self.codec
            .encode_snapshot(&self.snapshot_path, state, extras, &mut bytes)
            .map_err(Failure::clean)?;
        self.compact_to(&bytes)
    }

    /// Folds the journal into the snapshot `bytes` (the state after its
    /// last record); returns their length. Always fully synced.
    ///
    /// The intent record tells the processes reading this journal that the
    /// files are being replaced (and a process crash leaves it for the next
    /// writer). Without history it is not synced: after a power cut, the
    /// proof that the compaction reached its rename is the new journal's
    /// temp file, synced with its directory entry before the rename and
    /// naming the new snapshot. So the records in this journal, which the
    /// new snapshot holds, are not flushed only to be deleted. With history
    /// it is synced, and every record with it, before the history files
    /// (synced) get copies of them: the history never holds a commit that a
    /// power cut took from the journal.
    fn compact_to(&mut self, bytes: &[u8]) -> Result<u64, Failure> {
        let new_base = fingerprint(bytes);
        let temp = TempFile::write(&self.vfs, &self.snapshot_path, bytes, true)
            .map_err(Failure::classify)?;
        self.payload = encode_intent(self.codec.format(), new_base);
        self.append(Kind::Intent, self.history != KeepHistory::None)?;
        if self.history != KeepHistory::None {
            // Before the rename: a failure here leaves the old snapshot and
            // this journal in place, the intent void (commits go on after
            // it), and the new snapshot's temp file removed.
            history::keep(&history::Folding {
                vfs: &self.vfs,
                snapshot_path: &self.snapshot_path,
                codec: &self.codec,
                policy: self.history,
                base: self.base,
                new_snapshot: bytes,
                new_seq: self.seq,
            })
            .map_err(Failure::clean)?;
        }
        let fresh = Fresh::write(
            &self.vfs,
            &self.snapshot_path,
            &self.codec.clone(),
            new_base,
            self.seq,
        )
        .map_err(Failure::classify)?;
        sync_dir(&*self.vfs, &parent_dir(&self.path)).map_err(Failure::classify)?;
        // From the rename on, a stale journal beside the new snapshot is
        // recognised by the intent or the new journal's temp file; any
        // failure poisons, as commits appended after the intent would be
        // dropped as stale.
        if let Err(e) = temp.rename_over(&self.snapshot_path, true) {
            // The rename may have happened: the new journal stays as its
            // proof (the next open removes it either way).
            fresh.temp.keep();
            return Err(Failure::poison(e));
        }
        let mut fresh = Journal::install(
            &self.vfs,
            fresh,
            &self.snapshot_path,
            self.codec.clone(),
            self.durability,
        )
        .map_err(Failure::poison)?;
        fresh.note_snapshot().map_err(Failure::poison)?;
        fresh.history = self.history;
        *self = fresh;
        Ok(bytes.len() as u64)
    }
}

/// A journal holding only its header, written to a temp file beside the
/// journal and fsynced, not yet renamed into place.
struct Fresh {
    temp: TempFile,
    len: usize,
    base: u64,
    seq: u64,
}

impl Fresh {
    fn write(
        vfs: &Arc<dyn Vfs>,
        snapshot_path: &Path,
        codec: &Codec,
        base: u64,
        seq: u64,
    ) -> Result<Fresh> {
        let envelope = codec.crypt().map(|crypt| crypt.envelope());
        let header = encode_header(
            Header {
                format: codec.format(),
                version: VERSION,
                base,
                seq,
                sealed: envelope.is_some(),
            },
            envelope.as_deref(),
        );
        let temp = TempFile::write(vfs, &journal_path(snapshot_path), &header, true)?;
        Ok(Fresh {
            temp,
            len: header.len(),
            base,
            seq,
        })
    }
}

/// The sequence number the snapshot a journal's `bytes` name is at.
pub(crate) fn header_seq(bytes: &[u8]) -> Option<u64> {
    decode_header(bytes).map(|(header, _)| header.seq)
}

/// Whether a journal temp file a compaction left beside `journal` (see
/// [`Journal::compact_to`]) names the snapshot of fingerprint
/// `snapshot_fp`: that compaction reached its rename, so the journal is
/// stale even without its intent record (lost in a power cut).
pub(crate) fn compaction_reached_rename(
    vfs: &dyn Vfs,
    journal: &Path,
    snapshot_fp: u64,
) -> Result<bool> {
    for temp in leftovers(vfs, journal)? {
        let bytes = vfs.read(&temp).context("read", &temp)?.unwrap_or_default();
        if decode_header(&bytes).is_some_and(|(header, _)| header.base == snapshot_fp) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The wall clock in milliseconds since the Unix epoch (0 if the clock is
/// before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes the fields list of a commit into `out`: `=name` for a field
/// replaced whole, `+name` for an operation, comma-separated, each once;
/// `*` when a name could not be read back from the list (a space, a comma,
/// a control character) or the list would be too long.
fn fields_list(fields: &[crate::schema::FieldSpec], changes: &dyn Changes, out: &mut Vec<u8>) {
    out.clear();
    let mut plain = true;
    changes.each(&mut |op, index, _| {
        let name = fields.get(index).map_or("", |f| f.name);
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == b',' || b == 0x7f) {
            plain = false;
        }
        let mark = if op == crate::collection::Op::Set {
            b'='
        } else {
            b'+'
        };
        let already = out
            .split(|&b| b == b',')
            .any(|e| e.first() == Some(&mark) && &e[1..] == name.as_bytes());
        if !already {
            if !out.is_empty() {
                out.push(b',');
            }
            out.push(mark);
            out.extend_from_slice(name.as_bytes());
        }
    });
    if !plain || out.is_empty() || out.len() > MAX_FIELDS {
        out.clear();
        out.push(b'*');
    }
}
