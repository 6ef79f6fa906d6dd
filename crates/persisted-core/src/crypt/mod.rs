//! Encryption at rest: one envelope for every file of an encrypted store.
//!
//! A store has a random 256-bit data key, made when the store is created.
//! Every file starts with the same 120-byte *envelope* holding it wrapped
//! (encrypted) by the caller's [`Key`] — directly for a raw key, by an
//! Argon2id stretch of a passphrase otherwise, its parameters and salt in
//! the envelope:
//!
//! ```text
//! 0   5  "PSENC"            magic
//! 5   1  1                  version
//! 6   1  1                  cipher: AES-256-GCM-SIV
//! 7   1  0 | 1              key: raw | Argon2id passphrase
//! 8   16 store id           random, the same in every file of the store
//! 24  4  generation         of the data key (u32 LE)
//! 28  12 m, t, p costs      Argon2id (u32 LE each; 0 for a raw key)
//! 40  16 salt               Argon2id (zeros for a raw key)
//! 56  12 nonce              of the wrapping
//! 68  48 wrapped data key   AEAD(key, nonce, data key, AAD = bytes 0..56)
//! 116 4  crc32c             masked, of bytes 0..116
//! ```
//!
//! * A **snapshot** is the envelope, a 12-byte random nonce, and the
//!   plaintext snapshot sealed with the data key (AAD: store id,
//!   generation, `snapshot`).
//! * A **journal** (and a history file of records) is the envelope, then
//!   the binary journal header and binary frames (`FORMAT.md`); a commit's
//!   payload is a nonce and the plaintext payload sealed with AAD = store
//!   id, generation, the frame's tag, seq, time and fields list, so a
//!   record cannot be moved to another place, file or store. Intent
//!   records (a fingerprint) are not sealed.
//! * Nonces are never derived from a sequence number (those repeat after
//!   a crash and between processes): 8 bytes drawn from the operating
//!   system when the process first seals, then a counter; and the cipher,
//!   AES-256-GCM-SIV, is nonce-misuse resistant besides (a repeated nonce
//!   would reveal only that two records were identical).
//! * A frame's CRC is checked before its tag: a bad CRC is a torn tail
//!   (the usual rules), a good CRC with a bad tag is [`Error::Decrypt`],
//!   never cut away.
//!
//! Without the `encryption` feature, [`Crypt`] has no values and opening
//! a store with a key is an error.

mod key;

#[cfg(feature = "encryption")]
mod aead;

pub use self::key::Key;

#[cfg(feature = "encryption")]
pub(crate) use self::aead::Crypt;

use std::path::Path;

use crate::error::Error;

/// The envelope's length.
pub(crate) const ENVELOPE: usize = 120;
/// What an encrypted file starts with.
pub(crate) const MAGIC: &[u8; 5] = b"PSENC";

/// Whether `bytes` (a file's first bytes) are an encrypted store's.
pub(crate) fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// What a record's seal is bound to besides the store: its frame.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) struct RecordAad<'a> {
    /// The frame's tag byte.
    pub(crate) tag: u8,
    pub(crate) seq: u64,
    pub(crate) time_ms: u64,
    pub(crate) fields: &'a [u8],
}

/// Without the `encryption` feature no store is encrypted: a `Crypt`
/// cannot exist.
#[cfg(not(feature = "encryption"))]
#[derive(Debug)]
pub(crate) enum Crypt {}

#[cfg(not(feature = "encryption"))]
use crate::error::Result;

#[cfg(not(feature = "encryption"))]
impl Crypt {
    pub(crate) fn create(_key: &Key, path: &Path) -> Result<Crypt> {
        Err(not_enabled(path))
    }

    pub(crate) fn unlock(_key: &Key, path: &Path, _file: &[u8]) -> Result<Crypt> {
        Err(not_enabled(path))
    }

    pub(crate) fn envelope(&self) -> Vec<u8> {
        match *self {}
    }

    pub(crate) fn adopt(&self, _file: &[u8]) {
        match *self {}
    }

    pub(crate) fn seal_snapshot(&self, _plain: &[u8], _out: &mut Vec<u8>) {
        match *self {}
    }

    pub(crate) fn open_snapshot(&self, _path: &Path, _bytes: &[u8]) -> Result<Vec<u8>> {
        match *self {}
    }

    pub(crate) fn seal_record(&self, _aad: RecordAad<'_>, _plain: &[u8], _out: &mut Vec<u8>) {
        match *self {}
    }

    pub(crate) fn open_record(&self, _aad: RecordAad<'_>, _sealed: &[u8]) -> Option<Vec<u8>> {
        match *self {}
    }

    pub(crate) fn rewrap(&self, _key: &Key, path: &Path) -> Result<()> {
        let _ = path;
        match *self {}
    }

    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn same_store(&self, _file: &[u8]) -> bool {
        match *self {}
    }

    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn seal_value(&self, _name: &str, _plain: &[u8]) -> Vec<u8> {
        match *self {}
    }

    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn open_value(&self, _name: &str, _sealed: &[u8]) -> Option<Vec<u8>> {
        match *self {}
    }
}

/// Opening with a key in a build without the `encryption` feature.
#[cfg(not(feature = "encryption"))]
fn not_enabled(path: &Path) -> Error {
    Error::Unsupported {
        path: path.to_path_buf(),
        reason: "encryption needs the `encryption` feature of `persisted-state`".into(),
    }
}

/// The error for a file whose envelope is damaged.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) fn damaged(path: &Path) -> Error {
    Error::corrupt(
        path,
        "its encryption header does not verify (damaged, or not a store's file)",
    )
}
