//! Which commits came after a person's save of the snapshot.
//!
//! A snapshot edited by hand while the store is open wins over the commits
//! made before the save, and every commit acknowledged after the save is
//! kept on top of it. A handle looks at the snapshot (one `stat`) before a
//! commit whenever the commit does not follow the previous commit or look
//! within [`BURST`] and did not wait for another commit of this process,
//! and at least every [`CHECK_EVERY`]; an edit found there is
//! adopted before the commit is appended, so the commit lands on top of it
//! exactly. What remains to decide by time are the commits appended in a
//! burst after the last look, and those found in a journal at open:
//!
//! * a commit appended right after a look that found the snapshot
//!   unchanged (within [`COVERED`]) came before any later save;
//! * another commit this handle appended is compared with the save by the
//!   exact wall-clock time it was appended at, kept in memory until the
//!   next look: before the save when it is earlier than the file's
//!   modification time. File times are taken from a clock that may lag the
//!   wall clock by a scheduler tick, so a commit made less than a tick
//!   before a save counts as after it: it is kept, applied on top of the
//!   edit;
//! * a commit found at open (after a crash) or appended by another process
//!   is compared by its record's millisecond: after the save only when it
//!   is more than [`TICK_MS`] later than the file's time (a crash and an
//!   edit within that of each other keep the edit alone).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::frame::{Frame, Kind};
use crate::change::{Changes, FieldOf};
use crate::checksum::fingerprint;
use crate::collection::Op;
use crate::error::Result;
use crate::format::Codec;
use crate::schema::{field_index, Persisted};

/// A commit that follows the previous one by less than this is part of a
/// burst and does not look at the snapshot first (the look costs about a
/// `stat`, 1 µs; a burst's commits cost about that each).
pub(crate) const BURST: Duration = Duration::from_micros(5);

/// A burst of commits still looks at the snapshot this often.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(10);

/// A commit appended this soon after a look that found the snapshot
/// unchanged is taken to precede any save the next look finds.
const COVERED: Duration = Duration::from_micros(100);

/// How far a file's modification time may lag the wall clock (one
/// scheduler tick at the slowest common kernel timer rate, 100 Hz).
pub(crate) const TICK_MS: i128 = 10;

/// At most this many commits keep their exact time between two looks;
/// later ones are judged by their record's millisecond.
const MAX_EXACT: usize = 1 << 16;

/// The wall clock in nanoseconds since the Unix epoch (0 before it).
pub(crate) fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn ns(d: Duration) -> i128 {
    d.as_nanos() as i128
}

/// What a journal handle knows of when its commits were made relative to
/// the last time it found the snapshot unchanged.
#[derive(Debug, Clone, Default)]
pub(crate) struct EditClock {
    /// When the snapshot was last found unchanged (wall clock, ns).
    checked_ns: i128,
    /// The last sequence number known to precede any save found later.
    checked_seq: u64,
    /// When this handle last appended a commit.
    appended_ns: i128,
    /// The commits this handle appended since the last look, with their
    /// exact times.
    exact: Vec<(u64, i128)>,
}

impl EditClock {
    /// The snapshot was found unchanged at `now_ns`, with the journal at
    /// `seq`.
    pub(crate) fn unchanged(&mut self, seq: u64, now_ns: i128) {
        self.checked_ns = now_ns;
        self.checked_seq = seq;
        // A burst goes on from a look as from a commit.
        self.appended_ns = now_ns;
        self.exact.clear();
    }

    /// This handle appended commit `seq` at `now_ns`.
    pub(crate) fn appended(&mut self, seq: u64, now_ns: i128) {
        let covered = now_ns >= self.checked_ns
            && now_ns - self.checked_ns <= ns(COVERED)
            && self.exact.is_empty()
            && self.checked_seq.checked_add(1) == Some(seq);
        if covered {
            self.checked_seq = seq;
        } else if self.exact.len() < MAX_EXACT {
            self.exact.push((seq, now_ns));
        }
        self.appended_ns = now_ns;
    }

    /// Whether a commit made at `now_ns` should first look for an edit;
    /// `burst`: it waited for another commit of this process, so it is
    /// part of a burst however long that commit took.
    pub(crate) fn due(&self, now_ns: i128, burst: bool) -> bool {
        now_ns < self.checked_ns
            || (!burst && now_ns - self.appended_ns >= ns(BURST))
            || now_ns - self.checked_ns >= ns(CHECK_EVERY)
    }

