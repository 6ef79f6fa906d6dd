//! JSON: pretty snapshots in field order with a trailing newline; payloads
//! are one compact line (JSON escapes newlines inside strings).

use std::path::Path;

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::{tidy_message, Extras, PayloadError};
use crate::change::{Payload, Replay};
use crate::error::{Error, Result};
use crate::schema::Persisted;

fn parse_error(path: &Path, e: serde_json::Error, bytes: &[u8]) -> Error {
    let (line, column) = position(e.line(), e.column(), bytes);
    Error::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: tidy_message(e.to_string(), e.line(), e.column()),
    }
}

/// serde_json reports an error at a line break as column 0 of the next
/// line; a person looks for it at the end of the line it breaks.
fn position(line: usize, column: usize, bytes: &[u8]) -> (usize, usize) {
    if column > 0 || line < 2 {
        return (line, column);
    }
    match bytes.split(|&b| b == b'\n').nth(line - 2) {
        Some(previous) => (
            line - 1,
            String::from_utf8_lossy(previous).chars().count() + 1,
        ),
        None => (line, column),
    }
}

pub(super) fn decode_snapshot<T: Persisted>(path: &Path, bytes: &[u8]) -> Result<(T, Extras)> {
    let text = super::without_bom(bytes);
    let mut de = serde_json::Deserializer::from_slice(text);
    let (state, unknown): (T, _) =
        super::deserialize_noting_unknown(&mut de).map_err(|e| parse_error(path, e, text))?;
    de.end().map_err(|e| parse_error(path, e, text))?;
    if unknown.is_empty() {
        return Ok((state, Extras::None));
    }
    // Rare: the file has keys the struct does not know; keep their values.
    let doc: Value = serde_json::from_slice(text).map_err(|e| parse_error(path, e, text))?;
    Ok((state, Extras::Json(super::unknown::collect(&doc, &unknown))))
}

pub(super) fn encode_snapshot<T: Persisted>(
    path: &Path,
    state: &T,
    extras: &Extras,
    out: &mut Vec<u8>,
) -> Result<()> {
    match extras {
        Extras::Json(unknown) if !unknown.is_empty() => {
            let mut value = serde_json::to_value(state).map_err(|e| Error::encode(path, e))?;
            super::unknown::restore(&mut value, unknown);
            serde_json::to_writer_pretty(&mut *out, &value)
        }
        _ => serde_json::to_writer_pretty(&mut *out, state),
    }
    .map_err(|e| Error::encode(path, e))?;
    out.push(b'\n');
    Ok(())
}

pub(super) fn encode_payload(payload: &Payload<'_>, out: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, payload)?;
    out.push(b'\n');
    Ok(())
}

pub(super) fn replay_payload<T: Persisted>(
    payload: &[u8],
    state: &mut T,
) -> std::result::Result<(), PayloadError> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    Replay { state }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| PayloadError {
            line: e.line(),
            column: e.column(),
            message: tidy_message(e.to_string(), e.line(), e.column()),
        })
}
