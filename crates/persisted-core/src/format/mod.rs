//! The codecs: how a snapshot and a journal record's payload are written in
//! each [`Format`]. Each codec is one module behind its Cargo feature; the
//! names in [`Format`] exist in every build. TOML writes its journal
//! payloads with the JSON codec (see `toml.rs`).

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use crate::change::{Changes, Payload};
use crate::collection::Op;
use crate::crypt::{self, Crypt};
use crate::error::{Error, Result};
use crate::options::Format;
use crate::schema::Persisted;

#[cfg(feature = "bincode")]
mod bincode;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "toml")]
mod toml;
#[cfg(feature = "toml")]
mod toml_check;
#[cfg(any(feature = "json", feature = "yaml", feature = "toml"))]
mod unknown;
#[cfg(feature = "yaml")]
mod yaml;
#[cfg(feature = "yaml")]
mod yaml_plain;

/// Keys of a text snapshot that the struct does not know, at any depth,
/// kept so later saves write them back where they were (a downgrade then
/// loses nothing; a typo stays for a person to see and fix).
#[derive(Debug, Default, Clone)]
pub(crate) enum Extras {
    #[default]
    None,
    #[cfg(feature = "json")]
    Json(Vec<unknown::Unknown<serde_json::Value>>),
    #[cfg(feature = "yaml")]
    Yaml(Vec<unknown::Unknown<serde_yaml::Value>>),
    #[cfg(feature = "toml")]
    Toml(Vec<unknown::Unknown<::toml::Value>>),
}

impl Extras {
    /// Each kept key's path in the document (`server.tls_certt`).
    pub(crate) fn paths(&self) -> Vec<String> {
        match self {
            Extras::None => Vec::new(),
            #[cfg(feature = "json")]
            Extras::Json(keys) => keys.iter().map(ToString::to_string).collect(),
            #[cfg(feature = "yaml")]
            Extras::Yaml(keys) => keys.iter().map(ToString::to_string).collect(),
            #[cfg(feature = "toml")]
            Extras::Toml(keys) => keys.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Where a payload failed to parse, relative to the payload's first byte.
#[derive(Debug)]
pub(crate) struct PayloadError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Reads a `T` through `de`, with the paths of the keys the struct does not
/// know (kept as [`Extras`] by the text codecs).
#[cfg(any(feature = "json", feature = "yaml", feature = "toml"))]
fn deserialize_noting_unknown<'de, T, D>(
    de: D,
) -> std::result::Result<(T, Vec<Vec<unknown::Ignored>>), D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    let mut unknown = Vec::new();
    let state = serde_ignored::deserialize(de, |ignored| {
        unknown.push(unknown::ignored_path(&ignored));
    })?;
    Ok((state, unknown))
}

/// The bytes of a text file without a UTF-8 byte-order mark (which editors
/// on Windows put first).
#[cfg(any(feature = "json", feature = "yaml", feature = "toml"))]
fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A format whose feature is enabled, and for an encrypted store what
/// seals its files (`crypt`).
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    format: Format,
    crypt: Option<Arc<Crypt>>,
}

