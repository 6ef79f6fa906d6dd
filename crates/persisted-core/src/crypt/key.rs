//! [`Key`]: the caller's secret that unlocks an encrypted store.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The secret an encrypted store is opened with
/// ([`OpenOptions::encryption`](crate::OpenOptions::encryption)): 32 bytes
/// from your secret store, or a passphrase (stretched with Argon2id, whose
/// parameters are kept in the file).
///
/// The key does not encrypt the data itself: each store has a random data
/// key, kept in every file's header wrapped (encrypted) by this key, so
/// [`Store::rekey`](crate::Store::rekey) changes only the wrapping. Its
/// bytes are zeroed when it is dropped, and `Debug` shows none of them.
///
/// # Examples
///
/// ```
/// use persisted_state::Key;
///
/// let key = Key::from_bytes([7u8; 32]);
/// assert_eq!(format!("{key:?}"), "Key(raw, 32 bytes)");
/// # std::env::set_var("APP_STATE_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=");
/// let from_env = Key::from_env("APP_STATE_KEY")?; // base64 of 32 bytes
/// let phrase = Key::passphrase("correct horse battery staple")?;
/// # Ok::<(), persisted_state::Error>(())
/// ```
#[derive(Clone)]
pub struct Key {
    pub(crate) secret: Secret,
}

#[derive(Clone)]
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) enum Secret {
    /// 32 bytes used as they are.
    Raw(Zeroizing<[u8; 32]>),
    /// A passphrase, stretched with Argon2id and the salt in the file.
    Passphrase(Zeroizing<String>),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.secret {
            Secret::Raw(_) => f.write_str("Key(raw, 32 bytes)"),
            Secret::Passphrase(_) => f.write_str("Key(passphrase)"),
        }
    }
}

impl Key {
    /// A key of 32 bytes (from a keyring, a KMS, a secret manager).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key {
            secret: Secret::Raw(Zeroizing::new(bytes)),
        }
    }

    /// A key from the environment variable `name`: 32 bytes in base64
    /// (standard alphabet, with or without padding).
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when the variable is not set, is not base64, or does
    /// not hold 32 bytes.
    pub fn from_env(name: &str) -> Result<Key> {
        let origin = || format!("environment variable `{name}`");
        let text = Zeroizing::new(std::env::var(name).map_err(|_| Error::Key {
            origin: origin(),
            reason: "it is not set (or not UTF-8)".into(),
        })?);
        Key::from_base64(text.trim()).map_err(|reason| Error::Key {
            origin: origin(),
            reason,
        })
    }

    /// A key from the file at `path`: 32 bytes, as they are or in base64.
    /// The file must be readable by its owner only (mode `0600` or
    /// stricter on Unix): a key others can read is refused.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when the file cannot be read, is readable by its
    /// group or others, or does not hold 32 bytes.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key> {
        let path = path.as_ref();
        let origin = || format!("key file `{}`", path.display());
        let bad = |reason: String| Error::Key {
            origin: origin(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "its group or others can read it (mode {mode:03o}); `chmod 600` it"
                )));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
        if let Ok(raw) = <[u8; 32]>::try_from(&bytes[..]) {
            return Ok(Key::from_bytes(raw));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| bad("it holds neither 32 bytes nor base64 text".into()))?;
        Key::from_base64(text.trim()).map_err(bad)
    }

    /// A key stretched from a passphrase with Argon2id (19 MiB, 2 passes:
    /// about 30 ms at each open). The salt and the parameters are kept in
    /// the file, so the same passphrase opens it again.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] for an empty passphrase.
    pub fn passphrase(phrase: &str) -> Result<Key> {
        if phrase.is_empty() {
            return Err(Error::Key {
                origin: "a passphrase".into(),
                reason: "it is empty".into(),
            });
        }
        Ok(Key {
            secret: Secret::Passphrase(Zeroizing::new(phrase.to_string())),
        })
    }

    /// A key from base64 text of 32 bytes.
    pub(crate) fn from_base64(text: &str) -> std::result::Result<Key, String> {
        let engine = base64::engine::general_purpose::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::general_purpose::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes = Zeroizing::new(
            engine
                .decode(text)
                .map_err(|e| format!("it is not base64 ({e})"))?,
        );
        let raw = <[u8; 32]>::try_from(&bytes[..])
            .map_err(|_| format!("it holds {} bytes, not 32", bytes.len()))?;
        Ok(Key::from_bytes(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = Key::from_bytes([0xAB; 32]);
        let shown = format!("{key:?} {:?}", Key::passphrase("hunter2").unwrap());
        assert!(
            !shown.contains("171") && !shown.to_lowercase().contains("ab"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn base64_keys_must_hold_32_bytes() {
        assert!(Key::from_base64(&"A".repeat(43)).is_ok());
        let short = Key::from_base64("AAAA").unwrap_err();
        assert!(short.contains("3 bytes"), "{short}");
        assert!(Key::from_base64("not base64!").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        std::fs::write(&path, [5u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Key::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Key::from_file(&path).unwrap();
    }
}
