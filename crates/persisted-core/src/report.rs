//! What `open` found and did to bring a store's files to a consistent
//! state, readable from the store ([`Store::recovery`](crate::Store::recovery))
//! as well as from the `log` warnings it also writes.

use std::fmt;
use std::path::PathBuf;

use crate::format::Extras;

/// What opening a store did besides reading it: from
/// [`Store::recovery`](crate::Store::recovery).
///
/// A clean open after a clean close has no [`events`](Recovery::events).
/// Each event was also logged (`log` crate) when it happened, as a warning
/// when a person may want to look at it and as info otherwise.
///
/// # Examples
///
/// ```
/// use persisted_state::{Persisted, RecoveryEvent, Store};
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
/// struct Counter {
///     n: u64,
/// }
///
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("counter.json");
/// let store: Store<Counter> = Store::open(&path)?;
/// assert!(matches!(store.recovery().events[..], [RecoveryEvent::Created { .. }]));
/// store.close()?;
///
/// let store: Store<Counter> = Store::open(&path)?;
/// for event in &store.recovery().events {
///     eprintln!("open: {event}"); // a torn tail cut, a journal set aside, ...
/// }
/// assert!(store.recovery().is_clean());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Journal records (commits) replayed onto the snapshot.
    pub replayed: u64,
    /// What open found and did beyond replaying, in order.
    pub events: Vec<RecoveryEvent>,
}

impl Recovery {
    /// True when open found nothing to report: no file was created,
    /// cut, set aside or adopted.
    pub fn is_clean(&self) -> bool {
        self.events.is_empty()
    }

    /// The files open set aside (dropped journal bytes, orphaned
    /// journals), for a person to look at.
    pub fn kept_files(&self) -> impl Iterator<Item = &PathBuf> {
        self.events.iter().filter_map(|event| match event {
            RecoveryEvent::DamageSetAside { kept_at, .. }
            | RecoveryEvent::HeaderCut { kept_at, .. }
            | RecoveryEvent::JournalOrphaned { kept_at, .. } => Some(kept_at),
            RecoveryEvent::TornTail { kept_at, .. } => kept_at.as_ref(),
            _ => None,
        })
    }

    pub(crate) fn push(&mut self, event: RecoveryEvent) {
        match event.is_warning() {
            true => log::warn!("{event}"),
            false => log::info!("{event}"),
        }
        self.events.push(event);
    }
}

/// One thing [`Recovery`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryEvent {
    /// The snapshot did not exist; it was created from the initial value.
    Created {
        /// The snapshot.
        path: PathBuf,
    },
    /// The snapshot was an empty (0-byte) file, as `touch` leaves; it was
    /// opened as the initial value and written.
    EmptySnapshot {
        /// The snapshot.
        path: PathBuf,
    },
    /// The journal ended in an incomplete record, as a crash leaves; the
    /// bytes were cut off. Every complete record was kept.
    TornTail {
        /// The journal.
        journal: PathBuf,
        /// Where the dropped bytes began.
        offset: u64,
        /// How many bytes were dropped.
        bytes: u64,
        /// Where they were copied, when they held stale copies of earlier
        /// records (kept for a person to look at).
        kept_at: Option<PathBuf>,
    },
    /// The journal was cut inside its header line (no record can follow
    /// it): the snapshot alone is the state, and the cut file was moved to
    /// `kept_at`.
    HeaderCut {
        /// The journal.
        journal: PathBuf,
        /// Where the cut file now is.
        kept_at: PathBuf,
    },
    /// A damaged record was followed by valid ones: the journal was replayed
    /// up to the damage and the rest copied to `kept_at`.
    DamageSetAside {
        /// The journal.
        journal: PathBuf,
        /// Where the damage begins.
        offset: u64,
        /// How many bytes were set aside.
        bytes: u64,
        /// The copy of the bytes set aside.
        kept_at: PathBuf,
    },
    /// A compaction had finished but the journal was not yet reset (a crash
    /// between the two): the snapshot already held every record.
    StaleJournalReset {
        /// The journal.
        journal: PathBuf,
    },
    /// The snapshot was edited while no program had it open; the edit was
    /// adopted.
    HandEditAdopted {
        /// The snapshot.
        path: PathBuf,
    },
    /// The snapshot was edited after commits were written to the journal
    /// (a crash, or a save while the program ran): the edit wins over the
    /// commits made before the save, those made after it are applied on
    /// top of it, and the journal was copied or moved to `kept_at` (never
    /// deleted).
    JournalOrphaned {
        /// The snapshot.
        path: PathBuf,
        /// The commits the journal held.
        commits: u64,
        /// How many of them were made after the edit was saved (by the
        /// file's modification time) and so were applied on top of it.
        kept_on_top: u64,
        /// Where the journal now is.
        kept_at: PathBuf,
    },
    /// The snapshot holds keys the struct does not know (a typo, or a field
    /// of a newer version of the program): they are kept where they are
    /// through every later save, and named here so a typo can be found.
    UnknownKeys {
        /// The snapshot.
        path: PathBuf,
        /// Each key's path in the document: `server.tls_certt`,
        /// `servers[1].hots`.
        keys: Vec<String>,
    },
}

