//! Values without the Rust type: snapshots and record payloads of the text
//! formats read as `serde_json::Value` (field order kept), and written back.

use std::fmt;

use persisted_state_core::Format;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// Where in a file something is wrong, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based; 0 when the parser could not tell.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// The 1-based line and column of byte `offset` in `bytes`.
pub fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (
        line,
        1 + String::from_utf8_lossy(&before[start..]).chars().count(),
    )
}

fn error(line: usize, column: usize, message: impl ToString) -> ParseError {
    ParseError {
        line,
        column,
        message: message.to_string(),
    }
}

/// Reads a snapshot of a text format.
pub fn parse_snapshot(format: Format, bytes: &[u8]) -> Result<Value, ParseError> {
    match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| error(e.line(), e.column(), &e)),
        Format::Yaml => serde_yaml::from_slice(bytes).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            error(line, column, &e)
        }),
        Format::Toml => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                let (line, column) = line_col(bytes, e.valid_up_to());
                error(line, column, "not UTF-8")
            })?;
            toml::from_str(text).map_err(|e| {
                let (line, column) = e.span().map_or((0, 0), |span| line_col(bytes, span.start));
                error(line, column, e.message())
            })
        }
        _ => Err(error(0, 0, needs_type(format))),
    }
}

/// The entries of a commit payload, in order (a key may repeat).
pub struct Entries(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of `\"<operation> <field>\": value`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Reads a commit payload: a JSON line (JSON and TOML stores) or a YAML
/// block. Positions are relative to the payload.
pub fn parse_payload(format: Format, bytes: &[u8]) -> Result<Entries, ParseError> {
    match format {
        Format::Json | Format::Toml => {
            serde_json::from_slice(bytes).map_err(|e| error(e.line(), e.column(), &e))
        }
        Format::Yaml => serde_yaml::from_slice(bytes).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            error(line, column, &e)
        }),
        _ => Err(error(0, 0, needs_type(format))),
    }
}

/// Writes a value as a snapshot of `format`, as the library lays it out.
pub fn encode(format: Format, value: &Value) -> Result<Vec<u8>, String> {
    match format {
        Format::Json => {
            let mut out = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
            out.push(b'\n');
            Ok(out)
        }
        Format::Yaml => serde_yaml::to_string(value)
            .map(String::into_bytes)
            .map_err(|e| e.to_string()),
        Format::Toml => toml::to_string_pretty(value)
            .map(String::into_bytes)
            .map_err(|e| format!("TOML cannot hold this state: {e}")),
        _ => Err(needs_type(format)),
    }
}

/// What to say for a bincode store: its values need the Rust type.
pub fn needs_type(format: Format) -> String {
    format!(
        "a {format:?} store's values can only be read with its Rust type (bincode is not \
         self-describing); `persisted verify` and `persisted log` work without it"
    )
}

/// The format a file name's extension names.
pub fn format_of(path: &std::path::Path) -> Result<Format, String> {
    // `name.<format>.enc`: an encrypted store; the format is the extension
    // before `.enc`.
    let named = match path.extension().is_some_and(|e| e == "enc") {
        true => path.with_extension(""),
        false => path.to_path_buf(),
    };
    Format::from_path(&named).ok_or_else(|| {
        format!(
            "cannot tell the format of `{}` from its extension (.json, .yaml, .yml, .toml, \
             .bin, .bincode)",
            path.display()
        )
    })
}
