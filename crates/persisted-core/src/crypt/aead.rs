//! The sealing itself (feature `encryption`): AES-256-GCM-SIV from
//! RustCrypto's `aes-gcm-siv`, Argon2id from `argon2`, randomness from the
//! operating system (`getrandom`). The layout is in the parent module.

use std::path::Path;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use parking_lot::{Mutex, RwLock};
use zeroize::Zeroizing;

use super::key::{Key, Secret};
use super::{damaged, RecordAad, ENVELOPE, MAGIC};
use crate::checksum::checksum;
use crate::error::{Error, Result};

const VERSION: u8 = 1;
const CIPHER_AES_256_GCM_SIV: u8 = 1;
const KEY_RAW: u8 = 0;
const KEY_ARGON2ID: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;
/// Where the wrapping's AAD ends and its nonce begins.
const WRAP_AT: usize = 56;

/// An unlocked encrypted store: its data key and what every seal is bound
/// to. Shared (`Arc`) by every file of the store this process writes.
pub(crate) struct Crypt {
    cipher: Aes256GcmSiv,
    /// Kept to wrap again for a new key (zeroed when dropped).
    data_key: Zeroizing<[u8; 32]>,
    store_id: [u8; 16],
    generation: u32,
    /// The envelope written at the start of every new file (a rekey
    /// replaces it: same data key, wrapped by the new key).
    envelope: RwLock<[u8; ENVELOPE]>,
    nonces: Mutex<Nonces>,
}

impl std::fmt::Debug for Crypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypt").finish_non_exhaustive()
    }
}

/// 8 random bytes drawn when the first nonce is needed, then a 4-byte
/// counter; drawn again when the counter runs out.
#[derive(Default)]
struct Nonces {
    prefix: Option<[u8; 8]>,
    counter: u32,
}

impl Nonces {
    fn next(&mut self) -> [u8; NONCE] {
        let prefix = match self.prefix {
            Some(prefix) if self.counter != u32::MAX => prefix,
            _ => {
                let mut fresh = [0u8; 8];
                random(&mut fresh);
                self.counter = 0;
                *self.prefix.insert(fresh)
            }
        };
        self.counter += 1;
        let mut nonce = [0u8; NONCE];
        nonce[..8].copy_from_slice(&prefix);
        nonce[8..].copy_from_slice(&self.counter.to_le_bytes());
        nonce
    }
}

/// Fills `bytes` from the operating system's generator. Its failure (no
/// entropy source at all) leaves nothing safe to do.
fn random(bytes: &mut [u8]) {
    if let Err(e) = getrandom::getrandom(bytes) {
        panic!("the operating system gave no random bytes: {e}");
    }
}

/// The key that wraps the data key: the raw key, or the passphrase
/// stretched with Argon2id and `kdf` (m, t, p, salt).
fn wrapping_key(key: &Key, kdf: &[u8; 28], path: &Path) -> Result<(Aes256GcmSiv, u8)> {
    match &key.secret {
        Secret::Raw(raw) => Ok((cipher(&raw[..]), KEY_RAW)),
        Secret::Passphrase(phrase) => {
            let word = |i: usize| u32::from_le_bytes(kdf[i..i + 4].try_into().unwrap_or_default());
            let params = argon2::Params::new(word(0), word(4), word(8), Some(32))
                .map_err(|e| Error::corrupt(path, format!("its Argon2id parameters: {e}")))?;
            let argon =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut derived = Zeroizing::new([0u8; 32]);
            argon
                .hash_password_into(phrase.as_bytes(), &kdf[12..28], &mut derived[..])
                .map_err(|e| Error::Key {
                    origin: "a passphrase".into(),
                    reason: e.to_string(),
                })?;
            Ok((cipher(&derived[..]), KEY_ARGON2ID))
        }
    }
}

fn cipher(key: &[u8]) -> Aes256GcmSiv {
    match Aes256GcmSiv::new_from_slice(key) {
        Ok(cipher) => cipher,
        Err(_) => unreachable!("keys are 32 bytes"),
    }
}

/// Argon2id's default costs (19 MiB, 2 passes, 1 lane) and a fresh salt.
fn new_kdf(key: &Key) -> [u8; 28] {
    let mut kdf = [0u8; 28];
    if let Secret::Passphrase(_) = key.secret {
        kdf[0..4].copy_from_slice(&argon2::Params::DEFAULT_M_COST.to_le_bytes());
        kdf[4..8].copy_from_slice(&argon2::Params::DEFAULT_T_COST.to_le_bytes());
        kdf[8..12].copy_from_slice(&argon2::Params::DEFAULT_P_COST.to_le_bytes());
        random(&mut kdf[12..28]);
    }
    kdf
}

