//! A fast path for YAML journal payloads whose values are plain scalars
//! (integers, booleans, null, simple strings): it writes `set counter: 42`
//! lines directly, which is what serde_yaml would write, without setting
//! up libyaml's emitter for every commit. Anything it is not sure about —
//! a float, a string that could read back as another type or needs quotes,
//! a list or map — makes it decline, and serde_yaml writes the payload.

use std::fmt;

use serde::ser::{Impossible, Serialize, Serializer};

use crate::change::Payload;
use crate::digits::{push_i64, push_u64};

/// Writes `payload` as plain `key: value` lines; `false` (and `out` as it
/// was) when some key or value is not a plain scalar.
pub(super) fn write_payload(payload: &Payload<'_>, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut ok = payload.changes.len() > 0;
    payload.changes.each(&mut |op, field, value| {
        if !ok {
            return;
        }
        let name = payload.fields.get(field).map_or("", |f| f.name);
        if !is_plain(name) {
            ok = false;
            return;
        }
        out.extend_from_slice(op.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        ok = value.serialize(Plain { out: &mut *out }).is_ok();
        out.push(b'\n');
    });
    if !ok {
        out.truncate(start);
    }
    ok
}

/// A string that YAML reads back as this same string without quotes.
fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') || s.len() > 256 {
        return false;
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b' '))
    {
        return false;
    }
    if s.ends_with(' ') || s.contains("  ") {
        return false;
    }
    // YAML 1.1 readers take these for booleans or null.
    const WORDS: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    s.len() > 5 || !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

#[derive(Debug)]
pub(super) struct NotPlain;

impl fmt::Display for NotPlain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a plain scalar")
    }
}

impl std::error::Error for NotPlain {}

impl serde::ser::Error for NotPlain {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotPlain
    }
}

struct Plain<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! integer {
    ($($method:ident: $ty:ty => $push:ident as $wide:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), NotPlain> {
            $push(self.out, <$wide>::from(v));
            Ok(())
        }
    )*};
}

impl Serializer for Plain<'_> {
    type Ok = ();
    type Error = NotPlain;
    type SerializeSeq = Impossible<(), NotPlain>;
    type SerializeTuple = Impossible<(), NotPlain>;
    type SerializeTupleStruct = Impossible<(), NotPlain>;
    type SerializeTupleVariant = Impossible<(), NotPlain>;
    type SerializeMap = Impossible<(), NotPlain>;
    type SerializeStruct = Impossible<(), NotPlain>;
    type SerializeStructVariant = Impossible<(), NotPlain>;

    integer!(serialize_i8: i8 => push_i64 as i64, serialize_i16: i16 => push_i64 as i64,
             serialize_i32: i32 => push_i64 as i64, serialize_i64: i64 => push_i64 as i64,
             serialize_u8: u8 => push_u64 as u64, serialize_u16: u16 => push_u64 as u64,
             serialize_u32: u32 => push_u64 as u64, serialize_u64: u64 => push_u64 as u64);

    fn serialize_bool(self, v: bool) -> Result<(), NotPlain> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), NotPlain> {
        if !is_plain(v) {
            return Err(NotPlain);
        }
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), NotPlain> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit(self) -> Result<(), NotPlain> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_none(self) -> Result<(), NotPlain> {
        self.serialize_unit()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotPlain> {
        self.serialize_unit()
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotPlain> {
        value.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), NotPlain> {
        self.serialize_str(variant)
    }

    // Everything else goes through serde_yaml.
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_f32(self, _: f32) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_f64(self, _: f64) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_i128(self, _: i128) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_u128(self, _: u128) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotPlain> {
        Err(NotPlain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Changes;
    use crate::collection::Op;
    use crate::schema::FieldSpec;

    struct One<'a>(&'a dyn erased_serde::Serialize);
    impl Changes for One<'_> {
        fn len(&self) -> usize {
            1
        }
        fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
            emit(Op::Set, 0, self.0)
        }
    }

    fn fast(value: &dyn erased_serde::Serialize) -> Option<String> {
        const FIELDS: &[FieldSpec] = &[FieldSpec {
            name: "field",
            aliases: &[],
        }];
        let payload = Payload {
            fields: FIELDS,
            changes: &One(value),
        };
        let mut out = Vec::new();
        write_payload(&payload, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    fn slow(value: &dyn erased_serde::Serialize) -> String {
        let mut map = serde_yaml::Mapping::new();
        map.insert("set field".into(), serde_yaml::to_value(value).unwrap());
        serde_yaml::to_string(&map).unwrap()
    }

    #[test]
    fn the_fast_path_writes_what_serde_yaml_writes_or_declines() {
        let values: Vec<Box<dyn erased_serde::Serialize>> = vec![
            Box::new(42u64),
            Box::new(-7i32),
            Box::new(i64::MIN),
            Box::new(u64::MAX),
            Box::new(0u8),
            Box::new(-128i8),
            Box::new(true),
            Box::new(()),
            Box::new(None::<u8>),
            Box::new("item-42"),
            Box::new("hello world"),
            Box::new("a/b.c_d"),
            Box::new("yes"),
            Box::new("No"),
            Box::new("FALSE"),
            Box::new("falsey"),
            Box::new("12"),
            Box::new("1e3"),
            Box::new(".inf"),
            Box::new("-x"),
            Box::new("a: b"),
            Box::new("a #b"),
            Box::new(" lead"),
            Box::new("trail "),
            Box::new(""),
            Box::new("multi\nline"),
            Box::new("ünïcode"),
            Box::new(1.5f64),
            Box::new(Some(3u8)),
            Box::new(vec![1, 2]),
            Box::new(u128::MAX),
        ];
        let mut taken = 0;
        for value in &values {
            if let Some(fast) = fast(value.as_ref()) {
                assert_eq!(fast, slow(value.as_ref()));
                taken += 1;
            }
        }
        assert_eq!(
            taken, 13,
            "six ints, bool, null, none and four plain strings"
        );
    }
}
