//! TOML (the `toml` crate): pretty snapshots in field order with a trailing
//! newline. TOML writes a table's plain values before its sub-tables, so
//! fields holding maps, structs or lists of structs come after the others,
//! each group in declaration order. Comments written by hand are not kept
//! across a compaction.
//!
//! The journal's payloads are JSON lines, written and replayed by the JSON
//! codec: a TOML document cannot hold a key twice, and a commit's map may.
//! Before a value reaches the journal or a snapshot, `toml_check` makes
//! sure the snapshot can hold it, so a commit TOML cannot express fails at
//! once instead of at the next compaction.

use std::path::Path;

use super::{json, toml_check, Extras, PayloadError};
use crate::change::Payload;
use crate::collection::Op;
use crate::error::{Error, Result};
use crate::schema::Persisted;

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
    (line, 1 + before[line_start..].chars().count())
}

fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let (line, column) = e.span().map_or((0, 0), |span| position(text, span.start));
    Error::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: super::tidy_message(e.message().trim_end().to_string(), 0, 0),
    }
}

fn utf8_error(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> Error {
    let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
    let (line, column) = position(&valid, valid.len());
    Error::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: "invalid UTF-8 (a TOML file is UTF-8 text)".to_string(),
    }
}

pub(super) fn decode_snapshot<T: Persisted>(path: &Path, bytes: &[u8]) -> Result<(T, Extras)> {
    let text = std::str::from_utf8(bytes).map_err(|e| utf8_error(path, bytes, e))?;
    let de = toml::de::Deserializer::parse(text).map_err(|e| parse_error(path, text, &e))?;
    let (state, unknown): (T, _) =
        super::deserialize_noting_unknown(de).map_err(|e| parse_error(path, text, &e))?;
    if unknown.is_empty() {
        return Ok((state, Extras::None));
    }
    // Rare: the file has keys the struct does not know; keep their values.
    let doc: toml::Table = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
    let doc = toml::Value::Table(doc);
    Ok((state, Extras::Toml(super::unknown::collect(&doc, &unknown))))
}

pub(super) fn encode_snapshot<T: Persisted>(
    path: &Path,
    state: &T,
    extras: &Extras,
    out: &mut Vec<u8>,
) -> Result<()> {
    toml_check::state(state).map_err(|e| Error::encode(path, e))?;
    let text = match extras {
        Extras::Toml(unknown) if !unknown.is_empty() => {
            let table = toml::Table::try_from(state).map_err(|e| Error::encode(path, e))?;
            let mut doc = toml::Value::Table(table);
            super::unknown::restore(&mut doc, unknown);
            toml::to_string_pretty(&doc)
        }
        _ => toml::to_string_pretty(state),
    }
    .map_err(|e| Error::encode(path, e))?;
    out.extend_from_slice(text.as_bytes());
    // Also for a state with no fields to write: an empty file would open
    // as `Default`, which need not be this state.
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    Ok(())
}

/// A commit's payload as one JSON line, once every value it writes is one
/// the snapshot can hold.
pub(super) fn encode_payload(path: &Path, payload: &Payload<'_>, out: &mut Vec<u8>) -> Result<()> {
    let mut unfit = None;
    payload.changes.each(&mut |op, index, value| {
        if unfit.is_some() {
            return;
        }
        let name = payload.fields.get(index).map_or("", |f| f.name);
        unfit = match op {
            Op::Set => toml_check::field(value)
                .err()
                .map(|e| e.in_field(name).to_string()),
            // Not written to the state.
            Op::Remove => None,
            op => toml_check::argument(value)
                .err()
                .map(|e| format!("`{op} {name}`: {}", e.message())),
        };
    });
    if let Some(message) = unfit {
        return Err(Error::encode(path, message));
    }
    encode_value(path, payload, out)
}

/// A payload as one JSON line, unchecked (for comparing values).
pub(super) fn encode_value(path: &Path, payload: &Payload<'_>, out: &mut Vec<u8>) -> Result<()> {
    json::encode_payload(payload, out).map_err(|e| Error::encode(path, e))
}

