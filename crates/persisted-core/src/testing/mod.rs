//! Test-only machinery: a simulated file system behind the I/O seam that
//! records every operation, injects failures and crashes, and models what a
//! process crash or a power cut leaves on disk; a model state with a
//! collection field; a deterministic random source.

// Under the `__fuzz` feature only part of this is used.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod model;
pub(crate) mod rng;
pub(crate) mod sim;

/// The formats enabled in this build.
pub(crate) fn formats() -> Vec<crate::Format> {
    let mut formats = vec![crate::Format::Json];
    if cfg!(feature = "yaml") {
        formats.push(crate::Format::Yaml);
    }
    if cfg!(feature = "toml") {
        formats.push(crate::Format::Toml);
    }
    if cfg!(feature = "bincode") {
        formats.push(crate::Format::Bincode);
    }
    formats
}

/// The size a soak asks for in the environment variable `var` (see
/// `scripts/soak.sh`), or `smoke`, the size of a normal `cargo test`.
pub(crate) fn soak_size<T: std::str::FromStr>(var: &str, smoke: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(smoke)
}
