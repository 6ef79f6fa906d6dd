//! placeholder, replaced below
pub use persisted_core::*;
#[cfg(feature = "derive")]
pub use persisted_derive::Persisted;
