//! The backends that keep a state in files on this machine: the journal
//! engine (`journal_files.rs`), the whole-file snapshot engine
//! (`snapshot_files.rs`), each exclusive or shared between processes
//! (`locks.rs`), and a read-only follower of either (`read_only.rs`).
//! [`open`] and [`open_read_only`] make them; what they share (the
//! snapshot's unknown keys and size, the history files) is [`Files`].

mod journal_files;
mod locks;
mod read_only;
mod sealing;
mod snapshot_files;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use self::journal_files::JournalFiles;
use self::locks::Locks;
pub(crate) use self::read_only::open_read_only;
use self::sealing::Sealing;
use self::snapshot_files::SnapshotFiles;
use super::backend::Opened;
use super::journal::{self, journal_path, History, View};
use super::snapshot::SnapshotEngine;
use super::Failure;
use crate::checksum::fingerprint;
use crate::error::{Error, IoContext, Result};
use crate::file::atomic::{parent_dir, remove_leftovers, sync_dir, write_atomic};
use crate::file::vfs::Vfs;
use crate::format::{Codec, Extras};
use crate::history::KeepHistory;
use crate::notify::{Notes, Origin};
use crate::options::{Engine, Mode, OpenOptions};
use crate::report::{Recovery, RecoveryEvent};
use crate::schema::Persisted;

/// A journal at least this long is read and verified beside the snapshot's
/// parse, on a second thread.
const PARALLEL_OPEN: u64 = 1 << 20;

/// What every file backend keeps besides its engine.
pub(crate) struct Files {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) path: PathBuf,
    pub(crate) codec: Codec,
    /// The snapshot's keys the struct does not know, written back.
    pub(crate) extras: Extras,
    /// The snapshot's size, for the compaction threshold.
    pub(crate) snapshot_len: u64,
    /// `.recover(true)`: damage found while catching up is set aside.
    pub(crate) recover: bool,
    /// What catching up changed, for subscribers (`Backend::take_notes`).
    pub(crate) notes: Notes,
    /// Where a reloaded file came from: another process (shared mode,
    /// read-only) or a person (exclusive mode).
    pub(crate) outside: Origin,
}

impl Files {
    /// The state and what a catch-up may replace with it.
    pub(crate) fn view<'a, T>(&'a mut self, state: &'a RwLock<T>) -> View<'a, T> {
        View {
            state,
            extras: &mut self.extras,
            snapshot_len: &mut self.snapshot_len,
            recover: self.recover,
            notes: &mut self.notes,
            outside: self.outside,
        }
    }

    /// Runs `f` on the history files as they are now (the caller holds
    /// what keeps them from changing: the writer mutex, and in shared mode
    /// the writer lock). A read-only follower holds no lock: it reads again
    /// when a compaction got in between, up to `tries` times.
    pub(crate) fn with_history<R>(
        &self,
        policy: KeepHistory,
        tries: u32,
        f: impl Fn(&History, &dyn Vfs, &Codec) -> Result<R>,
    ) -> Result<R> {
        let mut attempt = 1;
        loop {
            let result = History::read(&*self.vfs, &self.path, &self.codec, policy)
                .and_then(|history| f(&history, &*self.vfs, &self.codec));
            match result {
                Err(Error::Corrupt { .. } | Error::Parse { .. }) if attempt < tries => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                result => return result,
            }
        }
    }
}

impl Files {
    /// The store's [`Crypt`], or [`Error::NotEncrypted`].
    pub(crate) fn crypt(&self) -> Result<&crate::crypt::Crypt> {
        self.codec.crypt().ok_or_else(|| Error::NotEncrypted {
            path: self.path.clone(),
        })
    }
}

/// A failure to catch up with another process: a record it wrote that
/// verifies but cannot be applied leaves memory possibly half-changed, so
/// that one poisons.
pub(crate) fn catch_up_failure(path: &Path, failure: Failure) -> Failure {
    match &failure.error {
        Error::Parse { path: failed, .. } if *failed == journal_path(path) => {
            log::error!(
                "store `{}`: a record another process wrote cannot be applied",
                path.display()
            );
            Failure::poison(failure.error)
        }
        _ => failure,
    }
}

