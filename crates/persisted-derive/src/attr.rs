//! The attributes this derive reads: serde's `#[serde(...)]` (it must store
//! each field under the key serde gives it and encode it the way serde does),
//! `#[persisted(...)]` (reserved) and the fields' doc comments.
//!
//! serde validates its own attributes and reports their mistakes itself, so
//! this module never fails: options it does not need are skipped whatever
//! their shape (`bound = "..."`, `crate = "..."`, `deny_unknown_fields`,
//! `tag = "..."`, ...), and an attribute it cannot read is left to serde's
//! error (reporting it twice would only add noise).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, ExprPath, Ident, Lit, LitStr, Token};

use crate::case::RenameRule;

/// What the container's `#[serde(...)]` and `#[persisted(...)]` attributes say.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    /// `rename_all` for serializing.
    pub rename_all_serialize: RenameRule,
    /// `rename_all` for deserializing.
    pub rename_all_deserialize: RenameRule,
    /// Options that change how the whole struct is (de)serialized, which the
    /// field-by-field store cannot follow: `transparent`, `from`, `into`,
    /// `try_from`. Each with the tokens to report an error on.
    pub unsupported: Vec<Unsupported>,
    /// `#[persisted(...)]` attributes (no option exists yet).
    pub persisted: Vec<Attribute>,
}

/// A serde container option `#[derive(Persisted)]` cannot honour.
pub(crate) struct Unsupported {
    /// The option's name as written: `transparent`, `from`, ...
    pub name: String,
    /// The option's tokens (`from = "Wire"`), for the error's span.
    pub tokens: TokenStream,
}

/// What one field's `#[serde(...)]` attributes and doc comments say.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// `rename = "x"` or `rename(serialize = "x")`.
    pub rename_serialize: Option<String>,
    /// `rename = "x"` or `rename(deserialize = "x")` (repeatable), in order.
    pub rename_deserialize: Vec<String>,
    /// `alias = "y"` (repeatable), in order.
    pub aliases: Vec<String>,
    /// `skip` or `skip_serializing`.
    pub skip_serializing: bool,
    /// `skip` or `skip_deserializing`.
    pub skip_deserializing: bool,
    /// `serialize_with = "path"`, or `path::serialize` from `with = "path"`.
    pub serialize_with: Option<ExprPath>,
    /// `deserialize_with = "path"`, or `path::deserialize` from `with = "path"`.
    pub deserialize_with: Option<ExprPath>,
    /// The `flatten` token, if present.
    pub flatten: Option<Span>,
    /// The `///` doc attributes, to copy onto the generated methods.
    pub docs: Vec<Attribute>,
    /// `#[persisted(...)]` attributes (no option exists yet).
    pub persisted: Vec<Attribute>,
}

impl ContainerAttrs {
    /// Reads the attributes of the struct (or enum, union) itself.
    pub(crate) fn from_attrs(attrs: &[Attribute]) -> Self {
        let mut out = ContainerAttrs::default();
        for attr in attrs {
            if attr.path().is_ident("persisted") {
                out.persisted.push(attr.clone());
            }
            if !attr.path().is_ident("serde") {
                continue;
            }
            // A malformed attribute is serde's error to report; keep what
            // was read before it.
            let _ = attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                if path.is_ident("rename_all") {
                    let (ser, de) = ser_and_de(&meta)?;
                    if let Some(rule) = ser.and_then(|s| RenameRule::from_name(&s)) {
                        out.rename_all_serialize = rule;
                    }
                    if let Some(rule) = de.and_then(|s| RenameRule::from_name(&s)) {
                        out.rename_all_deserialize = rule;
                    }
                    Ok(())
                } else if let Some(name) = ["transparent", "from", "into", "try_from"]
                    .into_iter()
                    .find(|name| path.is_ident(name))
                {
                    let mut tokens = meta.path.to_token_stream();
                    while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                        tokens.extend([meta.input.parse::<TokenTree>()?]);
                    }
                    out.unsupported.push(Unsupported {
                        name: name.to_owned(),
                        tokens,
                    });
                    Ok(())
                } else {
                    skip_value(&meta)
                }
            });
        }
        out
    }
}

