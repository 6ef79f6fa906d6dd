//! T1-T3 at full size on the simulated disk: a journal cut at every byte,
//! followed by zeros, garbage or stale bytes, or with any single bit
//! flipped, opens to exactly the state after the records before the
//! damage; no damaged record is ever applied, and bytes dropped before a
//! valid record are kept in a side file. `PERSISTED_SOAK_TAILS` raises the
//! number of random tails for the soak.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::journal::journal_path;
use crate::file::vfs::Vfs;
use crate::testing::formats;
use crate::testing::model::{Counter, Items, Model};
use crate::testing::rng::Rng;
use crate::testing::sim::SimFs;
use crate::{Error, Format, Result, Store};

/// A journal with `n` records and the state after each record boundary.
struct Recorded {
    path: PathBuf,
    snapshot: Vec<u8>,
    journal: Vec<u8>,
    /// (journal length, state): after the header, then after each record.
    points: Vec<(usize, Model)>,
}

fn record(format: Format, n: u64) -> Recorded {
    let path = PathBuf::from("/c/state");
    let sim = SimFs::new();
    let store = Store::<Model>::open_on(
        Arc::new(sim.clone()) as Arc<dyn Vfs>,
        &path,
        Store::options().format(format).journal_limit(u64::MAX),
        None,
    )
    .unwrap();
    let len = |sim: &SimFs| sim.process_crash_image()[&journal_path(&path)].len();
    let mut points = vec![(len(&sim), store.get())];
    for i in 0..n {
        match i % 4 {
            0 => store.__set::<Counter>(i * 1_000_003).unwrap(),
            1 => store
                .__push::<Items>(format!("item {i}\nline two"))
                .unwrap(),
            2 => store
                .update(|m| {
                    m.a += i;
                    m.b += i;
                })
                .unwrap(),
            _ => store
                .transaction(|tx| {
                    tx.items.push(format!("t{i}"));
                    tx.counter += 1;
                    Ok::<_, crate::Error>(())
                })
                .unwrap(),
        }
        points.push((len(&sim), store.get()));
    }
    let image = sim.process_crash_image();
    Recorded {
        snapshot: image[&path].clone(),
        journal: image[&journal_path(&path)].clone(),
        path,
        points,
    }
}

impl Recorded {
    fn before(&self, offset: usize) -> &Model {
        &self
            .points
            .iter()
            .rev()
            .find(|(len, _)| *len <= offset)
            .unwrap()
            .1
    }

    /// Opens the snapshot beside `journal`; returns the state and the disk.
    fn open(&self, format: Format, journal: &[u8]) -> (Model, SimFs) {
        let (state, sim) = self.try_open(format, journal, false);
        let state = state.unwrap_or_else(|e| panic!("{format:?}: failed open: {e}"));
        (state, sim)
    }

    /// Opens the snapshot beside `journal`, with recovery opted into or
    /// not; returns the outcome and the disk.
    fn try_open(&self, format: Format, journal: &[u8], recover: bool) -> (Result<Model>, SimFs) {
        let mut image = BTreeMap::new();
        image.insert(self.path.clone(), self.snapshot.clone());
        image.insert(journal_path(&self.path), journal.to_vec());
        let sim = SimFs::from_image(&image);
        let store = Store::<Model>::open_on(
            Arc::new(sim.clone()) as Arc<dyn Vfs>,
            &self.path,
            Store::options().format(format).recover(recover),
            None,
        );
        let state = store.map(|store| {
            let state = store.get();
            std::mem::forget(store); // keep the disk as recovery left it
            state
        });
        (state, sim)
    }
}

fn side_files(sim: &SimFs, suffix: &str) -> Vec<Vec<u8>> {
    sim.process_crash_image()
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains(suffix))
        .map(|(_, bytes)| bytes)
        .collect()
}

/// T1: every cut point of a journal of 40 records.
#[test]
fn journal_cut_at_every_byte_opens_to_the_records_before_the_cut() {
    let mut cuts = 0;
    for format in formats() {
        let rec = record(format, 40);
        for cut in rec.points[0].0..=rec.journal.len() {
            let (state, sim) = rec.open(format, &rec.journal[..cut]);
            assert_eq!(&state, rec.before(cut), "{format:?} cut at {cut}");
            let left = sim.process_crash_image()[&journal_path(&rec.path)].len();
            let boundary = rec
                .points
                .iter()
                .rev()
                .find(|(len, _)| *len <= cut)
                .unwrap()
                .0;
            assert_eq!(left, boundary, "{format:?}: the torn tail is cut off");
            cuts += 1;
        }
    }
    assert!(cuts > 3_000);
    eprintln!("T1: {cuts} cut points opened to the right prefix");
}