impl Codec {
    /// The codec for `format`, or [`Error::FormatNotEnabled`].
    pub(crate) fn new(format: Format, path: &Path) -> Result<Codec> {
        let enabled = match format {
            Format::Json => cfg!(feature = "json"),
            Format::Yaml => cfg!(feature = "yaml"),
            Format::Toml => cfg!(feature = "toml"),
            Format::Bincode => cfg!(feature = "bincode"),
        };
        let codec = Codec {
            format,
            crypt: None,
        };
        if enabled {
            Ok(codec)
        } else {
            Err(codec.not_enabled(path))
        }
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// This codec, sealing every file with `crypt`.
    pub(crate) fn sealed(mut self, crypt: Arc<Crypt>) -> Codec {
        self.crypt = Some(crypt);
        self
    }

    /// What seals the store's files, if it is encrypted.
    pub(crate) fn crypt(&self) -> Option<&Crypt> {
        self.crypt.as_deref()
    }

    /// The plaintext of snapshot `bytes`: opened when the store is
    /// encrypted. An encrypted file without a key, or a plain one with a
    /// key, is an error.
    fn snapshot_plaintext<'a>(&self, path: &Path, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        match (&self.crypt, crypt::is_sealed(bytes)) {
            (None, false) => Ok(Cow::Borrowed(bytes)),
            (Some(crypt), true) => Ok(Cow::Owned(crypt.open_snapshot(path, bytes)?)),
            (None, true) => Err(Error::Encrypted {
                path: path.to_path_buf(),
            }),
            (Some(_), false) => Err(Error::NotEncrypted {
                path: path.to_path_buf(),
            }),
        }
    }

    /// Reads a snapshot. Never returns a default in place of a bad file.
    pub(crate) fn decode_snapshot<T: Persisted>(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(T, Extras)> {
        let plain = self.snapshot_plaintext(path, bytes)?;
        let bytes = &plain[..];
        match self.format {
            #[cfg(feature = "json")]
            Format::Json => json::decode_snapshot(path, bytes),
            #[cfg(feature = "yaml")]
            Format::Yaml => yaml::decode_snapshot(path, bytes),
            #[cfg(feature = "toml")]
            Format::Toml => toml::decode_snapshot(path, bytes),
            #[cfg(feature = "bincode")]
            Format::Bincode => Ok((bincode::decode_snapshot(path, bytes)?, Extras::None)),
            #[allow(unreachable_patterns)]
            _ => Err(self.not_enabled(path)),
        }
    }

    /// Writes a whole snapshot into `out` (cleared first), sealed when the
    /// store is encrypted.
    pub(crate) fn encode_snapshot<T: Persisted>(
        &self,
        path: &Path,
        state: &T,
        extras: &Extras,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(crypt) = &self.crypt {
            let mut plain = zeroize::Zeroizing::new(Vec::new());
            self.encode_plain_snapshot(path, state, extras, &mut plain)?;
            crypt.seal_snapshot(&plain, out);
            return Ok(());
        }
        self.encode_plain_snapshot(path, state, extras, out)
    }

    fn encode_plain_snapshot<T: Persisted>(
        &self,
        path: &Path,
        state: &T,
        extras: &Extras,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.clear();
        match self.format {
            #[cfg(feature = "json")]
            Format::Json => json::encode_snapshot(path, state, extras, out),
            #[cfg(feature = "yaml")]
            Format::Yaml => yaml::encode_snapshot(path, state, extras, out),
            #[cfg(feature = "toml")]
            Format::Toml => toml::encode_snapshot(path, state, extras, out),
            #[cfg(feature = "bincode")]
            Format::Bincode => bincode::encode_snapshot(path, state, out),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (state, extras);
                Err(self.not_enabled(path))
            }
        }
    }

    /// Appends a record payload to `out`; text payloads end with `\n`.
    pub(crate) fn encode_payload(
        &self,
        path: &Path,
        payload: &Payload<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match self.format {
            #[cfg(feature = "json")]
            Format::Json => json::encode_payload(payload, out).map_err(|e| Error::encode(path, e)),
            #[cfg(feature = "yaml")]
            Format::Yaml => yaml::encode_payload(payload, out).map_err(|e| Error::encode(path, e)),
            #[cfg(feature = "toml")]
            Format::Toml => toml::encode_payload(path, payload, out),
            #[cfg(feature = "bincode")]
            Format::Bincode => {
                bincode::encode_payload(payload, out).map_err(|e| Error::encode(path, e))
            }
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (payload, out);
                Err(self.not_enabled(path))
            }
        }
    }

    /// Applies a verified payload to `state`.
    pub(crate) fn replay_payload<T: Persisted>(
        &self,
        payload: &[u8],
        state: &mut T,
    ) -> std::result::Result<(), PayloadError> {
        match self.format {
            #[cfg(feature = "json")]
            Format::Json => json::replay_payload(payload, state),
            #[cfg(feature = "yaml")]
            Format::Yaml => yaml::replay_payload(payload, state),
            #[cfg(feature = "toml")]
            Format::Toml => toml::replay_payload(payload, state),
            #[cfg(feature = "bincode")]
            Format::Bincode => bincode::replay_payload(payload, state),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (payload, state);
                Err(PayloadError {
                    line: 0,
                    column: 0,
                    message: "format not enabled".into(),
                })
            }
        }
    }

    /// Encodes one value compactly, to tell whether a field changed when its
    /// type has no `PartialEq`.
    pub(crate) fn encode_value(
        &self,
        path: &Path,
        value: &dyn erased_serde::Serialize,
    ) -> Result<Vec<u8>> {
        struct One<'a>(&'a dyn erased_serde::Serialize);
        impl Changes for One<'_> {
            fn len(&self) -> usize {
                1
            }
            fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
                emit(Op::Set, 0, self.0)
            }
        }
        let mut out = Vec::new();
        let payload = Payload {
            fields: &[],
            changes: &One(value),
        };
        match self.format {
            // Compared, not written: TOML's checks run when a value is
            // committed, and an old value that fails them must not stop
            // the commit that replaces it.
            #[cfg(feature = "toml")]
            Format::Toml => toml::encode_value(path, &payload, &mut out)?,
            _ => self.encode_payload(path, &payload, &mut out)?,
        }
        Ok(out)
    }

    /// Text formats keep their journal readable by a person (a TOML
    /// store's journal is JSON lines).
    pub(crate) fn is_text(&self) -> bool {
        !matches!(self.format, Format::Bincode)
    }

    fn not_enabled(&self, path: &Path) -> Error {
        Error::FormatNotEnabled {
            path: path.to_path_buf(),
            format: self.format,
            feature: self.format.feature(),
        }
    }
}