/// Opens the files of the store at `path` for writing, exclusive or shared
/// as `options` say, with the engine they name: takes the locks, removes
/// what a crash left, reads the snapshot and replays the journal (read and
/// verified on a second thread when long), recovering what a crash, a
/// compaction cut short or a hand edit left.
pub(crate) fn open<T: Persisted>(
    vfs: Arc<dyn Vfs>,
    path: &Path,
    options: &OpenOptions<T>,
    initial: Option<T>,
) -> Result<Opened<T>> {
    let codec = Codec::new(options.resolve_format(path)?, path)?;
    if options.shared {
        if !cfg!(unix) {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                reason: "shared mode is implemented on Unix only".into(),
            });
        }
        if options.mode == Mode::Batch {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                reason: "`Mode::Batch` cannot be shared: changes held back until `commit()` \
                         would have to be rebased onto other processes' commits; use \
                         transactions for all-or-nothing changes"
                    .into(),
            });
        }
    }
    if options.engine == Engine::Snapshot && options.keep_history != KeepHistory::None {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            reason: "`keep_history` needs the journal engine: `Engine::Snapshot` keeps no records"
                .into(),
        });
    }
    let codec = match sealing::codec(&vfs, path, options, codec)? {
        Sealing::Ready(codec) => codec,
        Sealing::ConvertFirst(key) => {
            let mut plain_options = options.clone();
            plain_options.key = None;
            let plain = open(Arc::clone(&vfs), path, &plain_options, None)?;
            let state = RwLock::new(plain.state);
            let mut backend = plain.backend;
            sealing::convert(&vfs, path, &key, &plain.codec, &mut *backend, &state)?;
            drop(backend);
            return open(vfs, path, options, initial);
        }
    };
    let locks = Locks::acquire(&*vfs, path, options.shared, options.lock_timeout)?;
    remove_leftovers(&*vfs, path)?;
    let journal_file = journal_path(path);
    let mut recovery = Recovery::default();

    // A long journal is read and verified on a second thread while this
    // one parses the snapshot: the two are independent until replay.
    let journal_len = vfs
        .stat(&journal_file)
        .context("stat", &journal_file)?
        .map_or(0, |id| id.len);
    let in_parallel = options.engine == Engine::Journal && journal_len >= PARALLEL_OPEN;
    let (snapshot, mut prepared) = std::thread::scope(|scope| {
        let prepared = in_parallel.then(|| scope.spawn(|| journal::prepare(&*vfs, path)));
        let snapshot = read_snapshot(&vfs, path, &codec, initial, &mut recovery);
        let prepared = prepared.map(|thread| {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (snapshot, prepared)
    });
    let (mut state, extras, base, snapshot_len) = snapshot?;
    if let Some(event) = RecoveryEvent::unknown_keys(path, &extras) {
        recovery.push(event);
    }

    let durability = options.durability;
    let mut open_journal = |state: &mut T, recovery: &mut Recovery| {
        let prepared = match prepared.take() {
            Some(prepared) => prepared?,
            None => journal::prepare(&*vfs, path)?,
        };
        journal::open(
            &vfs,
            path,
            codec.clone(),
            durability,
            state,
            &extras,
            base,
            options.recover,
            recovery,
            prepared,
        )
    };
    enum Opening {
        Journal(Box<journal::Journal>),
        Snapshot(SnapshotEngine),
    }
    let engine = match options.engine {
        Engine::Journal => {
            let mut journal = open_journal(&mut state, &mut recovery)?;
            journal.note_snapshot()?;
            journal.keep_history(options.keep_history);
            Opening::Journal(Box::new(journal))
        }
        Engine::Snapshot => {
            if vfs
                .read(&journal_file)
                .context("read", &journal_file)?
                .is_some()
            {
                // Left by the journal engine: fold it in, then remove it.
                let journal = open_journal(&mut state, &mut recovery)?;
                if journal.has_records() {
                    let mut bytes = Vec::new();
                    codec.encode_snapshot(path, &state, &extras, &mut bytes)?;
                    write_atomic(&vfs, path, &bytes, true)?;
                }
                drop(journal);
                vfs.remove(&journal_file).context("remove", &journal_file)?;
                sync_dir(&*vfs, &parent_dir(path))?;
            }
            let mut engine = SnapshotEngine::new(&vfs, path, codec.clone(), durability);
            engine.note_file()?;
            Opening::Snapshot(engine)
        }
    };
    // Only now: a new journal's temp file left by a compaction cut short
    // is what told the journal's open that the compaction reached its
    // rename.
    remove_leftovers(&*vfs, &journal_file)?;
    let files = Files {
        vfs,
        path: path.to_path_buf(),
        codec: codec.clone(),
        extras,
        snapshot_len: snapshot_len as u64,
        recover: options.recover,
        notes: Notes::default(),
        outside: match options.shared {
            true => Origin::OtherProcess,
            false => Origin::FileEdit,
        },
    };
    let backend: Box<dyn super::backend::Backend<T>> = match engine {
        Opening::Journal(journal) => Box::new(JournalFiles::new(
            files,
            *journal,
            locks,
            options.journal_limit,
            options.keep_history,
        )),
        Opening::Snapshot(engine) => Box::new(SnapshotFiles::new(files, engine, locks)),
    };
    Ok(Opened {
        backend,
        state,
        codec,
        recovery,
    })
}

/// Reads and parses the snapshot; a missing or empty one becomes `initial`
/// (or the default), written now so that the journal has a snapshot to
/// name. Returns the state, the unknown keys kept, the snapshot's
/// fingerprint and its size.
fn read_snapshot<T: Persisted>(
    vfs: &Arc<dyn Vfs>,
    path: &Path,
    codec: &Codec,
    initial: Option<T>,
    recovery: &mut Recovery,
) -> Result<(T, Extras, u64, usize)> {
    match vfs.read(path).context("read", path)? {
        Some(bytes) if !bytes.is_empty() => {
            let (state, extras) = codec.decode_snapshot::<T>(path, &bytes)?;
            Ok((state, extras, fingerprint(&bytes), bytes.len()))
        }
        existing => {
            recovery.push(match existing {
                Some(_) => RecoveryEvent::EmptySnapshot {
                    path: path.to_path_buf(),
                },
                None => RecoveryEvent::Created {
                    path: path.to_path_buf(),
                },
            });
            let state = initial.unwrap_or_default();
            let mut bytes = Vec::new();
            codec.encode_snapshot(path, &state, &Extras::None, &mut bytes)?;
            write_atomic(vfs, path, &bytes, true)?;
            Ok((state, Extras::None, fingerprint(&bytes), bytes.len()))
        }
    }
}
