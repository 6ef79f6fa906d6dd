//! Every generated operation — on the store, in a transaction, in a batch —
//! is recorded as the operation, so a commit costs what it changes; the
//! record replays to exactly the state memory holds, in every format.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::path::Path;

use common::{crash_image, formats, journal_of, state_path};
use persisted_state::{Error, Format, Mode, Persisted, Store};
use serde::{Deserialize, Serialize};

/// A state with a field of every collection kind, and config-style names.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Jobs {
    last_id: u64,
    processed: Vec<String>,
    queue: VecDeque<u64>,
    settings: BTreeMap<String, String>,
    owners: HashMap<String, u32>,
    tags: BTreeSet<String>,
    seen: HashSet<u64>,
    path: String,
    options: Vec<String>,
    name: Option<String>,
    version: u32,
}

fn journal_len(path: &Path) -> u64 {
    fs::metadata(journal_of(path)).map_or(0, |m| m.len())
}

/// What a crash right now would leave, opened.
fn reopened_copy(path: &Path) -> Jobs {
    let (_dir, copy) = crash_image(path);
    // The store must drop (and compact) before the directory does.
    #[allow(clippy::let_and_return)]
    let state = Jobs::open(&copy).unwrap().get();
    state
}

#[test]
fn a_transaction_of_one_push_and_one_set_on_a_200k_element_vec_writes_under_400_bytes() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let big = Jobs {
            processed: (0..200_000).map(|i| format!("item-{i}")).collect(),
            ..Jobs::default()
        };
        let store = Store::open_or(&path, big).unwrap();
        let before = journal_len(&path);
        let mut tx = store.begin();
        tx.push_processed("item-200000".into());
        tx.set_last_id(200_000);
        tx.commit().unwrap();
        let written = journal_len(&path) - before;
        assert!(
            written < 400,
            "{format:?}: the commit wrote {written} bytes"
        );
        let copy = reopened_copy(&path);
        assert_eq!(copy.last_id, 200_000, "{format:?}");
        assert_eq!(copy.processed.len(), 200_001, "{format:?}");
        assert_eq!(copy, store.get(), "{format:?}");
    }
}

#[test]
fn a_batch_of_operations_writes_the_operations_not_the_fields() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let big = Jobs {
            processed: (0..100_000).map(|i| format!("item-{i}")).collect(),
            ..Jobs::default()
        };
        let store = Store::options()
            .mode(Mode::Batch)
            .open_or(&path, big)
            .unwrap();
        let before = journal_len(&path);
        store.push_processed("a".into()).unwrap();
        store.push_processed("b".into()).unwrap();
        store.set_last_id(2).unwrap();
        store.insert_settings("k".into(), "v".into()).unwrap();
        store.commit().unwrap();
        let written = journal_len(&path) - before;
        assert!(written < 400, "{format:?}: the batch wrote {written} bytes");
        assert_eq!(reopened_copy(&path), store.get(), "{format:?}");
    }
}

