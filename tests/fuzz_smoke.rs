//! T16 (smoke): generated snapshots and journals, fed to the decoders, never
//! panic. The inputs are deterministic (xorshift seeds): mutations of real
//! snapshot and journal bytes (bit flips, byte insertions and deletions,
//! splices, length-field edits, huge numbers in frame lines, random
//! garbage), and records re-framed with valid checksums so that the payload
//! parsers see the damage too. They go through the hidden
//! `persisted_state_core::__fuzz` entry points, which open a store on an
//! in-memory disk.
//!
//! `PERSISTED_FUZZ_CASES` sets the number of inputs (default 10,000). The
//! cargo-fuzz targets in `fuzz/` are the long-running version.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use persisted_state::Format;
use persisted_state_core::__fuzz;
use persisted_state_core::__fuzz::spec::{
    bincode_snapshot, encode_header, encode_record, fingerprint, intent_payload,
};

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// --- the on-disk format (encoders: persisted_state_core::__fuzz::spec) -------------

/// A journal record: `@` commit or `!` intent.
#[derive(Clone)]
struct Record {
    tag: u8,
    seq: u64,
    payload: Vec<u8>,
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Yaml => "yaml",
        Format::Toml => "toml",
        _ => "bincode",
    }
}

fn encode_journal(format: Format, base: u64, seq: u64, records: &[Record]) -> Vec<u8> {
    let mut out = encode_header(format, base, seq);
    for record in records {
        encode_record(format, record.tag, record.seq, &record.payload, &mut out);
    }
    out
}

/// Splits a valid journal (version 1 or 2) into its header fields and
/// records.
fn parse_journal(format: Format, bytes: &[u8]) -> (u64, u64, Vec<Record>) {
    // Version 2 binary frames carry time u64 and a fields list after the
    // first 17 bytes; text frames put them after the words read here.
    let binary_v2 = format == Format::Bincode && bytes[4] == 2;
    let (base, seq, mut at) = if format == Format::Bincode {
        (
            u64::from_le_bytes(bytes[6..14].try_into().unwrap()),
            u64::from_le_bytes(bytes[14..22].try_into().unwrap()),
            26,
        )
    } else {
        let end = bytes.iter().position(|&b| b == b'\n').unwrap();
        let line = std::str::from_utf8(&bytes[..end]).unwrap();
        let word = |key: &str| {
            line.split(' ')
                .find_map(|w| w.strip_prefix(key))
                .unwrap()
                .to_string()
        };
        (
            u64::from_str_radix(&word("base="), 16).unwrap(),
            word("seq=").parse().unwrap(),
            end + 1,
        )
    };
    let mut records = Vec::new();
    while at < bytes.len() {
        let (tag, seq, len, header) = if format == Format::Bincode {
            let tag = if bytes[at] == 0xC1 { b'!' } else { b'@' };
            let seq = u64::from_le_bytes(bytes[at + 1..at + 9].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[at + 9..at + 13].try_into().unwrap());
            let meta = if binary_v2 {
                10 + u16::from_le_bytes(bytes[at + 25..at + 27].try_into().unwrap()) as usize
            } else {
                0
            };
            (tag, seq, len as usize, 17 + meta)
        } else {
            let end = at + bytes[at..].iter().position(|&b| b == b'\n').unwrap();
            let line = std::str::from_utf8(&bytes[at..end]).unwrap();
            let line = line.strip_prefix("--- # ").unwrap_or(line);
            let mut words = line[1..].split(' ');
            let seq = words.next().unwrap().parse().unwrap();
            let len = words.next().unwrap().parse().unwrap();
            (line.as_bytes()[0], seq, len, end + 1 - at)
        };
        let payload = bytes[at + header..at + header + len].to_vec();
        records.push(Record { tag, seq, payload });
        at += header + len;
    }
    (base, seq, records)
}

// --- material ------------------------------------------------------------------

