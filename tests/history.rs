//! History and time travel: `keep_history`, `history()`, `state_at`,
//! `state_as_of`, across formats, compactions, reopens, damage and a real
//! `kill -9` (the simulated crashes at every operation are in the core
//! crate's T5, which keeps history on every other round of seeds).

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{files_in, formats, state_path, State, StateStoreExt, StateTransactionExt};
use persisted_state::{Commit, Engine, Error, KeepHistory, Persisted, Store};

fn open(path: &Path, policy: KeepHistory) -> Store<State> {
    Store::options().keep_history(policy).open(path).unwrap()
}

/// Makes commit number `n` (of several kinds) and returns the state the
/// model says follows it.
fn commit(store: &Store<State>, model: &mut State, n: u64) {
    match n % 4 {
        0 => {
            store.set_last_id(n).unwrap();
            model.last_id = n;
        }
        1 => {
            store.push_processed(format!("item-{n}")).unwrap();
            model.processed.push(format!("item-{n}"));
        }
        2 => {
            store
                .insert_settings(format!("k{}", n % 3), n.to_string())
                .unwrap();
            model.settings.insert(format!("k{}", n % 3), n.to_string());
        }
        _ => {
            store
                .transaction(|tx| {
                    tx.set_last_id(n);
                    tx.push_processed(format!("tx-{n}"));
                    Ok::<_, Error>(())
                })
                .unwrap();
            model.last_id = n;
            model.processed.push(format!("tx-{n}"));
        }
    }
}

fn history_files(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|f| f.contains(".history-"))
        .collect()
}

#[test]
fn history_keeps_every_commit_across_compactions_and_reopens_in_every_format() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let before = SystemTime::now() - Duration::from_secs(1);
        let mut model = State::default();
        let mut after_each = Vec::new();
        for round in 0..3u64 {
            let store = open(&path, KeepHistory::Forever);
            for n in round * 10..round * 10 + 10 {
                commit(&store, &mut model, n);
                after_each.push(model.clone());
                if n % 7 == 6 {
                    store.compact().unwrap();
                }
            }
            // Close compacts: the journal's records move to the history.
            store.close().unwrap();
        }
        let store = open(&path, KeepHistory::Forever);
        let commits = store.history().unwrap();
        assert_eq!(commits.len(), after_each.len(), "{format:?}: {commits:?}");
        assert!(
            commits.windows(2).all(|w| w[0].seq < w[1].seq),
            "{commits:?}"
        );
        for (commit, expected) in commits.iter().zip(&after_each) {
            assert!(commit.time >= before && commit.time <= SystemTime::now());
            assert_eq!(&store.state_at(commit.seq).unwrap(), expected, "{format:?}");
        }
        assert_eq!(commits[0].fields, ["last_id"]);
        assert_eq!(commits[1].fields, ["processed"]);
        assert_eq!(commits[2].fields, ["settings"]);
        assert_eq!(commits[3].fields, ["last_id", "processed"]);
        assert_eq!(store.get(), model);
        assert!(!history_files(dir.path()).is_empty());
    }
}

#[test]
fn state_as_of_is_the_state_after_the_last_commit_at_or_before_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = open(&path, KeepHistory::Forever);
    let mut model = State::default();
    let mut states = Vec::new();
    for n in 0..6 {
        commit(&store, &mut model, n);
        states.push(model.clone());
        std::thread::sleep(Duration::from_millis(3));
        if n == 2 {
            store.compact().unwrap();
        }
    }
    let commits = store.history().unwrap();
    for (commit, state) in commits.iter().zip(&states) {
        assert_eq!(&store.state_as_of(commit.time).unwrap(), state);
        // Just before the next commit: still this one.
        assert_eq!(
            &store
                .state_as_of(commit.time + Duration::from_micros(2500))
                .unwrap(),
            state
        );
    }
    let later = SystemTime::now() + Duration::from_secs(3600);
    assert_eq!(store.state_as_of(later).unwrap(), model);
    let earlier = commits[0].time - Duration::from_millis(1);
    match store.state_as_of(earlier) {
        Err(Error::NotInHistory { reason, .. }) => {
            assert!(reason.contains("no kept commit"), "{reason}")
        }
        other => panic!("expected NotInHistory, got {other:?}"),
    }
}

