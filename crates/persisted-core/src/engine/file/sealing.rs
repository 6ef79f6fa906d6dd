//! Which files an encrypted store's open unlocks, makes, or converts:
//! the codec that seals a store's files (`crate::crypt`), from the key in
//! the options and what is on disk.

use std::path::Path;
use std::sync::Arc;

use crate::crypt::{is_sealed, Crypt, Key};
use crate::engine::backend::Backend;
use crate::engine::journal::{self, journal_path, Journal};
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::write_atomic;
use crate::file::vfs::Vfs;
use crate::format::Codec;
use crate::options::OpenOptions;
use crate::schema::Persisted;

/// What sealing a store's files needs before it opens.
pub(crate) enum Sealing {
    /// The codec to open with: `plain` itself without a key; with a key,
    /// sealed by the store's data key (unlocked from the snapshot's
    /// envelope, or made new for a store without a snapshot).
    Ready(Codec),
    /// A plain store opened with a key and `.encrypt_existing(true)`: to
    /// be converted (`convert`) first.
    ConvertFirst(Key),
}

/// The codec for the store at `path` as `options` open it. A plain store
/// opened with a key is [`Error::NotEncrypted`] unless `encrypt_existing`.
/// Reads only: the files are the same afterwards.
pub(crate) fn codec<T: Persisted>(
    vfs: &Arc<dyn Vfs>,
    path: &Path,
    options: &OpenOptions<T>,
    plain: Codec,
) -> Result<Sealing> {
    let Some(key) = &options.key else {
        return Ok(Sealing::Ready(plain));
    };
    let snapshot = vfs.read(path).context("read", path)?.unwrap_or_default();
    if is_sealed(&snapshot) {
        let crypt = Crypt::unlock(key, path, &snapshot)?;
        return Ok(Sealing::Ready(plain.sealed(Arc::new(crypt))));
    }
    let journal = journal_path(path);
    let plain_journal = vfs
        .read(&journal)
        .context("read", &journal)?
        .is_some_and(|bytes| !bytes.is_empty() && !is_sealed(&bytes));
    if snapshot.is_empty() && !plain_journal {
        // A new store: made encrypted.
        let crypt = Crypt::create(key, path)?;
        return Ok(Sealing::Ready(plain.sealed(Arc::new(crypt))));
    }
    match options.encrypt_existing {
        true => Ok(Sealing::ConvertFirst(key.clone())),
        false => Err(Error::NotEncrypted {
            path: path.to_path_buf(),
        }),
    }
}

/// `.encrypt_existing(true)` on a plain store: its journal folded into
/// the snapshot by `plain` (the store opened without a key, which holds the
/// lock), then the snapshot sealed with a new data key, a new sealed
/// journal in place of the old one, and every history file sealed. A crash
/// midway leaves either the plain store or an encrypted one holding the
/// same state (the plain journal then does not pair with the sealed
/// snapshot, and holds no commit once folded).
pub(crate) fn convert<T: Persisted>(
    vfs: &Arc<dyn Vfs>,
    path: &Path,
    key: &Key,
    plain_codec: &Codec,
    plain: &mut dyn Backend<T>,
    state: &parking_lot::RwLock<T>,
) -> Result<()> {
    plain.compact(state).map_err(|failure| failure.error)?;
    let crypt = Arc::new(Crypt::create(key, path)?);
    let sealed = plain_codec.clone().sealed(Arc::clone(&crypt));
    let bytes = vfs.read(path).context("read", path)?.unwrap_or_default();
    let seq = {
        let journal = journal_path(path);
        let journal = vfs.read(&journal).context("read", &journal)?;
        journal
            .as_deref()
            .and_then(journal::header_seq)
            .unwrap_or(0)
    };
    journal::seal_history(vfs, path, plain_codec, &sealed)?;
    let mut sealed_snapshot = Vec::new();
    crypt.seal_snapshot(&bytes, &mut sealed_snapshot);
    write_atomic(vfs, path, &sealed_snapshot, true)?;
    let fp = crate::checksum::fingerprint(&sealed_snapshot);
    Journal::create(vfs, path, sealed, crate::options::Durability::Sync, fp, seq)?;
    log::info!("`{}` encrypted as it opened", path.display());
    Ok(())
}