impl FieldAttrs {
    /// Reads the attributes of one field.
    pub(crate) fn from_attrs(attrs: &[Attribute]) -> Self {
        let mut out = FieldAttrs::default();
        for attr in attrs {
            if attr.path().is_ident("doc") && matches!(attr.meta, syn::Meta::NameValue(_)) {
                out.docs.push(attr.clone());
                continue;
            }
            if attr.path().is_ident("persisted") {
                out.persisted.push(attr.clone());
                continue;
            }
            if !attr.path().is_ident("serde") {
                continue;
            }
            let _ = attr.parse_nested_meta(|meta| out.parse_one(&meta));
        }
        out
    }

    fn parse_one(&mut self, meta: &ParseNestedMeta) -> syn::Result<()> {
        let path = &meta.path;
        if path.is_ident("rename") {
            // Like serde: `rename = "x"` sets both names;
            // `rename(deserialize = "a", deserialize = "b")` accepts both,
            // the first one being the deserialize name.
            let mut ser = None;
            let mut de = Vec::new();
            if meta.input.peek(Token![=]) {
                let name = lit_str(meta)?.value();
                ser = Some(name.clone());
                de.push(name);
            } else {
                meta.parse_nested_meta(|inner| {
                    if inner.path.is_ident("serialize") {
                        ser = Some(lit_str(&inner)?.value());
                    } else if inner.path.is_ident("deserialize") {
                        de.push(lit_str(&inner)?.value());
                    } else {
                        skip_value(&inner)?;
                    }
                    Ok(())
                })?;
            }
            if ser.is_some() {
                self.rename_serialize = ser;
            }
            self.rename_deserialize.extend(de);
        } else if path.is_ident("alias") {
            self.aliases.push(lit_str(meta)?.value());
        } else if path.is_ident("skip") {
            self.skip_serializing = true;
            self.skip_deserializing = true;
        } else if path.is_ident("skip_serializing") {
            self.skip_serializing = true;
        } else if path.is_ident("skip_deserializing") {
            self.skip_deserializing = true;
        } else if path.is_ident("with") {
            let module = expr_path(meta)?;
            self.serialize_with = Some(join_path(&module, "serialize"));
            self.deserialize_with = Some(join_path(&module, "deserialize"));
        } else if path.is_ident("serialize_with") {
            self.serialize_with = Some(expr_path(meta)?);
        } else if path.is_ident("deserialize_with") {
            self.deserialize_with = Some(expr_path(meta)?);
        } else if path.is_ident("flatten") {
            self.flatten = Some(meta.path.segments[0].ident.span());
            skip_value(meta)?;
        } else {
            // `default`, `default = "path"`, `skip_serializing_if = "path"`,
            // `bound`, `borrow`, `getter`, anything newer: serde's business,
            // they do not change the key or the encoding of the value.
            skip_value(meta)?;
        }
        Ok(())
    }

    /// Whether the field has custom (de)serialization (`with`,
    /// `serialize_with` or `deserialize_with`).
    pub(crate) fn has_custom_encoding(&self) -> bool {
        self.serialize_with.is_some() || self.deserialize_with.is_some()
    }
}

/// `name = "..."` or `name(serialize = "...", deserialize = "...")`, the
/// shape of serde's `rename_all` (and `rename` without repetition).
fn ser_and_de(meta: &ParseNestedMeta) -> syn::Result<(Option<String>, Option<String>)> {
    if meta.input.peek(Token![=]) {
        let value = lit_str(meta)?.value();
        return Ok((Some(value.clone()), Some(value)));
    }
    let mut ser = None;
    let mut de = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("serialize") {
            ser = Some(lit_str(&inner)?.value());
        } else if inner.path.is_ident("deserialize") {
            de = Some(lit_str(&inner)?.value());
        } else {
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    Ok((ser, de))
}

/// `= "..."`, read as serde reads it (an expression that is a string
/// literal, possibly in an invisible group from a `macro_rules!`).
fn lit_str(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    let mut value = &expr;
    while let Expr::Group(group) = value {
        value = &group.expr;
    }
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        _ => Err(syn::Error::new_spanned(expr, "expected a string literal")),
    }
}

