//! Encrypted stores: the key, from `--key-file` or the environment
//! variable `PERSISTED_KEY` (base64 of 32 bytes), and the data key it
//! unlocks from the first encrypted file a command reads (a command works
//! on one store), for opening the store's files and sealing new ones.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use persisted_state_core::__tool::{self, Record, Unlocked};
use persisted_state_core::Key;

static KEY_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
static UNLOCKED: Mutex<Option<Arc<Unlocked>>> = Mutex::new(None);

/// The environment variable a key is read from without `--key-file`.
pub const KEY_VAR: &str = "PERSISTED_KEY";

/// Where the key comes from (`--key-file`), for the whole command.
pub fn set_key_file(path: Option<PathBuf>) {
    let _ = KEY_FILE.set(path);
}

/// The key the command was given, for the store at `store`.
pub fn key(store: &Path) -> Result<Key, String> {
    match KEY_FILE.get().cloned().flatten() {
        Some(path) => Key::from_file(&path).map_err(|e| e.to_string()),
        None if std::env::var_os(KEY_VAR).is_some() => {
            Key::from_env(KEY_VAR).map_err(|e| e.to_string())
        }
        None => Err(format!(
            "`{}` is encrypted: give its key with {KEY_VAR} (base64 of 32 bytes) or \
             --key-file PATH",
            store.display()
        )),
    }
}

/// The store's unlocked data key, from the encrypted `file` (a file of the
/// store at `store`) the first time.
pub fn unlocked(store: &Path, file: &[u8]) -> Result<Arc<Unlocked>, String> {
    let mut cached = UNLOCKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(unlocked) = &*cached {
        return Ok(Arc::clone(unlocked));
    }
    let unlocked = Arc::new(__tool::unlock(&key(store)?, store, file).map_err(|e| e.to_string())?);
    *cached = Some(Arc::clone(&unlocked));
    Ok(unlocked)
}

/// The store's unlocked data key, if a file of it was read encrypted.
pub fn current() -> Option<Arc<Unlocked>> {
    UNLOCKED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The plaintext of snapshot (or checkpoint) `bytes`: opened when sealed.
pub fn snapshot<'a>(path: &Path, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
    if !__tool::is_sealed(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let unlocked = unlocked(path, bytes)?;
    unlocked
        .open_snapshot(path, bytes)
        .map(Cow::Owned)
        .map_err(|e| e.to_string())
}

/// The plaintext payload of commit `record` in file `bytes` at `path`:
/// opened when the file is sealed; an error when its checksum is good but
/// it does not authenticate.
pub fn payload<'a>(path: &Path, bytes: &'a [u8], record: &Record) -> Result<Cow<'a, [u8]>, String> {
    if !__tool::is_sealed(bytes) {
        return Ok(Cow::Borrowed(&bytes[record.payload_at..record.end]));
    }
    let unlocked = unlocked(path, bytes)?;
    unlocked
        .open_record(bytes, record)
        .map(Cow::Owned)
        .ok_or_else(|| {
            format!(
                "{}: offset {}: record {}: its checksum is good but it does not authenticate \
             (written with another key, moved, or tampered with)",
                path.display(),
                record.payload_at,
                record.seq
            )
        })
}