pub(super) fn replay_payload<T: Persisted>(
    payload: &[u8],
    state: &mut T,
) -> std::result::Result<(), PayloadError> {
    json::replay_payload(payload, state)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    /// A struct whose first field is a table: TOML must still write the
    /// plain fields first, and read the file back to the same value.
    #[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
    struct MapFirst {
        settings: BTreeMap<String, String>,
        last_id: u64,
        note: Option<String>,
        jobs: Vec<Job>,
        tags: Vec<String>,
    }

    #[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
    struct Job {
        id: u32,
        owner: Option<String>,
    }

    crate::__impl_persisted_for_tests!(MapFirst {
        settings: BTreeMap<String, String>,
        last_id: u64,
        note: Option<String>,
        jobs: Vec<Job>,
        tags: Vec<String>,
    });

    fn sample() -> MapFirst {
        MapFirst {
            settings: [("mode", "fast"), ("a b", "multi\nline")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            last_id: 42,
            note: None,
            jobs: vec![
                Job {
                    id: 1,
                    owner: Some("ann".into()),
                },
                Job { id: 2, owner: None },
            ],
            tags: vec!["x".into()],
        }
    }

    fn encode(state: &MapFirst, extras: &Extras) -> Result<String> {
        let mut out = Vec::new();
        encode_snapshot(Path::new("s.toml"), state, extras, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_struct_starting_with_a_table_writes_plain_fields_first_and_reads_back_equal() {
        let text = encode(&sample(), &Extras::None).unwrap();
        assert_eq!(
            text,
            "last_id = 42\ntags = [\"x\"]\n\n[settings]\n\"a b\" = \"\"\"\nmulti\nline\"\"\"\n\
             mode = \"fast\"\n\n[[jobs]]\nid = 1\nowner = \"ann\"\n\n[[jobs]]\nid = 2\n"
        );
        let (back, extras): (MapFirst, Extras) =
            decode_snapshot(Path::new("s.toml"), text.as_bytes()).unwrap();
        assert_eq!(back, sample());
        assert!(matches!(extras, Extras::None));
    }

    #[test]
    fn unknown_keys_are_kept_in_their_place_and_the_rest_is_unchanged() {
        let mut text = encode(&sample(), &Extras::None).unwrap();
        text = format!("legacy = 7\n{text}[old_table]\nx = [1, 2]\n");
        let (state, extras): (MapFirst, Extras) =
            decode_snapshot(Path::new("s.toml"), text.as_bytes()).unwrap();
        assert_eq!(state, sample());
        let written = encode(&state, &extras).unwrap();
        assert!(
            written.starts_with("legacy = 7\nlast_id = 42\ntags = [\"x\"]\n"),
            "{written}"
        );
        assert!(
            written.ends_with("\n[old_table]\nx = [\n    1,\n    2,\n]\n"),
            "{written}"
        );
        // Apart from the kept keys, the same bytes as without them.
        let plain = encode(&state, &Extras::None).unwrap();
        let without: String = written
            .replace("legacy = 7\n", "")
            .replace("\n[old_table]\nx = [\n    1,\n    2,\n]\n", "");
        assert_eq!(without, plain);
        let (again, _): (MapFirst, Extras) =
            decode_snapshot(Path::new("s.toml"), written.as_bytes()).unwrap();
        assert_eq!(again, sample());
    }

    #[test]
    fn a_state_toml_cannot_hold_is_an_encode_error_naming_the_value() {
        let mut state = sample();
        state.last_id = u64::MAX;
        let e = encode(&state, &Extras::None).unwrap_err();
        assert!(
            matches!(&e, Error::Encode { message, .. } if message.starts_with("`last_id`: 18446744073709551615 is outside")),
            "{e}"
        );
    }

    #[test]
    fn an_empty_state_is_a_newline_not_an_empty_file() {
        #[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
        struct Sparse {
            note: Option<String>,
        }
        crate::__impl_persisted_for_tests!(Sparse { note: Option<String> });
        let mut out = Vec::new();
        encode_snapshot(
            Path::new("s.toml"),
            &Sparse::default(),
            &Extras::None,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"\n");
        let (back, _): (Sparse, Extras) = decode_snapshot(Path::new("s.toml"), &out).unwrap();
        assert_eq!(back, Sparse::default());
    }

    #[test]
    fn parse_errors_are_placed_at_their_line_and_column() {
        let cases: &[(&str, (usize, usize))] = &[
            ("last_id = 1\ntags = [\"a\"\nnote = \"x\"\n", (3, 1)),
            ("last_id = \"x\"\n", (1, 11)),
            ("last_id = 1\n[settings]\nmode = fast\n", (3, 8)),
            ("note = \"é\"\nlast_id = 1\nlast_id = 2\n", (3, 1)),
            ("note = \"é\"\nlast_id = \u{1F600}\n", (2, 11)),
        ];
        for (text, expected) in cases {
            let e = decode_snapshot::<MapFirst>(Path::new("s.toml"), text.as_bytes())
                .map(drop)
                .unwrap_err();
            let Error::Parse { line, column, .. } = &e else {
                panic!("{text:?}: {e:?}");
            };
            assert_eq!((*line, *column), *expected, "{text:?}: {e}");
        }
        let e = decode_snapshot::<MapFirst>(Path::new("s.toml"), b"note = \"a\"\nx = \"\xff\"\n")
            .map(drop)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Parse {
                    line: 2,
                    column: 6,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn position_counts_characters_and_never_splits_one() {
        assert_eq!(position("ab\ncé\nd", 0), (1, 1));
        assert_eq!(position("ab\ncé\nd", 3), (2, 1));
        assert_eq!(position("ab\ncé\nd", 6), (2, 3));
        assert_eq!(position("ab\ncé\nd", 5), (2, 2)); // inside `é`
        assert_eq!(position("ab\ncé\nd", 99), (3, 2));
    }
}
