//! Crash, power-loss and I/O-failure tests on the simulated file system
//! (`testing::sim`): T5 (crash at every operation), T6 (compaction cut at
//! each of its steps), T8 (the order of system calls), T9 (EIO/ENOSPC at
//! every operation). Smoke sizes run in `cargo test`; `PERSISTED_SOAK_SEEDS`
//! raises the number of seeds (see `scripts/soak.sh`).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::file::vfs::Vfs;
use crate::testing::formats;
use crate::testing::model::{Counter, Items, Model};
use crate::testing::rng::Rng;
use crate::testing::sim::{Fault, OpKind, SimFs};
use crate::{
    Durability, Engine, Error, Format, KeepHistory, OpenOptions, RecoveryEvent, Result, Store,
};

/// One write the workload makes.
#[derive(Debug, Clone)]
enum Step {
    SetCounter(u64),
    Push(String),
    Pop,
    /// `update` moving `a` and `b` together.
    Pair,
    /// A transaction moving `a`, `b` and `counter` together.
    TxPair,
    Compact,
}

fn workload(seed: u64, len: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|i| match rng.below(10) {
            0..=1 => Step::SetCounter(rng.below(1_000_000)),
            2..=4 => Step::Push(format!(
                "item-{seed}-{i}-{}",
                "x".repeat(rng.below(40) as usize)
            )),
            5 => Step::Pop,
            6 => Step::Pair,
            7..=8 => Step::TxPair,
            _ => Step::Compact,
        })
        .collect()
}

fn apply(store: &Store<Model>, step: &Step) -> Result<()> {
    match step {
        Step::SetCounter(v) => store.__set::<Counter>(*v),
        Step::Push(s) => store.__push::<Items>(s.clone()),
        Step::Pop => store.__pop::<Items>().map(drop),
        Step::Pair => store.update(|m| {
            m.a += 1;
            m.b += 1;
        }),
        Step::TxPair => store.transaction(|tx| {
            tx.a += 1;
            tx.b += 1;
            tx.counter += 1;
            Ok::<_, Error>(())
        }),
        Step::Compact => store.compact(),
    }
}

fn apply_model(model: &mut Model, step: &Step) {
    match step {
        Step::SetCounter(v) => model.counter = *v,
        Step::Push(s) => model.items.push(s.clone()),
        Step::Pop => {
            model.items.pop();
        }
        Step::Pair => {
            model.a += 1;
            model.b += 1;
        }
        Step::TxPair => {
            model.a += 1;
            model.b += 1;
            model.counter += 1;
        }
        Step::Compact => {}
    }
}

/// The model after each prefix of `steps`: `states[k]` is after `k` steps.
fn prefix_states(steps: &[Step]) -> Vec<Model> {
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    for step in steps {
        apply_model(&mut model, step);
        states.push(model.clone());
    }
    states
}

fn path(format: Format) -> PathBuf {
    match format {
        Format::Json => PathBuf::from("/sim/state.json"),
        Format::Yaml => PathBuf::from("/sim/state.yaml"),
        Format::Toml => PathBuf::from("/sim/state.toml"),
        Format::Bincode => PathBuf::from("/sim/state.bin"),
    }
}

fn options(durability: Durability, journal_limit: u64) -> OpenOptions<Model> {
    Store::<Model>::options()
        .durability(durability)
        .journal_limit(journal_limit)
}

fn open(sim: &SimFs, path: &Path, options: OpenOptions<Model>) -> Result<Store<Model>> {
    Store::open_on(Arc::new(sim.clone()) as Arc<dyn Vfs>, path, options, None)
}

/// Runs `steps` until the first error; returns how many succeeded.
fn run(sim: &SimFs, path: &Path, options: OpenOptions<Model>, steps: &[Step]) -> usize {
    let Ok(store) = open(sim, path, options) else {
        return 0;
    };
    let mut acked = 0;
    for step in steps {
        if apply(&store, step).is_err() {
            break;
        }
        acked += 1;
    }
    drop(store); // compacts at drop unless the disk has crashed
    acked
}

/// The model after each commit of `steps`: `states[j]` is after `j`
/// commits (a compaction is not one, nor a `pop_` of an empty list).
fn commit_states(steps: &[Step]) -> Vec<Model> {
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    for step in steps {
        let commits = match step {
            Step::Compact => false,
            Step::Pop => !model.items.is_empty(),
            _ => true,
        };
        apply_model(&mut model, step);
        if commits {
            states.push(model.clone());
        }
    }
    states
}

/// With history kept (`Forever`): the history is every commit that
/// survived, once each, in order, and `state_at` of each is the state after
/// it; the last is the current state.
fn check_history(store: &Store<Model>, commit_states: &[Model]) {
    let commits = store.history().unwrap_or_else(|e| panic!("history: {e}"));
    let state = store.get();
    assert!(
        commits.len() < commit_states.len(),
        "more commits in the history than were made: {commits:?}"
    );
    for (j, commit) in commits.iter().enumerate() {
        let then = store
            .state_at(commit.seq)
            .unwrap_or_else(|e| panic!("state_at({}): {e}", commit.seq));
        assert_eq!(
            then,
            commit_states[j + 1],
            "history commit {j} (seq {}) is not the state after commit {}: {commits:?}",
            commit.seq,
            j + 1
        );
    }
    assert_eq!(
        state,
        commit_states[commits.len()],
        "the history ({} commits) does not end at the current state",
        commits.len()
    );
}

