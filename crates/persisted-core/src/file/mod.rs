//! The file-system protocols the engines are built on.

pub(crate) mod atomic;
pub(crate) mod lock;
