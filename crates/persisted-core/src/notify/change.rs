//! What a subscriber is told, and what a commit or a catch-up notes for
//! it.

use std::fmt;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// A commit of this process (any handle of the store).
    ThisProcess,
    /// A commit another process appended to the shared files.
    OtherProcess,
    /// A person's save of the snapshot file, adopted.
    FileEdit,
    /// Another client's commit on the Redis or PostgreSQL server.
    Remote,
}

impl Origin {
    pub(crate) const ALL: [Origin; 4] = [
        Origin::ThisProcess,
        Origin::OtherProcess,
        Origin::FileEdit,
        Origin::Remote,
    ];

    pub(crate) fn bit(self) -> usize {
        self as usize
    }
}

/// What changed since a subscriber's last wake-up, coalesced: every commit
/// in between folded into one.
///
/// ```
/// use persisted_state::{Origin, Persisted, Store};
/// use std::time::Duration;
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
/// struct Config { port: u16, name: String }
///
/// # let dir = tempfile::tempdir()?;
/// let store: Store<Config> = Store::open(dir.path().join("config.json"))?;
/// let sub = store.subscribe();
/// store.set_port(8080)?;
/// store.set_name("api".into())?;
/// let change = sub.wait_timeout(Duration::from_secs(1))?.expect("a change");
/// assert_eq!(change.fields, ["port", "name"]);
/// assert_eq!(change.origins, [Origin::ThisProcess]);
/// assert_eq!(change.commits, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The newest commit seen: its sequence number in the journal (the
    /// version on Redis and PostgreSQL); for a store that numbers no
    /// commits (the snapshot engine), how many changes this store has
    /// published.
    pub seq: u64,
    /// Every field changed since the last wake-up, in declaration order.
    pub fields: Vec<String>,
    /// Where the changes came from, each once, in [`Origin`] order.
    pub origins: Vec<Origin>,
    /// How many commits (or adopted edits) were folded in.
    pub commits: u64,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq {}: {} commit(s) from {:?} changed {}",
            self.seq,
            self.commits,
            self.origins,
            self.fields.join(", ")
        )
    }
}

/// What a commit or a catch-up changed, noted while the writer mutex is
/// held and published when it is let go: field indices, origins, how many
/// commits, the newest sequence number.
#[derive(Debug, Default, Clone)]
pub(crate) struct Notes {
    /// One bit per field index.
    fields: Vec<u64>,
    origins: u8,
    pub(crate) commits: u64,
    /// The newest sequence number, when the backend numbers commits.
    pub(crate) seq: u64,
}

impl Notes {
    pub(crate) fn is_empty(&self) -> bool {
        self.commits == 0
    }

    /// `commits` commits from `origin` changed `fields`.
    pub(crate) fn note(
        &mut self,
        origin: Origin,
        fields: impl IntoIterator<Item = usize>,
        commits: u64,
    ) {
        self.origins |= 1 << origin.bit();
        self.commits += commits;
        for index in fields {
            set_bit(&mut self.fields, index);
        }
    }

    /// One commit from `origin` with `changes`.
    pub(crate) fn note_changes(&mut self, origin: Origin, changes: &dyn crate::change::Changes) {
        let bits = &mut self.fields;
        changes.each(&mut |_, index, _| set_bit(bits, index));
        self.note(origin, [], 1);
    }

    /// Folds `other` in.
    pub(crate) fn absorb(&mut self, other: Notes) {
        if other.is_empty() {
            return;
        }
        if self.fields.len() < other.fields.len() {
            self.fields.resize(other.fields.len(), 0);
        }
        for (mine, theirs) in self.fields.iter_mut().zip(&other.fields) {
            *mine |= theirs;
        }
        self.origins |= other.origins;
        self.commits += other.commits;
        self.seq = self.seq.max(other.seq);
    }

    /// The field indices noted, ascending.
    pub(crate) fn field_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.fields.iter().enumerate().flat_map(|(word, bits)| {
            (0..64)
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| word * 64 + bit)
        })
    }

    pub(crate) fn origins(&self) -> impl Iterator<Item = Origin> + '_ {
        Origin::ALL
            .into_iter()
            .filter(|o| self.origins & (1 << o.bit()) != 0)
    }

    /// Empties it, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.fields.iter_mut().for_each(|w| *w = 0);
        self.origins = 0;
        self.commits = 0;
        self.seq = 0;
    }
}

fn set_bit(bits: &mut Vec<u64>, index: usize) {
    let word = index / 64;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (index % 64);
}

/// Replaces the state behind `lock` with `next` (a reload, an adopted
/// edit), noting the fields that differ as one change from `origin`.
pub(crate) fn replace_noting<T: crate::schema::Persisted>(
    lock: &parking_lot::RwLock<T>,
    next: T,
    notes: &mut Notes,
    origin: Origin,
    codec: &crate::format::Codec,
    path: &std::path::Path,
) {
    let mut state = lock.write();
    let fields = diff_fields(codec, path, &*state, &next);
    if !fields.is_empty() {
        notes.note(origin, fields, 1);
    }
    *state = next;
}

/// The fields in which `old` and `new` differ (by `PartialEq` where the
/// type has it, else by encoding).
fn diff_fields<T: crate::schema::Persisted>(
    codec: &crate::format::Codec,
    path: &std::path::Path,
    old: &T,
    new: &T,
) -> Vec<usize> {
    use crate::change::FieldOf;
    (0..T::__FIELDS.len())
        .filter(|&index| match old.__field_eq(new, index) {
            Some(equal) => !equal,
            None => {
                let a = codec.encode_value(path, &FieldOf(old, index));
                let b = codec.encode_value(path, &FieldOf(new, index));
                match (a, b) {
                    (Ok(a), Ok(b)) => a != b,
                    _ => true,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_fold_fields_origins_and_counts() {
        let mut a = Notes::default();
        a.note(Origin::ThisProcess, [0, 70], 1);
        let mut b = Notes::default();
        b.note(Origin::FileEdit, [3, 0], 1);
        b.seq = 9;
        a.absorb(b);
        assert_eq!(a.field_indices().collect::<Vec<_>>(), [0, 3, 70]);
        assert_eq!(
            a.origins().collect::<Vec<_>>(),
            [Origin::ThisProcess, Origin::FileEdit]
        );
        assert_eq!((a.commits, a.seq), (2, 9));
        a.clear();
        assert!(a.is_empty());
        assert_eq!(a.field_indices().count(), 0);
    }
}
