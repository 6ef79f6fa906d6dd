//! What `#[derive(Persisted)]` generates: hygienic code (it compiles with
//! `struct Result; struct Ok; ...` in scope), a field table with serde's keys
//! and aliases, the accessor traits, and `__field_eq` for types with and
//! without `PartialEq`.

#![allow(clippy::disallowed_names)]

use persisted_state::Persisted as _;

/// serde `with` module used by a field below; outside `hygiene`, whose
/// shadowed `Result` would get in its way.
mod as_string {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(D::Error::custom)
    }
}

mod hygiene {
    #![allow(dead_code, non_camel_case_types)]

    use serde::{Deserialize, Serialize};
    use std::collections::{BTreeMap, HashSet, VecDeque};

    // Everything the generated code might name unqualified, shadowed.
    struct Result;
    struct Ok;
    struct Err;
    struct Vec;
    struct Option;
    struct Some;
    struct None;
    struct Box;
    struct Store;
    struct Transaction;
    struct Field;
    struct FieldSpec;
    struct Persisted;
    struct Serializer;
    struct Deserializer;
    struct FnOnce;
    struct IntoIterator;
    struct DerefMut;
    struct value;
    struct f;

    /// A field type named like the generated methods' generic parameters.
    #[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
    pub struct R(pub u8);

    /// A field type without `PartialEq`.
    #[derive(Serialize, Deserialize, Default, Clone, Debug)]
    pub struct NoEq(pub u8);

    #[derive(persisted_state::Persisted, Serialize, Deserialize, Default, Clone, Debug)]
    #[serde(rename_all = "camelCase")]
    pub struct S {
        /// The last id processed.
        ///
        /// Second paragraph.
        pub last_id: u64,
        pub items: std::vec::Vec<String>,
        pub queue: VecDeque<u8>,
        pub settings: BTreeMap<String, String>,
        pub tags: HashSet<String>,
        pub r#type: u8,
        #[serde(rename = "Explicit", alias = "old_explicit", alias = "older")]
        pub renamed: u8,
        #[serde(default, rename(serialize = "outKey", deserialize = "in_key"))]
        pub split_name: u8,
        #[serde(with = "crate::as_string")]
        pub as_text: u32,
        #[serde(with = "crate::as_string")]
        pub custom_items: u32,
        #[serde(skip)]
        pub cache: u32,
        #[serde(default, skip_serializing)]
        pub write_only: u32,
        #[serde(default, skip_serializing_if = "std::option::Option::is_none")]
        pub maybe: std::option::Option<u8>,
        pub r: R,
        pub no_eq: NoEq,
        pub next: std::option::Option<std::boxed::Box<Self>>,
    }

    /// A second struct in the same module with a field of the same name:
    /// its traits sit beside `S`'s and do not make calls ambiguous.
    #[derive(persisted_state::Persisted, Serialize, Deserialize, Default, Clone)]
    pub struct Other {
        pub last_id: String,
    }
}

mod private_struct {
    //! A private struct whose generated methods are never called must not
    //! warn (this file is built with the test's warnings visible).
    use serde::{Deserialize, Serialize};

    #[derive(persisted_state::Persisted, Serialize, Deserialize, Default, Clone)]
    #[allow(dead_code)] // the struct itself; nothing generated may warn
    struct Unused {
        a: u64,
        v: Vec<u8>,
        m: std::collections::HashMap<u8, u8>,
    }

    #[derive(persisted_state::Persisted, Serialize, Deserialize, Default, Clone)]
    pub struct Empty {}

    #[derive(persisted_state::Persisted, Serialize, Deserialize, Default, Clone)]
    #[allow(dead_code)]
    pub struct AllSkipped {
        #[serde(skip)]
        pub a: u64,
    }
}

use hygiene::{NoEq, OtherStoreExt, SStoreExt, STransactionExt, R, S};

#[test]
fn field_table_holds_serde_keys_and_aliases_in_declaration_order() {
    let table: Vec<(&str, &[&str])> = S::__FIELDS.iter().map(|f| (f.name, f.aliases)).collect();
    let expected: &[(&str, &[&str])] = &[
        ("lastId", &[]),
        ("items", &[]),
        ("queue", &[]),
        ("settings", &[]),
        ("tags", &[]),
        ("type", &[]),
        ("Explicit", &["old_explicit", "older"]),
        ("outKey", &["in_key"]),
        ("asText", &[]),
        ("customItems", &[]),
        // `cache` (skip) and `write_only` (skip_serializing) are not stored.
        ("maybe", &[]),
        ("r", &[]),
        ("noEq", &[]),
        ("next", &[]),
    ];
    assert_eq!(table, expected);
}

#[test]
fn field_table_matches_the_keys_serde_writes() {
    let json = serde_json::to_value(S::default()).unwrap();
    let mut written: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut table: Vec<&str> = S::__FIELDS.iter().map(|f| f.name).collect();
    // `maybe` is None, so `skip_serializing_if` leaves it out.
    table.retain(|name| *name != "maybe");
    written.sort_unstable();
    table.sort_unstable();
    assert_eq!(written, table);
}

#[test]
fn empty_and_fully_skipped_structs_have_empty_tables() {
    assert!(private_struct::Empty::__FIELDS.is_empty());
    assert!(private_struct::AllSkipped::__FIELDS.is_empty());
}