/// One format's real files and payloads to build inputs from.
struct Seed {
    format: Format,
    snapshot: Vec<u8>,
    journal: Vec<u8>,
    header_seq: u64,
    /// Payloads: the seed's own, and hand-written ones for the fuzz state
    /// (`counter: u64, items: Vec<String>, a: u64, b: u64`).
    payloads: Vec<Vec<u8>>,
    /// Whole snapshots other than the seed's.
    snapshots: Vec<Vec<u8>>,
}

const JSON_PAYLOADS: &[&str] = &[
    r#"{"set counter":5}"#,
    r#"{"push items":"x"}"#,
    r#"{"pop items":null}"#,
    r#"{"clear items":null}"#,
    r#"{"extend items":["p","q"]}"#,
    r#"{"set a":1,"set b":2}"#,
    r#"{"set items":["a","b"]}"#,
    r#"{"push counter":1}"#,
    r#"{"insert items":["k","v"]}"#,
    r#"{"remove items":"x"}"#,
    r#"{"set nope":1}"#,
    r#"{"frobnicate items":1}"#,
    r#"{"set counter":-1}"#,
    r#"{"set counter":18446744073709551615}"#,
    r#"{"set counter":18446744073709551616}"#,
    r#"{"set counter":1e400}"#,
    r#"{"set counter":"7"}"#,
    r#"{"pop items":null,"pop items":null,"pop items":null}"#,
    r#"{"push items":{"deep":[[[[[[]]]]]]}}"#,
    r#"{"set items":"\ud800"}"#,
    "{}",
    "[]",
    "null",
    "",
];

const YAML_PAYLOADS: &[&str] = &[
    "set counter: 5",
    "push items: x",
    "pop items: null",
    "pop items:",
    "clear items: ~",
    "extend items:\n- p\n- q",
    "set a: 1\nset b: 2",
    "set items: [a, b]",
    "push counter: 1",
    "set nope: 1",
    "set counter: -1",
    "set counter: 18446744073709551616",
    "set counter: .inf",
    "set counter: '7'",
    "set counter: !!binary aGVsbG8=",
    "push items: !Custom x",
    "set items: &x [a, *x]",
    "push items: *nowhere",
    "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nset items: [*c, *c, *c, *c]",
    "? [complex, key]\n: 1",
    "set counter: 1\nset counter: 2",
    "--- \nset counter: 1\n---\nset counter: 2",
    "\t- tab",
    "{}",
    "",
];

const JSON_SNAPSHOTS: &[&str] = &[
    r#"{"counter":1,"items":["a"],"a":2,"b":3}"#,
    r#"{"counter":1,"items":["a"],"a":2,"b":3,"extra":{"x":[1,2,{"y":null}]}}"#,
    r#"{"counter":1,"items":"a","a":2,"b":3}"#,
    r#"{"counter":1,"counter":2,"items":[],"a":2,"b":3}"#,
    r#"{"items":[],"a":2,"b":3}"#,
    r#"[1,2,3,4]"#,
    "null",
];

const YAML_SNAPSHOTS: &[&str] = &[
    "counter: 1\nitems:\n- a\na: 2\nb: 3\n",
    "counter: 1\nitems: [a]\na: 2\nb: 3\nextra: {x: [1, 2, {y: ~}]}\n",
    "counter: 1\nitems: a\na: 2\nb: 3\n",
    "counter: &c 1\nitems: []\na: *c\nb: *c\n",
    "- 1\n- 2\n",
    "~\n",
    "--- !Tagged\ncounter: 1\n",
];

const TOML_SNAPSHOTS: &[&str] = &[
    "counter = 1\nitems = [\"a\"]\na = 2\nb = 3\n",
    "counter = 1\nitems = []\na = 2\nb = 3\n[extra]\nx = [1, 2, { y = 1979-05-27T07:32:00Z }]\n",
    "counter = 1\nitems = \"a\"\na = 2\nb = 3\n",
    "counter = 1\ncounter = 2\nitems = []\na = 2\nb = 3\n",
    "counter = 18446744073709551615\nitems = []\na = 2\nb = 3\n",
    "counter = 0x7fffffffffffffff\nitems = ['''a''']\na = 0o7\nb = 0b1\n",
    "[items]\na = 1\n",
    "[[items]]\n[[items]]\n",
    "a.b.c.d.e.f = 1\n",
    "x = [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]\n",
    "counter = nan\n",
    "\u{feff}counter = 1\n",
];

