//! History and time travel: which folded commits a store keeps
//! ([`KeepHistory`]) and what [`Store::history`](crate::Store::history)
//! reports of each ([`Commit`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which commits a journal-engine store keeps after compaction folds them
/// into the snapshot, for [`Store::history`](crate::Store::history),
/// [`Store::state_at`](crate::Store::state_at) and
/// [`Store::state_as_of`](crate::Store::state_as_of).
///
/// Kept commits live beside the store in `<file>.history-<seq>` files (the
/// journal's framing and checks) with a checkpoint of the state they start
/// from in `<file>.history-<seq>.snapshot`; compaction appends to the newest
/// and never rewrites one, and deletes a whole file once the policy no
/// longer needs any commit in it. See [`file_format`](crate::file_format).
///
/// ```
/// use std::time::Duration;
/// use persisted_state::{KeepHistory, Persisted, Store};
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
/// struct Counter {
///     n: u64,
/// }
///
/// # let dir = tempfile::tempdir()?;
/// let store = Store::<Counter>::options()
///     .keep_history(KeepHistory::For(Duration::from_secs(7 * 24 * 3600)))
///     .open(dir.path().join("counter.json"))?;
/// store.set_n(1)?;
/// store.set_n(2)?;
/// store.compact()?; // the two commits move to the history files
/// let commits = store.history()?;
/// assert_eq!(commits.len(), 2);
/// assert_eq!(store.state_at(commits[0].seq)?.n, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeepHistory {
    /// Compaction drops the commits it folds (the default). The history is
    /// then the commits made since the last compaction.
    #[default]
    None,
    /// The last `n` commits.
    Last(u64),
    /// The commits made within this long of now.
    For(Duration),
    /// Every commit.
    Forever,
}

impl KeepHistory {
    /// How many of `times` (commit times in ms since the Unix epoch, oldest
    /// first) this policy no longer keeps: the kept ones are the rest.
    pub(crate) fn expired(self, times: &[u64], now_ms: u64) -> usize {
        match self {
            KeepHistory::None | KeepHistory::Forever => 0,
            KeepHistory::Last(n) => {
                times.len() - usize::try_from(n).unwrap_or(usize::MAX).min(times.len())
            }
            KeepHistory::For(age) => {
                let cutoff =
                    now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
                times.partition_point(|&t| t < cutoff)
            }
        }
    }
}

/// One commit of a store's history: see
/// [`Store::history`](crate::Store::history).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Commit {
    /// The commit's sequence number: increasing, one total order across
    /// every process sharing the store. Compactions take numbers too, so
    /// consecutive commits may differ by more than one.
    pub seq: u64,
    /// When it was committed (the wall clock of the process that made it,
    /// to the millisecond). Commits of journals written by the first file
    /// format carry no time and show the Unix epoch.
    pub time: SystemTime,
    /// The fields it changed, by their names in the file, in the order it
    /// first touched them. Empty when the record could not list them (a
    /// renamed field holding a space, a comma or a control character).
    pub fields: Vec<String>,
}

impl Commit {
    pub(crate) fn new(seq: u64, time_ms: u64, fields: Vec<String>) -> Commit {
        Commit {
            seq,
            time: UNIX_EPOCH + Duration::from_millis(time_ms),
            fields,
        }
    }
}

/// One file of history records (a history segment, or the journal): the
/// sequence number its checkpoint is at, its last record's, and when its
/// checkpoint was written (ms since the Unix epoch).
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// The checkpoint's sequence number (the file header's `seq`).
    pub from: u64,
    /// The last record's sequence number (`from` when it has none).
    pub last: u64,
    /// The checkpoint file's modification time.
    pub checkpoint_ms: u64,
}

/// A kept commit as [`point_as_of`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Dated {
    /// Its sequence number.
    pub seq: u64,
    /// Its time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The index of the [`Span`] holding it.
    pub span: usize,
}

/// What the state as of a time is: the state after a kept commit, or a
/// span's checkpoint (the state at the end of a gap in the history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Right after `commits[i]`.
    Commit(usize),
    /// The checkpoint of `spans[i]`, with none of its records.
    Checkpoint(usize),
}

/// Why [`point_as_of`] has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPoint {
    /// No kept commit is that old.
    TooOld,
    /// The time falls in a gap of the history (commits that were folded
    /// while history was not kept), whose commits' times are unknown.
    InGap {
        /// The last commit kept before the gap.
        after: u64,
        /// The first sequence number after it.
        until: u64,
    },
}

