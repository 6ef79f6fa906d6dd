//! The derive's input, read into what the later stages need: the shape of
//! the item, and per field its key, aliases, kind and generated methods.
//!
//! Reading never fails; whether the input is acceptable is `valid`'s call.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::{
    Data, DeriveInput, Fields, GenericArgument, Generics, Ident, PathArguments, Type, Visibility,
};

use crate::attr::{ContainerAttrs, FieldAttrs};

/// The derive's input.
pub(crate) struct Input<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub generics: &'a Generics,
    pub shape: Shape,
    pub attrs: ContainerAttrs,
    /// The named fields in declaration order, skipped ones included; empty
    /// unless `shape` is [`Shape::Named`].
    pub fields: Vec<FieldAst<'a>>,
}

/// What kind of item the derive is on; all but `Named` are errors. Each
/// holds the tokens (keyword and name) an error points at.
pub(crate) enum Shape {
    Named,
    Tuple(TokenStream),
    Unit(TokenStream),
    Enum(TokenStream),
    Union(TokenStream),
}

/// One named field.
pub(crate) struct FieldAst<'a> {
    /// The field as written, `r#` included (`r#type`).
    pub ident: &'a Ident,
    /// The name without `r#` (`type`): the base of the generated names.
    pub name: String,
    pub ty: &'a Type,
    pub attrs: FieldAttrs,
    /// The key the field is serialized under.
    pub key: String,
    /// Other keys it is read from: serde aliases and a different
    /// deserialize name, in order, without repeats and without `key`.
    pub aliases: Vec<String>,
    pub kind: Kind<'a>,
}

/// Which operations a field gets beyond get/set/update.
pub(crate) enum Kind<'a> {
    Plain,
    /// `Vec<E>`, `VecDeque<E>`: push, extend, pop, clear; a `VecDeque`
    /// (`deque`) also push_front, pop_front.
    Seq {
        elem: &'a Type,
        deque: bool,
    },
    /// `BTreeMap<K, V>`, `HashMap<K, V, S>` (`hashed`): insert, remove.
    Map {
        key: &'a Type,
        value: &'a Type,
        hashed: bool,
    },
    /// `BTreeSet<E>`, `HashSet<E, S>` (`hashed`): insert, remove.
    Set {
        elem: &'a Type,
        hashed: bool,
    },
}

/// A method the derive generates, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    /// On `Store<T>`, through `{Struct}StoreExt`.
    Store,
    /// On `Transaction<'_, T>`, through `{Struct}TransactionExt`.
    Transaction,
}

