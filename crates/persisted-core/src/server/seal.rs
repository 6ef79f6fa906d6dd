//! Encryption of a server store (Redis, PostgreSQL): field names stay
//! readable, each field's value is sealed.
//!
//! * The store's data key lives wrapped in an envelope (the 120 bytes a
//!   file store starts with, `crypt/mod.rs`), kept as base64 beside the
//!   version (`enc` in Redis's `{P}:meta`, the `envelope` column in
//!   PostgreSQL).
//! * A field's value is its JSON sealed with AAD = the store's id and the
//!   field's name (so a value cannot be moved to another field or store),
//!   kept as a JSON string of base64: `"set port": "q2v…"`.
//! * A collection field then travels as one value: a `push` sends the
//!   whole list sealed, O(the field) per commit where a plain store sends
//!   O(the change). The log's records hold the same sealed values, so the
//!   history is encrypted too.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value as Json;

use crate::change::{Changes, FieldOf, Payload};
use crate::collection::Op;
use crate::crypt::{Crypt, Key};
use crate::error::{Error, Result};
use crate::format::Codec;
use crate::schema::{FieldSpec, Persisted};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The crypt of a store whose envelope on the server is `stored`, opened
/// with `key`; `exists`: the store has had its first commit.
///
/// # Errors
///
/// [`Error::Encrypted`] without a key, [`Error::WrongKey`] for another,
/// [`Error::NotEncrypted`] for a key given to an existing plain store.
pub(crate) fn unlock(
    target: &Path,
    stored: Option<&str>,
    key: Option<&Key>,
    exists: bool,
) -> Result<Option<Crypt>> {
    match (stored, key) {
        (Some(envelope), Some(key)) => {
            Crypt::unlock(key, target, &decode_envelope(target, envelope)?).map(Some)
        }
        (Some(_), None) => Err(Error::Encrypted {
            path: target.to_path_buf(),
        }),
        (None, Some(_)) if exists => Err(Error::NotEncrypted {
            path: target.to_path_buf(),
        }),
        (None, Some(key)) => Crypt::create(key, target).map(Some),
        (None, None) => Ok(None),
    }
}

/// Checks that the envelope read again (a reload) is still this store's
/// data key's: a store deleted and made anew under the same name has
/// another, and its values would not open.
pub(crate) fn check_same(target: &Path, crypt: &Crypt, stored: Option<&str>) -> Result<()> {
    let same = match stored {
        Some(envelope) => crypt.same_store(&decode_envelope(target, envelope)?),
        None => false,
    };
    if same {
        return Ok(());
    }
    Err(Error::Remote {
        path: target.to_path_buf(),
        op: "read",
        message: "the store was deleted and made again (another data key, or none): reopen it"
            .into(),
    })
}

fn decode_envelope(target: &Path, text: &str) -> Result<Vec<u8>> {
    BASE64
        .decode(text)
        .map_err(|_| crate::crypt::damaged(target))
}

/// The envelope as the server keeps it.
pub(crate) fn envelope_text(crypt: &Crypt) -> String {
    BASE64.encode(crypt.envelope())
}

/// Where a value that does not open was read.
/// (The error quotes the whole path, so the place is given unquoted.)
fn at(target: &Path, place: &str) -> PathBuf {
    PathBuf::from(format!("{}: {}", target.display(), place.replace('`', "")))
}

/// A commit's changes as each changed field's new value, sealed: what an
/// encrypted server store sends and logs in place of the operations.
pub(crate) struct SealedChanges {
    values: Vec<(usize, String)>,
}