/// `= "path"`, the path parsed from the string as serde does.
fn expr_path(meta: &ParseNestedMeta) -> syn::Result<ExprPath> {
    lit_str(meta)?.parse()
}

/// `module::name`, as serde turns `with = "module"` into two paths.
fn join_path(module: &ExprPath, name: &str) -> ExprPath {
    let mut path = module.clone();
    let span = module
        .path
        .segments
        .last()
        .map_or_else(Span::call_site, |segment| segment.ident.span());
    path.path.segments.push(Ident::new(name, span).into());
    path
}

/// Skips whatever follows an option's name up to the next `,` at this
/// level: nothing, `= value`, or `(...)`.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn field(attrs: Vec<Attribute>) -> FieldAttrs {
        FieldAttrs::from_attrs(&attrs)
    }

    fn path(path: &Option<ExprPath>) -> Option<String> {
        path.as_ref()
            .map(|p| p.to_token_stream().to_string().replace(' ', ""))
    }

    #[test]
    fn rename_sets_both_names() {
        let attrs = field(vec![parse_quote!(#[serde(rename = "x")])]);
        assert_eq!(attrs.rename_serialize.as_deref(), Some("x"));
        assert_eq!(attrs.rename_deserialize, ["x"]);
    }

    #[test]
    fn rename_serialize_and_deserialize_separately() {
        let attrs = field(vec![parse_quote!(
            #[serde(rename(serialize = "a", deserialize = "b", deserialize = "c"))]
        )]);
        assert_eq!(attrs.rename_serialize.as_deref(), Some("a"));
        assert_eq!(attrs.rename_deserialize, ["b", "c"]);

        let attrs = field(vec![parse_quote!(#[serde(rename(deserialize = "b"))])]);
        assert_eq!(attrs.rename_serialize, None);
        assert_eq!(attrs.rename_deserialize, ["b"]);
    }

    #[test]
    fn aliases_accumulate_across_attributes() {
        let attrs = field(vec![
            parse_quote!(#[serde(alias = "y", alias = "z")]),
            parse_quote!(#[serde(alias = "w")]),
        ]);
        assert_eq!(attrs.aliases, ["y", "z", "w"]);
    }

    #[test]
    fn skips() {
        let attrs = field(vec![parse_quote!(#[serde(skip)])]);
        assert!(attrs.skip_serializing && attrs.skip_deserializing);
        let attrs = field(vec![parse_quote!(#[serde(skip_serializing)])]);
        assert!(attrs.skip_serializing && !attrs.skip_deserializing);
        let attrs = field(vec![parse_quote!(#[serde(skip_deserializing)])]);
        assert!(!attrs.skip_serializing && attrs.skip_deserializing);
        let attrs = field(vec![
            parse_quote!(#[serde(skip_serializing_if = "Vec::is_empty")]),
        ]);
        assert!(!attrs.skip_serializing && !attrs.skip_deserializing);
    }

    #[test]
    fn with_becomes_two_paths() {
        let attrs = field(vec![parse_quote!(#[serde(with = "self::as_string")])]);
        assert_eq!(
            path(&attrs.serialize_with).as_deref(),
            Some("self::as_string::serialize")
        );
        assert_eq!(
            path(&attrs.deserialize_with).as_deref(),
            Some("self::as_string::deserialize")
        );
        assert!(attrs.has_custom_encoding());
    }

    #[test]
    fn serialize_with_and_deserialize_with_alone() {
        let attrs = field(vec![parse_quote!(#[serde(serialize_with = "ser::f")])]);
        assert_eq!(path(&attrs.serialize_with).as_deref(), Some("ser::f"));
        assert_eq!(path(&attrs.deserialize_with), None);
        let attrs = field(vec![parse_quote!(#[serde(deserialize_with = "de::g")])]);
        assert_eq!(path(&attrs.serialize_with), None);
        assert_eq!(path(&attrs.deserialize_with).as_deref(), Some("de::g"));
        assert!(!field(vec![]).has_custom_encoding());
    }

    #[test]
    fn flatten_is_recorded() {
        assert!(field(vec![parse_quote!(#[serde(flatten)])])
            .flatten
            .is_some());
        assert!(field(vec![parse_quote!(#[serde(default)])])
            .flatten
            .is_none());
    }

    #[test]
    fn options_that_do_not_matter_are_skipped_whatever_their_shape() {
        let attrs = field(vec![parse_quote!(#[serde(
            default,
            default = "make::it",
            skip_serializing_if = "Option::is_none",
            bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"),
            bound = "T: Clone",
            borrow,
            getter = "Self::get",
            some_future_option(with, nested = ["tokens"]),
            rename = "kept",
            alias = "also_kept",
        )])]);
        assert_eq!(attrs.rename_serialize.as_deref(), Some("kept"));
        assert_eq!(attrs.aliases, ["also_kept"]);
    }

    #[test]
    fn docs_are_copied_and_other_attributes_ignored() {
        let attrs = field(vec![
            parse_quote!(#[doc = " First line."]),
            parse_quote!(#[allow(dead_code)]),
            parse_quote!(#[doc(hidden)]),
            parse_quote!(#[doc = " Second line."]),
            parse_quote!(#[persisted(whatever)]),
        ]);
        assert_eq!(attrs.docs.len(), 2);
        assert_eq!(attrs.persisted.len(), 1);
    }

    #[test]
    fn malformed_serde_attributes_are_left_to_serde() {
        let attrs = field(vec![
            parse_quote!(#[serde(alias = "a", rename = 5, alias = "never read")]),
            parse_quote!(#[serde]),
            parse_quote!(#[serde()]),
            parse_quote!(#[serde(alias = "b")]),
        ]);
        assert_eq!(attrs.aliases, ["a", "b"]);
        assert_eq!(attrs.rename_serialize, None);
    }

    #[test]
    fn container_rename_all() {
        let attrs = ContainerAttrs::from_attrs(&[parse_quote!(#[serde(rename_all = "camelCase")])]);
        assert_eq!(attrs.rename_all_serialize, RenameRule::CamelCase);
        assert_eq!(attrs.rename_all_deserialize, RenameRule::CamelCase);

        let attrs = ContainerAttrs::from_attrs(&[parse_quote!(
            #[serde(rename_all(serialize = "kebab-case", deserialize = "SCREAMING_SNAKE_CASE"))]
        )]);
        assert_eq!(attrs.rename_all_serialize, RenameRule::KebabCase);
        assert_eq!(attrs.rename_all_deserialize, RenameRule::ScreamingSnakeCase);

        let attrs = ContainerAttrs::from_attrs(&[
            parse_quote!(#[serde(rename_all(serialize = "UPPERCASE"))]),
        ]);
        assert_eq!(attrs.rename_all_serialize, RenameRule::UpperCase);
        assert_eq!(attrs.rename_all_deserialize, RenameRule::None);

        // An unknown rule is serde's error; it renames nothing here.
        let attrs =
            ContainerAttrs::from_attrs(&[parse_quote!(#[serde(rename_all = "Title Case")])]);
        assert_eq!(attrs.rename_all_serialize, RenameRule::None);
    }

    #[test]
    fn container_options_that_do_not_matter_are_skipped() {
        let attrs = ContainerAttrs::from_attrs(&[
            parse_quote!(#[serde(deny_unknown_fields, crate = "::serde", tag = "t")]),
            parse_quote!(#[serde(bound = "", default, expecting = "a state", remote = "Other")]),
            parse_quote!(#[serde(rename = "Renamed", rename_all = "PascalCase")]),
            parse_quote!(#[derive(Debug)]),
        ]);
        assert_eq!(attrs.rename_all_serialize, RenameRule::PascalCase);
        assert!(attrs.unsupported.is_empty());
        assert!(attrs.persisted.is_empty());
    }

    #[test]
    fn container_options_the_store_cannot_follow_are_recorded() {
        let attrs = ContainerAttrs::from_attrs(&[
            parse_quote!(#[serde(transparent)]),
            parse_quote!(#[serde(from = "Wire", into = "Wire", try_from = "String")]),
            parse_quote!(#[persisted(x)]),
        ]);
        let names: Vec<_> = attrs.unsupported.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["transparent", "from", "into", "try_from"]);
        assert_eq!(attrs.persisted.len(), 1);
    }
}