/// The envelope wrapping `data_key` with `key`.
fn wrap(
    key: &Key,
    store_id: &[u8; 16],
    generation: u32,
    data_key: &[u8; 32],
    path: &Path,
) -> Result<[u8; ENVELOPE]> {
    let kdf = new_kdf(key);
    let (wrapper, kind) = wrapping_key(key, &kdf, path)?;
    let mut env = [0u8; ENVELOPE];
    env[0..5].copy_from_slice(MAGIC);
    env[5] = VERSION;
    env[6] = CIPHER_AES_256_GCM_SIV;
    env[7] = kind;
    env[8..24].copy_from_slice(store_id);
    env[24..28].copy_from_slice(&generation.to_le_bytes());
    env[28..56].copy_from_slice(&kdf);
    let mut nonce = [0u8; NONCE];
    random(&mut nonce);
    env[56..68].copy_from_slice(&nonce);
    let mut wrapped = Zeroizing::new(data_key.to_vec());
    let (aad, _) = env.split_at(WRAP_AT);
    let tag = wrapper
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut wrapped)
        .map_err(|_| Error::encode(path, "the data key could not be wrapped"))?;
    env[68..100].copy_from_slice(&wrapped);
    env[100..116].copy_from_slice(&tag);
    let crc = checksum(&[&env[..116]]);
    env[116..120].copy_from_slice(&crc.to_le_bytes());
    Ok(env)
}

impl Crypt {
    /// A new store's: a random data key, wrapped by `key`.
    pub(crate) fn create(key: &Key, path: &Path) -> Result<Crypt> {
        let mut data_key = Zeroizing::new([0u8; 32]);
        random(&mut data_key[..]);
        let mut store_id = [0u8; 16];
        random(&mut store_id);
        let envelope = wrap(key, &store_id, 1, &data_key, path)?;
        Ok(Crypt::with(&data_key, store_id, 1, envelope))
    }

    fn with(
        data_key: &[u8; 32],
        store_id: [u8; 16],
        generation: u32,
        env: [u8; ENVELOPE],
    ) -> Crypt {
        Crypt {
            cipher: cipher(&data_key[..]),
            data_key: Zeroizing::new(*data_key),
            store_id,
            generation,
            envelope: RwLock::new(env),
            nonces: Mutex::new(Nonces::default()),
        }
    }

    /// Unlocks the envelope at the start of `file` (a file of the store at
    /// `path`) with `key`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongKey`] when `key` does not unwrap the data key;
    /// [`Error::Corrupt`] for a damaged envelope.
    pub(crate) fn unlock(key: &Key, path: &Path, file: &[u8]) -> Result<Crypt> {
        let env: [u8; ENVELOPE] = file
            .get(..ENVELOPE)
            .and_then(|e| e.try_into().ok())
            .ok_or_else(|| damaged(path))?;
        let crc = u32::from_le_bytes(env[116..120].try_into().unwrap_or_default());
        if &env[..5] != MAGIC || checksum(&[&env[..116]]) != crc {
            return Err(damaged(path));
        }
        if env[5] != VERSION || env[6] != CIPHER_AES_256_GCM_SIV {
            return Err(Error::corrupt(
                path,
                "it was encrypted by a newer version of persisted-state",
            ));
        }
        let kind = match key.secret {
            Secret::Raw(_) => KEY_RAW,
            Secret::Passphrase(_) => KEY_ARGON2ID,
        };
        if kind != env[7] {
            // A raw key for a store made with a passphrase, or the reverse.
            return Err(Error::WrongKey {
                path: path.to_path_buf(),
            });
        }
        let kdf: [u8; 28] = env[28..56].try_into().unwrap_or([0; 28]);
        let (wrapper, _) = wrapping_key(key, &kdf, path)?;
        let mut data_key = Zeroizing::new([0u8; 32]);
        data_key.copy_from_slice(&env[68..100]);
        let tag = Tag::from_slice(&env[100..116]);
        wrapper
            .decrypt_in_place_detached(
                Nonce::from_slice(&env[56..68]),
                &env[..WRAP_AT],
                &mut data_key[..],
                tag,
            )
            .map_err(|_| Error::WrongKey {
                path: path.to_path_buf(),
            })?;
        let store_id: [u8; 16] = env[8..24].try_into().unwrap_or_default();
        let generation = u32::from_le_bytes(env[24..28].try_into().unwrap_or_default());
        Ok(Crypt::with(&data_key, store_id, generation, env))
    }

    /// Whether `file` starts with an envelope of this store (its data key).
    pub(crate) fn same_store(&self, file: &[u8]) -> bool {
        file.len() >= ENVELOPE
            && file[8..24] == self.store_id
            && file[24..28] == self.generation.to_le_bytes()
    }