fn expect_not_kept(result: persisted_state::Result<State>, what: &str) -> String {
    match result {
        Err(Error::NotInHistory { reason, .. }) => reason,
        other => panic!("{what}: expected NotInHistory, got {other:?}"),
    }
}

#[test]
fn a_commit_that_is_not_kept_or_never_happened_is_an_error_never_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = open(&path, KeepHistory::Forever);
    let mut model = State::default();
    for n in 0..3 {
        commit(&store, &mut model, n);
    }
    store.compact().unwrap(); // takes seq 4 for its intent
    commit(&store, &mut model, 3);
    let seqs: Vec<u64> = store.history().unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 5]);
    expect_not_kept(store.state_at(0), "seq 0");
    let reason = expect_not_kept(store.state_at(4), "a compaction's seq");
    assert!(
        reason.contains("commit 4 is not kept") && reason.contains("commits 1 to 5"),
        "{reason}"
    );
    expect_not_kept(store.state_at(6), "a seq not made yet");
    assert_eq!(store.state_at(5).unwrap(), model);
}

#[test]
fn last_n_keeps_the_last_n_commits_and_removes_whole_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = Store::<State>::options()
        .keep_history(KeepHistory::Last(5))
        .journal_limit(1)
        .open(&path)
        .unwrap();
    let mut model = State::default();
    let mut states = Vec::new();
    for n in 0..60 {
        commit(&store, &mut model, n);
        states.push(model.clone());
    }
    let commits = store.history().unwrap();
    assert_eq!(commits.len(), 5, "{commits:?}");
    for (commit, state) in commits.iter().zip(&states[55..]) {
        assert_eq!(&store.state_at(commit.seq).unwrap(), state);
    }
    let older = commits[0].seq - 2;
    expect_not_kept(store.state_at(older), "an expired commit");
    // Every commit compacted (a limit of one byte): at most the newest two
    // segments (a file of records and its checkpoint each) are left.
    let files = history_files(dir.path());
    assert!(files.len() <= 4, "{files:?}");
}

#[test]
fn for_a_duration_keeps_what_is_younger_than_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut model = State::default();
    {
        let store = open(&path, KeepHistory::For(Duration::from_secs(3600)));
        for n in 0..4 {
            commit(&store, &mut model, n);
        }
        store.compact().unwrap();
        assert_eq!(store.history().unwrap().len(), 4);
    }
    std::thread::sleep(Duration::from_millis(1100));
    // The same files, read with a window shorter than their age.
    let store = open(&path, KeepHistory::For(Duration::from_secs(1)));
    assert_eq!(store.history().unwrap(), Vec::<Commit>::new());
    commit(&store, &mut model, 4);
    store.compact().unwrap();
    let commits = store.history().unwrap();
    assert_eq!(commits.len(), 1, "{commits:?}");
    assert_eq!(store.state_at(commits[0].seq).unwrap(), model);
}

#[test]
fn without_history_only_the_journal_is_history_and_no_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = State::open(&path).unwrap();
    let mut model = State::default();
    for n in 0..3 {
        commit(&store, &mut model, n);
    }
    let commits = store.history().unwrap();
    assert_eq!(commits.len(), 3);
    assert_eq!(store.state_at(commits[2].seq).unwrap(), model);
    store.compact().unwrap();
    assert!(store.history().unwrap().is_empty());
    expect_not_kept(store.state_at(commits[2].seq), "a folded commit");
    assert!(history_files(dir.path()).is_empty());
}

#[test]
fn the_snapshot_engine_cannot_keep_history() {
    let dir = tempfile::tempdir().unwrap();
    let result = Store::<State>::options()
        .engine(Engine::Snapshot)
        .keep_history(KeepHistory::Forever)
        .open(dir.path().join("state.json"));
    assert!(
        matches!(result, Err(Error::Unsupported { .. })),
        "{result:?}"
    );
}