    /// Whether the record `frame` is a commit made after a save whose file
    /// time is `saved_ns`.
    pub(crate) fn after_save(&self, frame: &Frame, saved_ns: i128) -> bool {
        if frame.kind != Kind::Commit || frame.seq <= self.checked_seq {
            return false;
        }
        if let Ok(i) = self.exact.binary_search_by_key(&frame.seq, |&(seq, _)| seq) {
            return self.exact[i].1 >= saved_ns;
        }
        after_save_by_millisecond(frame, saved_ns)
    }
}

/// Whether `frame` is a commit whose record's millisecond is more than a
/// tick later than a save at `saved_ns` (a version 1 record has no time:
/// before).
pub(crate) fn after_save_by_millisecond(frame: &Frame, saved_ns: i128) -> bool {
    frame.kind == Kind::Commit && made_after_save(frame.time_ms, saved_ns)
}

/// Whether a commit record dated `time_ms` (none in version 1) was made
/// after a save of the snapshot whose file time is `saved_ns`, by the rule
/// open follows for a journal it finds beside an edited snapshot.
pub fn made_after_save(time_ms: Option<u64>, saved_ns: i128) -> bool {
    let saved_ms = saved_ns.div_euclid(1_000_000);
    time_ms.is_some_and(|ms| i128::from(ms) > saved_ms + TICK_MS)
}

/// The fields a commit record lists (all of them when it lists none, as
/// a sealed record does), by index in `T`.
pub(crate) fn frame_fields<T: Persisted>(frame: &Frame, bytes: &[u8]) -> Vec<usize> {
    let listed = frame
        .fields
        .map(|(start, end)| &bytes[start..end])
        .filter(|list| *list != b"*");
    let Some(list) = listed else {
        return (0..T::__FIELDS.len()).collect();
    };
    list.split(|&b| b == b',')
        .filter_map(|entry| {
            let name = std::str::from_utf8(entry.get(1..).unwrap_or_default()).unwrap_or("");
            field_index(T::__FIELDS, name)
        })
        .collect()
}

/// What each field held in the snapshot the journal applies to (its
/// base), for the fields the journal's records change: the fingerprint of
/// the field's encoding, taken before the first record changed it.
///
/// A person edits the snapshot, which does not show the journal's commits:
/// a field they left as the snapshot had it is one they did not change, so
/// adopting their edit keeps the commits' value of it instead of the stale
/// one their save carries. Only a field they changed takes their value.
#[derive(Debug, Clone, Default)]
pub(crate) struct BaseFields {
    fields: Vec<Base>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// No record changed it: memory holds the base.
    Untouched,
    /// The fingerprint of its encoding in the base.
    Known(u64),
    /// Changed in a way that did not let its base be seen (a batch, a
    /// record whose fields are not listed): the edit's value wins.
    Unknown,
}

impl BaseFields {
    fn slot(&mut self, index: usize, count: usize) -> Option<&mut Base> {
        if self.fields.len() < count {
            self.fields.resize(count, Base::Untouched);
        }
        self.fields.get_mut(index)
    }

    /// Before `state` (still the base for every field no record changed)
    /// takes a change of field `index`.
    pub(crate) fn note<T: Persisted>(
        &mut self,
        codec: &Codec,
        path: &Path,
        state: &T,
        index: usize,
    ) {
        if let Some(slot @ Base::Untouched) = self.slot(index, T::__FIELDS.len()) {
            *slot = match codec.encode_value(path, &FieldOf(state, index)) {
                Ok(bytes) => Base::Known(fingerprint(&bytes)),
                Err(_) => Base::Unknown,
            };
        }
    }

    /// Before `state` takes `changes` (made on it).
    pub(crate) fn note_changes<T: Persisted>(
        &mut self,
        codec: &Codec,
        path: &Path,
        state: &T,
        changes: &dyn Changes,
    ) {
        changes.each(&mut |_, index, _| self.note(codec, path, state, index));
    }

    /// Field `index` changed in a way whose base cannot be seen.
    pub(crate) fn unknown(&mut self, index: usize, count: usize) {
        if let Some(slot @ Base::Untouched) = self.slot(index, count) {
            *slot = Base::Unknown;
        }
    }

