//! A journal cut, extended with garbage, bit-flipped or left stale by a
//! crash never applies a torn or foreign record: the store opens to the
//! state after a prefix of the commits.

mod common;

use std::fs;
use std::path::Path;

use common::{crash_image, formats, intent_record, journal_of, state_path, State, StateStoreExt};
use persisted_state::{Error, Format, RecoveryEvent, Store};

/// Commits a few changes and returns, for each commit, the journal length
/// after it and the state after it; plus the snapshot and journal bytes.
struct Recorded {
    snapshot: Vec<u8>,
    journal: Vec<u8>,
    /// (journal length, state) after the header and after each commit.
    points: Vec<(usize, State)>,
}

fn record(format: Format, dir: &Path) -> Recorded {
    let path = state_path(dir, format);
    let store: Store<State> = Store::open(&path).unwrap();
    let journal_len = || fs::metadata(journal_of(&path)).unwrap().len() as usize;
    let mut points = vec![(journal_len(), store.get())];
    type Write = Box<dyn Fn(&Store<State>)>;
    let writes: Vec<Write> = vec![
        Box::new(|s| s.set_last_id(11).unwrap()),
        Box::new(|s| s.push_processed("item-11".into()).unwrap()),
        Box::new(|s| {
            s.insert_settings("mode".into(), "fast\nand loose".into())
                .unwrap();
        }),
        Box::new(|s| {
            s.update(|s| {
                s.last_id = 12;
                s.processed.push("item-12".into());
            })
            .unwrap()
        }),
        Box::new(|s| s.set_last_id(12_345).unwrap()),
    ];
    for write in writes {
        write(&store);
        points.push((journal_len(), store.get()));
    }
    let recorded = Recorded {
        snapshot: fs::read(&path).unwrap(),
        journal: fs::read(journal_of(&path)).unwrap(),
        points,
    };
    drop(store);
    recorded
}

/// Opens a copy of the snapshot with `journal` beside it.
fn open_with_journal(
    format: Format,
    snapshot: &[u8],
    journal: &[u8],
) -> (State, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(dir.path(), format);
    fs::write(&path, snapshot).unwrap();
    fs::write(journal_of(&path), journal).unwrap();
    let store = Store::<State>::open(&path).unwrap();
    let state = store.get();
    drop(store);
    (state, dir)
}

fn state_before(points: &[(usize, State)], cut: usize) -> &State {
    &points.iter().rev().find(|(len, _)| *len <= cut).unwrap().1
}

#[test]
fn journal_cut_at_every_byte_opens_to_a_prefix() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record(format, dir.path());
        let header_len = rec.points[0].0;
        for cut in header_len..=rec.journal.len() {
            let (state, _dir) = open_with_journal(format, &rec.snapshot, &rec.journal[..cut]);
            assert_eq!(
                &state,
                state_before(&rec.points, cut),
                "{format:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn a_torn_record_is_dropped_and_later_commits_survive_the_next_open() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record(format, dir.path());
        let cut = rec.journal.len() - 3;
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        fs::write(&path, &rec.snapshot).unwrap();
        fs::write(journal_of(&path), &rec.journal[..cut]).unwrap();
        let store = Store::<State>::open(&path).unwrap();
        let recovery = store.recovery();
        assert_eq!(recovery.replayed, rec.points.len() as u64 - 2, "{format:?}");
        match &recovery.events[..] {
            [RecoveryEvent::TornTail {
                journal,
                offset,
                bytes,
                kept_at: None,
            }] => {
                assert_eq!(*journal, journal_of(&path));
                assert_eq!(*offset as usize + *bytes as usize, cut, "{format:?}");
            }
            other => panic!("{format:?}: expected a torn tail, got {other:?}"),
        }
        assert_eq!(recovery.kept_files().count(), 0, "a torn tail is not kept");
        store.set_last_id(99).unwrap();
        let (_crashed, copy) = crash_image(&path);
        let store = Store::<State>::open(&copy).unwrap();
        assert_eq!(
            store.last_id(),
            99,
            "{format:?}: a commit after a torn tail survives"
        );
    }
}

#[test]
fn a_text_journal_last_id_12_torn_to_1_is_never_applied() {
    for format in formats().into_iter().filter(|f| *f != Format::Bincode) {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let store: Store<State> = Store::open(&path).unwrap();
        store.set_last_id(5).unwrap();
        let before = fs::metadata(journal_of(&path)).unwrap().len() as usize;
        store.set_last_id(12).unwrap();
        let journal = fs::read(journal_of(&path)).unwrap();
        let snapshot = fs::read(&path).unwrap();
        drop(store);
        for cut in before..journal.len() {
            let (state, _dir) = open_with_journal(format, &snapshot, &journal[..cut]);
            assert_eq!(state.last_id, 5, "{format:?} cut at {cut}");
        }
        let (state, _dir) = open_with_journal(format, &snapshot, &journal);
        assert_eq!(state.last_id, 12);
    }
}

