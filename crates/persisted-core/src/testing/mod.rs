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
    if cfg!(feature = "bincode") {
        formats.push(crate::Format::Bincode);
    }
    formats
}