/// Opens a crash image; it must open, twice, to the same state, and a
/// commit made after recovery must survive the next crash. With history
/// kept, `commit_states` checks it (see [`check_history`]).
fn recover(
    image: &BTreeMap<PathBuf, Vec<u8>>,
    path: &Path,
    options: OpenOptions<Model>,
    commit_states: &[Model],
) -> Model {
    let sim = SimFs::from_image(image);
    let store = open(&sim, path, options.clone()).unwrap_or_else(|e| panic!("failed open: {e}"));
    let state = store.get();
    if options.keep_history != KeepHistory::None {
        check_history(&store, commit_states);
    }
    store.__set::<Counter>(state.counter + 1).unwrap();
    let after = SimFs::from_image(&sim.process_crash_image());
    drop(store);
    let again = open(&sim, path, options.clone())
        .expect("second open")
        .get();
    let mut expected = state.clone();
    expected.counter += 1;
    assert_eq!(again, expected, "recovery is not idempotent");
    let crashed = open(&after, path, options).expect("open after a crash");
    assert_eq!(
        crashed.get(),
        expected,
        "a commit made after recovery was lost"
    );
    // Nothing more to check on this disk: crash it so the drop does not
    // compact (the first store's drop above already exercised that).
    after.crash_at(after.ops() + 1, 0);
    drop(crashed);
    state
}

/// T5: crash at every operation of a random workload, read the disk as a
/// process crash and as a power cut leave it, and open it: the state is
/// always the state after a prefix of the commits, and with
/// `Durability::Sync` (or any process crash) no acknowledged commit is lost.
///
/// A seed is one random workload in one format (they take turns), crashed
/// at every operation × {process crash, power cut} × {Sync, Flush}: about
/// 400 crash images. Seeds run on every core; `PERSISTED_SOAK_SEED_START`
/// and `PERSISTED_SOAK_SEEDS` choose them.
#[test]
fn a_crash_at_every_operation_recovers_a_prefix_without_losing_acknowledged_commits() {
    let start: u64 = crate::testing::soak_size("PERSISTED_SOAK_SEED_START", 0);
    let end = start + crate::testing::soak_size("PERSISTED_SOAK_SEEDS", 50u64);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let next = AtomicU64::new(start);
    let failed = AtomicBool::new(false);
    let tally = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    // A failing seed stops the other workers too.
                    let _stop_all = StopOnPanic(&failed);
                    let mut tally = Tally::default();
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= end || failed.load(Ordering::Relaxed) {
                            break tally;
                        }
                        let formats = formats();
                        let format = formats[(seed % formats.len() as u64) as usize];
                        for durability in [Durability::Sync, Durability::Flush] {
                            crash_everywhere(format, durability, Engine::Journal, seed, &mut tally);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .fold(Tally::default(), |a, b| Tally {
                images: a.images + b.images,
                recovered: a.recovered + b.recovered,
            })
    });
    assert!(tally.images > 0);
    eprintln!(
        "T5: seeds {start}..{end}: {} crash images checked, {} distinct images recovered",
        tally.images, tally.recovered
    );
}

/// T5 over the snapshot engine: every commit rewrites the file (temp,
/// fsync with Sync, rename, directory fsync with Sync); a crash at any
/// operation recovers a prefix, and with Sync every acknowledged commit.
#[test]
fn the_snapshot_engine_recovers_a_prefix_after_a_crash_at_every_operation() {
    let seeds: u64 = crate::testing::soak_size("PERSISTED_SOAK_SNAPSHOT_SEEDS", 4);
    let mut tally = Tally::default();
    for seed in 0..seeds {
        let formats = formats();
        let format = formats[(seed % formats.len() as u64) as usize];
        for durability in [Durability::Sync, Durability::Flush] {
            crash_everywhere(
                format,
                durability,
                Engine::Snapshot,
                1000 + seed,
                &mut tally,
            );
        }
    }
    assert!(tally.images > 0);
    eprintln!(
        "T5 (snapshot engine): {seeds} seeds, {} crash images, {} distinct recovered",
        tally.images, tally.recovered
    );
}

/// Raises its flag if the thread unwinds past it.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Crash images whose recovered state was checked.
    images: u64,
    /// Distinct images opened (identical images recover identically, so each
    /// is opened once per seed).
    recovered: u64,
}