#[test]
fn garbage_and_zeros_after_the_tail_are_never_applied() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record(format, dir.path());
        let last = &rec.points.last().unwrap().1;
        for round in 0..60 {
            let mut journal = rec.journal.clone();
            let n = (next() % 300) as usize + 1;
            match round % 3 {
                0 => journal.extend(std::iter::repeat_n(0u8, n)),
                1 => journal.extend((0..n).map(|_| next() as u8)),
                // Stale bytes: an earlier part of the journal repeated.
                _ => {
                    let from = rec.points[1].0;
                    let to = (from + n).min(rec.journal.len());
                    journal.extend_from_slice(&rec.journal[from..to]);
                }
            }
            let (state, _dir) = open_with_journal(format, &rec.snapshot, &journal);
            assert_eq!(&state, last, "{format:?} round {round}");
        }
    }
}

#[test]
fn a_flipped_bit_never_yields_a_changed_value() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record(format, dir.path());
        let header_len = rec.points[0].0;
        // Every bit of the last two records.
        let from = rec.points[rec.points.len() - 3].0;
        for byte in from.max(header_len)..rec.journal.len() {
            for bit in [0, 3, 6] {
                let mut journal = rec.journal.clone();
                journal[byte] ^= 1 << bit;
                let dir = tempfile::tempdir().unwrap();
                let path = state_path(dir.path(), format);
                fs::write(&path, &rec.snapshot).unwrap();
                fs::write(journal_of(&path), &journal).unwrap();
                let state = match Store::<State>::open(&path) {
                    Ok(store) => store.get(),
                    // Damage before the last record is an error naming
                    // the offset; recovery opted into opens to the prefix.
                    Err(Error::Corrupt {
                        offset: Some(offset),
                        ..
                    }) => {
                        assert!(offset as usize <= byte, "{format:?} byte {byte}");
                        assert_eq!(fs::read(journal_of(&path)).unwrap(), journal);
                        Store::<State>::options()
                            .recover(true)
                            .open(&path)
                            .unwrap()
                            .get()
                    }
                    Err(other) => panic!("{format:?} byte {byte} bit {bit}: {other}"),
                };
                // Whatever was dropped, what was kept is a real prefix.
                assert!(
                    rec.points.iter().any(|(_, s)| *s == state),
                    "{format:?} byte {byte} bit {bit}: {state:?}"
                );
                assert_eq!(
                    state,
                    *state_before(&rec.points, byte),
                    "{format:?} byte {byte}"
                );
            }
        }
    }
}

#[test]
fn damage_followed_by_valid_records_is_an_error_unless_recovery_is_opted_into() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record(format, dir.path());
        // Damage the second record; the ones after it stay valid.
        let at = rec.points[1].0 + 2;
        let mut journal = rec.journal.clone();
        journal[at] ^= 0x20;
        let kept = tempfile::tempdir().unwrap();
        let path = state_path(kept.path(), format);
        fs::write(&path, &rec.snapshot).unwrap();
        fs::write(journal_of(&path), &journal).unwrap();
        // Not a crash's torn tail: an error that says where and what to do,
        // and the journal left untouched.
        let err = Store::<State>::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { offset: Some(o), .. } if o as usize == rec.points[1].0),
            "{format:?}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(".recover(true)") && message.contains("journal"),
            "{message}"
        );
        assert_eq!(fs::read(journal_of(&path)).unwrap(), journal);
        let store = Store::<State>::options().recover(true).open(&path).unwrap();
        assert_eq!(store.get(), rec.points[1].1, "{format:?}");
        let side: Vec<_> = common::files_in(kept.path())
            .into_iter()
            .filter(|f| f.contains(".journal.dropped-"))
            .collect();
        assert_eq!(side.len(), 1, "{format:?}: {side:?}");
        let dropped = fs::read(kept.path().join(&side[0])).unwrap();
        assert_eq!(dropped, journal[rec.points[1].0..]);
        // What open did is readable from the store, not only from the log.
        let reported: Vec<_> = store.recovery().kept_files().cloned().collect();
        assert_eq!(reported, [kept.path().join(&side[0])], "{format:?}");
        assert!(matches!(
            store.recovery().events[..],
            [RecoveryEvent::DamageSetAside { offset, .. }] if offset as usize == rec.points[1].0
        ));
    }
}

#[test]
fn a_journal_left_beside_its_compacted_snapshot_is_not_replayed_twice() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let store: Store<State> = Store::open(&path).unwrap();
        store.push_processed("once".into()).unwrap();
        store.set_last_id(1).unwrap();
        let mut stale = fs::read(journal_of(&path)).unwrap();
        store.compact().unwrap();
        let (_crashed, path) = crash_image(&path);
        // A crash between compaction's rename and its journal reset leaves
        // the old records and the intent beside the new snapshot.
        stale.extend(intent_record(format, 3, &fs::read(&path).unwrap()));
        fs::write(journal_of(&path), &stale).unwrap();
        let store = Store::<State>::open(&path).unwrap();
        assert_eq!(
            store.read().processed,
            ["once"],
            "{format:?}: push applied once"
        );
        assert!(matches!(
            store.recovery().events[..],
            [RecoveryEvent::StaleJournalReset { .. }]
        ));
        assert_eq!(store.last_id(), 1);
        store.push_processed("twice".into()).unwrap();
        drop(store);
        let store = Store::<State>::open(&path).unwrap();
        assert_eq!(store.read().processed, ["once", "twice"], "{format:?}");
    }
}

