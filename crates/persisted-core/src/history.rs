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

#[cfg(test)]
mod tests {
    use super::*;

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
