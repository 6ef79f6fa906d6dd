//! Every rule the input must follow. Each mistake is a `syn::Error` on the
//! tokens at fault that says what to do; all of them are reported at once.

use std::collections::BTreeMap;

use quote::ToTokens;
use syn::{Error, Result};

use crate::ast::{FieldAst, Input, Shape, Target};

/// Methods of `Store<T>` a generated method must not shadow or be shadowed
/// by: the public API, the hidden methods the generated code calls, and
/// prelude trait methods callable on `&Store<T>` (`clone`, `into`, ...).
const STORE_METHODS: &[&str] = &[
    "read",
    "get",
    "update",
    "begin",
    "transaction",
    "commit",
    "compact",
    "close",
    "recovery",
    "is_poisoned",
    "refresh",
    "history",
    "state_at",
    "state_as_of",
    "clone",
    "clone_into",
    "into",
    "try_into",
    "to_owned",
    "__get",
    "__set",
    "__update",
    "__push",
    "__push_front",
    "__extend",
    "__pop",
    "__pop_front",
    "__clear",
    "__map_insert",
    "__map_remove",
    "__set_insert",
    "__set_remove",
];

/// Methods of `Transaction<'_, T>` a generated method must not collide with.
const TRANSACTION_METHODS: &[&str] = &[
    "commit",
    "rollback",
    "__set",
    "__push",
    "__push_front",
    "__extend",
    "__pop",
    "__pop_front",
    "__clear",
    "__map_insert",
    "__map_remove",
    "__set_insert",
    "__set_remove",
];

/// Checks every rule; the error combines all mistakes found.
pub(crate) fn check(input: &Input) -> Result<()> {
    let mut errors = Errors::default();
    check_shape(input, &mut errors);
    check_generics(input, &mut errors);
    check_container_attrs(input, &mut errors);
    // Field by field, so the errors come in source order.
    let mut methods = MethodNames::default();
    for field in &input.fields {
        check_field_attrs(field, &mut errors);
        if field.is_persisted() {
            methods.check(field, &mut errors);
        }
    }
    errors.finish()
}

/// Collects errors in the order found.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(Error::new_spanned(tokens, message));
    }

    fn finish(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn check_shape(input: &Input, errors: &mut Errors) {
    let name = input.ident;
    let (tokens, what) = match &input.shape {
        Shape::Named => return,
        Shape::Tuple(tokens) => (tokens, "tuple structs"),
        Shape::Unit(tokens) => (tokens, "unit structs"),
        Shape::Enum(tokens) => (tokens, "enums"),
        Shape::Union(tokens) => (tokens, "unions"),
    };
    let hint = match &input.shape {
        Shape::Tuple(_) => format!(
            "name the fields: `struct {name} {{ first: A, second: B }}` instead of `struct {name}(A, B);`"
        ),
        Shape::Unit(_) => format!(
            "give it named fields: `struct {name} {{ field: Type }}`"
        ),
        Shape::Enum(_) | Shape::Union(_) => format!(
            "derive it on a struct with a field of this type instead, \
             e.g. `#[derive(Persisted)] struct Saved {{ value: {name} }}`"
        ),
        Shape::Named => unreachable!("returned above"),
    };
    errors.spanned(
        tokens,
        format!("`#[derive(Persisted)]` works on structs with named fields, not on {what}; {hint}"),
    );
}

fn check_generics(input: &Input, errors: &mut Errors) {
    let generics = input.generics;
    if generics.params.is_empty() {
        return;
    }
    errors.spanned(
        generics,
        format!(
            "persisted does not support generic structs yet; \
             use concrete types for the fields of `{}` (a type alias or a non-generic wrapper struct \
             can hold one instantiation), and remove the lifetime, type and const parameters",
            input.ident,
        ),
    );
}

fn check_container_attrs(input: &Input, errors: &mut Errors) {
    for option in &input.attrs.unsupported {
        let (written, how) = match option.name.as_str() {
            "transparent" => ("transparent".to_owned(), "remove `transparent`"),
            name => (
                format!("{name} = \"...\""),
                "remove it and convert outside the stored struct",
            ),
        };
        errors.spanned(
            &option.tokens,
            format!(
                "`#[serde({written})]` is not supported by `#[derive(Persisted)]`: the store reads and \
                 writes the struct field by field, so it must serialize as its own fields; {how}",
            ),
        );
    }
    for attr in &input.attrs.persisted {
        errors.spanned(attr, persisted_attr_message());
    }
}

fn check_field_attrs(field: &FieldAst, errors: &mut Errors) {
    if let Some(span) = field.attrs.flatten {
        errors.push(Error::new(
            span,
            format!(
                "`#[serde(flatten)]` is not supported by `#[derive(Persisted)]`: each field is stored \
                 under its own key; remove `flatten` to store `{}` as one nested value, or move the \
                 inner struct's fields into this struct",
                field.name,
            ),
        ));
    }
    for attr in &field.attrs.persisted {
        errors.spanned(attr, persisted_attr_message());
    }
}

fn persisted_attr_message() -> &'static str {
    "`#[persisted(...)]` has no options yet; remove this attribute \
     (serde's own attributes, e.g. `#[serde(rename = \"...\")]`, are honoured)"
}