fn seeds() -> Vec<Seed> {
    common::formats()
        .into_iter()
        .map(|format| {
            let (snapshot, journal) = __fuzz::seed_files(format);
            let (_, header_seq, records) = parse_journal(format, &journal);
            let mut payloads: Vec<Vec<u8>> = records.iter().map(|r| r.payload.clone()).collect();
            let mut snapshots = Vec::new();
            match format {
                Format::Json => {
                    payloads.extend(JSON_PAYLOADS.iter().map(|p| format!("{p}\n").into_bytes()));
                    snapshots.extend(JSON_SNAPSHOTS.iter().map(|s| s.as_bytes().to_vec()));
                }
                Format::Yaml => {
                    payloads.extend(YAML_PAYLOADS.iter().map(|p| format!("{p}\n").into_bytes()));
                    snapshots.extend(YAML_SNAPSHOTS.iter().map(|s| s.as_bytes().to_vec()));
                }
                // A TOML store's journal payloads are JSON lines.
                Format::Toml => {
                    payloads.extend(JSON_PAYLOADS.iter().map(|p| format!("{p}\n").into_bytes()));
                    snapshots.extend(TOML_SNAPSHOTS.iter().map(|s| s.as_bytes().to_vec()));
                }
                _ => {
                    snapshots.push(bincode_snapshot(&snapshot[17..]));
                }
            }
            Seed {
                format,
                snapshot,
                journal,
                header_seq,
                payloads,
                snapshots,
            }
        })
        .collect()
}

// --- mutations -------------------------------------------------------------------

/// Numbers that break parsers: boundaries, overflows, huge lengths.
const HUGE: &[&str] = &[
    "0",
    "1",
    "4294967295",
    "4294967296",
    "2147483648",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "-1",
    "+1",
    "00000000000000000001",
    "",
];

/// One byte-level mutation of `bytes`, using `other` for splices.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, other: &[u8]) {
    match rng.below(9) {
        0 => {
            for _ in 0..=rng.below(8) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            let at = rng.below(bytes.len() + 1);
            let n = rng.below(16) + 1;
            let inserted = rng.bytes(n);
            bytes.splice(at..at, inserted);
        }
        2 => {
            if !bytes.is_empty() {
                let at = rng.below(bytes.len());
                let n = (rng.below(32) + 1).min(bytes.len() - at);
                bytes.drain(at..at + n);
            }
        }
        3 => {
            // Splice: a range of another file over a range of this one.
            if !other.is_empty() {
                let from = rng.below(other.len());
                let n = (rng.below(64) + 1).min(other.len() - from);
                let at = rng.below(bytes.len() + 1);
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.splice(at..end, other[from..from + n].iter().copied());
            }
        }
        4 => {
            // Cut.
            let n = rng.below(bytes.len() + 1);
            bytes.truncate(n);
        }
        5 => {
            // Append garbage, zeros or a repeat of the file.
            let n = rng.below(256) + 1;
            match rng.below(3) {
                0 => bytes.extend(rng.bytes(n)),
                1 => bytes.extend(std::iter::repeat_n(0, n)),
                _ => {
                    let copy = bytes.clone();
                    bytes.extend(copy);
                }
            }
        }
        6 => numbers_in_text(rng, bytes),
        7 => numbers_in_binary(rng, bytes),
        _ => {
            // A byte set to an interesting value.
            if !bytes.is_empty() {
                let at = rng.below(bytes.len());
                bytes[at] = *rng.pick(&[0, 0xFF, b'\n', b'@', b'!', b' ', b'"', b'{', 0xC0, 253]);
            }
        }
    }
}

/// Replaces a run of ASCII digits or hex (a seq, a len, a crc, a value)
/// with a number from `HUGE`.
fn numbers_in_text(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let runs: Vec<(usize, usize)> = {
        let mut runs = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at].is_ascii_hexdigit() {
                let start = at;
                while at < bytes.len() && bytes[at].is_ascii_hexdigit() {
                    at += 1;
                }
                runs.push((start, at));
            } else {
                at += 1;
            }
        }
        runs
    };
    if runs.is_empty() {
        return;
    }
    let (start, end) = *rng.pick(&runs);
    bytes.splice(start..end, rng.pick(HUGE).bytes());
}