/// Type-checks calls of every generated method; never run.
#[allow(dead_code, unused_must_use)]
fn generated_methods_exist(
    store: &persisted_state::Store<S>,
    tx: &mut persisted_state::Transaction<'_, S>,
    other: &persisted_state::Store<hygiene::Other>,
) {
    let _: u64 = store.last_id();
    let _: String = other.last_id();
    let _: persisted_state::Result<()> = store.set_last_id(1);
    let _: persisted_state::Result<usize> = store.update_items(|items| items.len());
    let _: u8 = store.r#type();
    store.set_type(2);
    let _: R = store.r();
    store.update_r(|r: &mut R| r.0 += 1);

    store.push_items("x".into());
    store.extend_items(["a".to_owned(), "b".to_owned()]);
    let _: persisted_state::Result<Option<String>> = store.pop_items();
    store.clear_items();
    store.push_queue(1);
    store.extend_queue(vec![2, 3]);
    let _: persisted_state::Result<Option<u8>> = store.pop_queue();
    store.clear_queue();

    let _: persisted_state::Result<Option<String>> = store.insert_settings("k".into(), "v".into());
    let _: persisted_state::Result<Option<String>> = store.remove_settings(&"k".to_owned());
    let _: persisted_state::Result<bool> = store.insert_tags("t".into());
    let _: persisted_state::Result<bool> = store.remove_tags(&"t".to_owned());

    // Custom encodings get no collection operations, only get/set/update.
    let _: u32 = store.as_text();
    store.set_custom_items(3);

    let _: Option<Box<S>> = store.next();

    tx.set_last_id(4);
    tx.set_type(5);
    tx.set_items(Vec::new());
    tx.set_no_eq(NoEq(1));
}

#[test]
fn field_eq_uses_partial_eq_when_the_type_has_it() {
    let index = |name: &str| S::__FIELDS.iter().position(|f| f.name == name).unwrap();
    let a = S::default();
    let mut b = S::default();
    assert_eq!(a.__field_eq(&b, index("lastId")), Some(true));
    b.last_id = 1;
    assert_eq!(a.__field_eq(&b, index("lastId")), Some(false));
    assert_eq!(a.__field_eq(&b, index("r")), Some(true));
    assert_eq!(a.__field_eq(&b, index("noEq")), None);
    assert_eq!(a.__field_eq(&b, S::__FIELDS.len()), None);
}

#[test]
fn fields_encode_and_decode_one_at_a_time_with_serde_with() {
    let index = |name: &str| S::__FIELDS.iter().position(|f| f.name == name).unwrap();
    let state = S {
        as_text: 42,
        last_id: 7,
        ..S::default()
    };
    let text = state
        .__serialize_field(index("asText"), serde_json::value::Serializer)
        .unwrap();
    assert_eq!(text, serde_json::json!("42"));
    let id = state
        .__serialize_field(index("lastId"), serde_json::value::Serializer)
        .unwrap();
    assert_eq!(id, serde_json::json!(7));

    let mut decoded = S::default();
    decoded
        .__deserialize_field(index("asText"), serde_json::json!("43"))
        .unwrap();
    decoded
        .__deserialize_field(index("lastId"), serde_json::json!(8))
        .unwrap();
    assert_eq!((decoded.as_text, decoded.last_id), (43, 8));
    assert!(decoded
        .__deserialize_field(S::__FIELDS.len(), serde_json::json!(0))
        .is_err());
}

#[test]
fn only_collection_fields_accept_operations() {
    let index = |name: &str| S::__FIELDS.iter().position(|f| f.name == name).unwrap();
    let mut state = S::default();
    state
        .__apply_op(
            index("items"),
            persisted_state::__private::Op::Push,
            serde_json::json!("x"),
        )
        .unwrap();
    state
        .__apply_op(
            index("settings"),
            persisted_state::__private::Op::Insert,
            serde_json::json!(["k", "v"]),
        )
        .unwrap();
    assert_eq!(state.items, ["x"]);
    assert_eq!(state.settings["k"], "v");
    assert!(state
        .__apply_op(
            index("lastId"),
            persisted_state::__private::Op::Push,
            serde_json::json!(1)
        )
        .is_err());
    // `with` turns the operations off even on a collection type.
    assert!(state
        .__apply_op(
            index("customItems"),
            persisted_state::__private::Op::Push,
            serde_json::json!(1)
        )
        .is_err());
}

#[test]
fn generated_methods_persist_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    {
        let store = S::open(&path).unwrap();
        store.set_last_id(41).unwrap();
        let id = store
            .update_last_id(|id| {
                *id += 1;
                *id
            })
            .unwrap();
        assert_eq!(id, 42);
        store.push_items("a".into()).unwrap();
        store
            .extend_items(["b".to_owned(), "c".to_owned()])
            .unwrap();
        assert_eq!(store.pop_items().unwrap().as_deref(), Some("c"));
        store.insert_settings("k".into(), "v".into()).unwrap();
        assert!(store.insert_tags("t".into()).unwrap());
        store.set_as_text(9).unwrap();
        store.set_type(3).unwrap();
        let mut tx = store.begin();
        tx.set_renamed(5);
        tx.commit().unwrap();
    }
    let store = S::open(&path).unwrap();
    assert_eq!(store.last_id(), 42);
    assert_eq!(store.items(), ["a", "b"]);
    assert_eq!(store.settings().get("k").map(String::as_str), Some("v"));
    assert!(store.tags().contains("t"));
    assert_eq!(store.as_text(), 9);
    assert_eq!(store.r#type(), 3);
    assert_eq!(store.renamed(), 5);
    store.close().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["lastId"], 42);
    assert_eq!(json["asText"], "9");
    assert_eq!(json["Explicit"], 5);
}
