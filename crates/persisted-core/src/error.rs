//! The one error type. I/O errors carry the operation and the path
//! ("failed to fsync `state.yaml.journal`: No space left on device").

use std::io;
use std::path::{Path, PathBuf};

use crate::options::Format;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong opening, reading or writing a store.
///
/// Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("failed to {op} `{}`: {source}", path.display())]
    Io {
        /// What was being done, e.g. `"fsync"`, `"append a record to"`.
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A text snapshot or journal record could not be parsed, or holds a
    /// value of the wrong type for the struct. The file is left untouched.
    #[error("cannot parse `{}` at line {line}, column {column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when the parser could not tell).
        line: usize,
        /// 1-based column (0 when the parser could not tell).
        column: usize,
        /// The parser's message.
        message: String,
    },

    /// A commit asked of [`Store::state_at`](crate::Store::state_at) or
    /// [`Store::state_as_of`](crate::Store::state_as_of) is not in the
    /// history: older than what
    /// [`OpenOptions::keep_history`](crate::OpenOptions::keep_history)
    /// keeps, or never made. Nothing is guessed.
    #[error("not in the history of `{}`: {reason}", path.display())]
    NotInHistory {
        /// The store's snapshot file.
        path: PathBuf,
        /// What was asked and what the history holds.
        reason: String,
    },

    /// A file is damaged in a way no parser error describes (a bincode
    /// snapshot cut short, a journal header that does not verify).
    /// The file is left untouched.
    #[error(
        "`{}` is corrupt{}: {reason}",
        path.display(),
        offset.map(|o| format!(" at offset {o}")).unwrap_or_default()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where in the file the damage begins, when that is known.
        offset: Option<u64>,
        /// What is wrong with it, and what to do.
        reason: String,
    },

    /// The state could not be encoded in the store's format (e.g. a map
    /// with non-string keys in JSON, a `None` inside a list in TOML).
    /// Nothing was written.
    #[error("cannot encode the state for `{}`: {message}", path.display())]
    Encode {
        /// The store's file.
        path: PathBuf,
        /// The serializer's message.
        message: String,
    },

    /// Another process, or another handle in this process, has the store
    /// open in a mode this open cannot join: exclusive (the default) admits
    /// no one else; shared mode (`.shared(true)`) admits only other shared
    /// participants.
    #[error(
        "`{}` is locked: another process (or another open handle in this process) has it open \
         in {holder} mode{}",
        path.display(),
        match *holder {
            "shared" => "; open it with `.shared(true)` to share it with them",
            _ => "",
        }
    )]
    Locked {
        /// The store's file.
        path: PathBuf,
        /// The mode the holder has it open in: `"exclusive"` or `"shared"`.
        holder: &'static str,
    },

    /// Shared mode: another process held the store's writer lock for longer
    /// than the `lock_timeout`. Nothing was written.
    #[error(
        "timed out after {waited:?} waiting for another process to finish writing `{}`",
        path.display()
    )]
    LockTimeout {
        /// The store's file.
        path: PathBuf,
        /// How long the call waited.
        waited: std::time::Duration,
    },

    /// Redis backend: the server could not be reached or answered with an
    /// error, within the timeout (`OpenOptions::timeout`). Nothing of the
    /// call is kept in memory; the next call reconnects by itself.
    #[error("{op} `{}` failed: {message}", path.display())]
    Remote {
        /// The store: the server's URL (without its password) and key.
        path: PathBuf,
        /// What was being done, e.g. `"commit to"`.
        op: &'static str,
        /// The server's or the connection's error.
        message: String,
    },

    /// Redis backend: a commit could not be made atomic (another process
    /// committed between this one's read and write, and the change cannot
    /// be recomputed: a `Mode::Batch` commit, or a closure whose lease
    /// expired). Nothing was applied, on the server or in memory.
    #[error("commit to `{}` conflicted: {reason}", path.display())]
    Conflict {
        /// The store: the server's URL (without its password) and key.
        path: PathBuf,
        /// What happened and what to do.
        reason: String,
    },

    /// A write to a store opened with `.read_only(true)`.
    #[error("`{}` was opened read-only; open it without `.read_only(true)` to write", path.display())]
    ReadOnly {
        /// The store's file.
        path: PathBuf,
    },

    /// Options that cannot be combined, or that this platform cannot honour.
    #[error("cannot open `{}`: {reason}", path.display())]
    Unsupported {
        /// The store's file.
        path: PathBuf,
        /// What cannot be done, and what to do instead.
        reason: String,
    },

    /// An earlier write or fsync failed in a way that may have left disk and
    /// memory disagreeing; the store refuses writes until it is reopened.
    /// Reads keep working from memory.
    #[error("store `{}` is poisoned after an I/O failure; reopen it to continue", path.display())]
    Poisoned {
        /// The store's file.
        path: PathBuf,
    },

    /// The format's Cargo feature is not enabled in this build.
    #[error("cannot open `{}`: format {format:?} needs the `{feature}` feature of `persisted-state`", path.display())]
    FormatNotEnabled {
        /// The store's file.
        path: PathBuf,
        /// The requested format.
        format: Format,
        /// The feature to enable.
        feature: &'static str,
    },

    /// The file's extension names no known format and none was given.
    #[error("cannot tell the format of `{}` from its extension (.json, .yaml, .yml, .toml, .bin, .bincode); set one with `.format(..)`", path.display())]
    UnknownFormat {
        /// The store's file.
        path: PathBuf,
    },

    /// `compact()` or `close()` was called in `Mode::Batch` with changes not
    /// yet committed. Nothing was written; `close()` drops the handle, and
    /// with it the changes.
    #[error(
        "`{}` has {changes} uncommitted change(s) to {} (Mode::Batch); nothing was written: \
         call `commit()` first, or they are discarded when the store is dropped",
        path.display(),
        fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
    )]
    Uncommitted {
        /// The store's file.
        path: PathBuf,
        /// How many changes are pending.
        changes: usize,
        /// The fields they change, by their names in the file.
        fields: Vec<String>,
    },

    /// The store is encrypted and was opened without a key
    /// (`OpenOptions::encryption`). Nothing was changed.
    #[error("`{}` is encrypted: open it with `.encryption(key)`", path.display())]
    Encrypted {
        /// The store's file.
        path: PathBuf,
    },

    /// The key given does not unlock the store (another key, or a raw key
    /// for a store made with a passphrase, or the reverse). Nothing was
    /// changed.
    #[error("`{}` is encrypted with another key", path.display())]
    WrongKey {
        /// The store's file.
        path: PathBuf,
    },

    /// A key was given for a store that is not encrypted. Nothing was
    /// changed; open it with `.encrypt_existing(true)` to encrypt it.
    #[error(
        "`{}` is not encrypted; open it without a key, or with `.encrypt_existing(true)` to \
         encrypt it",
        path.display()
    )]
    NotEncrypted {
        /// The store's file.
        path: PathBuf,
    },

    /// Part of an encrypted file whose checksum is good does not
    /// authenticate: written with another data key, moved from another
    /// place or file, or tampered with. Never taken for a torn tail: nothing
    /// was cut away or applied.
    #[error(
        "`{}`{} does not authenticate (written with another key, moved, or tampered with); \
         nothing was applied or cut away",
        path.display(),
        at_offset(*offset)
    )]
    Decrypt {
        /// The file; for a Redis or PostgreSQL store, the store and where
        /// the value was read (`... key `{app}:state` field `token``).
        path: PathBuf,
        /// Where the part that does not authenticate begins in the file
        /// (0 for a value of a Redis or PostgreSQL store: `path` says
        /// where).
        offset: u64,
    },

    /// A key could not be read or used.
    #[error("the key from {origin} cannot be used: {reason}")]
    Key {
        /// Where the key came from: an environment variable, a key file.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A write from a thread that would wait on itself: it holds a `read()`
    /// guard, runs an `update` closure or has a `Transaction` open on the
    /// same store. Nothing was written; the message says what to do instead.
    #[error("cannot write to `{}`: this thread {advice}", path.display())]
    Reentrant {
        /// The store's file.
        path: PathBuf,
        /// What the thread holds, and what to do instead.
        advice: &'static str,
    },

    /// A wait for a change ([`Subscription::changed`](crate::Subscription::changed))
    /// ended because the store was closed: no change will come.
    #[error("`{}` was closed: no more changes will come", path.display())]
    Closed {
        /// The store's file.
        path: PathBuf,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn encode(path: &Path, message: impl std::fmt::Display) -> Self {
        Error::Encode {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// True when the error came from a failed `fsync`/`fdatasync`, after
    /// which the data's fate is unknown (see "fsyncgate").
    pub(crate) fn is_sync_failure(&self) -> bool {
        matches!(self, Error::Io { op, .. } if op.contains("sync"))
    }
}

/// Attaches an operation and a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn context(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

/// " at offset N" for a place in a file; nothing for a server value
/// (offset 0: no file part starts there, the envelope does).
fn at_offset(offset: u64) -> String {
    match offset {
        0 => String::new(),
        n => format!(" at offset {n}"),
    }
}