/// Overwrites 4 or 8 bytes (a length, a seq) with a boundary value.
fn numbers_in_binary(rng: &mut Rng, bytes: &mut [u8]) {
    let value: u64 = *rng.pick(&[
        0,
        1,
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        u64::MAX,
        u64::MAX - 1,
        1 << 40,
        1 << 62,
        0x8000_0000_0000_0000,
    ]);
    let width = if rng.chance(50) { 4 } else { 8 };
    if bytes.len() >= width {
        let at = rng.below(bytes.len() - width + 1);
        bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// A header `seq`: usually the real one, sometimes a boundary.
fn header_seq(rng: &mut Rng, real: u64) -> u64 {
    match rng.below(10) {
        0 => rng.next(),
        // Near the top: the next record's seq would overflow.
        1 => u64::MAX - rng.below(3) as u64,
        2 => 0,
        _ => real,
    }
}

/// A journal of re-framed records: valid frames and checksums around
/// payloads that are real, hand-written or mutated, so the payload
/// parsers see them.
fn reframed_journal(rng: &mut Rng, seed: &Seed, snapshot: &[u8], other: &[u8]) -> Vec<u8> {
    let base = if rng.chance(85) {
        fingerprint(snapshot)
    } else {
        rng.next()
    };
    let first = header_seq(rng, seed.header_seq);
    let mut seq = first;
    let mut records = Vec::new();
    for _ in 0..rng.below(6) + 1 {
        seq = match rng.below(12) {
            0 => seq,                 // a repeat
            1 => seq.wrapping_add(2), // a gap
            _ => seq.wrapping_add(1),
        };
        let (tag, payload) = if rng.chance(12) {
            let fp = if rng.chance(50) {
                fingerprint(snapshot)
            } else {
                rng.next()
            };
            let mut payload = intent_payload(seed.format, fp);
            if rng.chance(30) {
                mutate(rng, &mut payload, other);
            }
            (b'!', payload)
        } else {
            let mut payload = rng.pick(&seed.payloads).clone();
            for _ in 0..rng.below(3) {
                mutate(rng, &mut payload, other);
            }
            (b'@', payload)
        };
        records.push(Record { tag, seq, payload });
    }
    let mut journal = encode_journal(seed.format, base, first, &records);
    if rng.chance(20) {
        mutate(rng, &mut journal, other);
    }
    journal
}

/// A snapshot: the seed's or another, mutated; bincode ones re-signed so
/// that the decoder sees the damaged payload.
fn mutated_snapshot(rng: &mut Rng, seed: &Seed, other: &[u8]) -> Vec<u8> {
    let mut snapshot = if rng.chance(50) {
        seed.snapshot.clone()
    } else {
        rng.pick(&seed.snapshots).clone()
    };
    if seed.format == Format::Bincode && rng.chance(50) {
        let mut payload = snapshot[17.min(snapshot.len())..].to_vec();
        for _ in 0..rng.below(3) + 1 {
            mutate(rng, &mut payload, other);
        }
        return bincode_snapshot(&payload);
    }
    for _ in 0..rng.below(3) + 1 {
        mutate(rng, &mut snapshot, other);
    }
    snapshot
}

/// One generated input.
struct Input {
    format: Format,
    snapshot: Vec<u8>,
    journal: Option<Vec<u8>>,
}

fn generate(rng: &mut Rng, seeds: &[Seed]) -> Input {
    let (format, snapshot, journal) = generate_files(rng, seeds);
    Input {
        format,
        snapshot,
        journal,
    }
}

fn generate_files(rng: &mut Rng, seeds: &[Seed]) -> (Format, Vec<u8>, Option<Vec<u8>>) {
    let seed = rng.pick(seeds);
    let donor = rng.pick(seeds);
    let other = if rng.chance(50) {
        &donor.journal
    } else {
        &donor.snapshot
    };
    match rng.below(10) {
        // The seed snapshot and its journal, mutated byte by byte.
        0..=2 => {
            let mut journal = seed.journal.clone();
            for _ in 0..rng.below(3) + 1 {
                mutate(rng, &mut journal, other);
            }
            (seed.format, seed.snapshot.clone(), Some(journal))
        }
        // Re-framed records with valid checksums.
        3..=5 => {
            let snapshot = if rng.chance(80) {
                seed.snapshot.clone()
            } else {
                rng.pick(&seed.snapshots).clone()
            };
            let journal = reframed_journal(rng, seed, &snapshot, other);
            (seed.format, snapshot, Some(journal))
        }
        // A damaged snapshot, alone or with the seed journal.
        6..=8 => {
            let snapshot = mutated_snapshot(rng, seed, other);
            let journal = rng.chance(40).then(|| seed.journal.clone());
            (seed.format, snapshot, journal)
        }
        // Garbage.
        _ => {
            let n = rng.below(512);
            let snapshot = if rng.chance(50) {
                rng.bytes(n)
            } else {
                seed.snapshot.clone()
            };
            let journal = match rng.below(4) {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some(vec![0; n]),
                _ => Some(rng.bytes(n)),
            };
            (seed.format, snapshot, journal)
        }
    }
}

/// Runs one input; `Err` with a description when it panicked.
fn run(format: Format, snapshot: &[u8], journal: Option<&[u8]>) -> Result<bool, String> {
    catch_unwind(AssertUnwindSafe(|| __fuzz::open(format, snapshot, journal))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Keeps a panicking input where a person can replay it.
fn keep_reproducer(case: usize, format: Format, snapshot: &[u8], journal: Option<&[u8]>) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke");
    std::fs::create_dir_all(&dir).unwrap();
    let stem = dir.join(format!("case-{case}-{}", format_name(format)));
    std::fs::write(stem.with_extension("snapshot"), snapshot).unwrap();
    if let Some(journal) = journal {
        std::fs::write(stem.with_extension("journal"), journal).unwrap();
    }
    stem.display().to_string()
}

#[test]
fn generated_snapshots_and_journals_never_panic() {
    let cases: usize = common::soak_size("PERSISTED_FUZZ_CASES", 10_000);
    let seeds = seeds();
    // The seeds themselves open.
    for seed in &seeds {
        assert_eq!(
            run(seed.format, &seed.snapshot, Some(&seed.journal)),
            Ok(true),
            "{:?}",
            seed.format
        );
    }
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut opened, mut panics) = (0usize, Vec::new());
    for case in 0..cases {
        let Input {
            format,
            snapshot,
            journal,
        } = generate(&mut rng, &seeds);
        match run(format, &snapshot, journal.as_deref()) {
            Ok(true) => opened += 1,
            Ok(false) => {}
            Err(message) => {
                let kept = keep_reproducer(case, format, &snapshot, journal.as_deref());
                panics.push(format!(
                    "case {case} ({format:?}): {message} [kept in {kept}.*]"
                ));
            }
        }
    }
    eprintln!(
        "T16: {cases} generated inputs, {opened} opened, {} refused, {} panics",
        cases - opened - panics.len(),
        panics.len()
    );
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

// --- known bugs: exact reproducers -------------------------------------------------

use common::{State, StateStoreExt};
use persisted_state::Persisted;

/// `dir/state.json` holding the empty state and a journal of `records`
/// after a header at `header_seq`, all valid (checksums per the spec).
fn json_store_with_journal(
    dir: &std::path::Path,
    header_seq: u64,
    records: &[Record],
) -> std::path::PathBuf {
    let path = dir.join("state.json");
    let snapshot = b"{\n  \"last_id\": 0,\n  \"processed\": [],\n  \"settings\": {}\n}\n";
    std::fs::write(&path, snapshot).unwrap();
    let journal = encode_journal(Format::Json, fingerprint(snapshot), header_seq, records);
    std::fs::write(common::journal_of(&path), journal).unwrap();
    path
}

/// A header at `seq=18446744073709551615` followed by a valid record
/// (`@0 18 <crc>` + `{"set last_id":5}`): `scan` in
/// engine/journal/recovery.rs computes `seq + 1` and panics with
/// "attempt to add with overflow" (debug builds; release wraps and accepts
/// a record with seq 0). Expected: the record is not the header's
/// successor, so it is a torn tail and the open succeeds with state 0.
#[test]
fn header_seq_u64_max_followed_by_a_record_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let record = Record {
        tag: b'@',
        seq: 0,
        payload: b"{\"set last_id\":5}\n".to_vec(),
    };
    let path = json_store_with_journal(dir.path(), u64::MAX, &[record]);
    let store = State::open(&path).unwrap();
    assert_eq!(store.last_id(), 0);
}

/// A header at `seq=18446744073709551614` and a valid record `@18446744073709551615`:
/// the open succeeds (last_id 5), then the next commit, or the compaction
/// when the store is dropped, computes `self.seq + 1` in
/// `Journal::append` (engine/journal/mod.rs) and panics with "attempt to
/// add with overflow" (debug builds). Expected: an error, not a panic.
#[test]
fn a_record_with_seq_u64_max_does_not_panic_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let record = Record {
        tag: b'@',
        seq: u64::MAX,
        payload: b"{\"set last_id\":5}\n".to_vec(),
    };
    let path = json_store_with_journal(dir.path(), u64::MAX - 1, &[record]);
    let store = State::open(&path).unwrap();
    assert_eq!(store.last_id(), 5);
    let commit = catch_unwind(AssertUnwindSafe(|| store.set_last_id(6).map(drop)));
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(store)));
    assert!(commit.is_ok(), "the commit panicked");
    assert!(dropped.is_ok(), "the compaction on drop panicked");
}