    /// Before `state` takes the commit record `frame` (in `bytes`): notes
    /// the fields its frame lists, or every field when it lists none.
    pub(crate) fn note_frame<T: Persisted>(
        &mut self,
        codec: &Codec,
        path: &Path,
        state: &T,
        frame: &Frame,
        bytes: &[u8],
    ) {
        if frame.kind != Kind::Commit {
            return;
        }
        let count = T::__FIELDS.len();
        let listed = frame
            .fields
            .map(|(start, end)| &bytes[start..end])
            .filter(|list| *list != b"*");
        let Some(list) = listed else {
            (0..count).for_each(|index| self.unknown(index, count));
            return;
        };
        for entry in list.split(|&b| b == b',') {
            let name = std::str::from_utf8(entry.get(1..).unwrap_or_default()).unwrap_or("");
            // A field this version of the struct does not have is skipped.
            if let Some(index) = field_index(T::__FIELDS, name) {
                self.note(codec, path, state, index);
            }
        }
    }

    /// The fields a person's `edit` leaves as the base had them while the
    /// journal changed them: memory's values of them are kept.
    pub(crate) fn left_by<T: Persisted>(
        &self,
        codec: &Codec,
        path: &Path,
        edit: &T,
    ) -> Result<Vec<usize>> {
        let mut left = Vec::new();
        for (index, base) in self.fields.iter().enumerate() {
            if let Base::Known(fp) = base {
                if fingerprint(&codec.encode_value(path, &FieldOf(edit, index))?) == *fp {
                    left.push(index);
                }
            }
        }
        Ok(left)
    }
}

/// Fields of a state, each set whole: copied from one state to another by
/// the codec (encoded as a record, replayed).
pub(crate) struct FieldsOf<'a, T>(pub(crate) &'a T, pub(crate) &'a [usize]);

impl<T: Persisted> Changes for FieldsOf<'_, T> {
    fn len(&self) -> usize {
        self.1.len()
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        for &index in self.1 {
            emit(Op::Set, index, &FieldOf(self.0, index));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(seq: u64, time_ms: u64) -> Frame {
        Frame {
            kind: Kind::Commit,
            seq,
            time_ms: Some(time_ms),
            fields: None,
            payload_at: 0,
            end: 0,
        }
    }

    const MS: i128 = 1_000_000;

    #[test]
    fn a_commit_right_after_a_look_precedes_the_save_and_a_burst_goes_by_exact_time() {
        let mut clock = EditClock::default();
        let look = 1_000_000 * MS;
        clock.unchanged(3, look);
        clock.appended(4, look + 2_000); // covered by the look
        clock.appended(5, look + 3_000); // a burst: exact times
        clock.appended(6, look + 9 * MS);
        let saved = look + 5 * MS;
        let frame = |seq| commit(seq, 1_000_005);
        assert!(
            !clock.after_save(&commit(3, 2_000_000), saved),
            "before the look"
        );
        assert!(!clock.after_save(&frame(4), saved));
        assert!(!clock.after_save(&frame(5), saved));
        assert!(clock.after_save(&frame(6), saved));
        // Another process's record: by millisecond, more than a tick later.
        assert!(!clock.after_save(&commit(7, 1_000_005 + 10), saved));
        assert!(clock.after_save(&commit(8, 1_000_005 + 11), saved));
        let intent = Frame {
            kind: Kind::Intent,
            ..commit(9, 2_000_000)
        };
        assert!(!clock.after_save(&intent, saved));
    }

    #[test]
    fn a_commit_long_after_a_look_is_not_covered_by_it() {
        let mut clock = EditClock::default();
        clock.unchanged(0, 0);
        clock.appended(1, ns(COVERED) + 1);
        assert!(clock.after_save(&commit(1, 0), ns(COVERED)));
    }

    #[test]
    fn a_look_is_due_after_a_pause_every_interval_and_after_the_clock_went_back() {
        let mut clock = EditClock::default();
        let at = 1_000 * MS;
        clock.unchanged(0, at);
        clock.appended(1, at + 1_000);
        assert!(!clock.due(at + 2_000, false), "inside a burst");
        assert!(clock.due(at + 1_000 + ns(BURST), false), "after a pause");
        assert!(
            !clock.due(at + 1_000 + ns(BURST), true),
            "after waiting for another commit"
        );
        for i in 2..20_000u64 {
            clock.appended(i, at + 1_000 * i as i128);
        }
        assert!(clock.due(at + ns(CHECK_EVERY) + 1, true), "a long burst");
        assert!(clock.due(at - 1, false), "the clock went back");
    }
}
