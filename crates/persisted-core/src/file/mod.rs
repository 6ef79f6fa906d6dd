//! The file-system protocols the engines are built on, and the seam all
//! their I/O goes through.

pub(crate) mod atomic;
pub(crate) mod lock;
pub(crate) mod vfs;