#[test]
fn every_operation_in_every_way_replays_to_the_state_in_memory() {
    for format in formats() {
        for mode in [Mode::WriteThrough, Mode::Batch] {
            let dir = tempfile::tempdir().unwrap();
            let path = state_path(dir.path(), format);
            let store = Store::<Jobs>::options().mode(mode).open(&path).unwrap();
            let ctx = format!("{format:?} {mode:?}");

            // On the store.
            store
                .extend_processed(["a".into(), "b".into(), "c".into()])
                .unwrap();
            assert_eq!(store.pop_processed().unwrap().as_deref(), Some("c"));
            store.push_queue(1).unwrap();
            store.push_queue(2).unwrap();
            store.push_front_queue(0).unwrap();
            assert_eq!(store.pop_front_queue().unwrap(), Some(0), "{ctx}");
            store.insert_settings("k".into(), "v".into()).unwrap();
            store.insert_settings("gone".into(), "x".into()).unwrap();
            assert_eq!(store.remove_settings("gone").unwrap().as_deref(), Some("x"));
            assert_eq!(store.remove_settings("never").unwrap(), None);
            store.insert_owners("ann".into(), 1).unwrap();
            assert!(store.insert_tags("t1".into()).unwrap());
            assert!(!store.insert_tags("t1".into()).unwrap());
            assert!(store.insert_tags("t2".into()).unwrap());
            assert!(store.remove_tags("t2").unwrap());
            assert!(store.insert_seen(7).unwrap());
            store.set_path("/var/lib/app".into()).unwrap();
            store.push_options("fast".into()).unwrap();
            store.set_name(Some("app".into())).unwrap();
            store.set_version(3).unwrap();

            // In a transaction that never needs a working copy.
            let mut tx = store.begin();
            tx.push_processed("d".into());
            tx.set_last_id(tx.last_id + 1);
            tx.clear_options();
            tx.commit().unwrap();

            // In one that reads after a change and uses every operation.
            let mut tx = store.begin();
            tx.push_queue(3);
            assert_eq!(tx.queue, [1, 2, 3], "{ctx}: reads see the queued change");
            assert_eq!(tx.pop_front_queue(), Some(1));
            assert_eq!(
                tx.insert_settings("k".into(), "w".into()).as_deref(),
                Some("v")
            );
            assert_eq!(tx.remove_owners("ann"), Some(1));
            assert!(tx.remove_seen(&7));
            assert!(tx.insert_tags("t3".into()));
            tx.set_processed(vec!["whole".into()]);
            tx.push_processed("after-whole".into());
            tx.push_front_queue(9);
            tx.extend_options(["x".into(), "y".into()]);
            assert_eq!(tx.pop_options().as_deref(), Some("y"));
            tx.commit().unwrap();

            // In one changed through DerefMut, mixed with operations.
            let mut tx = store.begin();
            tx.push_processed("op".into());
            tx.version += 1;
            tx.processed.push("deref".into());
            tx.commit().unwrap();

            // Through `transaction`, and through `update`.
            store
                .transaction(|tx| {
                    tx.insert_seen(8);
                    tx.set_version(tx.version * 10);
                    Ok::<_, Error>(())
                })
                .unwrap();
            store.update(|s| s.last_id += 100).unwrap();
            store.commit().unwrap();

            let expected = Jobs {
                last_id: 101,
                processed: vec![
                    "whole".into(),
                    "after-whole".into(),
                    "op".into(),
                    "deref".into(),
                ],
                queue: VecDeque::from([9, 2, 3]),
                settings: BTreeMap::from([("k".into(), "w".into())]),
                owners: HashMap::new(),
                tags: BTreeSet::from(["t1".into(), "t3".into()]),
                seen: HashSet::from([8]),
                path: "/var/lib/app".into(),
                options: vec!["x".into()],
                name: Some("app".into()),
                version: 40,
            };
            assert_eq!(store.get(), expected, "{ctx}: memory");
            assert_eq!(
                reopened_copy(&path),
                expected,
                "{ctx}: the journal replayed"
            );
            store.close().unwrap();
            assert_eq!(
                Jobs::open(&path).unwrap().get(),
                expected,
                "{ctx}: compacted"
            );
        }
    }
}

#[test]
fn a_rolled_back_transaction_leaves_nothing_in_memory_or_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = Jobs::open(&path).unwrap();
    store.push_processed("kept".into()).unwrap();
    let before = journal_len(&path);
    {
        let mut tx = store.begin();
        tx.push_processed("queued".into());
        tx.set_last_id(5);
    }
    {
        let mut tx = store.begin();
        tx.push_queue(1);
        assert_eq!(tx.pop_queue(), Some(1));
        tx.version = 9;
        tx.rollback();
    }
    let result = store.transaction(|tx| {
        tx.push_processed("err".into());
        Err::<(), _>(Error::Reentrant {
            path: "x".into(),
            advice: "test",
        })
    });
    assert!(result.is_err());
    assert_eq!(journal_len(&path), before);
    assert_eq!(store.read().processed, ["kept"]);
    assert_eq!(store.last_id(), 0);
    assert_eq!(reopened_copy(&path), store.get());
}