impl SealedChanges {
    /// Seals the fields `changes` touch, with their values after the
    /// changes (`applied`: `state` holds them already; otherwise they are
    /// applied to a copy of the touched fields only, so a commit costs
    /// O(the fields it changes), not O(the state)).
    pub(crate) fn of<T: Persisted>(
        crypt: &Crypt,
        target: &Path,
        fields: &'static [FieldSpec],
        changes: &dyn Changes,
        state: &T,
        applied: bool,
    ) -> Result<SealedChanges> {
        let mut touched: Vec<usize> = Vec::new();
        changes.each(&mut |_, index, _| {
            if !touched.contains(&index) {
                touched.push(index);
            }
        });
        let mut partial;
        let after = if applied {
            state
        } else {
            partial = T::default();
            for &index in &touched {
                let value = serde_json::to_vec(&FieldOf(state, index))
                    .map_err(|e| Error::encode(target, e))?;
                partial
                    .__deserialize_field(index, &mut serde_json::Deserializer::from_slice(&value))
                    .map_err(|e| Error::encode(target, e))?;
            }
            let record = serde_json::to_vec(&Payload { fields, changes })
                .map_err(|e| Error::encode(target, e))?;
            Codec::new(crate::options::Format::Json, target)?
                .replay_payload(&record, &mut partial)
                .map_err(|e| Error::encode(target, e.message))?;
            &partial
        };
        let mut values = Vec::with_capacity(touched.len());
        for index in touched {
            let name = fields.get(index).map_or("", |f| f.name);
            let plain =
                serde_json::to_vec(&FieldOf(after, index)).map_err(|e| Error::encode(target, e))?;
            values.push((index, BASE64.encode(crypt.seal_value(name, &plain))));
        }
        Ok(SealedChanges { values })
    }
}

impl Changes for SealedChanges {
    fn len(&self) -> usize {
        self.values.len()
    }

    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        for (index, sealed) in &self.values {
            emit(Op::Set, *index, sealed);
        }
    }
}

/// The plain value of field `name`, read as `value` (a sealed value's
/// base64 string) at `place`.
///
/// # Errors
///
/// [`Error::Decrypt`] when it is not a sealed value of this store's field
/// `name` (written in plain text, moved from another field, or tampered
/// with).
pub(crate) fn open_value(
    crypt: &Crypt,
    target: &Path,
    place: &str,
    name: &str,
    value: &Json,
) -> Result<Json> {
    let fail = || Error::Decrypt {
        path: at(target, &format!("{place}, field {name}")),
        offset: 0,
    };
    let Json::String(text) = value else {
        return Err(fail());
    };
    let sealed = BASE64.decode(text).map_err(|_| fail())?;
    let plain = crypt.open_value(name, &sealed).ok_or_else(fail)?;
    serde_json::from_slice(&plain).map_err(|_| fail())
}

/// Opens the sealed values of the fields `T` has in `object` (a store's
/// fields as read); members `T` does not know are left as they are.
pub(crate) fn open_object<T: Persisted>(
    crypt: &Crypt,
    target: &Path,
    place: &str,
    object: &mut serde_json::Map<String, Json>,
) -> Result<()> {
    for spec in T::__FIELDS {
        if let Some(value) = object.get_mut(spec.name) {
            *value = open_value(crypt, target, place, spec.name, value)?;
        }
    }
    Ok(())
}

/// A log record ready to replay: as it is for a plain store, with its
/// sealed values opened (`"set port": 8080`) for one encrypted with
/// `crypt`. `place` says where it was read, for errors.
///
/// # Errors
///
/// [`Error::Decrypt`] for a value that does not open;
/// [`Error::Parse`] for a record that is not a JSON object.
pub(crate) fn open_record<'r>(
    crypt: Option<&Crypt>,
    target: &Path,
    place: impl FnOnce() -> String,
    record: &'r str,
) -> Result<Cow<'r, str>> {
    let Some(crypt) = crypt else {
        return Ok(Cow::Borrowed(record));
    };
    let place = place();
    let place = place.as_str();
    let Ok(Json::Object(mut map)) = serde_json::from_str::<Json>(record) else {
        return Err(Error::Parse {
            path: target.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("{place}: not a JSON object"),
        });
    };
    for (key, value) in map.iter_mut() {
        let name = key.split_once(' ').map_or(key.as_str(), |(_, f)| f);
        *value = open_value(crypt, target, place, name, value)?;
    }
    Ok(Cow::Owned(Json::Object(map).to_string()))
}