#[cfg(feature = "bincode")]
const BINCODE_CHILD: &str = "PERSISTED_FUZZ_BINCODE_CHILD";

/// A bincode snapshot with a valid header and checksum whose payload is
/// `[0, 1, 253, 0, 0, 0, 0, 0, 1, 0, 0]`: `last_id` 0, `processed` of one
/// string claiming 2^40 bytes. bincode 2 (no limit configured in
/// format/bincode.rs) runs `vec![0u8; 1 << 40]` before reading, and the
/// process aborts ("memory allocation of 1099511627776 bytes failed"); a
/// claimed length near `u64::MAX` panics with "capacity overflow". The
/// same holds for a verified bincode journal record (checked second).
/// Expected: `Error::Corrupt`. Runs in a child process, since an abort cannot be
/// caught.
#[cfg(feature = "bincode")]
#[test]
fn a_bincode_string_length_beyond_the_file_is_an_error_not_an_allocation() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "bincode_huge_length_child", "--nocapture"])
        .env(BINCODE_CHILD, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the child died: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs only as the child of the test above.
#[cfg(feature = "bincode")]
#[test]
fn bincode_huge_length_child() {
    if std::env::var(BINCODE_CHILD).is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let payload = [0, 1, 253, 0, 0, 0, 0, 0, 1, 0, 0];
    std::fs::write(&path, bincode_snapshot(&payload)).unwrap();
    let err = State::open(&path).unwrap_err();
    assert!(
        matches!(err, persisted_state::Error::Corrupt { .. }),
        "{err:?}"
    );

    // The same in a verified journal record: `{"push processed": <a string
    // of 2^40 bytes>}` after the empty state's snapshot.
    let snapshot = bincode_snapshot(&[0, 0, 0]);
    std::fs::write(&path, &snapshot).unwrap();
    let mut payload = vec![1, 14];
    payload.extend_from_slice(b"push processed");
    payload.extend_from_slice(&[253, 0, 0, 0, 0, 0, 1, 0, 0]);
    let record = Record {
        tag: b'@',
        seq: 1,
        payload,
    };
    let journal = encode_journal(Format::Bincode, fingerprint(&snapshot), 0, &[record]);
    std::fs::write(common::journal_of(&path), journal).unwrap();
    let err = State::open(&path).unwrap_err();
    assert!(
        matches!(err, persisted_state::Error::Corrupt { .. }),
        "{err:?}"
    );
}
