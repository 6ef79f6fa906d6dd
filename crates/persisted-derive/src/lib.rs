//! `#[derive(Persisted)]`: the derive macro of the [`persisted-state`] crate.
//!
//! Use it through `persisted-state` (`use persisted_state::Persisted;`), not directly:
//! the generated code names `::persisted_state::...` paths.
//!
//! The macro works in three stages, one module each:
//!
//! - `ast` reads the struct and its `#[serde(...)]` attributes (`attr`,
//!   with serde's `rename_all` rules in `case`);
//! - `valid` checks every rule and reports every mistake at once, each on
//!   the tokens at fault and with a hint saying what to do;
//! - `expand` writes the `Persisted` impl and the per-field accessor traits
//!   `{Struct}StoreExt` and `{Struct}TransactionExt`; when validation
//!   failed, it writes the errors plus a stub impl (`fallback`) so rustc adds
//!   no follow-on errors.
//!
//! [`persisted-state`]: https://docs.rs/persisted-state

mod ast;
mod attr;
mod case;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Makes a struct with named fields persistable in a `persisted_state::Store`.
///
/// See the `persisted-state` crate for what is generated and how to use it.
#[proc_macro_derive(Persisted, attributes(persisted))]
pub fn derive_persisted(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