impl RecoveryEvent {
    /// The report of the unknown keys kept from the snapshot at `path`, if
    /// it has any.
    pub(crate) fn unknown_keys(path: &std::path::Path, extras: &Extras) -> Option<RecoveryEvent> {
        let keys = extras.paths();
        (!keys.is_empty()).then(|| RecoveryEvent::UnknownKeys {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// Logs the unknown keys of a snapshot adopted while the store is open
    /// (a person's edit, another process's compaction): open reports them
    /// in [`Recovery`] too.
    pub(crate) fn warn_unknown_keys(path: &std::path::Path, extras: &Extras) {
        if let Some(event) = RecoveryEvent::unknown_keys(path, extras) {
            log::warn!("{event}");
        }
    }

    /// True for what a person may want to look at (data was cut or set
    /// aside); false for what is routine after a crash or an edit.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            RecoveryEvent::EmptySnapshot { .. }
                | RecoveryEvent::TornTail { .. }
                | RecoveryEvent::HeaderCut { .. }
                | RecoveryEvent::DamageSetAside { .. }
                | RecoveryEvent::JournalOrphaned { .. }
                | RecoveryEvent::UnknownKeys { .. }
        )
    }
}

impl fmt::Display for RecoveryEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryEvent::Created { path } => {
                write!(f, "`{}` did not exist; created it", path.display())
            }
            RecoveryEvent::EmptySnapshot { path } => write!(
                f,
                "`{}` was empty (0 bytes); opened it as the initial value",
                path.display()
            ),
            RecoveryEvent::TornTail {
                journal,
                offset,
                bytes,
                kept_at,
            } => {
                write!(
                    f,
                    "`{}`: dropped {bytes} bytes of torn journal tail at offset {offset}",
                    journal.display()
                )?;
                match kept_at {
                    Some(kept) => write!(f, " (kept in `{}`)", kept.display()),
                    None => Ok(()),
                }
            }
            RecoveryEvent::HeaderCut { journal, kept_at } => write!(
                f,
                "`{}` was cut inside its header, so no commit can follow it: opened the snapshot \
                 alone and moved the cut file to `{}`",
                journal.display(),
                kept_at.display()
            ),
            RecoveryEvent::DamageSetAside {
                journal,
                offset,
                bytes,
                kept_at,
            } => write!(
                f,
                "`{}`: a damaged record at offset {offset} is followed by valid ones; replayed \
                 up to the damage and kept the {bytes} bytes after it in `{}`",
                journal.display(),
                kept_at.display()
            ),
            RecoveryEvent::StaleJournalReset { journal } => write!(
                f,
                "`{}` was already folded into the snapshot by an interrupted compaction; reset it",
                journal.display()
            ),
            RecoveryEvent::HandEditAdopted { path } => {
                write!(
                    f,
                    "`{}` was edited while closed; adopted the edit",
                    path.display()
                )
            }
            RecoveryEvent::JournalOrphaned {
                path,
                commits,
                kept_on_top: 0,
                kept_at,
            } => write!(
                f,
                "`{}` was edited after its journal was written, so its journal of {commits} \
                 commit(s) no longer applies; the snapshot as edited wins and the journal is \
                 kept as `{}`",
                path.display(),
                kept_at.display()
            ),
            RecoveryEvent::JournalOrphaned {
                path,
                commits,
                kept_on_top,
                kept_at,
            } => write!(
                f,
                "`{}` was edited while its journal held {commits} commit(s): the edit wins over \
                 the commits made before it was saved, the {kept_on_top} made after it are \
                 applied on top of it, and the journal is kept as `{}`",
                path.display(),
                kept_at.display()
            ),
            RecoveryEvent::UnknownKeys { path, keys } => write!(
                f,
                "`{}` has key(s) the struct does not know, kept as they are: {} (a typo? a \
                 field of a newer version?)",
                path.display(),
                keys.join(", ")
            ),
        }
    }
}