/// T5 for one seed: crash at each operation of the seed's workload.
fn crash_everywhere(
    format: Format,
    durability: Durability,
    engine: Engine,
    seed: u64,
    tally: &mut Tally,
) {
    let steps = workload(seed, 24);
    let states = prefix_states(&steps);
    let commit_states = commit_states(&steps);
    let mut options = options(durability, 400).engine(engine);
    // Every other round of formats keeps history: compaction then also
    // appends to the history files, and every recovery checks them.
    if engine == Engine::Journal && (seed / 3) % 2 == 1 {
        options = options.keep_history(KeepHistory::Forever);
    }
    let path = path(format);
    let clean = SimFs::new();
    assert_eq!(run(&clean, &path, options.clone(), &steps), steps.len());
    let total = clean.ops();
    // Recovery is a function of the image's bytes: open each image once.
    let mut seen: HashMap<BTreeMap<PathBuf, Vec<u8>>, Model> = HashMap::new();
    let mut recover_once = |image: BTreeMap<PathBuf, Vec<u8>>, tally: &mut Tally| {
        tally.images += 1;
        if let Some(state) = seen.get(&image) {
            return state.clone();
        }
        tally.recovered += 1;
        let state = recover(&image, &path, options.clone(), &commit_states);
        seen.insert(image, state.clone());
        state
    };
    for crash_at in 1..=total {
        let sim = SimFs::new();
        sim.crash_at(crash_at, seed ^ crash_at);
        let acked = run(&sim, &path, options.clone(), &steps);
        assert!(sim.has_crashed());
        let process = recover_once(sim.process_crash_image(), tally);
        assert!(
            process == states[acked] || process == states[(acked + 1).min(steps.len())],
            "{format:?} seed {seed} crash at op {crash_at}/{total} ({durability:?}): \
             process crash lost or mixed commits: acked {acked}, got {process:?}"
        );
        if engine == Engine::Snapshot && durability == Durability::Flush {
            // Flush promises survival of a process crash only; the snapshot
            // engine renames an unsynced temp file, which a power cut may
            // leave empty or garbled (the journal engine's compaction is
            // always synced).
            continue;
        }
        let power = recover_once(sim.power_loss_image(seed * 7919 + crash_at), tally);
        let lowest = if durability == Durability::Sync {
            acked
        } else {
            0
        };
        let found = states[lowest..=(acked + 1).min(steps.len())].contains(&power);
        assert!(
            found,
            "{format:?} seed {seed} crash at op {crash_at}/{total} ({durability:?}): \
             power loss gave a state that is no allowed prefix: acked {acked}, got {power:?}"
        );
        assert_eq!(power.a, power.b, "a commit was split");
    }
}

/// T6: a compaction cut at each of its steps, by a process crash or a power
/// cut, recovers exactly the state before it: nothing lost, nothing applied
/// twice.
#[test]
fn a_compaction_cut_at_any_step_recovers_the_state_before_it() {
    for format in formats() {
        let path = path(format);
        // Sync, so the commits before the compaction are sure to survive a
        // power cut; only the compaction is on trial.
        let options = options(Durability::Sync, u64::MAX);
        let steps: Vec<Step> = (0..6)
            .map(|i| Step::Push(format!("p{i}")))
            .chain([Step::Pair, Step::TxPair, Step::Pop])
            .collect();
        let expected = prefix_states(&steps).pop().unwrap();
        // Find the operations compact() performs.
        let probe = SimFs::new();
        let store = open(&probe, &path, options.clone()).unwrap();
        for step in &steps {
            apply(&store, step).unwrap();
        }
        let first = probe.ops() + 1;
        store.compact().unwrap();
        let last = probe.ops();
        drop(store);
        assert!(last - first >= 7, "compaction takes its protocol's steps");
        eprintln!(
            "T6: {format:?}: {} compaction steps x (process crash + 8 power cuts)",
            last - first + 1
        );
        for crash_at in first..=last {
            for seed in 0..8 {
                let sim = SimFs::new();
                sim.crash_at(crash_at, seed);
                let store = open(&sim, &path, options.clone()).unwrap();
                for step in &steps {
                    apply(&store, step).unwrap();
                }
                assert!(store.compact().is_err());
                drop(store);
                let process = recover(&sim.process_crash_image(), &path, options.clone(), &[]);
                assert_eq!(
                    process, expected,
                    "{format:?} process crash at op {crash_at}"
                );
                let image = sim.power_loss_image(seed);
                let power = recover(&image, &path, options.clone(), &[]);
                assert_eq!(
                    power, expected,
                    "{format:?} power loss at op {crash_at} seed {seed}"
                );
                // A compaction cut short is recognised as one (by its
                // intent, or by its new journal's temp file when the intent
                // was lost), never taken for an edit by hand.
                let reopened = open(&SimFs::from_image(&image), &path, options.clone()).unwrap();
                assert!(
                    !reopened.recovery().events.iter().any(|e| matches!(
                        e,
                        RecoveryEvent::JournalOrphaned { .. }
                            | RecoveryEvent::HandEditAdopted { .. }
                    )),
                    "{format:?} power loss at op {crash_at} seed {seed}: {:?}",
                    reopened.recovery()
                );
            }
        }
    }
}