#[test]
fn an_intent_whose_rename_never_happened_is_ignored() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let store: Store<State> = Store::open(&path).unwrap();
        store.push_processed("a".into()).unwrap();
        let (_crashed, path) = crash_image(&path);
        let mut journal = fs::read(journal_of(&path)).unwrap();
        // The crash came after the intent, before the rename: the snapshot
        // is still the base, so the records are replayed.
        journal.extend(intent_record(format, 2, b"some other snapshot"));
        fs::write(journal_of(&path), &journal).unwrap();
        let store = Store::<State>::open(&path).unwrap();
        assert_eq!(store.read().processed, ["a"], "{format:?}");
    }
}

#[test]
fn a_snapshot_edited_after_a_crash_wins_and_the_journal_is_kept_aside() {
    for format in formats().into_iter().filter(|f| *f != Format::Bincode) {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let store: Store<State> = Store::open(&path).unwrap();
        store.set_last_id(5).unwrap();
        store.push_processed("from-journal".into()).unwrap();
        let journal = fs::read(journal_of(&path)).unwrap();
        let (crashed, path) = crash_image(&path); // the journal is not folded
        let edited = fs::read_to_string(&path).unwrap().replace("0", "777");
        fs::write(&path, &edited).unwrap();
        let store = Store::<State>::open(&path).unwrap();
        assert_eq!(
            store.last_id(),
            777,
            "{format:?}: the edit is what the open sees"
        );
        assert!(
            store.read().processed.is_empty(),
            "{format:?}: the journal is not replayed"
        );
        let orphans: Vec<_> = common::files_in(crashed.path())
            .into_iter()
            .filter(|f| f.contains(".journal.orphaned-"))
            .collect();
        assert_eq!(orphans.len(), 1, "{format:?}");
        assert_eq!(fs::read(crashed.path().join(&orphans[0])).unwrap(), journal);
        match &store.recovery().events[..] {
            [RecoveryEvent::JournalOrphaned {
                commits, kept_at, ..
            }] => {
                assert_eq!(*commits, 2);
                assert_eq!(*kept_at, crashed.path().join(&orphans[0]));
            }
            other => panic!("{format:?}: expected an orphaned journal, got {other:?}"),
        }
    }
}

#[test]
fn a_snapshot_edited_after_a_clean_close_is_adopted() {
    for format in formats().into_iter().filter(|f| *f != Format::Bincode) {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let store: Store<State> = Store::open(&path).unwrap();
        store.set_last_id(5).unwrap();
        store.close().unwrap();
        let edited = fs::read_to_string(&path).unwrap().replace("5", "6");
        fs::write(&path, edited).unwrap();
        let store = Store::<State>::open(&path).unwrap();
        assert_eq!(store.last_id(), 6);
        store.push_processed("x".into()).unwrap();
        drop(store);
        let store = Store::<State>::open(&path).unwrap();
        assert_eq!((store.last_id(), store.read().processed.len()), (6, 1));
        assert!(common::files_in(dir.path())
            .iter()
            .all(|f| !f.contains("orphaned")));
    }
}

#[test]
fn a_journal_cut_inside_its_header_opens_as_the_snapshot_alone() {
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record(format, dir.path());
        let header_len = rec.points[0].0;
        for cut in 1..header_len {
            let dir = tempfile::tempdir().unwrap();
            let path = state_path(dir.path(), format);
            fs::write(&path, &rec.snapshot).unwrap();
            fs::write(journal_of(&path), &rec.journal[..cut]).unwrap();
            let store = Store::<State>::open(&path)
                .unwrap_or_else(|e| panic!("{format:?} header cut at {cut}: {e}"));
            assert_eq!(store.get(), rec.points[0].1, "{format:?} cut {cut}");
            match &store.recovery().events[..] {
                [RecoveryEvent::HeaderCut { kept_at, .. }] => {
                    assert_eq!(fs::read(kept_at).unwrap(), rec.journal[..cut]);
                }
                other => panic!("{format:?} cut {cut}: {other:?}"),
            }
            store.set_last_id(7).unwrap();
            drop(store);
            assert_eq!(Store::<State>::open(&path).unwrap().last_id(), 7);
        }
        // A damaged header with records after it is an error, the file kept.
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let mut journal = rec.journal.clone();
        journal[header_len / 2] ^= 0x01;
        fs::write(&path, &rec.snapshot).unwrap();
        fs::write(journal_of(&path), &journal).unwrap();
        let err = Store::<State>::open(&path).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{format:?}: {err}");
        assert_eq!(fs::read(journal_of(&path)).unwrap(), journal);
    }
}