/// A parser's message as [`Error::Parse`] shows it: without a trailing
/// " at line L column C" that repeats the position the error reports in
/// fields of its own, and with a hint for the mistakes people make most.
#[allow(dead_code)]
pub(crate) fn tidy_message(message: String, line: usize, column: usize) -> String {
    let suffix = format!(" at line {line} column {column}");
    let message = match message.strip_suffix(&suffix) {
        Some(rest) => rest.to_string(),
        // A position of another mark (libyaml's "while parsing ... at line")
        // says where the problem began: keep the whole message.
        None => message,
    };
    match hint(&message) {
        Some(hint) => format!("{message} ({hint})"),
        None => message,
    }
}

/// Advice for a parse error that has a common cause.
fn hint(message: &str) -> Option<&'static str> {
    if message.contains("missing field `") {
        return Some(
            "if the field was renamed, mark it `#[serde(alias = \"old_name\")]` so that files \
             written before keep their value; if it is new to the struct, mark it \
             `#[serde(default)]` so that files written before it still open",
        );
    }
    const YAML_11_BOOLEANS: [&str; 8] = ["yes", "no", "on", "off", "y", "n", "Yes", "No"];
    if message.contains("expected a boolean")
        && YAML_11_BOOLEANS
            .iter()
            .any(|word| message.contains(&format!("string \"{word}\"")))
    {
        return Some(
            "YAML 1.2 booleans are `true` and `false`; `yes`, `no`, `on` and `off` are strings",
        );
    }
    None
}

/// Checks a bincode snapshot's header, length and checksum (its payload
/// needs the type to decode).
pub(crate) fn check_bincode_snapshot(path: &Path, bytes: &[u8]) -> Result<()> {
    #[cfg(feature = "bincode")]
    {
        bincode::check_snapshot(path, bytes).map(drop)
    }
    #[cfg(not(feature = "bincode"))]
    {
        let _ = bytes;
        Codec::new(Format::Bincode, path).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_and_a_yaml_11_boolean_get_hints() {
        let missing = tidy_message("missing field `retries` at line 1 column 2".into(), 1, 2);
        assert!(missing.starts_with("missing field `retries` (if the field was renamed"));
        assert!(
            missing.contains("#[serde(alias = \"old_name\")]"),
            "{missing}"
        );
        assert!(missing.contains("#[serde(default)]"), "{missing}");
        let yes = tidy_message(
            "verbose: invalid type: string \"yes\", expected a boolean".into(),
            2,
            10,
        );
        assert!(yes.contains("`true` and `false`"), "{yes}");
        let other = tidy_message("trailing comma at line 3 column 1".into(), 3, 1);
        assert_eq!(other, "trailing comma");
    }
}
