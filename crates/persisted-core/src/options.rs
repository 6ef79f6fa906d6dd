//! How a store is opened: the builder and the small enums that say what
//! survives what.

use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use crate::crypt::Key;
use crate::error::{Error, Result};
use crate::history::KeepHistory;
use crate::notify::Watch;
use crate::schema::Persisted;
use crate::store::Store;

/// The file format of the snapshot and the journal.
///
/// Every name exists in every build; opening a store with a format whose
/// Cargo feature is off returns [`Error::FormatNotEnabled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Pretty JSON, fields in declaration order, trailing newline
    /// (feature `json`, on by default). Extension `.json`.
    Json,
    /// Block-style YAML, fields in declaration order (feature `yaml`).
    /// Extensions `.yaml`, `.yml`.
    Yaml,
    /// Pretty TOML, fields in declaration order, trailing newline (feature
    /// `toml`). Extension `.toml`. TOML writes plain values before tables,
    /// so fields holding maps, structs or lists of structs come after the
    /// others. The journal's records are JSON lines. TOML has no null: a
    /// `None` field is left out, but a `None` inside a list or as a map
    /// value, a unit value, or an integer outside `i64` is
    /// [`Error::Encode`](crate::Error::Encode) at the commit that makes it.
    Toml,
    /// bincode 2 behind a header with a length and a checksum, so a cut
    /// file is always detected (feature `bincode`). Extensions `.bin`, `.bincode`.
    Bincode,
}

impl Format {
    /// The format a file's extension names, if any.
    ///
    /// ```
    /// use persisted_state::Format;
    /// assert_eq!(Format::from_path("state.yml"), Some(Format::Yaml));
    /// assert_eq!(Format::from_path("Config.TOML"), Some(Format::Toml));
    /// assert_eq!(Format::from_path("state.txt"), None);
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            "bin" | "bincode" => Some(Format::Bincode),
            _ => None,
        }
    }

    /// The Cargo feature that enables this format.
    pub fn feature(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Toml => "toml",
            Format::Bincode => "bincode",
        }
    }
}

/// What a returned commit survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// The commit has been handed to the kernel (one `write(2)`): it survives
    /// a crash or `kill -9` of the process, not a power cut. The default.
    #[default]
    Flush,
    /// The commit has been `fdatasync`ed: it survives a power cut.
    ///
    /// Writers that commit at the same time share one `fdatasync` (group
    /// commit); each call still returns only once its own commit is
    /// durable. Other threads can read a commit while its sync is in
    /// flight; if the sync fails, the commit is taken back out of memory
    /// and the store is poisoned.
    Sync,
}

/// When changes reach the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Every setter, `update` and transaction is one atomic commit, on disk
    /// when the call returns. The default.
    #[default]
    WriteThrough,
    /// Setters and `update` change memory only; [`Store::commit`] writes
    /// everything changed since the last commit as one atomic record.
    /// Changes not committed are discarded when the store is dropped.
    Batch,
}

/// How commits are laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Engine {
    /// A snapshot plus an append-only journal of the changed fields: a
    /// commit costs the size of the change. The default.
    #[default]
    Journal,
    /// Every commit rewrites the whole file atomically; no sidecar files
    /// but the lock. A commit costs the size of the state.
    Snapshot,
}

/// The journal size past which it is folded into the snapshot, unless
/// the snapshot is larger (then twice the snapshot's size).
pub(crate) const DEFAULT_JOURNAL_LIMIT: u64 = 4 << 20;

/// How long a shared-mode commit waits for another process's by default.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// A builder for [`Store`], from [`Store::options`].
///
/// ```no_run
/// use persisted_state::{Durability, Engine, Format, Mode, Persisted, Store};
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
/// struct State {
///     last_id: u64,
/// }
///
/// let store = Store::<State>::options()
///     .format(Format::Yaml)
///     .durability(Durability::Sync)
///     .mode(Mode::Batch)
///     .engine(Engine::Snapshot)
///     .open("state.yaml")?;
/// # Ok::<(), persisted_state::Error>(())
/// ```
#[must_use = "an OpenOptions does nothing until `open` is called"]
pub struct OpenOptions<T> {
    pub(crate) format: Option<Format>,
    pub(crate) durability: Durability,
    pub(crate) mode: Mode,
    pub(crate) engine: Engine,
    pub(crate) journal_limit: u64,
    pub(crate) shared: bool,
    pub(crate) lock_timeout: Duration,
    pub(crate) read_only: bool,
    pub(crate) recover: bool,
    pub(crate) keep_history: KeepHistory,
    pub(crate) timeout: Duration,
    pub(crate) key: Option<Key>,
    pub(crate) encrypt_existing: bool,
    pub(crate) watch: Watch,
    _state: PhantomData<fn() -> T>,
}

