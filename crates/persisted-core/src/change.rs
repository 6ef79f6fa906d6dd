//! What a commit records: a list of changes, each a field and an operation,
//! serialized as one map whose keys are `"<op> <field>"` (`"set last_id"`,
//! `"push processed"`) in every format, and replayed field by field.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::collection::Op;
use crate::schema::{field_index, FieldSpec, Persisted};

/// The changes of one commit, as a visitor: `each` calls `emit` once per
/// change with its operation, field index and value. Values are borrowed
/// from wherever they live (a new field value, a whole new state), so
/// nothing is copied to encode them.
pub(crate) trait Changes {
    /// How many changes `each` emits.
    fn len(&self) -> usize;
    /// Emits every change, in order.
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize));
}

/// The changes of one commit, ready to serialize as a map.
pub(crate) struct Payload<'a> {
    pub(crate) fields: &'static [FieldSpec],
    pub(crate) changes: &'a dyn Changes,
}

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.changes.len()))?;
        let mut result = Ok(());
        self.changes.each(&mut |op, field, value| {
            if result.is_ok() {
                let key = Key {
                    op,
                    name: self.fields.get(field).map_or("", |f| f.name),
                };
                result = map.serialize_entry(&key, value);
            }
        });
        result?;
        map.end()
    }
}

/// A record key, `"<op> <field>"`, written without allocating.
struct Key {
    op: Op,
    name: &'static str,
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{} {}", self.op, self.name))
    }
}

/// Serializes field `index` of a whole state.
pub(crate) struct FieldOf<'a, T>(pub(crate) &'a T, pub(crate) usize);

impl<T: Persisted> Serialize for FieldOf<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.__serialize_field(self.1, serializer)
    }
}

/// Replays one record's changes onto a state.
pub(crate) struct Replay<'s, T> {
    pub(crate) state: &'s mut T,
}

impl<'de, T: Persisted> DeserializeSeed<'de> for Replay<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Persisted> Visitor<'de> for Replay<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of `\"<op> <field>\": value` changes")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::Error as _;
        while let Some(key) = map.next_key::<String>()? {
            let (word, name) = key.split_once(' ').unwrap_or((key.as_str(), ""));
            let op = Op::parse(word)
                .ok_or_else(|| A::Error::custom(format_args!("unknown operation in `{key}`")))?;
            match field_index(T::__FIELDS, name) {
                Some(index) => map.next_value_seed(Apply {
                    state: &mut *self.state,
                    index,
                    op,
                })?,
                None => {
                    // A field removed from the struct: its old changes are
                    // skipped so old journals still open.
                    log::warn!("skipping a journaled change of unknown field `{name}`");
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Apply<'s, T> {
    state: &'s mut T,
    index: usize,
    op: Op,
}

impl<'de, T: Persisted> DeserializeSeed<'de> for Apply<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.op {
            Op::Set => self.state.__deserialize_field(self.index, deserializer),
            op => self.state.__apply_op(self.index, op, deserializer),
        }
    }
}