/// The new journal's temp file a compaction cut short leaves proves only
/// what it names: beside a snapshot edited to something else, the journal
/// is orphaned as an edit after a crash requires (its commits kept aside,
/// not reset as stale), and the temp file is removed.
#[test]
fn a_new_journal_left_by_a_cut_compaction_proves_only_the_snapshot_it_names() {
    let path = path(Format::Json);
    let options = options(Durability::Sync, u64::MAX);
    let sim = SimFs::new();
    let store = open(&sim, &path, options.clone()).unwrap();
    store.__set::<Counter>(7).unwrap();
    let start = sim.trace().len();
    // Crash right after the new journal's directory fsync, before the
    // snapshot's rename: the new journal's temp file is on the disk.
    let probe = SimFs::new();
    let probe_store = open(&probe, &path, options.clone()).unwrap();
    probe_store.__set::<Counter>(7).unwrap();
    let probe_start = probe.trace().len();
    probe_store.compact().unwrap();
    let trace = probe.trace();
    let fresh = position(
        &trace,
        probe_start,
        OpKind::CreateNew,
        ".state.json.journal.tmp-",
    );
    let fresh_dir_sync = position(&trace, fresh, OpKind::SyncDir, "/sim");
    assert_eq!(start, probe_start, "the two runs take the same steps");
    sim.crash_at(fresh_dir_sync as u64 + 2, 0);
    assert!(store.compact().is_err());
    drop(store);
    let mut image = sim.process_crash_image();
    let temp = |image: &BTreeMap<PathBuf, Vec<u8>>| {
        image
            .keys()
            .filter(|p| p.to_string_lossy().contains(".state.json.journal.tmp-"))
            .count()
    };
    assert_eq!(temp(&image), 1, "{:?}", image.keys());
    // A person edits the snapshot, and the intent record is gone (a power
    // cut): only the temp file could say a compaction finished, and it
    // names another snapshot.
    let edit = serde_json::to_vec(&Model {
        counter: 99,
        ..Model::default()
    })
    .unwrap();
    image.insert(path.clone(), edit);
    let journal = path.with_file_name("state.json.journal");
    let bytes = image[&journal].clone();
    let intent_at = bytes
        .windows(2)
        .rposition(|w| w == b"\n!")
        .expect("an intent record")
        + 1;
    image.insert(journal, bytes[..intent_at].to_vec());
    let sim = SimFs::from_image(&image);
    let store = open(&sim, &path, options).unwrap();
    assert_eq!(store.get().counter, 99, "the edit wins");
    assert!(
        store
            .recovery()
            .events
            .iter()
            .any(|e| matches!(e, RecoveryEvent::JournalOrphaned { commits: 1, .. })),
        "{:?}",
        store.recovery()
    );
    assert_eq!(
        temp(&sim.process_crash_image()),
        0,
        "the temp file is removed"
    );
}

fn position(trace: &[crate::testing::sim::Traced], from: usize, kind: OpKind, name: &str) -> usize {
    trace[from..]
        .iter()
        .position(|t| t.kind == kind && t.path.to_string_lossy().contains(name))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {kind:?} on {name} after op {from}: {trace:#?}"))
}

/// T8: the system calls come in the order the protocol requires.
#[test]
fn commits_and_compaction_issue_their_system_calls_in_the_required_order() {
    let path = path(Format::Json);
    for durability in [Durability::Flush, Durability::Sync] {
        let sim = SimFs::new();
        let store = open(&sim, &path, options(durability, u64::MAX)).unwrap();
        for i in 0..5 {
            let before = sim.trace().len();
            store.__set::<Counter>(i).unwrap();
            let ops: Vec<OpKind> = sim.trace()[before..].iter().map(|t| t.kind).collect();
            let syncs = ops.iter().filter(|k| k.is_sync()).count();
            assert_eq!(
                ops.iter().filter(|k| **k == OpKind::Write).count(),
                1,
                "one write per commit"
            );
            assert_eq!(
                syncs,
                usize::from(durability == Durability::Sync),
                "{durability:?}: {ops:?}"
            );
        }
        let start = sim.trace().len();
        store.compact().unwrap();
        let trace = sim.trace();
        let tmp_sync = position(&trace, start, OpKind::SyncAll, ".state.json.tmp-");
        let fresh = position(&trace, start, OpKind::CreateNew, ".state.json.journal.tmp-");
        let fresh_sync = position(&trace, fresh, OpKind::SyncAll, ".state.json.journal.tmp-");
        let fresh_dir_sync = position(&trace, fresh_sync, OpKind::SyncDir, "/sim");
        let rename = position(&trace, start, OpKind::Rename, "state.json");
        let dir_sync = position(&trace, rename, OpKind::SyncDir, "/sim");
        let reset = position(&trace, dir_sync, OpKind::Rename, "state.json.journal");
        let reset_dir_sync = position(&trace, reset, OpKind::SyncDir, "/sim");
        // The new journal (the proof that the rename happened) is durable,
        // directory entry included, before the rename.
        assert!(tmp_sync < rename && fresh_sync < fresh_dir_sync && fresh_dir_sync < rename);
        assert!(rename < dir_sync && dir_sync < reset && reset < reset_dir_sync);
        assert_eq!(
            trace[rename].path, path,
            "the temp file is renamed over the snapshot"
        );
        // The journal is replaced only after the directory sync.
        assert!(!trace[start..dir_sync]
            .iter()
            .any(|t| t.kind == OpKind::Rename && t.path.ends_with("state.json.journal")));
        // The old journal, which the new snapshot holds, is not flushed.
        assert!(
            !trace[start..reset]
                .iter()
                .any(|t| t.kind == OpKind::SyncData && t.path.ends_with("state.json.journal")),
            "{durability:?}: {:?}",
            &trace[start..]
        );
    }
}

/// T8 for batch mode and the snapshot engine: a `Sync` batch `commit()`
/// syncs its record; a `Sync` snapshot-engine commit fsyncs the temp file
/// before the rename and the directory after it; with `Flush`, neither syncs.
#[test]
fn batch_commits_and_snapshot_engine_commits_sync_as_their_durability_says() {
    let path = path(Format::Json);
    for durability in [Durability::Flush, Durability::Sync] {
        let sync = durability == Durability::Sync;
        // Batch mode: nothing before commit(), then one write and a sync.
        let sim = SimFs::new();
        let store = open(
            &sim,
            &path,
            options(durability, u64::MAX).mode(crate::Mode::Batch),
        )
        .unwrap();
        let before = sim.trace().len();
        store.__set::<Counter>(1).unwrap();
        store.__push::<Items>("a".into()).unwrap();
        assert!(
            sim.trace()[before..]
                .iter()
                .all(|t| matches!(t.kind, OpKind::Stat)),
            "a batch writes nothing before commit() (it may look for an edit): {:?}",
            &sim.trace()[before..]
        );
        let before = sim.trace().len();
        store.commit().unwrap();
        let ops: Vec<OpKind> = sim.trace()[before..].iter().map(|t| t.kind).collect();
        let write = ops
            .iter()
            .position(|k| *k == OpKind::Write)
            .expect("a write");
        let syncs: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i] == OpKind::SyncData)
            .collect();
        match sync {
            true => assert!(syncs.len() == 1 && syncs[0] > write, "{ops:?}"),
            false => assert!(syncs.is_empty(), "{ops:?}"),
        }
        // The snapshot engine: temp, (fsync), rename, (fsync dir).
        let sim = SimFs::new();
        let engine = options(durability, u64::MAX).engine(crate::Engine::Snapshot);
        let store = open(&sim, &path, engine).unwrap();
        let start = sim.trace().len();
        store.__set::<Counter>(2).unwrap();
        let trace = sim.trace();
        let rename = position(&trace, start, OpKind::Rename, "state.json");
        let synced_temp = trace[start..rename].iter().any(|t| {
            t.kind == OpKind::SyncAll && t.path.to_string_lossy().contains(".state.json.tmp-")
        });
        let synced_dir = trace[rename..].iter().any(|t| t.kind == OpKind::SyncDir);
        assert_eq!(
            (synced_temp, synced_dir),
            (sync, sync),
            "{durability:?}: {trace:?}"
        );
    }
}

