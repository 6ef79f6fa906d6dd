//! The journal engine and its on-disk format.
//!
//! A store `state.yaml` has three files: the snapshot `state.yaml` (a plain,
//! pretty document a person can edit while no program has it open), the
//! journal `state.yaml.journal` (the commits since the snapshot was
//! written) and the lock `state.yaml.lock`.
//!
//! # Journal layout, text formats (JSON, YAML, TOML)
//!
//! ```text
//! # persisted-journal v1 yaml base=8f3a5c0e9b1d2f47 seq=41 crc=5be0c2a1
//! --- # @42 24 1c9e04ab
//! set last_id: 42
//! push processed: item-42
//! --- # !43 44 0d6c11f2
//! # compaction fingerprint=77aa01c3e5d0b2f9
//! ```
//!
//! * The **header** line names the format, `base` (the xxh3-64 fingerprint,
//!   in hex, of the exact snapshot bytes the records apply to) and `seq`
//!   (the sequence number the snapshot is at). Its `crc` is the CRC32C of
//!   the text before ` crc=`, masked (see below).
//! * Each **record** is a frame line then a payload. The frame line is
//!   `<tag><seq> <len> <crc>` (after `--- # ` for YAML, so the journal is a
//!   valid YAML stream of documents): tag `@` is a commit, `!` a compaction
//!   intent; `seq` is decimal and is exactly one more than the previous
//!   record's (the first is the header's `seq + 1`); `len` is the exact
//!   number of payload bytes including the payload's final `\n`; `crc` is
//!   8 hex digits of CRC32C over `tag ‖ seq (u64 LE) ‖ len (u32 LE) ‖
//!   payload`, XORed with `0xA5C35A3C` so all-zero bytes never verify.
//! * A **commit payload** is one map (a JSON line for JSON and TOML, a YAML
//!   block) whose keys are `"<op> <field>"` and whose values are the
//!   operation's argument: `set <field>` (the field's new value), `push`,
//!   `extend`, `pop`, `clear` (sequences), `insert` (`[key, value]` for maps,
//!   the element for sets), `remove` (the key or element).
//!   A commit records only the fields it changed.
//! * An **intent payload** is `# compaction fingerprint=<hex>\n`.
//!
//! ## TOML
//!
//! A TOML store's snapshot is TOML, but its journal is laid out exactly as
//! a JSON store's, frames and payloads alike; only the header names
//! `toml`. Each commit payload is one compact JSON line, because a TOML
//! document cannot hold one key twice and a commit's map may (a
//! transaction that pushes twice to a field holds `"push <field>"` twice):
//!
//! ```text
//! # persisted-journal v1 toml base=3089cfbebf50a864 seq=0 crc=0599acca
//! @1 19 55944f0f
//! {"set last_id":42}
//! @2 29 18e5baa6
//! {"push processed":"item-42"}
//! @3 36 81359422
//! {"insert settings":["mode","fast"]}
//! ```
//!
//! A value is written to the journal only if the TOML snapshot can hold
//! it (no `None` in a list, as a map value or inside `Some`, no unit,
//! integers within `i64`): otherwise the commit fails with
//! `Error::Encode` and nothing is appended, so a compaction never meets a
//! state it cannot write.
//!
//! # Journal layout, bincode
//!
//! Header: `b"PSTJ" | version u8 (1) | format u8 (3) | base u64 | seq u64 |
//! crc u32` (26 bytes, little-endian, crc over the first 22). Record:
//! `tag u8 (0xC0 commit, 0xC1 intent) | seq u64 | len u32 | crc u32 |
//! payload`, the crc as above. A commit payload is the same map in bincode;
//! an intent payload is the fingerprint as u64.
//!
//! # Reading (see `recovery`)
//!
//! The header is parsed and each frame verified (length, CRC, `seq`)
//! **before** a parser sees the payload. At the first invalid frame the
//! rest is a torn tail: it is cut off (the file truncated and synced) with a
//! warning; if a valid frame appears later in the dropped bytes, they are
//! first copied to `state.yaml.journal.dropped-<unix time>`. A payload that
//! verifies but does not parse is an error naming the journal, line and
//! column, and nothing is changed.
//!
//! The header ties the journal to one snapshot. On open:
//! * fingerprint(snapshot) == `base`: the commit records are replayed;
//! * it equals the fingerprint of an intent record: a compaction finished
//!   but the journal was not reset; the journal is stale and is reset;
//! * neither, and no commit records: the snapshot was edited by hand after
//!   a clean close; the edit is adopted and the journal reset;
//! * neither, with commit records: the snapshot was edited after a crash.
//!   The edit wins; the journal is renamed to
//!   `state.yaml.journal.orphaned-<unix time>` (never replayed, never
//!   deleted) with a warning.
//!
//! # Writing
//!
//! A commit is encoded whole into one buffer and written with one
//! `write(2)` on a file opened `O_APPEND`; `Durability::Sync` then calls
//! `fdatasync`. A failed write is cut back with `set_len` before the error
//! returns. Compaction: write the new snapshot to a temp file and fsync
//! it; append and sync an intent record; rename the temp file over the
//! snapshot; fsync the directory; replace the journal (temp file, fsync,
//! rename, directory fsync) with a header whose `base` is the new snapshot.