#[test]
fn a_vecdeque_field_is_a_fifo_queue_across_reopens() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let store = Jobs::open(&path).unwrap();
        for job in 1..=5 {
            store.push_queue(job).unwrap();
        }
        assert_eq!(store.pop_front_queue().unwrap(), Some(1));
        drop(store);
        let store = Jobs::open(&path).unwrap();
        assert_eq!(store.pop_front_queue().unwrap(), Some(2), "{format:?}");
        store.push_queue(6).unwrap();
        let (_dir, copy) = crash_image(&path);
        let copy = Jobs::open(&copy).unwrap();
        let mut order = Vec::new();
        while let Some(job) = copy.pop_front_queue().unwrap() {
            order.push(job);
        }
        assert_eq!(order, [3, 4, 5, 6], "{format:?}");
    }
}

#[test]
fn config_style_field_names_get_their_accessors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let store = Jobs::open_or(
        &path,
        Jobs {
            path: "/etc/app".into(),
            ..Jobs::default()
        },
    )
    .unwrap();
    assert_eq!(store.path(), "/etc/app");
    assert_eq!(Store::file_path(&store), path);
    store.set_options(vec!["a".into()]).unwrap();
    store.set_name(Some("n".into())).unwrap();
    store.set_version(2).unwrap();
    drop(store);
    let store = Jobs::open(&path).unwrap();
    assert_eq!(
        (store.path(), store.options(), store.name(), store.version()),
        (
            "/etc/app".to_owned(),
            vec!["a".to_owned()],
            Some("n".to_owned()),
            2
        )
    );
}

#[test]
fn open_or_from_the_type_starts_a_missing_file_from_the_given_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let initial = Jobs {
        last_id: 7,
        ..Jobs::default()
    };
    assert_eq!(
        Jobs::open_or(&path, initial.clone()).unwrap().get(),
        initial
    );
    // An existing file wins over the given value.
    let other = Jobs {
        last_id: 8,
        ..Jobs::default()
    };
    assert_eq!(Jobs::open_or(&path, other).unwrap().last_id(), 7);
}

#[test]
fn a_format_whose_journal_repeats_a_key_replays_each_occurrence() {
    // Two pushes onto one field in one commit repeat the record key
    // `push processed`; every format must replay both, in order.
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let store = Jobs::open(&path).unwrap();
        let mut tx = store.begin();
        for item in ["a", "b", "c"] {
            tx.push_processed(item.into());
        }
        tx.commit().unwrap();
        assert_eq!(
            reopened_copy(&path).processed,
            ["a", "b", "c"],
            "{format:?}"
        );
        if format != Format::Bincode {
            let journal = fs::read_to_string(journal_of(&path)).unwrap();
            assert_eq!(journal.matches("push processed").count(), 3, "{journal}");
        }
    }
}

/// A field type that counts its clones.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Counted(Vec<u64>);

static CLONES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Clone for Counted {
    fn clone(&self) -> Self {
        CLONES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Counted(self.0.clone())
    }
}

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Queue {
    jobs: VecDeque<u64>,
    results: BTreeMap<u64, String>,
    big: Counted,
}

#[test]
fn a_transaction_of_operations_never_copies_an_untouched_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Queue::open_or(
        dir.path().join("q.json"),
        Queue {
            jobs: (1..=10).collect(),
            big: Counted((0..100_000).collect()),
            ..Queue::default()
        },
    )
    .unwrap();
    let before = CLONES.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..5 {
        store
            .transaction(|tx| {
                // Operations that return a value read it from the state.
                let job = tx.pop_front_jobs().unwrap();
                let old = tx.insert_results(job, format!("done {job}"));
                assert_eq!(old, None);
                tx.push_jobs(job + 100);
                Ok::<_, Error>(())
            })
            .unwrap();
    }
    store.push_jobs(7).unwrap();
    store.pop_front_jobs().unwrap();
    assert_eq!(
        CLONES.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the 100,000-element field was never copied"
    );
    assert_eq!(store.read().results.len(), 5);
    assert_eq!(store.read().jobs.front(), Some(&7));
    // Reading through a transaction after a change does copy, once.
    let mut tx = store.begin();
    tx.push_jobs(1);
    assert_eq!(tx.jobs.back(), Some(&1));
    assert_eq!(CLONES.load(std::sync::atomic::Ordering::SeqCst), before + 1);
}
