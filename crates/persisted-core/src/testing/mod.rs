//! Test-only machinery: a simulated file system behind the I/O seam that
//! records every operation, injects failures and crashes, and models what a
//! process crash or a power cut leaves on disk; a model state with a
//! collection field; a deterministic random source.

// Under the `__fuzz` feature only part of this is used.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod model;
pub(crate) mod rng;
pub(crate) mod sim;