/// The state as of `time_ms`, from the kept commits (oldest first, each
/// once, `commits[first_kept..]` still kept by the policy) and the spans
/// they are in. Never a guess: where spans leave a gap in the sequence
/// numbers (a run that opened the store without keeping history), the
/// commits inside it have unknown times, so a time after the last commit
/// before the gap and before its end has no answer; from the gap's end on
/// (the checkpoint after it was written, or the first commit after it was
/// made, whichever is earlier), the state is the checkpoint's.
pub fn point_as_of(
    spans: &[Span],
    commits: &[Dated],
    first_kept: usize,
    time_ms: u64,
) -> Result<Point, NoPoint> {
    let first_span = commits.get(first_kept).map_or(spans.len(), |c| c.span);
    let mut answer: Option<(Point, u64)> = None;
    let mut next = first_kept;
    for s in first_span..spans.len() {
        let gap = s > first_span && spans[s].from > spans[s - 1].last;
        if gap {
            // The gap's commits came before this span's first: its end is
            // no later than that commit, even if the checkpoint was written
            // after it (a compaction starts a segment at the old snapshot).
            let first = commits.get(next).filter(|c| c.span == s);
            let end = first.map_or(spans[s].checkpoint_ms, |c| {
                c.time_ms.min(spans[s].checkpoint_ms)
            });
            if end > time_ms {
                return Err(match answer {
                    Some((_, after)) => NoPoint::InGap {
                        after,
                        until: spans[s].from,
                    },
                    None => NoPoint::TooOld,
                });
            }
            answer = Some((Point::Checkpoint(s), spans[s].from));
        }
        while let Some(c) = commits.get(next).filter(|c| c.span == s) {
            if c.time_ms > time_ms {
                return answer.map(|(point, _)| point).ok_or(NoPoint::TooOld);
            }
            answer = Some((Point::Commit(next), c.seq));
            next += 1;
        }
    }
    answer.map(|(point, _)| point).ok_or(NoPoint::TooOld)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(from: u64, last: u64, checkpoint_ms: u64) -> Span {
        Span {
            from,
            last,
            checkpoint_ms,
        }
    }

    fn dated(seq: u64, time_ms: u64, span: usize) -> Dated {
        Dated { seq, time_ms, span }
    }

    #[test]
    fn a_gap_gives_the_checkpoint_after_it_or_no_answer_never_an_older_state() {
        // Commits 1-3 kept, 4-6 folded without history, the journal from 6.
        let spans = [span(0, 3, 5), span(6, 7, 300)];
        let commits = [
            dated(1, 10, 0),
            dated(2, 20, 0),
            dated(3, 30, 0),
            dated(7, 400, 1),
        ];
        let at = |t| point_as_of(&spans, &commits, 0, t);
        assert_eq!(at(5), Err(NoPoint::TooOld));
        assert_eq!(at(25), Ok(Point::Commit(1)));
        // The gap's commits may share the millisecond of the last before it.
        assert_eq!(at(30), Err(NoPoint::InGap { after: 3, until: 6 }));
        assert_eq!(at(100), Err(NoPoint::InGap { after: 3, until: 6 }));
        assert_eq!(at(300), Ok(Point::Checkpoint(1)));
        assert_eq!(at(500), Ok(Point::Commit(3)));
        // A checkpoint written after the first commit that follows it.
        let late = [span(0, 3, 5), span(6, 7, 900)];
        assert_eq!(point_as_of(&late, &commits, 0, 400), Ok(Point::Commit(3)));
        assert_eq!(
            point_as_of(&late, &commits, 0, 399),
            Err(NoPoint::InGap { after: 3, until: 6 })
        );
        // No commit after the gap: from the checkpoint's time on, its state.
        let spans = [span(0, 3, 5), span(6, 6, 300)];
        let at = |t| point_as_of(&spans, &commits[..3], 0, t);
        assert_eq!(at(299), Err(NoPoint::InGap { after: 3, until: 6 }));
        assert_eq!(at(u64::MAX), Ok(Point::Checkpoint(1)));
    }

    #[test]
    fn spans_that_follow_on_are_one_history() {
        // A compaction's intent takes a number: the next span starts there.
        let spans = [span(0, 3, 5), span(3, 5, 50)];
        let commits = [dated(1, 10, 0), dated(2, 20, 0), dated(5, 60, 1)];
        let at = |t| point_as_of(&spans, &commits, 0, t);
        assert_eq!(at(40), Ok(Point::Commit(1)));
        assert_eq!(at(70), Ok(Point::Commit(2)));
        assert_eq!(point_as_of(&spans, &commits, 1, 15), Err(NoPoint::TooOld));
    }

    #[test]
    fn expired_counts_what_each_policy_drops() {
        let times = [10, 20, 30, 40];
        assert_eq!(KeepHistory::None.expired(&times, 100), 0);
        assert_eq!(KeepHistory::Forever.expired(&times, 100), 0);
        assert_eq!(KeepHistory::Last(3).expired(&times, 100), 1);
        assert_eq!(KeepHistory::Last(9).expired(&times, 100), 0);
        assert_eq!(KeepHistory::Last(0).expired(&times, 100), 4);
        let age = |ms| KeepHistory::For(Duration::from_millis(ms));
        assert_eq!(age(75).expired(&times, 100), 2);
        assert_eq!(age(70).expired(&times, 100), 2);
        assert_eq!(age(1000).expired(&times, 100), 0);
        assert_eq!(age(0).expired(&times, 100), 4);
    }
}