    /// Takes the envelope of `file` (a file of this store another process
    /// wrote) for the files this process writes from now on: after
    /// another participant's `rekey`, so the old key is not brought back.
    pub(crate) fn adopt(&self, file: &[u8]) {
        let Some(env) = file.get(..ENVELOPE) else {
            return;
        };
        let crc = u32::from_le_bytes(env[116..120].try_into().unwrap_or_default());
        if self.same_store(file) && checksum(&[&env[..116]]) == crc {
            let mut current = self.envelope.write();
            if current[..] != *env {
                current.copy_from_slice(env);
            }
        }
    }

    /// The envelope new files start with.
    pub(crate) fn envelope(&self) -> Vec<u8> {
        self.envelope.read().to_vec()
    }

    /// Wraps the data key with `key` from now on (`Store::rekey`).
    pub(crate) fn rewrap(&self, key: &Key, path: &Path) -> Result<()> {
        let env = wrap(key, &self.store_id, self.generation, &self.data_key, path)?;
        *self.envelope.write() = env;
        Ok(())
    }

    fn aad(&self, out: &mut Vec<u8>, what: &[u8]) {
        out.clear();
        out.extend_from_slice(&self.store_id);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(what);
    }

    /// Appends `plain` sealed as a snapshot to `out`: the envelope, a
    /// nonce, the ciphertext and its tag.
    pub(crate) fn seal_snapshot(&self, plain: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&*self.envelope.read());
        self.seal(b"snapshot", plain, out);
    }

    /// Appends a nonce, `plain` sealed with `aad_tail` (after the store's
    /// id and generation) and the tag to `out`.
    fn seal(&self, aad_tail: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        let nonce = self.nonces.lock().next();
        let mut aad = Vec::with_capacity(32 + aad_tail.len());
        self.aad(&mut aad, aad_tail);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = match self.cipher.encrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &aad,
            &mut out[start..],
        ) {
            Ok(tag) => tag,
            Err(_) => unreachable!("AES-GCM-SIV seals any length a record can have"),
        };
        out.extend_from_slice(&tag);
    }

    fn open(&self, aad_tail: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE + TAG {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        let (body, tag) = rest.split_at(rest.len() - TAG);
        let mut aad = Vec::with_capacity(32 + aad_tail.len());
        self.aad(&mut aad, aad_tail);
        let mut plain = body.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &aad,
                &mut plain,
                Tag::from_slice(tag),
            )
            .ok()?;
        Some(plain)
    }

    /// The plaintext of a sealed snapshot `bytes` of the store at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Decrypt`] when it does not authenticate; [`Error::Corrupt`]
    /// when it is not this store's, or cut.
    pub(crate) fn open_snapshot(&self, path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
        if !self.same_store(bytes) {
            return Err(Error::corrupt(
                path,
                "it belongs to another encrypted store (another data key)",
            ));
        }
        self.open(b"snapshot", &bytes[ENVELOPE..])
            .ok_or_else(|| Error::Decrypt {
                path: path.to_path_buf(),
                offset: ENVELOPE as u64,
            })
    }

    fn record_aad(aad: RecordAad<'_>) -> Vec<u8> {
        let mut tail = Vec::with_capacity(1 + 8 + 8 + aad.fields.len());
        tail.push(aad.tag);
        tail.extend_from_slice(&aad.seq.to_le_bytes());
        tail.extend_from_slice(&aad.time_ms.to_le_bytes());
        tail.extend_from_slice(aad.fields);
        tail
    }

    /// Appends a record payload `plain` sealed for its frame to `out`.
    pub(crate) fn seal_record(&self, aad: RecordAad<'_>, plain: &[u8], out: &mut Vec<u8>) {
        self.seal(&Crypt::record_aad(aad), plain, out);
    }

    /// The plaintext of a record payload sealed for its frame; `None` when
    /// it does not authenticate.
    pub(crate) fn open_record(&self, aad: RecordAad<'_>, sealed: &[u8]) -> Option<Vec<u8>> {
        self.open(&Crypt::record_aad(aad), sealed)
    }

    /// `plain` (a field's value) sealed for the field `name` of a server
    /// store: a nonce, the ciphertext and its tag, bound to the store and
    /// the field's name.
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn seal_value(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE + plain.len() + TAG);
        self.seal(&Crypt::value_aad(name), plain, &mut out);
        out
    }

    /// The plaintext of a value sealed for field `name`; `None` when it
    /// does not authenticate.
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn open_value(&self, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        self.open(&Crypt::value_aad(name), sealed)
    }

    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    fn value_aad(name: &str) -> Vec<u8> {
        let mut tail = b"value:".to_vec();
        tail.extend_from_slice(name.as_bytes());
        tail
    }
}
