//! Shared by the benches: the workload's state, temp dirs on the real disk,
//! criterion settings, and a side channel for numbers criterion does not
//! measure (bytes per record), which `scripts/bench-report.py` reads.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use persisted_state::{Durability, Engine, Format, Persisted, Store};
use serde::{Deserialize, Serialize};

/// The workload of PERFORMANCE.md: persist a counter after every increment.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct State {
    pub counter: u64,
    pub name: String,
}

/// The same state with a padding field, for the state-size sweep and the
/// open/recovery bench.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Padded {
    pub counter: u64,
    pub name: String,
    pub padding: Vec<String>,
}

impl State {
    pub fn new() -> State {
        State {
            counter: 0,
            name: "persisted-bench".into(),
        }
    }
}

impl Padded {
    /// A state whose pretty JSON is about `bytes` long (100-byte strings).
    pub fn of_size(bytes: usize) -> Padded {
        let n = (bytes / 110).max(1);
        Padded {
            counter: 0,
            name: "persisted-bench".into(),
            padding: (0..n)
                .map(|i| format!("{i:08}-{}", "x".repeat(91)))
                .collect(),
        }
    }
}

/// Criterion settings short enough that a whole bench file runs in minutes.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args()
}

/// This package's `target/` (on the real disk: `/tmp` may be tmpfs elsewhere,
/// and a tmpfs fsync costs nothing).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// A fresh temp dir under `target/bench-tmp`, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    let base = target_dir().join("bench-tmp");
    std::fs::create_dir_all(&base).expect("create target/bench-tmp");
    tempfile::Builder::new()
        .prefix("bench-")
        .tempdir_in(base)
        .expect("create a temp dir")
}

/// The file name whose extension names `format`.
pub fn file_name(format: Format) -> &'static str {
    match format {
        Format::Yaml => "state.yaml",
        Format::Bincode => "state.bin",
        _ => "state.json",
    }
}

pub fn format_label(format: Format) -> &'static str {
    match format {
        Format::Yaml => "yaml",
        Format::Bincode => "bincode",
        _ => "json",
    }
}

pub fn engine_label(engine: Engine) -> &'static str {
    match engine {
        Engine::Snapshot => "snapshot",
        _ => "journal",
    }
}

pub fn durability_label(durability: Durability) -> &'static str {
    match durability {
        Durability::Sync => "sync",
        _ => "flush",
    }
}

/// The journal of a store at `snapshot` (`state.json` -> `state.json.journal`).
pub fn journal_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Average bytes one `set_counter` appends to the journal, for `format`.
pub fn set_counter_record_bytes(format: Format) -> f64 {
    let dir = tempdir();
    let path = dir.path().join(file_name(format));
    let store = Store::<State>::options()
        .journal_limit(u64::MAX)
        .open(&path)
        .expect("open");
    store.set_counter(1_000_000).expect("commit");
    let before = file_len(&journal_path(&path));
    const N: u64 = 1000;
    for i in 0..N {
        store.set_counter(1_000_001 + i).expect("commit");
    }
    let after = file_len(&journal_path(&path));
    (after - before) as f64 / N as f64
}

/// Records a number criterion does not measure, as
/// `target/persisted-bench/<bench>.json` (`{"name": value, ...}`), and
/// prints it.
pub fn record_extra(bench: &str, values: &[(&str, f64)]) {
    let dir = target_dir().join("persisted-bench");
    std::fs::create_dir_all(&dir).expect("create target/persisted-bench");
    let mut map = serde_json::Map::new();
    for (name, value) in values {
        eprintln!("{bench}: {name} = {value:.1}");
        map.insert((*name).to_string(), serde_json::json!(value));
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(map)).expect("json");
    std::fs::write(dir.join(format!("{bench}.json")), text + "\n").expect("write extra");
}

/// One operation to time, with whatever it needs kept alive (a temp dir).
pub struct Op {
    pub name: String,
    pub run: Box<dyn FnMut()>,
    pub keep: Vec<Box<dyn std::any::Any>>,
}

impl Op {
    pub fn new(name: impl Into<String>, run: impl FnMut() + 'static) -> Op {
        Op {
            name: name.into(),
            run: Box::new(run),
            keep: Vec::new(),
        }
    }

    pub fn keep(mut self, value: impl std::any::Any) -> Op {
        self.keep.push(Box::new(value));
        self
    }
}

/// A `len`-byte journal-like record (`{"set counter":1099511627776}`,
/// padded, newline-terminated), as `commit.rs`'s floors write it.
pub fn floor_record(len: usize) -> Vec<u8> {
    let mut record = format!("{{\"set counter\":{}}}", 1u64 << 40).into_bytes();
    record.resize(len.saturating_sub(1), b' ');
    record.push(b'\n');
    record
}

/// The floor of a Flush commit, the same operation as `commit.rs`'s
/// `flush/floor/write(2) <len> B`: one write(2) of a `len`-byte record to
/// an open O_APPEND file.
pub fn write_floor(name: impl Into<String>, len: usize) -> Op {
    use std::io::Write;
    let dir = tempdir();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("floor.log"))
        .expect("open floor.log");
    let record = floor_record(len);
    Op::new(name, move || {
        // `write` on `&File` is exactly one write(2).
        let n = (&file).write(std::hint::black_box(&record)).unwrap();
        assert_eq!(n, record.len());
    })
    .keep(dir)
}

/// A ratio robust to a shared machine's drifting load: alternates batches
/// of `a` and `b` (`rounds` rounds of `batch` operations each) and returns
/// (median µs/op of a, median µs/op of b, median over rounds of a/b).
pub fn paired(
    a: &mut dyn FnMut(),
    b: &mut dyn FnMut(),
    rounds: usize,
    batch: usize,
) -> (f64, f64, f64) {
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..batch {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / batch as f64
    };
    alternate(&mut || time(a), &mut || time(b), rounds)
}

/// [`paired`] for operations that need untimed upkeep (a pop that keeps a
/// Vec at its size): `a` and `b` each run one operation and return the time
/// of the part to measure; a batch's time is the sum of those.
pub fn paired_timed(
    a: &mut dyn FnMut() -> Duration,
    b: &mut dyn FnMut() -> Duration,
    rounds: usize,
    batch: usize,
) -> (f64, f64, f64) {
    let time = |f: &mut dyn FnMut() -> Duration| {
        let total: Duration = (0..batch).map(|_| f()).sum();
        total.as_secs_f64() * 1e6 / batch as f64
    };
    alternate(&mut || time(a), &mut || time(b), rounds)
}

/// Warms up, then runs `rounds` rounds of one batch of each (`a` and `b`
/// return µs/op for their batch), alternating which goes first; returns
/// (median of a, median of b, median over rounds of a/b).
fn alternate(
    a: &mut dyn FnMut() -> f64,
    b: &mut dyn FnMut() -> f64,
    rounds: usize,
) -> (f64, f64, f64) {
    // Warm up both.
    a();
    b();
    let (mut ta, mut tb, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first so neither always follows the other.
        let (x, y) = if round % 2 == 0 {
            let x = a();
            (x, b())
        } else {
            let y = b();
            (a(), y)
        };
        ta.push(x);
        tb.push(y);
        r.push(x / y);
    }
    (median(&mut ta), median(&mut tb), median(&mut r))
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
