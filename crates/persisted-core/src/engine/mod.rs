//! The places a state lives, behind one trait (`backend.rs`): the files of
//! this machine (`file/`, built on the two engines `journal/` and
//! `snapshot.rs`); Redis lives in `crate::remote`.

use crate::error::Error;

pub(crate) mod backend;
pub(crate) mod file;
pub(crate) mod journal;
pub(crate) mod snapshot;

/// An engine's failed operation, and whether disk and memory can still be
/// known to agree (`poison` false) or not (`poison` true: a failed fsync, a
/// partial record that could not be cut back, a half-done compaction).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) poison: bool,
}

impl From<Error> for Failure {
    /// An error that left the files as they were.
    fn from(error: Error) -> Failure {
        Failure::clean(error)
    }
}

impl Failure {
    /// A failure that left the files as they were.
    pub(crate) fn clean(error: Error) -> Failure {
        Failure {
            error,
            poison: false,
        }
    }

    /// A failure after which the files' state is unknown.
    pub(crate) fn poison(error: Error) -> Failure {
        Failure {
            error,
            poison: true,
        }
    }

    /// Poisons when the error is a failed fsync (it cannot be retried:
    /// the kernel may have dropped the dirty pages).
    pub(crate) fn classify(error: Error) -> Failure {
        let poison = error.is_sync_failure();
        Failure { error, poison }
    }
}