impl<'a> Input<'a> {
    pub(crate) fn from_syn(input: &'a DeriveInput) -> Self {
        let ident = &input.ident;
        let attrs = ContainerAttrs::from_attrs(&input.attrs);
        let (shape, fields) = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => {
                    let fields = named
                        .named
                        .iter()
                        .filter_map(|field| field.ident.as_ref().map(|ident| (ident, field)))
                        .map(|(ident, field)| FieldAst::new(ident, &field.ty, &field.attrs, &attrs))
                        .collect();
                    (Shape::Named, fields)
                }
                Fields::Unnamed(_) => {
                    let struct_token = data.struct_token;
                    (
                        Shape::Tuple(quote::quote!(#struct_token #ident)),
                        Vec::new(),
                    )
                }
                Fields::Unit => {
                    let struct_token = data.struct_token;
                    (Shape::Unit(quote::quote!(#struct_token #ident)), Vec::new())
                }
            },
            Data::Enum(data) => {
                let enum_token = data.enum_token;
                (Shape::Enum(quote::quote!(#enum_token #ident)), Vec::new())
            }
            Data::Union(data) => {
                let union_token = data.union_token;
                (Shape::Union(quote::quote!(#union_token #ident)), Vec::new())
            }
        };
        Input {
            ident,
            vis: &input.vis,
            generics: &input.generics,
            shape,
            attrs,
            fields,
        }
    }

    /// The fields that are stored: those serde both writes and reads.
    pub(crate) fn persisted_fields(&self) -> impl Iterator<Item = &FieldAst<'a>> {
        self.fields.iter().filter(|field| field.is_persisted())
    }
}

impl<'a> FieldAst<'a> {
    fn new(
        ident: &'a Ident,
        ty: &'a Type,
        attrs: &[syn::Attribute],
        container: &ContainerAttrs,
    ) -> Self {
        let name = ident.unraw().to_string();
        let attrs = FieldAttrs::from_attrs(attrs);

        // serde's `MultiName` + `rename_by_rules`: an explicit rename wins
        // over `rename_all`, per direction.
        let key = match &attrs.rename_serialize {
            Some(key) => key.clone(),
            None => container.rename_all_serialize.apply_to_field(&name),
        };
        let de_names = if attrs.rename_deserialize.is_empty() {
            vec![container.rename_all_deserialize.apply_to_field(&name)]
        } else {
            attrs.rename_deserialize.clone()
        };
        let mut aliases: Vec<String> = Vec::new();
        for alias in de_names.into_iter().chain(attrs.aliases.iter().cloned()) {
            if alias != key && !aliases.contains(&alias) {
                aliases.push(alias);
            }
        }

        let kind = if attrs.has_custom_encoding() {
            // The operations journal elements with their plain serde
            // encoding, which a custom encoding of the whole may not match.
            Kind::Plain
        } else {
            Kind::of(ty)
        };

        FieldAst {
            ident,
            name,
            ty,
            attrs,
            key,
            aliases,
            kind,
        }
    }

    /// serde both serializes and deserializes the field.
    pub(crate) fn is_persisted(&self) -> bool {
        !self.attrs.skip_serializing && !self.attrs.skip_deserializing
    }

    /// The names of the methods generated for this field, with where they
    /// go, getter first. Only meaningful for persisted fields.
    pub(crate) fn generated_methods(&self) -> Vec<(String, Target)> {
        let name = &self.name;
        let mut methods = vec![
            (name.clone(), Target::Store),
            (format!("update_{name}"), Target::Store),
        ];
        let ops: &[&str] = match self.kind {
            Kind::Plain => &["set"],
            Kind::Seq { deque: false, .. } => &["set", "push", "extend", "pop", "clear"],
            Kind::Seq { deque: true, .. } => &[
                "set",
                "push",
                "extend",
                "pop",
                "clear",
                "push_front",
                "pop_front",
            ],
            Kind::Map { .. } | Kind::Set { .. } => &["set", "insert", "remove"],
        };
        for target in [Target::Store, Target::Transaction] {
            methods.extend(ops.iter().map(|op| (format!("{op}_{name}"), target)));
        }
        methods
    }
}

impl<'a> Kind<'a> {
    /// Recognizes a collection by the last segment of its type's path and
    /// takes the element types from its generic arguments.
    fn of(ty: &'a Type) -> Self {
        let ty = strip_groups(ty);
        let Type::Path(path) = ty else {
            return Kind::Plain;
        };
        if path.qself.is_some() {
            return Kind::Plain;
        }
        let Some(last) = path.path.segments.last() else {
            return Kind::Plain;
        };
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return Kind::Plain;
        };
        let types: Vec<&Type> = args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect();
        match (last.ident.to_string().as_str(), types.as_slice()) {
            ("Vec", [elem, ..]) => Kind::Seq { elem, deque: false },
            ("VecDeque", [elem, ..]) => Kind::Seq { elem, deque: true },
            ("BTreeMap", [key, value, ..]) => Kind::Map {
                key,
                value,
                hashed: false,
            },
            ("HashMap", [key, value, ..]) => Kind::Map {
                key,
                value,
                hashed: true,
            },
            ("BTreeSet", [elem, ..]) => Kind::Set {
                elem,
                hashed: false,
            },
            ("HashSet", [elem, ..]) => Kind::Set { elem, hashed: true },
            _ => Kind::Plain,
        }
    }
}

/// `(T)` and the invisible groups of `macro_rules!` expansions, removed.
fn strip_groups(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::parse_quote;

    fn kind_of(ty: Type) -> String {
        match Kind::of(&ty) {
            Kind::Plain => "plain".to_owned(),
            Kind::Seq { elem, .. } => format!("seq {}", elem.to_token_stream()),
            Kind::Map { key, value, .. } => {
                format!("map {} {}", key.to_token_stream(), value.to_token_stream())
            }
            Kind::Set { elem, .. } => format!("set {}", elem.to_token_stream()),
        }
    }

    #[test]
    fn collections_are_recognized_by_the_last_path_segment() {
        assert_eq!(kind_of(parse_quote!(Vec<String>)), "seq String");
        assert_eq!(kind_of(parse_quote!(std::vec::Vec<u8>)), "seq u8");
        assert_eq!(
            kind_of(parse_quote!(::std::collections::VecDeque<(u8, u16)>)),
            "seq (u8 , u16)"
        );
        assert_eq!(
            kind_of(parse_quote!(BTreeMap<String, Vec<u8> >)),
            "map String Vec < u8 >"
        );
        assert_eq!(kind_of(parse_quote!(HashMap<K, V, RandomState>)), "map K V");
        assert_eq!(kind_of(parse_quote!(BTreeSet<u64>)), "set u64");
        assert_eq!(kind_of(parse_quote!(HashSet<u64, S>)), "set u64");
        assert_eq!(kind_of(parse_quote!((Vec<u8>))), "seq u8");
    }

    #[test]
    fn other_types_are_plain() {
        assert_eq!(kind_of(parse_quote!(u64)), "plain");
        assert_eq!(kind_of(parse_quote!(Option<Vec<u8>>)), "plain");
        assert_eq!(kind_of(parse_quote!(Vec)), "plain");
        assert_eq!(kind_of(parse_quote!(HashMap<K>)), "plain");
        assert_eq!(kind_of(parse_quote!(Vec<'static>)), "plain");
        assert_eq!(kind_of(parse_quote!(Vec::<u8>)), "seq u8");
        assert_eq!(kind_of(parse_quote!(<T as Tr>::Vec<u8>)), "plain");
        assert_eq!(kind_of(parse_quote!([u8; 4])), "plain");
        assert_eq!(kind_of(parse_quote!(&'static [u8])), "plain");
    }

    fn fields(input: &DeriveInput) -> Vec<(String, String, Vec<String>)> {
        Input::from_syn(input)
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.key.clone(), f.aliases.clone()))
            .collect()
    }

    fn row(name: &str, key: &str, aliases: &[&str]) -> (String, String, Vec<String>) {
        (
            name.to_owned(),
            key.to_owned(),
            aliases.iter().map(|a| (*a).to_owned()).collect(),
        )
    }

    #[test]
    fn keys_and_aliases_follow_serde() {
        let input: DeriveInput = parse_quote! {
            #[serde(rename_all = "camelCase")]
            struct S {
                last_id: u64,
                #[serde(rename = "Explicit")]
                renamed_field: u64,
                #[serde(alias = "old_name", alias = "older")]
                r#type: u64,
                #[serde(rename(serialize = "out_key", deserialize = "in_key"), alias = "in_key")]
                both_ways: u64,
                #[serde(rename(serialize = "only_out"))]
                only_ser: u64,
            }
        };
        assert_eq!(
            fields(&input),
            [
                row("last_id", "lastId", &[]),
                row("renamed_field", "Explicit", &[]),
                row("type", "type", &["old_name", "older"]),
                row("both_ways", "out_key", &["in_key"]),
                row("only_ser", "only_out", &["onlySer"]),
            ]
        );
    }

    #[test]
    fn rename_all_per_direction() {
        let input: DeriveInput = parse_quote! {
            #[serde(rename_all(serialize = "SCREAMING-KEBAB-CASE"))]
            struct S { last_id: u64, #[serde(alias = "LAST-ID")] next_id: u64 }
        };
        assert_eq!(
            fields(&input),
            [
                row("last_id", "LAST-ID", &["last_id"]),
                row("next_id", "NEXT-ID", &["next_id", "LAST-ID"]),
            ]
        );
    }

    #[test]
    fn skipped_fields_are_read_but_not_persisted() {
        let input: DeriveInput = parse_quote! {
            struct S {
                a: u64,
                #[serde(skip)] b: u64,
                #[serde(skip_serializing)] c: u64,
                #[serde(skip_deserializing)] d: u64,
                #[serde(skip_serializing_if = "is_zero")] e: u64,
            }
        };
        let input = Input::from_syn(&input);
        let names: Vec<_> = input.persisted_fields().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "e"]);
        assert_eq!(input.fields.len(), 5);
    }

    #[test]
    fn custom_encoding_turns_off_collection_operations() {
        let input: DeriveInput = parse_quote! {
            struct S {
                #[serde(with = "m")] a: Vec<u8>,
                #[serde(serialize_with = "f")] b: Vec<u8>,
                #[serde(deserialize_with = "g")] c: Vec<u8>,
                d: Vec<u8>,
            }
        };
        let input = Input::from_syn(&input);
        let seq: Vec<_> = input
            .fields
            .iter()
            .map(|f| matches!(f.kind, Kind::Seq { .. }))
            .collect();
        assert_eq!(seq, [false, false, false, true]);
    }

    #[test]
    fn generated_method_names() {
        let input: DeriveInput = parse_quote! {
            struct S { r#type: u8, items: Vec<u8>, map: HashMap<u8, u8>, set: HashSet<u8>, queue: VecDeque<u8> }
        };
        let input = Input::from_syn(&input);
        let names = |i: usize| -> Vec<String> {
            input.fields[i]
                .generated_methods()
                .into_iter()
                .map(|(name, target)| format!("{target:?}::{name}"))
                .collect()
        };
        assert_eq!(
            names(0),
            [
                "Store::type",
                "Store::update_type",
                "Store::set_type",
                "Transaction::set_type"
            ]
        );
        let ops = [
            "set_items",
            "push_items",
            "extend_items",
            "pop_items",
            "clear_items",
        ];
        let mut expected = vec!["Store::items".to_owned(), "Store::update_items".to_owned()];
        for target in ["Store", "Transaction"] {
            expected.extend(ops.iter().map(|op| format!("{target}::{op}")));
        }
        assert_eq!(names(1), expected);
        assert_eq!(names(2)[3..5], ["Store::insert_map", "Store::remove_map"]);
        assert_eq!(
            names(2)[6..],
            ["Transaction::insert_map", "Transaction::remove_map"]
        );
        assert_eq!(names(3)[3..5], ["Store::insert_set", "Store::remove_set"]);
        assert!(names(4).contains(&"Store::pop_front_queue".to_owned()));
        assert!(names(4).contains(&"Transaction::push_front_queue".to_owned()));
    }

    #[test]
    fn shapes() {
        let shape = |input: DeriveInput| match Input::from_syn(&input).shape {
            Shape::Named => "named",
            Shape::Tuple(_) => "tuple",
            Shape::Unit(_) => "unit",
            Shape::Enum(_) => "enum",
            Shape::Union(_) => "union",
        };
        assert_eq!(
            shape(parse_quote!(
                struct S {
                    a: u8,
                }
            )),
            "named"
        );
        assert_eq!(
            shape(parse_quote!(
                struct S {}
            )),
            "named"
        );
        assert_eq!(
            shape(parse_quote!(
                struct S(u8);
            )),
            "tuple"
        );
        assert_eq!(
            shape(parse_quote!(
                struct S;
            )),
            "unit"
        );
        assert_eq!(
            shape(parse_quote!(
                enum S {
                    A,
                }
            )),
            "enum"
        );
        assert_eq!(shape(parse_quote!(union S { a: u8 })), "union");
    }
}