mod follow;
mod frame;
pub(crate) mod group;
mod recovery;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use follow::View;
pub(crate) use recovery::open;

use self::frame::{encode_frame, encode_header, encode_intent, Header, Kind, MAX_RECORD};
use super::Failure;
use crate::change::{Changes, Payload};
use crate::checksum::fingerprint;
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{sibling, write_atomic, TempFile};
use crate::file::vfs::{FileId, Vfs, VfsFile};
use crate::format::{Codec, Extras};
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
    /// The fingerprint an intent record names, while that intent is the
    /// last record read: a compaction may be replacing the files.
    sealed: Option<u64>,
    /// The snapshot file as this handle last read or wrote it, to notice
    /// an edit by hand.
    snapshot_id: Option<FileId>,
    /// Reused buffers: the payload, then the whole record.
    payload: Vec<u8>,
    record: Vec<u8>,
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
        let path = journal_path(snapshot_path);
        let header = encode_header(Header {
            format: codec.format(),
            base,
            seq,
        });
        write_atomic(vfs, &path, &header, true)?;
        let file = vfs
            .open_append(&path)
            .context("open for appending", &path)?;
        Ok(Journal {
            vfs: Arc::clone(vfs),
            path,
            snapshot_path: snapshot_path.to_path_buf(),
            file,
            codec,
            durability,
            len: header.len() as u64,
            header_len: header.len() as u64,
            seq,
            base,
            sealed: None,
            snapshot_id: None,
            payload: Vec::new(),
            record: Vec::new(),
        })
    }

    /// Takes over an existing, verified journal file of `len` bytes whose
    /// last record has sequence number `seq`.
    #[allow(clippy::too_many_arguments)]
    fn resume(
        vfs: &Arc<dyn Vfs>,
        file: Box<dyn VfsFile>,
        snapshot_path: &Path,
        codec: Codec,
        durability: Durability,
        len: usize,
        header_len: usize,
        seq: u64,
        base: u64,
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
            sealed: None,
            snapshot_id: None,
            payload: Vec::new(),
            record: Vec::new(),
        }
    }

    /// Bytes in the journal file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// True when the journal holds records beyond its header.
    pub(crate) fn has_records(&self) -> bool {
        self.len > self.header_len
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
        self.append(Kind::Commit, sync)
    }

    /// The durability the journal was opened with.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// A second handle on the journal file, for syncing without the writer
    /// lock (group commit).
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
        encode_frame(
            self.codec.format(),
            kind,
            seq,
            &self.payload,
            &mut self.record,
        );
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
        let new_base = fingerprint(&bytes);
        let temp = TempFile::write(&self.vfs, &self.snapshot_path, &bytes, true)
            .map_err(Failure::classify)?;
        self.payload = encode_intent(self.codec.format(), new_base);
        self.append(Kind::Intent, true)?;
        // Until the journal is reset, a stale journal beside the new snapshot
        // is recognised by the intent; any failure from here on poisons, as
        // commits appended after the intent would be dropped as stale.
        temp.rename_over(&self.snapshot_path, true)
            .map_err(Failure::poison)?;
        let mut fresh = Journal::create(
            &self.vfs,
            &self.snapshot_path,
            self.codec,
            self.durability,
            new_base,
            self.seq,
        )
        .map_err(Failure::poison)?;
        fresh.snapshot_id = self
            .vfs
            .stat(&self.snapshot_path)
            .context("stat", &self.snapshot_path)
            .map_err(Failure::poison)?;
        *self = fresh;
        Ok(bytes.len() as u64)
    }
}