// Written out: derives would require `T: Clone`/`Debug`.
impl<T> Clone for OpenOptions<T> {
    fn clone(&self) -> Self {
        OpenOptions {
            key: self.key.clone(),
            _state: PhantomData,
            ..*self
        }
    }
}

impl<T> std::fmt::Debug for OpenOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("format", &self.format)
            .field("durability", &self.durability)
            .field("mode", &self.mode)
            .field("engine", &self.engine)
            .field("journal_limit", &self.journal_limit)
            .field("shared", &self.shared)
            .field("lock_timeout", &self.lock_timeout)
            .field("read_only", &self.read_only)
            .field("recover", &self.recover)
            .field("keep_history", &self.keep_history)
            .field("timeout", &self.timeout)
            .field("encryption", &self.key)
            .field("encrypt_existing", &self.encrypt_existing)
            .finish()
    }
}

impl<T> Default for OpenOptions<T> {
    fn default() -> Self {
        OpenOptions {
            format: None,
            durability: Durability::default(),
            mode: Mode::default(),
            engine: Engine::default(),
            journal_limit: DEFAULT_JOURNAL_LIMIT,
            shared: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            read_only: false,
            recover: false,
            keep_history: KeepHistory::None,
            timeout: DEFAULT_LOCK_TIMEOUT,
            key: None,
            encrypt_existing: false,
            watch: Watch::Off,
            _state: PhantomData,
        }
    }
}

impl<T: Persisted> OpenOptions<T> {
    /// The file format; by default taken from the file's extension.
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// What a returned commit survives; [`Durability::Flush`] by default.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Write-through (default) or batched commits.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Journal (default) or whole-file snapshot per commit.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Journal engine: fold the journal into the snapshot once it holds more
    /// than `bytes` (or twice the snapshot's size, if that is larger).
    /// Default 4 MiB.
    pub fn journal_limit(mut self, bytes: u64) -> Self {
        self.journal_limit = bytes;
        self
    }

