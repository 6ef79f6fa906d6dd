//! bincode 2 (serde flavour, standard config). A snapshot is
//! `b"PSTB" | version u8 | payload length u64 LE | CRC32C u32 LE | payload`,
//! so a file cut short or damaged is always detected. bincode is not
//! self-describing: fields cannot be added to or removed from a struct
//! stored as bincode (use JSON, YAML or TOML for evolving schemas).

use std::path::Path;

use super::PayloadError;
use crate::change::{Payload, Replay};
use crate::checksum::checksum;
use crate::error::{Error, Result};
use crate::schema::Persisted;

const MAGIC: &[u8; 4] = b"PSTB";
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 8 + 4;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Runs `$body` with `$config` set to a decoding configuration whose limit
/// grows with the input: bincode allocates the length a string or list
/// claims before reading it, so a damaged length must not be able to ask
/// for more than 16 bytes of memory per byte of input.
macro_rules! with_decode_limit {
    ($len:expr, |$config:ident| $body:expr) => {{
        let budget = ($len as u64).saturating_mul(16);
        if budget <= 1 << 20 {
            let $config = config().with_limit::<{ 1 << 20 }>();
            $body
        } else if budget <= 1 << 26 {
            let $config = config().with_limit::<{ 1 << 26 }>();
            $body
        } else if budget <= 1 << 32 {
            let $config = config().with_limit::<{ 1 << 32 }>();
            $body
        } else {
            let $config = config();
            $body
        }
    }};
}

/// Checks the header, length and checksum; returns the payload.
pub(super) fn check_snapshot<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8]> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(Error::corrupt(
            path,
            "not a persisted bincode snapshot (bad header)",
        ));
    }
    if bytes[4] != VERSION {
        return Err(Error::corrupt(
            path,
            format!("unsupported bincode snapshot version {}", bytes[4]),
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[5..13]);
    let len = u64::from_le_bytes(len);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[13..17]);
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(Error::corrupt(
            path,
            format!("expected {len} payload bytes, found {}", payload.len()),
        ));
    }
    if checksum(&[payload]) != u32::from_le_bytes(crc) {
        return Err(Error::corrupt(path, "checksum mismatch"));
    }
    Ok(payload)
}

pub(super) fn decode_snapshot<T: Persisted>(path: &Path, bytes: &[u8]) -> Result<T> {
    let payload = check_snapshot(path, bytes)?;
    let (state, used) = with_decode_limit!(payload.len(), |config| {
        bincode::serde::decode_from_slice(payload, config)
    })
    .map_err(|e| Error::corrupt(path, format!("cannot decode: {e}")))?;
    if used != payload.len() {
        return Err(Error::corrupt(path, "trailing bytes after the state"));
    }
    Ok(state)
}

pub(super) fn encode_snapshot<T: Persisted>(
    path: &Path,
    state: &T,
    out: &mut Vec<u8>,
) -> Result<()> {
    let payload =
        bincode::serde::encode_to_vec(state, config()).map_err(|e| Error::encode(path, e))?;
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&[&payload]).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

pub(super) fn encode_payload(
    payload: &Payload<'_>,
    out: &mut Vec<u8>,
) -> std::result::Result<(), bincode::error::EncodeError> {
    bincode::serde::encode_into_std_write(payload, out, config()).map(drop)
}

pub(super) fn replay_payload<T: Persisted>(
    payload: &[u8],
    state: &mut T,
) -> std::result::Result<(), PayloadError> {
    let fail = |message: String| PayloadError {
        line: 0,
        column: 0,
        message,
    };
    let ((), used) = with_decode_limit!(payload.len(), |config| {
        bincode::serde::seed_decode_from_slice(Replay { state }, payload, config)
    })
    .map_err(|e| fail(e.to_string()))?;
    if used != payload.len() {
        return Err(fail("trailing bytes after the record".into()));
    }
    Ok(())
}