/// After a failed fsync the store is poisoned: the next write returns
/// `Error::Poisoned` itself, without touching the disk.
#[test]
fn a_write_after_poisoning_returns_poisoned_at_once() {
    let path = path(Format::Json);
    let sim = SimFs::new();
    let store = open(&sim, &path, options(Durability::Sync, u64::MAX)).unwrap();
    sim.inject(Fault {
        at: sim.ops() + 2, // the write, then its fdatasync fails
        kind: io::ErrorKind::Other,
        persistent: false,
    });
    assert!(store.__set::<Counter>(1).is_err());
    assert!(store.is_poisoned());
    let ops = sim.ops();
    for result in [
        store.__set::<Counter>(2),
        store.__push::<Items>("x".into()),
        store.update(|m| m.a += 1),
        store.compact(),
    ] {
        assert!(matches!(result, Err(Error::Poisoned { .. })), "{result:?}");
    }
    assert_eq!(sim.ops(), ops, "a poisoned store does not touch the disk");
}

/// Group commit: a commit is acknowledged only once a sync that started
/// after its record was written has returned. Rounds of 8 concurrent Sync
/// writers; after each, a power cut keeps every acknowledged commit (a
/// record written while a sync was in flight and wrongly counted as
/// covered by it would be lost).
#[test]
fn a_power_cut_after_concurrent_sync_commits_keeps_every_acknowledged_one() {
    let path = path(Format::Json);
    let options = options(Durability::Sync, u64::MAX);
    let sim = SimFs::new();
    let store = open(&sim, &path, options.clone()).unwrap();
    // Writers append while a sync is in flight.
    sim.slow_syncs(std::time::Duration::from_micros(300));
    let mut acked: Vec<String> = Vec::new();
    for round in 0..30 {
        let this_round: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let store = &store;
                    scope.spawn(move || {
                        (0..4)
                            .map(|i| format!("{round}-{t}-{i}"))
                            .inspect(|item| store.__push::<Items>(item.clone()).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        acked.extend(this_round);
        for seed in 0..4 {
            let image = sim.power_loss_image(round * 10 + seed);
            let survived = open(&SimFs::from_image(&image), &path, options.clone())
                .unwrap()
                .get()
                .items;
            for item in &acked {
                assert!(
                    survived.contains(item),
                    "round {round}: acknowledged {item} lost in a power cut"
                );
            }
        }
    }
}

/// S11: a shared-mode commit takes the writer lock, catches up, writes its
/// record once, syncs it (with `Sync`) and only then unlocks; one data
/// sync per commit.
#[test]
fn a_shared_commit_syncs_before_it_unlocks() {
    let path = path(Format::Json);
    for durability in [Durability::Flush, Durability::Sync] {
        let sim = SimFs::new();
        let store = open(&sim, &path, options(durability, u64::MAX).shared(true)).unwrap();
        for i in 0..5 {
            let before = sim.trace().len();
            store.__set::<Counter>(i).unwrap();
            let trace = &sim.trace()[before..];
            let kinds: Vec<OpKind> = trace.iter().map(|t| t.kind).collect();
            let at = |kind: OpKind| {
                trace
                    .iter()
                    .position(|t| t.kind == kind)
                    .unwrap_or_else(|| panic!("no {kind:?} in {kinds:?}"))
            };
            let on_writer_lock = |kind: OpKind| {
                trace
                    .iter()
                    .position(|t| t.kind == kind && t.path.ends_with("state.json.writer.lock"))
                    .unwrap_or_else(|| panic!("no {kind:?} of the writer lock in {kinds:?}"))
            };
            let (lock, write) = (on_writer_lock(OpKind::Lock), at(OpKind::Write));
            let unlock = on_writer_lock(OpKind::Unlock);
            assert!(
                lock < at(OpKind::Fstat) && at(OpKind::Fstat) < write,
                "{kinds:?}"
            );
            assert!(write < unlock, "{kinds:?}");
            assert_eq!(kinds.iter().filter(|k| **k == OpKind::Write).count(), 1);
            let syncs: Vec<usize> = (0..kinds.len()).filter(|&k| kinds[k].is_sync()).collect();
            match durability {
                Durability::Sync => assert!(
                    syncs.len() == 1 && write < syncs[0] && syncs[0] < unlock,
                    "{kinds:?}"
                ),
                Durability::Flush => assert!(syncs.is_empty(), "{kinds:?}"),
            }
        }
    }
}

/// T9: EIO or ENOSPC at every operation, once or from then on: no call
/// that failed returns `Ok`, memory never keeps a failed change, a failed
/// sync poisons the store, and reopening loses no acknowledged commit.
#[test]
fn an_io_error_at_every_operation_is_reported_and_loses_no_acknowledged_commit() {
    let path = path(Format::Json);
    let mut runs = 0;
    let fault_seeds: u64 = crate::testing::soak_size("PERSISTED_SOAK_FAULT_SEEDS", 3);
    for seed in 0..fault_seeds {
        let steps = workload(100 + seed, 16);
        for durability in [Durability::Sync, Durability::Flush] {
            // Compaction only where the workload asks for it, so every failure
            // belongs to one call.
            let options = options(durability, u64::MAX);
            let clean = SimFs::new();
            run(&clean, &path, options.clone(), &steps);
            let total = clean.ops();
            let faults = [
                (io::ErrorKind::Other, false),
                (io::ErrorKind::StorageFull, false),
                (io::ErrorKind::Other, true),
            ];
            for at in 1..=total {
                for (kind, persistent) in faults {
                    fault_run(
                        &path,
                        options.clone(),
                        &steps,
                        Fault {
                            at,
                            kind,
                            persistent,
                        },
                    );
                    runs += 1;
                }
            }
        }
    }
    assert!(runs > 0);
    eprintln!("T9: {runs} runs with an injected EIO/ENOSPC");
}

fn fault_run(path: &Path, options: OpenOptions<Model>, steps: &[Step], fault: Fault) {
    let sim = SimFs::new();
    sim.inject(fault);
    let context = format!("{fault:?}");
    let mut model = Model::default();
    let mut indeterminate: Option<Model> = None;
    if let Ok(store) = open(&sim, path, options.clone()) {
        for step in steps {
            let before = sim.ops();
            let result = apply(&store, step);
            let after = sim.ops();
            let hit = (before + 1..=after).contains(&fault.at);
            match result {
                Ok(()) => {
                    assert!(!hit, "{context}: a call whose operation failed returned Ok");
                    apply_model(&mut model, step);
                }
                Err(Error::Poisoned { .. }) => {}
                Err(_) => {
                    let failed = sim.trace()[fault.at as usize - 1].kind;
                    if failed.is_sync() && hit {
                        assert!(
                            store.is_poisoned(),
                            "{context}: a failed {failed:?} did not poison"
                        );
                    }
                    if store.is_poisoned() && indeterminate.is_none() {
                        let mut maybe = model.clone();
                        apply_model(&mut maybe, step);
                        indeterminate = Some(maybe);
                    }
                }
            }
            assert_eq!(store.get(), model, "{context}: memory kept a failed change");
        }
    }
    // Everything written survives a process exit; reopen on a healthy disk.
    let image = sim.process_crash_image();
    let state = recover(&image, path, options, &[]);
    assert!(
        state == model || Some(&state) == indeterminate.as_ref(),
        "{context}: reopened {state:?}, acknowledged {model:?}"
    );
}

/// Group commit: concurrent `Durability::Sync` writers share fsyncs; when
/// one fails, every commit not known durable fails and leaves memory, and
/// no acknowledged commit is lost.
#[test]
fn concurrent_sync_commits_share_fsyncs_and_a_failed_fsync_fails_every_undurable_one() {
    let path = path(Format::Json);
    let options = options(Durability::Sync, u64::MAX);
    for fail_at_sync in [None, Some(40usize)] {
        let sim = SimFs::new();
        let store = open(&sim, &path, options.clone()).unwrap();
        let opened_ops = sim.ops();
        if let Some(n) = fail_at_sync {
            // Fail the n-th operation after opening, if it is reached, and
            // every one after it.
            sim.inject(Fault {
                at: opened_ops + n as u64,
                kind: io::ErrorKind::Other,
                persistent: true,
            });
        }
        let acked: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let store = &store;
                    scope.spawn(move || {
                        let mut acked = Vec::new();
                        for i in 0..25 {
                            let item = format!("{t}-{i}");
                            if store.__push::<Items>(item.clone()).is_ok() {
                                acked.push(item);
                            }
                        }
                        acked
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut in_memory = store.get().items;
        in_memory.sort();
        let mut expected = acked.clone();
        expected.sort();
        assert_eq!(
            in_memory, expected,
            "memory holds exactly the acknowledged commits"
        );
        let syncs = sim
            .trace()
            .iter()
            .filter(|t| t.kind == OpKind::SyncData)
            .count();
        assert!(
            syncs <= acked.len() + 1,
            "{syncs} syncs for {} commits",
            acked.len()
        );
        if fail_at_sync.is_some() {
            assert!(store.is_poisoned());
            assert!(acked.len() < 200);
        } else {
            assert_eq!(acked.len(), 200);
        }
        let image = sim.process_crash_image();
        drop(store);
        let reopened = recover(&image, &path, options.clone(), &[]).items;
        for item in &acked {
            assert!(reopened.contains(item), "acknowledged {item} lost");
        }
    }
}

/// Shared mode on the simulated disk: two participants, A and B, take turns
/// through a workload (commits, transactions, compactions, automatic ones
/// too). A is killed at each operation of the run in turn — mid-record,
/// holding the writer lock, inside a compaction — while B goes on: B never
/// fails, its next commits catch up (cutting A's torn record, finishing or
/// voiding A's compaction), and nothing acknowledged is lost or applied
/// twice. The disk B leaves opens to B's state after a process crash, and
/// to a prefix of the commits (every acknowledged one with `Sync`) after a
/// power cut.
#[test]
fn a_shared_writer_killed_at_any_operation_costs_its_peer_nothing() {
    let mut runs = 0;
    let seeds: u64 = crate::testing::soak_size("PERSISTED_SOAK_SHARED_SEEDS", 1);
    let cases = formats()
        .into_iter()
        .enumerate()
        .flat_map(|(n, format)| (0..seeds).map(move |k| (40 + n as u64 + 100 * k, format)));
    for (seed, format) in cases {
        for durability in [Durability::Sync, Durability::Flush] {
            let steps = workload(seed, 14);
            let options = options(durability, 300).shared(true);
            let path = path(format);
            let probe = SimFs::new();
            let outcome = run_pair(&probe, &path, options.clone(), &steps, seed);
            assert_eq!(outcome.landed.len(), steps.len(), "a clean run");
            for crash_at in 1..=probe.ops() {
                let sim = SimFs::new();
                sim.crash_actor_at(1, crash_at, seed ^ crash_at);
                let outcome = run_pair(&sim, &path, options.clone(), &steps, seed ^ crash_at);
                runs += 1;
                let ctx =
                    format!("{format:?} {durability:?} seed {seed}: A killed at op {crash_at}");
                // The state B ends with: every acknowledged commit, in the
                // order they were made, with or without A's last one.
                let order_without = outcome.landed.clone();
                let mut order_with = outcome.landed.clone();
                if let Some(i) = outcome.in_flight {
                    order_with.push(i);
                    order_with.sort_unstable();
                }
                let end = |order: &[usize]| {
                    let mut model = Model::default();
                    for &i in order {
                        apply_model(&mut model, &steps[i]);
                    }
                    model
                };
                let candidates = [end(&order_without), end(&order_with)];
                assert!(
                    candidates.contains(&outcome.b_state),
                    "{ctx}: B ended at {:?}",
                    outcome.b_state
                );
                // The orders B's state is consistent with (both, when A's
                // last step changed nothing B's later steps did not
                // overwrite).
                let orders: Vec<&Vec<usize>> = [(&order_without, 0), (&order_with, 1)]
                    .into_iter()
                    .filter(|(_, k)| candidates[*k] == outcome.b_state)
                    .map(|(order, _)| order)
                    .collect();
                let process = recover(&outcome.process_image, &path, options.clone(), &[]);
                assert_eq!(process, outcome.b_state, "{ctx}: the disk disagrees with B");
                let power = recover(&outcome.power_image, &path, options.clone(), &[]);
                let allowed = orders.iter().any(|order| {
                    // With Sync every acknowledged commit survives (a step
                    // that wrote nothing, such as a pop of an empty list,
                    // committed nothing to keep).
                    let lowest = match durability {
                        Durability::Sync => order
                            .iter()
                            .rposition(|i| outcome.wrote.contains(i))
                            .map_or(0, |p| p + 1),
                        Durability::Flush => 0,
                    };
                    (lowest..=order.len()).any(|k| end(&order[..k]) == power)
                });
                assert!(
                    allowed,
                    "{ctx} (seed {seed}): a power cut gave no allowed prefix: {power:?}; \
                     orders {orders:?}, in flight {:?}",
                    outcome.in_flight
                );
                assert_eq!(power.a, power.b, "{ctx}: a commit was split");
            }
        }
    }
    eprintln!("S5/S6 (simulated): {runs} runs with one shared writer killed, its peer unharmed");
}

struct PairOutcome {
    /// Indices of the steps acknowledged, in the order they were made.
    landed: Vec<usize>,
    /// A's step that failed when A was killed, if any.
    in_flight: Option<usize>,
    /// The acknowledged steps that wrote a record.
    wrote: Vec<usize>,
    b_state: Model,
    /// The disk as B left it, as a process crash and as a power cut would.
    process_image: BTreeMap<PathBuf, Vec<u8>>,
    power_image: BTreeMap<PathBuf, Vec<u8>>,
}

/// Runs `steps` on two shared participants, A (even steps; simulated
/// process 1) and B (odd steps; process 2). Once A fails it is dead: its
/// later steps do not happen; B must never fail.
fn run_pair(
    sim: &SimFs,
    path: &Path,
    options: OpenOptions<Model>,
    steps: &[Step],
    seed: u64,
) -> PairOutcome {
    let a = open(&sim.actor(1), path, options.clone()).ok();
    let b = open(&sim.actor(2), path, options).expect("B opens");
    let mut a = a;
    let (mut landed, mut in_flight, mut wrote) = (Vec::new(), None, Vec::new());
    let writes = || {
        sim.trace()
            .iter()
            .filter(|t| t.kind == OpKind::Write)
            .count()
    };
    for (i, step) in steps.iter().enumerate() {
        let before = writes();
        if i % 2 == 0 {
            let Some(store) = &a else { continue };
            match apply(store, step) {
                Ok(()) => {
                    landed.push(i);
                    if writes() > before {
                        wrote.push(i);
                    }
                }
                Err(_) => {
                    in_flight = Some(i);
                    // A dead process's descriptors and locks go with it.
                    a = None;
                }
            }
        } else {
            apply(&b, step).unwrap_or_else(|e| panic!("B failed at step {i} ({step:?}): {e}"));
            landed.push(i);
            if writes() > before {
                wrote.push(i);
            }
        }
    }
    let b_state = b.get();
    let process_image = sim.process_crash_image();
    let power_image = sim.power_loss_image(seed);
    PairOutcome {
        landed,
        in_flight,
        wrote,
        b_state,
        process_image,
        power_image,
    }
}

/// A shared participant that dies right after its compaction renamed the
/// new snapshot into place leaves the old journal sealed by its intent and
/// no new journal: the next lock holder (B, which never compacts itself)
/// must finish that compaction before appending, or its commits would go
/// into a journal the next open discards as stale.
#[test]
fn a_compaction_a_dead_peer_left_after_its_rename_is_finished_by_the_next_writer() {
    for format in formats() {
        let path = path(format);
        let options = options(Durability::Flush, u64::MAX).shared(true);
        let probe = SimFs::new();
        let a = open(&probe.actor(1), &path, options.clone()).unwrap();
        let _b = open(&probe.actor(2), &path, options.clone()).unwrap();
        apply(&a, &Step::Push("from-a".into())).unwrap();
        let before = probe.trace().len();
        a.compact().unwrap();
        let renamed = probe.trace()[before..]
            .iter()
            .position(|t| t.kind == OpKind::Rename && t.path == path)
            .map(|i| before + i)
            .expect("compaction renames the snapshot");
        drop((a, _b));

        let sim = SimFs::new();
        // A dies at its first operation after the rename.
        sim.crash_actor_at(1, renamed as u64 + 2, 7);
        let a = open(&sim.actor(1), &path, options.clone()).unwrap();
        let b = open(&sim.actor(2), &path, options.clone()).unwrap();
        apply(&a, &Step::Push("from-a".into())).unwrap();
        assert!(
            a.compact().is_err(),
            "{format:?}: A dies inside its compaction"
        );
        apply(&b, &Step::SetCounter(7)).unwrap();
        apply(&b, &Step::Push("from-b".into())).unwrap();
        let expected = Model {
            counter: 7,
            items: vec!["from-a".into(), "from-b".into()],
            ..Model::default()
        };
        assert_eq!(b.get(), expected, "{format:?}");
        let image = sim.process_crash_image();
        drop((a, b));
        assert_eq!(
            recover(&image, &path, options, &[]),
            expected,
            "{format:?}: B's commits survive A's half-done compaction"
        );
    }
}

/// Group commit survives refactoring: 8 threads making `Durability::Sync`
/// commits at once, on a disk whose sync takes a millisecond (as a real
/// `fdatasync` does), share syncs, so there are far fewer syncs than
/// commits. (A store that synced each commit alone would make one each;
/// only the P4 bench would notice otherwise.)
#[test]
fn eight_concurrent_sync_writers_share_their_fdatasyncs() {
    let path = path(Format::Json);
    let sim = SimFs::new();
    sim.slow_syncs(std::time::Duration::from_millis(1));
    let store = open(&sim, &path, options(Durability::Sync, u64::MAX)).unwrap();
    let before = sim.trace().len();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..25 {
                    store.__push::<Items>(format!("{t}-{i}")).unwrap();
                }
            });
        }
    });
    let syncs = sim.trace()[before..]
        .iter()
        .filter(|t| t.kind == OpKind::SyncData)
        .count();
    let commits = store.get().items.len();
    assert_eq!(commits, 200);
    assert!(
        syncs * 3 <= commits,
        "{syncs} fdatasyncs for {commits} commits: concurrent writers do not share syncs"
    );
    eprintln!("group commit: {commits} commits, {syncs} fdatasyncs");
}
