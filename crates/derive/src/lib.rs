//! `#[derive(Pod)]`: implements `bpfkit::Pod` for a struct whose bytes can be
//! copied to and from a BPF map or ring buffer as they are.
//!
//! Use it through the `bpfkit` crate, which re-exports it:
//!
//! ```ignore
//! #[derive(Clone, Copy, bpfkit::Pod)]
//! #[repr(C)]
//! struct Event {
//!     pid: u32,
//!     comm: [u8; 16],
//!     duration_ns: u64, // would leave 4 bytes of padding after `comm`...
//! }
//! ```
//!
//! ...and that is refused at compile time: the derive asserts that every
//! field is `Pod` and that the fields' sizes add up to the struct's size, so
//! there is no padding whose bytes would be uninitialised. The struct must be
//! `#[repr(C)]` (optionally `packed`) or `#[repr(transparent)]`, and not generic.
#![warn(missing_docs)]

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Error, Fields};

/// Implements `bpfkit::Pod` after checking, at compile time, that the type is
/// `#[repr(C)]` or `#[repr(transparent)]`, has only `Pod` fields and no padding.
#[proc_macro_derive(Pod)]
pub fn derive_pod(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> Result<proc_macro2::TokenStream, Error> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &input.generics,
            "#[derive(Pod)] does not support generic types: padding cannot be checked for every instantiation",
        ));
    }
    let mut layout_ok = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") || meta.path.is_ident("transparent") {
                layout_ok = true;
            }
            // `packed`, `packed(N)`, `align(N)`: accepted; the size check
            // below catches any padding they leave.
            if meta.input.peek(syn::token::Paren) {
                let _content;
                syn::parenthesized!(_content in meta.input);
            }
            Ok(())
        })?;
    }
    if !layout_ok {
        return Err(Error::new_spanned(
            name,
            "#[derive(Pod)] needs #[repr(C)] or #[repr(transparent)]: Rust's default layout may reorder fields",
        ));
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(f) => f.named.iter().map(|f| f.ty.clone()).collect::<Vec<_>>(),
            Fields::Unnamed(f) => f.unnamed.iter().map(|f| f.ty.clone()).collect(),
            Fields::Unit => Vec::new(),
        },
        Data::Enum(_) => {
            return Err(Error::new_spanned(
                name,
                "#[derive(Pod)] cannot be derived for an enum: not every bit pattern is a valid value",
            ))
        }
        Data::Union(_) => {
            return Err(Error::new_spanned(
                name,
                "#[derive(Pod)] cannot be derived for a union: implement bpfkit::Pod by hand if every member covers all bytes",
            ))
        }
    };
    let message = format!(
        "`{name}` has padding: its fields' sizes do not add up to its size, so some of its bytes are uninitialised; add explicit padding fields"
    );
    Ok(quote! {
        const _: () = {
            fn field_is_pod<T: ::bpfkit::Pod>() {}
            fn every_field_is_pod() {
                #( field_is_pod::<#fields>(); )*
            }
            const _: fn() = every_field_is_pod;
            assert!(
                ::core::mem::size_of::<#name>() == 0 #( + ::core::mem::size_of::<#fields>() )*,
                #message
            );
        };
        // SAFETY: checked above: a C-layout struct of Pod fields with no
        // padding, so every byte is initialised and any bit pattern is valid.
        unsafe impl ::bpfkit::Pod for #name {}
    })
}