/// A generated method must not collide with a `Store`/`Transaction` method
/// (the inherent one would win and the generated one be unreachable) nor
/// with another generated method of the same struct (two methods with one
/// name in one trait).
#[derive(Default)]
struct MethodNames<'a> {
    /// Each generated method so far, with the field it is generated for.
    taken: BTreeMap<(String, Target), &'a FieldAst<'a>>,
}

impl<'a> MethodNames<'a> {
    fn check(&mut self, field: &'a FieldAst<'a>, errors: &mut Errors) {
        let keep_key = format!(
            "you can keep the file key with `#[serde(rename = \"{}\")]`",
            field.key.escape_default()
        );
        for (method, target) in field.generated_methods() {
            let (owner, existing) = match target {
                Target::Store => ("Store", STORE_METHODS),
                Target::Transaction => ("Transaction", TRANSACTION_METHODS),
            };
            if existing.contains(&method.as_str()) {
                errors.spanned(
                    field.ident,
                    format!(
                        "field `{}` would generate `{owner}::{method}`, which already exists on \
                         `{owner}`; rename the field ({keep_key})",
                        field.name,
                    ),
                );
                continue;
            }
            match self.taken.get(&(method.clone(), target)) {
                Some(other) => errors.spanned(
                    field.ident,
                    format!(
                        "field `{}` would generate `{owner}::{method}`, which field `{}` already \
                         generates; rename one of the two fields ({keep_key})",
                        field.name, other.name,
                    ),
                ),
                None => {
                    self.taken.insert((method, target), field);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::{parse_quote, DeriveInput};

    fn errors_of(input: DeriveInput) -> Vec<String> {
        match check(&Input::from_syn(&input)) {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_plain_struct_passes() {
        let input = parse_quote! {
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct State {
                /// Docs.
                last_id: u64,
                processed: Vec<String>,
                settings: BTreeMap<String, String>,
                #[serde(skip)] read: u32,
                #[serde(default, rename = "x")] r#type: u8,
            }
        };
        assert_eq!(errors_of(input), Vec::<String>::new());
    }

    #[test]
    fn shapes_other_than_named_structs_are_rejected() {
        for input in [
            parse_quote!(
                struct S(u8);
            ),
            parse_quote!(
                struct S;
            ),
            parse_quote!(
                enum S {
                    A,
                }
            ),
            parse_quote!(union S { a: u8 }),
        ] {
            let errors = errors_of(input);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0].starts_with("`#[derive(Persisted)]` works on structs with named fields"),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn generics_are_rejected() {
        for input in [
            parse_quote!(
                struct S<T> {
                    a: T,
                }
            ),
            parse_quote!(
                struct S<'a> {
                    a: &'a str,
                }
            ),
            parse_quote!(
                struct S<const N: usize> {
                    a: [u8; N],
                }
            ),
        ] {
            let errors = errors_of(input);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].starts_with("persisted does not support generic structs yet; "));
        }
    }

    #[test]
    fn flatten_and_whole_struct_conversions_are_rejected() {
        let errors = errors_of(parse_quote! {
            #[serde(transparent)]
            #[serde(from = "W", into = "W", try_from = "W")]
            struct S { #[serde(flatten)] inner: Inner }
        });
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("`#[serde(transparent)]` is not supported"));
        assert!(errors[1].starts_with("`#[serde(from = \"...\")]` is not supported"));
        assert!(errors[4].starts_with("`#[serde(flatten)]` is not supported"));
    }

    #[test]
    fn persisted_attributes_are_rejected_until_they_mean_something() {
        let errors = errors_of(parse_quote! {
            #[persisted(x)]
            struct S { #[persisted] a: u8 }
        });
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn collision_with_a_store_method() {
        let errors = errors_of(parse_quote! { struct S { read: u64 } });
        assert_eq!(
            errors,
            [
                "field `read` would generate `Store::read`, which already exists on `Store`; \
              rename the field (you can keep the file key with `#[serde(rename = \"read\")]`)"
            ]
        );
        // The hint names the key the field is stored under.
        let errors = errors_of(parse_quote! {
            #[serde(rename_all = "UPPERCASE")] struct S { is_poisoned: bool }
        });
        assert!(
            errors[0].ends_with("`#[serde(rename = \"IS_POISONED\")]`)"),
            "{errors:?}"
        );
    }

    #[test]
    fn skipped_fields_generate_nothing_and_so_collide_with_nothing() {
        assert!(errors_of(parse_quote! { struct S { #[serde(skip)] read: u64 } }).is_empty());
    }

    #[test]
    fn collision_between_generated_methods() {
        let errors = errors_of(parse_quote! { struct S { a: Vec<u8>, push_a: u8, set_a: u8 } });
        assert_eq!(
            errors,
            [
                "field `push_a` would generate `Store::push_a`, which field `a` already generates; \
                 rename one of the two fields (you can keep the file key with `#[serde(rename = \"push_a\")]`)",
                "field `set_a` would generate `Store::set_a`, which field `a` already generates; \
                 rename one of the two fields (you can keep the file key with `#[serde(rename = \"set_a\")]`)",
            ]
        );
        // Reported on whichever field comes second.
        let errors = errors_of(parse_quote! { struct S { update_x: u8, x: u8 } });
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .starts_with("field `x` would generate `Store::update_x`, which field `update_x`"));
    }

    #[test]
    fn all_mistakes_are_reported_together() {
        let errors = errors_of(parse_quote! {
            struct S<T> { read: T, #[serde(flatten)] more: More, commit: u8 }
        });
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