/// T2: zeros, garbage and stale bytes after the last record never apply.
#[test]
fn zeros_garbage_and_stale_bytes_after_the_tail_never_apply() {
    let tails: u64 = crate::testing::soak_size("PERSISTED_SOAK_TAILS", 10_000);
    for format in formats() {
        let rec = record(format, 8);
        let last = &rec.points.last().unwrap().1;
        // Every all-zero run of 1..=4096 bytes (in steps, to stay quick).
        for n in (1..=4096).step_by(37).chain([4096]) {
            let mut journal = rec.journal.clone();
            journal.resize(journal.len() + n, 0);
            assert_eq!(&rec.open(format, &journal).0, last, "{format:?} {n} zeros");
        }
        let mut rng = Rng::new(format as u64 + 1);
        eprintln!(
            "T2: {} random tails ({format:?})",
            tails / formats().len() as u64
        );
        for case in 0..tails / formats().len() as u64 {
            let mut journal = rec.journal.clone();
            let n = rng.below(512) as usize + 1;
            match case % 3 {
                0 => journal.extend((0..n).map(|_| rng.next() as u8)),
                1 => {
                    // Stale: a copy of an earlier stretch of the journal.
                    let from = rng.below(rec.journal.len() as u64) as usize;
                    let to = (from + n).min(rec.journal.len());
                    journal.extend_from_slice(&rec.journal[from..to]);
                }
                _ => {
                    // A frame-like line with a lying length or checksum.
                    let line = format!(
                        "@{} {} {:08x}\n",
                        rng.below(20),
                        rng.below(1 << 20),
                        rng.next() as u32
                    );
                    journal.extend_from_slice(line.as_bytes());
                    journal.extend((0..n).map(|_| b'a' + (rng.next() % 26) as u8));
                }
            }
            let (state, _) = rec.open(format, &journal);
            assert_eq!(&state, last, "{format:?} tail case {case}");
        }
    }
}

/// T3: any single bit flipped in the last records: no changed value is
/// accepted, earlier records are kept, and dropped bytes that hold valid
/// records are kept in a side file.
#[test]
fn a_single_flipped_bit_is_never_accepted() {
    let mut flips = 0;
    for format in formats() {
        let rec = record(format, 12);
        let from = rec.points[rec.points.len() - 7].0;
        for byte in from..rec.journal.len() {
            for bit in 0..8 {
                let mut journal = rec.journal.clone();
                journal[byte] ^= 1 << bit;
                let ctx = format!("{format:?} byte {byte} bit {bit}");
                let record_end = rec.points.iter().find(|(len, _)| *len > byte).unwrap().0;
                let boundary = rec
                    .points
                    .iter()
                    .rev()
                    .find(|(len, _)| *len <= byte)
                    .unwrap()
                    .0;
                if record_end == rec.journal.len() {
                    // The last record: what a crash leaves, a torn tail.
                    let (state, _) = rec.open(format, &journal);
                    assert_eq!(&state, rec.before(byte), "{ctx}");
                    flips += 1;
                    continue;
                }
                // Valid records follow the damage: an error naming the
                // offset, the journal left as it was...
                let (state, sim) = rec.try_open(format, &journal, false);
                match state {
                    Err(Error::Corrupt {
                        offset: Some(offset),
                        ..
                    }) => assert_eq!(offset as usize, boundary, "{ctx}"),
                    other => panic!("{ctx}: expected Error::Corrupt, got {other:?}"),
                }
                assert_eq!(
                    sim.process_crash_image()[&journal_path(&rec.path)],
                    journal,
                    "{ctx}: the damaged journal was changed"
                );
                // ...and with recovery opted into, the records before the
                // damage, the rest kept aside.
                let (state, sim) = rec.try_open(format, &journal, true);
                assert_eq!(&state.unwrap(), rec.before(byte), "{ctx}");
                let kept = side_files(&sim, ".dropped-");
                assert_eq!(kept.len(), 1, "{ctx}");
                assert_eq!(kept[0], journal[boundary..]);
                flips += 1;
            }
        }
    }
    assert!(flips >= 2_400, "{flips} flips");
    eprintln!("T3: {flips} single-bit flips rejected");
}

/// The cut of a damaged journal must be durable before new records go
/// after it: otherwise a power cut can bring back the old, longer file
/// under the new records, and records set aside (which continue the
/// sequence of the new ones) would be applied. Six commits of one length,
/// the third damaged, recovery opted into, two new commits of the same
/// length (Flush), then power cuts of every kind.
#[test]
fn records_set_aside_never_come_back_after_a_power_cut() {
    for format in formats() {
        let path = PathBuf::from("/c/state");
        let sim = SimFs::new();
        let options = Store::<Model>::options().format(format).recover(true);
        let store = Store::<Model>::open_on(
            Arc::new(sim.clone()) as Arc<dyn Vfs>,
            &path,
            options.clone().journal_limit(u64::MAX),
            None,
        )
        .unwrap();
        let mut ends = Vec::new();
        for counter in 1..=6 {
            store.__set::<Counter>(counter).unwrap();
            ends.push(sim.process_crash_image()[&journal_path(&path)].len());
        }
        let mut image = sim.process_crash_image();
        std::mem::forget(store);
        image.get_mut(&journal_path(&path)).unwrap()[ends[1] + 1] ^= 0x10;
        let sim = SimFs::from_image(&image);
        let store = Store::<Model>::open_on(
            Arc::new(sim.clone()) as Arc<dyn Vfs>,
            &path,
            options.clone(),
            None,
        )
        .unwrap();
        assert_eq!(
            store.get().counter,
            2,
            "{format:?}: replayed up to the damage"
        );
        store.__set::<Counter>(7).unwrap();
        store.__set::<Counter>(8).unwrap();
        for seed in 0..64 {
            let image = sim.power_loss_image(seed);
            let after = Store::<Model>::open_on(
                Arc::new(SimFs::from_image(&image)) as Arc<dyn Vfs>,
                &path,
                options.clone(),
                None,
            )
            .unwrap()
            .get()
            .counter;
            assert!(
                [2, 7, 8].contains(&after),
                "{format:?} seed {seed}: a record set aside came back: counter {after}"
            );
        }
        std::mem::forget(store);
    }
}
