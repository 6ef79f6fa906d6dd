//! YAML (serde_yaml 0.9, deprecated upstream but stable; this is the one
//! module to change to swap it): block-style snapshots in field order.
//! Comments written by hand are not kept across a compaction.

use std::path::Path;

use serde::de::DeserializeSeed;
use serde_yaml::Value;

use super::{tidy_message, Extras, PayloadError};
use crate::change::{Payload, Replay};
use crate::error::{Error, Result};
use crate::schema::Persisted;

fn location(e: &serde_yaml::Error) -> (usize, usize) {
    e.location().map_or((0, 0), |l| (l.line(), l.column()))
}

fn parse_error(path: &Path, e: serde_yaml::Error) -> Error {
    let (line, column) = location(&e);
    Error::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: tidy_message(e.to_string(), line, column),
    }
}

pub(super) fn decode_snapshot<T: Persisted>(path: &Path, bytes: &[u8]) -> Result<(T, Extras)> {
    let text = super::without_bom(bytes);
    let de = serde_yaml::Deserializer::from_slice(text);
    let (state, unknown): (T, _) =
        super::deserialize_noting_unknown(de).map_err(|e| parse_error(path, e))?;
    if unknown.is_empty() {
        return Ok((state, Extras::None));
    }
    // Rare: the file has keys the struct does not know; keep their values.
    let doc: Value = serde_yaml::from_slice(text).map_err(|e| parse_error(path, e))?;
    Ok((state, Extras::Yaml(super::unknown::collect(&doc, &unknown))))
}

pub(super) fn encode_snapshot<T: Persisted>(
    path: &Path,
    state: &T,
    extras: &Extras,
    out: &mut Vec<u8>,
) -> Result<()> {
    match extras {
        Extras::Yaml(unknown) if !unknown.is_empty() => {
            let mut value = serde_yaml::to_value(state).map_err(|e| Error::encode(path, e))?;
            super::unknown::restore(&mut value, unknown);
            serde_yaml::to_writer(&mut *out, &value)
        }
        _ => serde_yaml::to_writer(&mut *out, state),
    }
    .map_err(|e| Error::encode(path, e))
}

pub(super) fn encode_payload(payload: &Payload<'_>, out: &mut Vec<u8>) -> serde_yaml::Result<()> {
    if super::yaml_plain::write_payload(payload, out) {
        return Ok(());
    }
    serde_yaml::to_writer(&mut *out, payload)?;
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    Ok(())
}

pub(super) fn replay_payload<T: Persisted>(
    payload: &[u8],
    state: &mut T,
) -> std::result::Result<(), PayloadError> {
    Replay { state }
        .deserialize(serde_yaml::Deserializer::from_slice(payload))
        .map_err(|e| {
            let (line, column) = location(&e);
            PayloadError {
                line,
                column,
                message: tidy_message(e.to_string(), line, column),
            }
        })
}
