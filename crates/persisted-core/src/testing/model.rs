//! A state type written out by hand the way `#[derive(Persisted)]` writes
//! it (the derive lives in another crate), with a collection field so
//! journaled operations are exercised too.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::collection::{Collection, Op};
#[allow(unused_imports)]
use crate::schema::{EqProbe, Field, FieldSpec, Persisted, ViaFallback as _, ViaPartialEq as _};

#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub(crate) struct Model {
    pub(crate) counter: u64,
    pub(crate) items: Vec<String>,
    pub(crate) a: u64,
    pub(crate) b: u64,
}

macro_rules! field {
    ($marker:ident, $field:ident, $ty:ty, $index:expr) => {
        pub(crate) struct $marker;
        impl Field<Model> for $marker {
            type Value = $ty;
            const INDEX: usize = $index;
            fn get(state: &Model) -> &$ty {
                &state.$field
            }
            fn get_mut(state: &mut Model) -> &mut $ty {
                &mut state.$field
            }
            fn serialize<S: Serializer>(value: &$ty, serializer: S) -> Result<S::Ok, S::Error> {
                value.serialize(serializer)
            }
            fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                <$ty>::deserialize(deserializer)
            }
            fn eq(a: &$ty, b: &$ty) -> Option<bool> {
                (&EqProbe(a, b)).probe_eq()
            }
        }
    };
}

field!(Counter, counter, u64, 0);
field!(Items, items, Vec<String>, 1);
field!(A, a, u64, 2);
field!(B, b, u64, 3);

impl Persisted for Model {
    const __FIELDS: &'static [FieldSpec] = &[
        FieldSpec {
            name: "counter",
            aliases: &[],
        },
        FieldSpec {
            name: "items",
            aliases: &[],
        },
        FieldSpec {
            name: "a",
            aliases: &[],
        },
        FieldSpec {
            name: "b",
            aliases: &[],
        },
    ];

    fn __serialize_field<S: Serializer>(&self, index: usize, s: S) -> Result<S::Ok, S::Error> {
        match index {
            0 => Counter::serialize(&self.counter, s),
            1 => Items::serialize(&self.items, s),
            2 => A::serialize(&self.a, s),
            3 => B::serialize(&self.b, s),
            _ => Err(serde::ser::Error::custom("no such field")),
        }
    }

    fn __deserialize_field<'de, D: Deserializer<'de>>(
        &mut self,
        index: usize,
        d: D,
    ) -> Result<(), D::Error> {
        match index {
            0 => self.counter = Counter::deserialize(d)?,
            1 => self.items = Items::deserialize(d)?,
            2 => self.a = A::deserialize(d)?,
            3 => self.b = B::deserialize(d)?,
            _ => return Err(serde::de::Error::custom("no such field")),
        }
        Ok(())
    }

    fn __apply_op<'de, D: Deserializer<'de>>(
        &mut self,
        index: usize,
        op: Op,
        d: D,
    ) -> Result<(), D::Error> {
        match index {
            1 => self.items.apply_op(op, d),
            _ => Err(serde::de::Error::custom("not a collection")),
        }
    }

    #[allow(clippy::needless_borrow)]
    fn __field_eq(&self, other: &Self, index: usize) -> Option<bool> {
        match index {
            0 => Counter::eq(&self.counter, &other.counter),
            1 => Items::eq(&self.items, &other.items),
            2 => A::eq(&self.a, &other.a),
            3 => B::eq(&self.b, &other.b),
            _ => None,
        }
    }
}