#[test]
fn a_damaged_history_file_is_an_error_naming_it_and_commits_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = open(&path, KeepHistory::Forever);
    let mut model = State::default();
    for n in 0..4 {
        commit(&store, &mut model, n);
    }
    store.compact().unwrap();
    let segment = dir.path().join("state.json.history-0");
    let original = std::fs::read(&segment).unwrap();
    let mut bytes = original.clone();
    // Inside the first record's payload: valid records follow it.
    let at = bytes.iter().position(|&b| b == b'{').unwrap() + 3;
    bytes[at] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    match store.history() {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!(path, segment);
            assert!(offset.is_some());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Damage in the last record, which no later file holds, is an error
    // too (not mistaken for a torn tail).
    let mut last = original.clone();
    let end = last.len() - 3;
    last[end] ^= 0x01;
    std::fs::write(&segment, &last).unwrap();
    assert!(matches!(store.history(), Err(Error::Corrupt { .. })));
    // The store itself is unharmed: commits and compactions go on, into a
    // new history file.
    commit(&store, &mut model, 4);
    store.compact().unwrap();
    assert_eq!(store.get(), model);
    std::fs::rename(&segment, dir.path().join("moved-away")).unwrap();
    let commits = store.history().unwrap();
    assert_eq!(commits.len(), 1, "{commits:?}");
    assert_eq!(store.state_at(commits[0].seq).unwrap(), model);
}

#[test]
fn a_torn_history_tail_left_by_a_crash_is_cut_and_nothing_is_kept_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut model = State::default();
    let store = open(&path, KeepHistory::Forever);
    for n in 0..3 {
        commit(&store, &mut model, n);
    }
    store.compact().unwrap();
    for n in 3..6 {
        commit(&store, &mut model, n);
    }
    // A compaction cut short after it appended to the history: the
    // journal's records are in both, and half a record follows them.
    let segment = dir.path().join("state.json.history-0");
    let journal = std::fs::read(common::journal_of(&path)).unwrap();
    let records = &journal[journal.iter().position(|&b| b == b'\n').unwrap() + 1..];
    let mut torn = std::fs::read(&segment).unwrap();
    torn.extend_from_slice(records);
    torn.extend_from_slice(&records[..records.len() / 2]);
    std::fs::write(&segment, &torn).unwrap();
    let commits = store.history().unwrap();
    assert_eq!(commits.len(), 6, "{commits:?}");
    store.compact().unwrap();
    let commits = store.history().unwrap();
    assert_eq!(commits.len(), 6, "{commits:?}");
    assert_eq!(store.state_at(commits[5].seq).unwrap(), model);
    let text = std::fs::read_to_string(&segment).unwrap();
    for c in &commits {
        let frames = text
            .lines()
            .filter(|l| l.starts_with(&format!("@{} ", c.seq)))
            .count();
        assert_eq!(frames, 1, "commit {} kept {frames} times:\n{text}", c.seq);
    }
}

#[test]
fn shared_participants_build_one_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let opts = Store::<State>::options()
        .shared(true)
        .keep_history(KeepHistory::Forever)
        .journal_limit(600);
    let a = opts.clone().open(&path).unwrap();
    let b = opts.open(&path).unwrap();
    let mut model = State::default();
    let mut states = Vec::new();
    for n in 0..40 {
        let store = if n % 2 == 0 { &a } else { &b };
        commit(store, &mut model, n);
        states.push(model.clone());
    }
    assert!(history_files(dir.path()).len() >= 2, "no compaction ran");
    for store in [&a, &b] {
        let commits = store.history().unwrap();
        assert_eq!(commits.len(), 40);
        for (commit, state) in commits.iter().zip(&states) {
            assert_eq!(&store.state_at(commit.seq).unwrap(), state);
        }
    }
    let reader = Store::<State>::options()
        .read_only(true)
        .keep_history(KeepHistory::Forever)
        .open(&path)
        .unwrap();
    assert_eq!(reader.history().unwrap().len(), 40);
}

/// Compatibility: a version 1 journal (no commit times) goes into the
/// history at its first compaction, its commits at the Unix epoch.
#[test]
fn commits_of_a_version_1_journal_are_kept_with_no_time() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/json/journal");
    for name in ["state.json", "state.json.journal"] {
        std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
    }
    let path = dir.path().join("state.json");
    let store = open(&path, KeepHistory::Forever);
    let before = store.history().unwrap();
    assert!(!before.is_empty());
    assert!(before.iter().all(|c| c.time == SystemTime::UNIX_EPOCH));
    let current = store.get();
    store.compact().unwrap();
    let after = store.history().unwrap();
    assert_eq!(after, before);
    assert_eq!(store.state_at(after.last().unwrap().seq).unwrap(), current);
}

