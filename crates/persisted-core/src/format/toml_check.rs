//! What a TOML snapshot cannot hold, found before anything is written.
//!
//! TOML has no null and no unit, and its integers are `i64`. The `toml`
//! crate refuses a `None` in a list or a unit without saying where, and it
//! quietly leaves out a `None` map value (the key is gone at the next open)
//! and writes integers past `i64` that TOML readers refuse. This walk over
//! a value's serde form (no allocation unless it fails) reports each of
//! them with the path to the value. A `None` struct field is fine: it is
//! left out, and a missing `Option` field reads back as `None`.

use std::fmt;

use serde::ser::{self, Serialize};

/// A value TOML cannot hold, and where it is.
#[derive(Debug)]
pub(super) struct Unfit {
    /// Path segments, innermost first: `.field`, `[3]`, `["key"]`.
    path: Vec<String>,
    message: String,
}

impl Unfit {
    fn new(message: impl Into<String>) -> Unfit {
        Unfit {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn within(mut self, segment: String) -> Unfit {
        self.path.push(segment);
        self
    }

    /// The same problem, in field `name` of the state.
    pub(super) fn in_field(self, name: &str) -> Unfit {
        self.within(format!(".{name}"))
    }

    /// The problem without the path.
    pub(super) fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        f.write_str("`")?;
        for (i, segment) in self.path.iter().rev().enumerate() {
            let segment = match segment.strip_prefix('.') {
                Some(name) if i == 0 => name,
                _ => segment,
            };
            f.write_str(segment)?;
        }
        write!(f, "`: {}", self.message)
    }
}

impl std::error::Error for Unfit {}

impl ser::Error for Unfit {
    fn custom<M: fmt::Display>(message: M) -> Unfit {
        Unfit::new(message.to_string())
    }
}

const NO_NULL: &str =
    "TOML has no null: a `None` in a list, a map or a `Some` cannot be written (a `None` field is left out)";
const NO_UNIT: &str = "TOML has no unit value `()`";

/// Checks a whole state: its fields (or, for a struct serialized as a map,
/// its entries) may be `None`.
pub(super) fn state<T: Serialize + ?Sized>(value: &T) -> Result<(), Unfit> {
    value.serialize(Check {
        none_ok: true,
        unit_ok: false,
        root: true,
    })
}

/// Checks the new value of a struct field.
pub(super) fn field(value: &dyn erased_serde::Serialize) -> Result<(), Unfit> {
    erased_serde::serialize(
        value,
        Check {
            none_ok: true,
            unit_ok: false,
            root: false,
        },
    )
}

/// Checks an operation's argument (an element, a `[key, value]` pair, a
/// list of elements); a unit argument means "none" and is fine.
pub(super) fn argument(value: &dyn erased_serde::Serialize) -> Result<(), Unfit> {
    erased_serde::serialize(
        value,
        Check {
            none_ok: false,
            unit_ok: true,
            root: false,
        },
    )
}

/// The checking serializer, for a value in one place.
#[derive(Clone, Copy)]
struct Check {
    /// A `None` here is left out without loss (a struct field).
    none_ok: bool,
    /// A unit here stands for "no argument".
    unit_ok: bool,
    /// The top of a snapshot: map entries are fields.
    root: bool,
}

/// A value inside a list or a map, or a variant's payload.
const INNER: Check = Check {
    none_ok: false,
    unit_ok: false,
    root: false,
};

/// A struct field's value.
const FIELD: Check = Check {
    none_ok: true,
    unit_ok: false,
    root: false,
};

fn integer<N: TryInto<i64> + fmt::Display + Copy>(n: N) -> Result<(), Unfit> {
    match n.try_into() {
        Ok(_) => Ok(()),
        Err(_) => Err(Unfit::new(format!(
            "{n} is outside TOML's integer range (i64); store it as a string"
        ))),
    }
}

/// A map key as a path segment, `["key"]` (rendered only on failure).
fn key_segment<K: Serialize + ?Sized>(key: &K) -> String {
    match serde_json::to_string(key) {
        Ok(key) => format!("[{key}]"),
        Err(_) => "[?]".to_string(),
    }
}

/// Serializer methods for values TOML holds as they are.
macro_rules! fine {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Result<(), Unfit> {
            Ok(())
        })*
    };
}

impl ser::Serializer for Check {
    type Ok = ();
    type Error = Unfit;
    type SerializeSeq = Elements;
    type SerializeTuple = Elements;
    type SerializeTupleStruct = Elements;
    type SerializeTupleVariant = Elements;
    type SerializeMap = Entries;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Fields;

    fine! {
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_char: char,
        serialize_str: &str,
        serialize_bytes: &[u8],
    }

    fn serialize_u64(self, n: u64) -> Result<(), Unfit> {
        integer(n)
    }

    fn serialize_i128(self, n: i128) -> Result<(), Unfit> {
        integer(n)
    }

    fn serialize_u128(self, n: u128) -> Result<(), Unfit> {
        integer(n)
    }