    /// Shares the store with other processes (and other handles of this
    /// one) that open it with `.shared(true)` too. Every commit — a setter,
    /// a collection operation, `update`, a transaction — takes the store's
    /// writer lock, catches up with every commit made before it by anyone,
    /// and lands whole in one order all participants agree on; `update`
    /// closures run exactly once. Reads catch up first (one `fstat` when
    /// nothing changed). Opening a store that another process has open in
    /// the other mode fails at once with [`Error::Locked`] naming that mode.
    ///
    /// Not with [`Mode::Batch`] (an error at open); Unix only; local file
    /// systems only (advisory locks are unreliable on network file
    /// systems). A child forked without `exec` shares its parent's locks
    /// until it exits or execs.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use persisted_state::{Persisted, Store};
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Counter {
    ///     n: u64,
    /// }
    ///
    /// let store = Store::<Counter>::options()
    ///     .shared(true)
    ///     .lock_timeout(Duration::from_secs(5))
    ///     .open("counter.json")?;
    /// store.update(|c| c.n += 1)?; // atomic across every process
    /// let changed: bool = store.refresh()?; // catch up now (reads do it by themselves)
    /// # let _ = changed;
    /// # Ok::<(), persisted_state::Error>(())
    /// ```
    ///
    /// [`Mode::Batch`]: crate::Mode::Batch
    /// [`Error::Locked`]: crate::Error::Locked
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Shared mode: how long a commit waits for another process's to
    /// finish before it returns [`Error::LockTimeout`](crate::Error::LockTimeout)
    /// and changes nothing. Default 5 s.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Opens without any lock, beside a writer in either mode: the state is
    /// a consistent committed one, [`Store::refresh`] (and every read)
    /// catches up with the writers, and every write returns
    /// [`Error::ReadOnly`](crate::Error::ReadOnly). Nothing is ever written,
    /// cut or created; a missing file is an error.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Opts into point-in-time recovery of a damaged journal. Without it, a
    /// damaged record followed by valid records that continue its sequence
    /// (bit rot, a bad copy: not what a crash leaves) makes open fail with
    /// [`Error::Corrupt`](crate::Error::Corrupt) naming the journal and the
    /// offset, because replaying only up to the damage would silently lose
    /// acknowledged commits. With it, open replays up to the damage, copies
    /// every byte after it to `<journal>.dropped-<unix time>`, and reports
    /// that in [`Store::recovery`]. A torn tail (what a crash leaves) never
    /// needs this: it is cut with a warning.
    pub fn recover(mut self, recover: bool) -> Self {
        self.recover = recover;
        self
    }

    /// Keeps the commits compaction folds, for
    /// [`Store::history`](crate::Store::history),
    /// [`Store::state_at`](crate::Store::state_at) and
    /// [`Store::state_as_of`](crate::Store::state_as_of): see
    /// [`KeepHistory`]. Default [`KeepHistory::None`]. Journal engine only
    /// ([`Engine::Snapshot`] keeps no records: an error at open).
    ///
    /// Every process sharing a store should keep the same history: a
    /// compaction by one that keeps none leaves a gap in it.
    pub fn keep_history(mut self, policy: KeepHistory) -> Self {
        self.keep_history = policy;
        self
    }

    /// Encrypts the store at rest with `key` (feature `encryption`): the
    /// snapshot, the journal's records and the history files are
    /// authenticated ciphertext (AES-256-GCM-SIV under a random data key
    /// that `key` wraps). An encrypted store is binary: name it
    /// `name.<format>.enc` (the format is the extension before `.enc`) and
    /// edit it with `persisted edit`. A new store is created encrypted;
    /// an existing one must have been made with this key.
    ///
    /// ```no_run
    /// use persisted_state::{Key, Persisted, Store};
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Secrets {
    ///     api_token: String,
    /// }
    ///
    /// let store = Store::<Secrets>::options()
    ///     .encryption(Key::from_env("APP_STATE_KEY")?)
    ///     .open("secrets.json.enc")?;
    /// store.set_api_token("s3cr3t".into())?;
    /// # Ok::<(), persisted_state::Error>(())
    /// ```
    ///
    /// Opening fails, naming the file and changing nothing, with
    /// [`Error::Encrypted`](crate::Error::Encrypted) (an encrypted store
    /// opened without a key), [`Error::WrongKey`](crate::Error::WrongKey),
    /// [`Error::NotEncrypted`](crate::Error::NotEncrypted) (a plain store
    /// opened with a key: see [`encrypt_existing`](Self::encrypt_existing)),
    /// [`Error::Decrypt`](crate::Error::Decrypt) (a part with a good
    /// checksum that does not authenticate: never cut away as a torn tail).
    pub fn encryption(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// With [`encryption`](Self::encryption): a store found unencrypted is
    /// encrypted as it opens (its snapshot, journal and history files are
    /// rewritten sealed) instead of failing with
    /// [`Error::NotEncrypted`](crate::Error::NotEncrypted).
    pub fn encrypt_existing(mut self, encrypt: bool) -> Self {
        self.encrypt_existing = encrypt;
        self
    }

    /// Whether the store also hears of changes made outside this process
    /// ([`Watch::Auto`]: other processes' commits in shared mode, a
    /// person's save of the file, other clients' commits on Redis and
    /// PostgreSQL), for [`Store::subscribe`] and
    /// [`Store::on_change`]. Default [`Watch::Off`]: only this process's
    /// commits.
    ///
    /// ```
    /// use persisted_state::{Persisted, Store, Watch};
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Config { port: u16 }
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::<Config>::options()
    ///     .watch(Watch::Auto)
    ///     .open(dir.path().join("config.json"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn watch(mut self, watch: Watch) -> Self {
        self.watch = watch;
        self
    }

    /// Redis backend: how long one call may take to reach the server —
    /// connecting, each request and reply, reconnecting after a lost
    /// connection, and waiting for a restarted server still loading its
    /// data — before it returns
    /// [`Error::Remote`](crate::Error::Remote) (never a hang). Default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the store kept under `key` on the Redis server at `url`
    /// (`redis://[:password@]host:port/db`; feature `redis`): every process
    /// on every host that opens the same URL and key shares it, with the
    /// guarantees of [`shared`](OpenOptions::shared) mode. A missing store
    /// starts from `T::default()`. See
    /// [the Redis page](https://github.com/persisted-rs/persisted/blob/main/docs/redis.md)
    /// for the layout, durability and failures.
    ///
    /// ```no_run
    /// use persisted_state::{Durability, Persisted, Store};
    ///
    /// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// struct Jobs {
    ///     queue: std::collections::VecDeque<String>,
    /// }
    ///
    /// let store = Store::<Jobs>::options()
    ///     .durability(Durability::Sync) // the server must fsync its AOF
    ///     .open_redis("redis://127.0.0.1:6379/0", "jobs:state")?;
    /// store.push_queue("job-1".into())?;
    /// # Ok::<(), persisted_state::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Remote`](crate::Error::Remote) when the server cannot be
    /// reached within the timeout; [`Error::Unsupported`](crate::Error::Unsupported)
    /// for `Durability::Sync` on a server that does not fsync every write,
    /// or options without a Redis meaning (`read_only`, a format other than
    /// JSON, `Engine::Snapshot`); [`Error::Parse`](crate::Error::Parse)
    /// naming the key and field of a value that does not parse.
    #[cfg(feature = "redis")]
    pub fn open_redis(self, url: &str, key: &str) -> Result<Store<T>> {
        crate::remote::open_store(self, url, key)
    }

    /// Opens the store kept under `key` in the PostgreSQL database at `url`
    /// (`postgres://user[:password]@host:port/db`; feature `postgres`):
    /// every process on every host that opens the same URL and key shares
    /// it, with the guarantees of [`shared`](OpenOptions::shared) mode. The
    /// tables are made on first open; a missing store starts from
    /// `T::default()`. See
    /// [the PostgreSQL page](https://github.com/persisted-rs/persisted/blob/main/docs/postgres.md)
    /// for the layout and how to query it with `psql`.
    ///
    /// [`durability`](OpenOptions::durability): every session commits with
    /// `synchronous_commit = on`; `Durability::Sync` also checks that the
    /// server's `fsync` is on. [`timeout`](OpenOptions::timeout) bounds each
    /// call (then [`Error::Remote`](crate::Error::Remote); the next call
    /// connects again); [`lock_timeout`](OpenOptions::lock_timeout) bounds
    /// how long a closure waits for another holder of the store's row lock
    /// ([`Error::LockTimeout`](crate::Error::LockTimeout)).
    ///
    /// ```no_run
    /// # use persisted_state::{Durability, Persisted, Store};
    /// # #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
    /// # struct Jobs { queue: std::collections::VecDeque<String> }
    /// let store = Store::<Jobs>::options()
    ///     .durability(Durability::Sync)
    ///     .open_postgres("postgres://app@127.0.0.1:5432/app", "jobs:state")?;
    /// store.push_queue("job-1".into())?;
    /// # Ok::<(), persisted_state::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Remote`](crate::Error::Remote) when the server cannot be
    /// reached within the timeout; [`Error::Unsupported`](crate::Error::Unsupported)
    /// for `Durability::Sync` on a server whose `fsync` is off, or options
    /// without a PostgreSQL meaning (`read_only`, a format other than JSON,
    /// `Engine::Snapshot`, `encryption`); [`Error::Parse`](crate::Error::Parse)
    /// naming the field of a value that does not parse.
    #[cfg(feature = "postgres")]
    pub fn open_postgres(self, url: &str, key: &str) -> Result<Store<T>> {
        crate::postgres::open_store(self, url, key)
    }

    /// Opens the store at `path`; a missing file starts from `T::default()`.
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    pub fn open(self, path: impl AsRef<Path>) -> Result<Store<T>> {
        Store::open_with(path.as_ref(), self, None)
    }

    /// Opens the store at `path`; a missing file starts from `initial`.
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    pub fn open_or(self, path: impl AsRef<Path>, initial: T) -> Result<Store<T>> {
        Store::open_with(path.as_ref(), self, Some(initial))
    }

    pub(crate) fn resolve_format(&self, path: &Path) -> Result<Format> {
        // `name.<format>.enc`: the format is the extension before `.enc`.
        let named = match path.extension().is_some_and(|e| e == "enc") {
            true => Format::from_path(path.with_extension("")),
            false => Format::from_path(path),
        };
        match self.format.or(named) {
            Some(format) => Ok(format),
            None => Err(Error::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}