const CHILD: &str = "PERSISTED_HISTORY_CHILD";

/// Runs only as the child: one transaction per item, compacting often,
/// acking each.
#[test]
fn history_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let store = Store::<State>::options()
        .keep_history(KeepHistory::Forever)
        .journal_limit(2048)
        .open(&path)
        .unwrap();
    common::resume_and_ack(&store);
}

/// A real `kill -9` at random moments (compactions included): the history
/// is every commit, once, in order, each `state_at` the state after it.
#[test]
fn history_survives_kill9_with_every_commit_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let rounds: u64 = common::soak_size("PERSISTED_HISTORY_ROUNDS", 4);
    for round in 0..rounds {
        let acked = common::kill9_after_acks("history_child", CHILD, &path, 150 + round * 37);
        let store = open(&path, KeepHistory::Forever);
        let state = store.get();
        assert!(
            state.last_id >= acked.unwrap_or(0),
            "lost acknowledged items"
        );
        let commits = store.history().unwrap();
        assert_eq!(commits.len() as u64, state.last_id, "round {round}");
        for (i, commit) in commits.iter().enumerate() {
            // Spot checks: replaying is O(history) each.
            if i % 97 == 0 || i + 1 == commits.len() {
                let then = store.state_at(commit.seq).unwrap();
                assert_eq!(then.last_id, i as u64 + 1);
                assert_eq!(then.processed.len(), i + 1);
            }
        }
        drop(store);
    }
}

/// DESIGN "History": where the kept history has a gap (a run that opened
/// the store without `keep_history`), time travel gives the true state or
/// `Error::NotInHistory`, never an older state.
#[test]
fn a_gap_in_the_history_gives_the_true_state_or_not_in_history_never_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(dir.path(), persisted_state::Format::Json);
    let store = open(&path, KeepHistory::Forever);
    for n in 1..=3 {
        store.set_last_id(n).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    store.close().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let in_gap = SystemTime::now();
    std::thread::sleep(Duration::from_millis(20));
    // A run without history: its commit is folded and not kept.
    let store = open(&path, KeepHistory::None);
    store.set_last_id(100).unwrap();
    store.close().unwrap();
    std::thread::sleep(Duration::from_millis(20));

    let store = open(&path, KeepHistory::Forever);
    assert_eq!(store.last_id(), 100);
    let now = store.state_as_of(SystemTime::now()).unwrap();
    assert_eq!(now.last_id, 100, "as of now: the true state");
    match store.state_as_of(in_gap) {
        Err(Error::NotInHistory { reason, .. }) => assert!(reason.contains("gap"), "{reason}"),
        other => panic!("inside the gap: {other:?}"),
    }
    // Before the gap, the kept commits still answer.
    let commits = store.history().unwrap();
    assert_eq!(store.state_at(commits[2].seq).unwrap().last_id, 3);
    assert_eq!(store.state_as_of(commits[1].time).unwrap().last_id, 2);
    // A commit after the gap answers for the times after it.
    store.set_last_id(101).unwrap();
    store.compact().unwrap();
    let last = store.history().unwrap().last().unwrap().clone();
    assert_eq!(store.state_as_of(last.time).unwrap().last_id, 101);
    assert_eq!(store.state_as_of(SystemTime::now()).unwrap().last_id, 101);
}

/// A hand edit adopted at open changes the state without a commit: the
/// history shows a gap there, not the state from before the edit.
#[test]
fn a_hand_edit_between_runs_is_a_gap_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(dir.path(), persisted_state::Format::Json);
    let store = open(&path, KeepHistory::Forever);
    store.set_last_id(5).unwrap();
    store.close().unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace('5', "55");
    std::fs::write(&path, text).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let store = open(&path, KeepHistory::Forever);
    assert_eq!(store.last_id(), 55);
    assert_eq!(store.state_as_of(SystemTime::now()).unwrap().last_id, 55);
}