    fn serialize_none(self) -> Result<(), Unfit> {
        if self.none_ok {
            Ok(())
        } else {
            Err(Unfit::new(NO_NULL))
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unfit> {
        value.serialize(INNER)
    }

    fn serialize_unit(self) -> Result<(), Unfit> {
        if self.unit_ok {
            Ok(())
        } else {
            Err(Unfit::new(NO_UNIT))
        }
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unfit> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Unfit> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unfit> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unfit> {
        value
            .serialize(INNER)
            .map_err(|e| e.within(format!(".{variant}")))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Elements, Unfit> {
        Ok(Elements { index: 0 })
    }

    fn serialize_tuple(self, _: usize) -> Result<Elements, Unfit> {
        Ok(Elements { index: 0 })
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Elements, Unfit> {
        Ok(Elements { index: 0 })
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Elements, Unfit> {
        Ok(Elements { index: 0 })
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Entries, Unfit> {
        Ok(Entries {
            values: if self.root { FIELD } else { INNER },
            key: None,
        })
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields, Unfit> {
        Ok(Fields)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Fields, Unfit> {
        Ok(Fields)
    }
}

/// The elements of a list, a tuple or a tuple variant.
struct Elements {
    index: usize,
}

impl Elements {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unfit> {
        let index = self.index;
        self.index += 1;
        value
            .serialize(INNER)
            .map_err(|e| e.within(format!("[{index}]")))
    }
}

/// The four element-wise traits, all through [`Elements::element`].
macro_rules! elements {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Elements {
            type Ok = ();
            type Error = Unfit;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unfit> {
                self.element(value)
            }
            fn end(self) -> Result<(), Unfit> {
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The entries of a map (keys are the `toml` crate's to check: it refuses
/// the ones TOML cannot hold).
struct Entries {
    values: Check,
    /// The key of an entry given in two calls, as a path segment.
    key: Option<String>,
}

impl ser::SerializeMap for Entries {
    type Ok = ();
    type Error = Unfit;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unfit> {
        // Rare: maps and flattened structs give both at once (below).
        self.key = Some(key_segment(key));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unfit> {
        let key = self.key.take();
        value
            .serialize(self.values)
            .map_err(|e| e.within(key.unwrap_or_else(|| "[?]".to_string())))
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Unfit> {
        value
            .serialize(self.values)
            .map_err(|e| e.within(key_segment(key)))
    }

    fn end(self) -> Result<(), Unfit> {
        Ok(())
    }
}

/// The fields of a struct or a struct variant.
struct Fields;

impl Fields {
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Unfit> {
        value
            .serialize(FIELD)
            .map_err(|e| e.within(format!(".{name}")))
    }
}

macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Fields {
            type Ok = ();
            type Error = Unfit;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<(), Unfit> {
                self.field(name, value)
            }
            fn end(self) -> Result<(), Unfit> {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Inner {
        maybe: Option<u32>,
        list: Vec<Option<u32>>,
    }

    #[derive(Serialize)]
    struct State {
        name: Option<String>,
        map: BTreeMap<String, Option<u32>>,
        inner: Vec<Inner>,
        big: u64,
        unit: Option<()>,
    }

    fn ok_state() -> State {
        State {
            name: None,
            map: [("a".to_string(), Some(1))].into(),
            inner: vec![Inner {
                maybe: None,
                list: vec![Some(1)],
            }],
            big: i64::MAX as u64,
            unit: None,
        }
    }

    #[test]
    fn none_fields_are_fine_at_any_depth() {
        state(&ok_state()).unwrap();
    }

    #[test]
    fn what_toml_cannot_hold_is_reported_with_its_path() {
        let mut s = ok_state();
        s.map.insert("gone".into(), None);
        let e = state(&s).unwrap_err();
        assert_eq!(e.to_string(), format!("`map[\"gone\"]`: {NO_NULL}"));

        let mut s = ok_state();
        s.inner[0].list.push(None);
        let e = state(&s).unwrap_err();
        assert!(e.to_string().starts_with("`inner[0].list[1]`: "), "{e}");

        let mut s = ok_state();
        s.big = i64::MAX as u64 + 1;
        let e = state(&s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`big`: 9223372036854775808 is outside TOML's integer range (i64); \
             store it as a string"
        );

        let mut s = ok_state();
        s.unit = Some(());
        assert_eq!(
            state(&s).unwrap_err().to_string(),
            format!("`unit`: {NO_UNIT}")
        );
        s.unit = None;
        s.name = Some("x".into());
        state(&s).unwrap();
    }

    #[test]
    fn an_argument_may_be_unit_but_not_none() {
        argument(&()).unwrap();
        argument(&("k", 1)).unwrap();
        assert!(argument(&None::<u32>).is_err());
        assert!(argument(&("k", None::<u32>)).is_err());
        field(&None::<u32>).unwrap();
        assert!(field(&Some(None::<u32>)).is_err());
    }
}
