//! What the derive emits when the input is rejected: the errors, plus a
//! stub `Persisted` impl so code using the type as `Persisted` does not add
//! "trait not implemented" errors after ours (thiserror's `fallback.rs`).
//!
//! The stub never runs: the errors stop the build.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{parse_quote, DeriveInput};

pub(crate) fn expand(input: &DeriveInput, error: &syn::Error) -> TokenStream {
    let ident = &input.ident;
    let error = error.to_compile_error();

    let (_, ty_generics, _) = input.generics.split_for_impl();
    let self_ty = quote!(#ident #ty_generics);
    let mut generics = input.generics.clone();
    // The supertraits of `Persisted`, as a where clause so the stub adds no
    // error when the type lacks one (say, a union serde cannot derive for).
    // The `for<'__fallback>` keeps the bound from being "trivial", which
    // stable rustc rejects when it does not hold (rust-lang/rust#48214).
    generics.make_where_clause().predicates.push(parse_quote! {
        for<'__fallback> #self_ty: ::persisted_state::__private::serde::Serialize
            + ::persisted_state::__private::serde::de::DeserializeOwned
            + ::core::default::Default
            + ::core::clone::Clone
            + ::core::marker::Send
            + ::core::marker::Sync
            + 'static
    });
    let (impl_generics, _, where_clause) = generics.split_for_impl();

    quote! {
        #error

        #[automatically_derived]
        impl #impl_generics ::persisted_state::Persisted for #self_ty #where_clause {
            const __FIELDS: &'static [::persisted_state::__private::FieldSpec] = &[];

            fn __serialize_field<__S: ::persisted_state::__private::serde::Serializer>(
                &self,
                _: ::core::primitive::usize,
                _: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                ::core::unreachable!()
            }

            fn __deserialize_field<'de, __D: ::persisted_state::__private::serde::Deserializer<'de>>(
                &mut self,
                _: ::core::primitive::usize,
                _: __D,
            ) -> ::core::result::Result<(), __D::Error> {
                ::core::unreachable!()
            }

            fn __apply_op<'de, __D: ::persisted_state::__private::serde::Deserializer<'de>>(
                &mut self,
                _: ::core::primitive::usize,
                _: ::persisted_state::__private::Op,
                _: __D,
            ) -> ::core::result::Result<(), __D::Error> {
                ::core::unreachable!()
            }

            fn __field_eq(&self, _: &Self, _: ::core::primitive::usize) -> ::core::option::Option<::core::primitive::bool> {
                ::core::unreachable!()
            }
        }
    }
}
