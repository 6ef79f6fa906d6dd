//! P9-P11 (issue 10): shared mode, `Store::options().shared(true)`, several
//! processes on one file. One criterion group, `shared`; ids
//! `<kind>/<label>[/<param>]`.
//!
//! - **P9**: `set_counter` on a shared store from one process
//!   (`Durability::Flush`, journal engine: writer lock, catch-up check,
//!   append, unlock) vs the same commit on an exclusive store of its own;
//!   goal <= 1.5x. Paired too (`common::paired`: batches of the two
//!   alternated, median of the per-round ratios).
//! - **P10**: 4 processes each making a fixed number of
//!   `store.update(|s| s.counter += 1)` on one shared store, total
//!   commits/s, vs 4 processes each making as many
//!   `BEGIN IMMEDIATE; UPDATE t SET n = n + 1; COMMIT` on one SQLite
//!   database (WAL, `synchronous=NORMAL`, prepared statements,
//!   busy_timeout 10 s; feature `peers`); goal: ours >= 2x SQLite's
//!   commits/s. The same with 1 process, for reference. The processes are
//!   this bench binary run again as a worker: `main` checks the
//!   `PERSISTED_BENCH_SHARED_WORKER` env var (`ours` or `sqlite`) before
//!   criterion sees the arguments; the worker opens the store or database,
//!   makes its commits and closes it (the last store handle out folds the
//!   journal into the snapshot, the last SQLite connection checkpoints the
//!   WAL). A run times from the first spawn until every worker has exited,
//!   on a fresh store or database, then checks that every worker exited
//!   with success and that the final counter is exactly the number of
//!   commits made: a lost or doubled update panics the bench. Criterion's
//!   time per iteration is wall time per commit (commits/s = 1 / time,
//!   flat sampling, each sample one run); paired: runs of SQLite and of
//!   ours (40,000 commits each) alternated (`common::paired_timed`),
//!   median of the per-round ratios = ours commits/s / SQLite commits/s.
//! - **P11**: `store.read()` of an unchanged shared store (take the guard,
//!   read one field, drop the guard; the read first catches up: one fstat
//!   of the journal) vs one `write(2)` of 41 bytes to an open O_APPEND file
//!   (`common::write_floor`, the same floor as `commit.rs`'s); goal <= 1x.
//!   The exclusive-mode `read()` for reference. Paired too.
//!
//! The paired ratios, commits/s and journal bytes per commit go to
//! target/persisted-bench/shared.json for the report.
//!
//!     cd benches && cargo bench --bench shared

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{State, StateStoreExt as _};
use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode};
use persisted_state::{Durability, Engine, Store};

/// Set (to `ours` or `sqlite`) in a worker process's environment; its
/// arguments are then `<commits> <path>`.
const WORKER: &str = "PERSISTED_BENCH_SHARED_WORKER";

/// How long a shared commit waits for the writer lock (SQLite's
/// busy_timeout is the same).
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The size of the write(2) floor of P11 (about one JSON `set_counter`
/// record, as in `commit.rs`).
const FLOOR_LEN: usize = 41;

/// Commits per paired P10 run, split over the processes.
#[cfg(feature = "peers")]
const P10_COMMITS: u64 = 40_000;

/// A store of the bench's state, Flush, journal engine, shared or not.
fn open(path: &Path, shared: bool) -> Store<State> {
    let mut options = Store::<State>::options()
        .durability(Durability::Flush)
        .engine(Engine::Journal);
    if shared {
        options = options.shared(true).lock_timeout(LOCK_TIMEOUT);
    }
    options
        .open(path)
        .unwrap_or_else(|e| panic!("open `{}` (shared: {shared}): {e}", path.display()))
}

/// `state.json` with `State::new()` in `dir`, closed.
fn create_store(dir: &Path) -> PathBuf {
    let path = dir.join("state.json");
    Store::open_or(&path, State::new())
        .unwrap()
        .close()
        .unwrap();
    path
}

/// What several processes run against one file.
#[derive(Clone, Copy, Debug)]
enum Contender {
    /// `store.update(|s| s.counter += 1)` on a shared store.
    Ours,
    /// `BEGIN IMMEDIATE; UPDATE t SET n = n + 1; COMMIT`, WAL, NORMAL.
    #[cfg(feature = "peers")]
    Sqlite,
}

impl Contender {
    fn all() -> Vec<Contender> {
        vec![
            Contender::Ours,
            #[cfg(feature = "peers")]
            Contender::Sqlite,
        ]
    }

    /// The worker's name (the env var's value).
    fn worker(self) -> &'static str {
        match self {
            Contender::Ours => "ours",
            #[cfg(feature = "peers")]
            Contender::Sqlite => "sqlite",
        }
    }

    /// The criterion function id.
    fn bench_name(self) -> &'static str {
        match self {
            Contender::Ours => "ours/update(counter += 1), shared mode",
            #[cfg(feature = "peers")]
            Contender::Sqlite => {
                "peer/rusqlite WAL synchronous=NORMAL, BEGIN IMMEDIATE; UPDATE n = n + 1; COMMIT"
            }
        }
    }

    /// A fresh store or database in `dir`, counter 0; its path.
    fn create(self, dir: &Path) -> PathBuf {
        match self {
            Contender::Ours => create_store(dir),
            #[cfg(feature = "peers")]
            Contender::Sqlite => sqlite::create(dir),
        }
    }

    /// The counter at `path`, once every worker has exited.
    fn count(self, path: &Path) -> u64 {
        match self {
            Contender::Ours => {
                let store = open(path, true);
                let n = store.read().counter;
                store.close().unwrap();
                n
            }
            #[cfg(feature = "peers")]
            Contender::Sqlite => sqlite::count(path),
        }
    }
}

/// One run of `procs` worker processes of `who`, each making `per_proc`
/// commits on one fresh store or database: the time from the first spawn
/// until the last worker exited. Panics if a worker failed or if the final
/// counter is not `procs * per_proc`.
fn multi(who: Contender, procs: u64, per_proc: u64) -> Duration {
    let dir = common::tempdir();
    let path = who.create(dir.path());
    let exe = std::env::current_exe().expect("the bench binary's path");
    let start = Instant::now();
    let children: Vec<_> = (0..procs)
        .map(|_| {
            Command::new(&exe)
                .env(WORKER, who.worker())
                .arg(per_proc.to_string())
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn a worker")
        })
        .collect();
    let statuses: Vec<_> = children
        .into_iter()
        .map(|mut child| child.wait().expect("wait for a worker"))
        .collect();
    let elapsed = start.elapsed();
    for status in statuses {
        assert!(
            status.success(),
            "{who:?}: a worker of {procs} x {per_proc} commits failed: {status}"
        );
    }
    let n = who.count(&path);
    assert_eq!(
        n,
        procs * per_proc,
        "{who:?}: {procs} processes x {per_proc} commits ended at {n}: lost or doubled updates"
    );
    elapsed
}

/// A worker process: `<commits> <path>` in its arguments.
fn worker(kind: &str) {
    let mut args = std::env::args_os().skip(1);
    let commits: u64 = args
        .next()
        .and_then(|a| a.to_str()?.parse().ok())
        .expect("worker: the number of commits");
    let path = PathBuf::from(args.next().expect("worker: the path"));
    match kind {
        "ours" => {
            let store = open(&path, true);
            for _ in 0..commits {
                store
                    .update(|s| s.counter += 1)
                    .expect("worker: shared update");
            }
            store.close().expect("worker: close");
        }
        #[cfg(feature = "peers")]
        "sqlite" => sqlite::worker(&path, commits),
        other => panic!("unknown worker kind {other:?}"),
    }
}

#[cfg(feature = "peers")]
mod sqlite {
    use std::path::{Path, PathBuf};

    use rusqlite::Connection;

    /// `state.sqlite` in `dir`, WAL (persistent), one row with n = 0.
    pub fn create(dir: &Path) -> PathBuf {
        let path = dir.join("state.sqlite");
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
             INSERT INTO t VALUES (1, 0);",
        )
        .unwrap();
        path
    }

    pub fn worker(path: &Path, commits: u64) {
        let conn = Connection::open(path).expect("worker: open the database");
        conn.busy_timeout(super::LOCK_TIMEOUT).unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let mut begin = conn.prepare("BEGIN IMMEDIATE").unwrap();
        let mut update = conn.prepare("UPDATE t SET n = n + 1").unwrap();
        let mut commit = conn.prepare("COMMIT").unwrap();
        for _ in 0..commits {
            begin.execute([]).expect("worker: BEGIN IMMEDIATE");
            assert_eq!(update.execute([]).expect("worker: UPDATE"), 1);
            commit.execute([]).expect("worker: COMMIT");
        }
    }

    pub fn count(path: &Path) -> u64 {
        let conn = Connection::open(path).unwrap();
        let n: i64 = conn
            .query_row("SELECT n FROM t WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        n as u64
    }
}

/// Journal bytes one `set_counter` appends, shared or exclusive.
fn set_counter_bytes(shared: bool) -> f64 {
    let dir = common::tempdir();
    let path = create_store(dir.path());
    let mut options = Store::<State>::options().journal_limit(u64::MAX);
    if shared {
        options = options.shared(true);
    }
    let store = options.open(&path).unwrap();
    store.set_counter(1_000_000).unwrap();
    let journal = common::journal_path(&path);
    let before = common::file_len(&journal);
    const N: u64 = 1000;
    for i in 0..N {
        store.set_counter(1_000_001 + i).unwrap();
    }
    let after = common::file_len(&journal);
    store.close().unwrap();
    (after - before) as f64 / N as f64
}

fn processes(n: u64) -> String {
    if n == 1 {
        "1 process".into()
    } else {
        format!("{n} processes")
    }
}

fn shared(c: &mut Criterion) {
    let mut extras: Vec<(String, f64)> = vec![
        (
            "journal bytes per set_counter, shared mode".into(),
            set_counter_bytes(true),
        ),
        (
            "journal bytes per set_counter, exclusive mode".into(),
            set_counter_bytes(false),
        ),
    ];

    let dirs = [common::tempdir(), common::tempdir()];
    let shared_store = open(&create_store(dirs[0].path()), true);
    let exclusive_store = open(&create_store(dirs[1].path()), false);
    let mut floor = common::write_floor(format!("floor/write(2) {FLOOR_LEN} B"), FLOOR_LEN);

    let mut g = c.benchmark_group("shared");
    // P9.
    let mut n_shared = 0u64;
    g.bench_function("ours/set_counter, shared mode (1 process)", |b| {
        b.iter(|| {
            n_shared += 1;
            shared_store.set_counter(black_box(n_shared)).unwrap();
        })
    });
    let mut n_exclusive = 0u64;
    g.bench_function("ours/set_counter, exclusive mode", |b| {
        b.iter(|| {
            n_exclusive += 1;
            exclusive_store.set_counter(black_box(n_exclusive)).unwrap();
        })
    });
    // P11: nothing changes the stores from here on.
    g.bench_function("ours/read() of an unchanged store, shared mode", |b| {
        b.iter(|| black_box(shared_store.read().counter))
    });
    g.bench_function("ours/read(), exclusive mode", |b| {
        b.iter(|| black_box(exclusive_store.read().counter))
    });
    g.bench_function(floor.name.clone(), |b| b.iter(|| (floor.run)()));
    assert_eq!(shared_store.read().counter, n_shared);
    assert_eq!(exclusive_store.read().counter, n_exclusive);

    // P10: one sample is one run of worker processes (commits/s = 1 /
    // time). Few, long samples, so that the ~10-20 ms a run spends
    // starting, opening and closing its processes is small beside its
    // commits (recorded below as "P10 run overhead").
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    for procs in [4u64, 1] {
        for who in Contender::all() {
            let id = BenchmarkId::new(who.bench_name(), processes(procs));
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let per_proc = iters.div_ceil(procs);
                    // Scaled to exactly `iters` commits.
                    multi(who, procs, per_proc).mul_f64(iters as f64 / (per_proc * procs) as f64)
                })
            });
        }
    }
    g.finish();

    // P9 paired.
    let (ts, te, r9) = common::paired(
        &mut || {
            n_shared += 1;
            shared_store.set_counter(black_box(n_shared)).unwrap();
        },
        &mut || {
            n_exclusive += 1;
            exclusive_store.set_counter(black_box(n_exclusive)).unwrap();
        },
        41,
        5000,
    );
    eprintln!(
        "shared: paired P9 set_counter shared {ts:.2} us, exclusive {te:.2} us, ratio {r9:.2}"
    );
    assert_eq!(shared_store.read().counter, n_shared);
    assert_eq!(exclusive_store.read().counter, n_exclusive);
    extras.push((
        "paired P9 shared set_counter / exclusive set_counter".into(),
        r9,
    ));
    extras.push(("paired P9 set_counter shared mode, us".into(), ts));
    extras.push(("paired P9 set_counter exclusive mode, us".into(), te));

    // P11 paired.
    let (tr, tw, r11) = common::paired(
        &mut || {
            black_box(shared_store.read().counter);
        },
        &mut floor.run,
        41,
        20_000,
    );
    let (tx, _, r11x) = common::paired(
        &mut || {
            black_box(exclusive_store.read().counter);
        },
        &mut floor.run,
        21,
        20_000,
    );
    eprintln!(
        "shared: paired P11 read() shared {:.0} ns, write(2) {FLOOR_LEN} B {:.0} ns, ratio {r11:.2}; exclusive read() {:.0} ns, ratio {r11x:.2}",
        tr * 1e3,
        tw * 1e3,
        tx * 1e3
    );
    extras.push((
        format!("paired P11 read() shared unchanged / write(2) {FLOOR_LEN} B"),
        r11,
    ));
    extras.push(("paired P11 read() shared unchanged, ns".into(), tr * 1e3));
    extras.push((format!("paired P11 write(2) {FLOOR_LEN} B, ns"), tw * 1e3));
    extras.push((
        format!("paired P11 read() exclusive / write(2) {FLOOR_LEN} B"),
        r11x,
    ));
    extras.push(("paired P11 read() exclusive, ns".into(), tx * 1e3));
    drop(shared_store);
    drop(exclusive_store);

    // P10 paired: whole runs of SQLite and of ours alternated; the ratio
    // is time(SQLite) / time(ours) = ours commits/s / SQLite commits/s.
    #[cfg(feature = "peers")]
    for procs in [4u64, 1] {
        let per_proc = P10_COMMITS / procs;
        let (tsq, tours, r10) = common::paired_timed(
            &mut || multi(Contender::Sqlite, procs, per_proc),
            &mut || multi(Contender::Ours, procs, per_proc),
            11,
            1,
        );
        let commits = (per_proc * procs) as f64;
        let (ours_cps, sqlite_cps) = (commits / (tours * 1e-6), commits / (tsq * 1e-6));
        let p = processes(procs);
        eprintln!(
            "shared: paired P10 {p} x update(counter += 1), {commits} commits per run: ours {ours_cps:.0} commits/s, SQLite {sqlite_cps:.0} commits/s, ratio {r10:.2}"
        );
        extras.push((format!("paired P10 ours / SQLite commits/s, {p}"), r10));
        extras.push((format!("paired P10 ours commits/s, {p}"), ours_cps));
        extras.push((format!("paired P10 SQLite commits/s, {p}"), sqlite_cps));
    }
    // What a run costs besides the commits: spawn, open, close, exit.
    for who in Contender::all() {
        let mut ms: Vec<f64> = (0..5)
            .map(|_| multi(who, 4, 0).as_secs_f64() * 1e3)
            .collect();
        let label = format!(
            "P10 run overhead, 4 {} workers, 0 commits, ms",
            who.worker()
        );
        let ms = common::median(&mut ms);
        eprintln!("shared: {label}: {ms:.1}");
        extras.push((label, ms));
    }

    let extras: Vec<(&str, f64)> = extras.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    common::record_extra("shared", &extras);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = shared
}

/// `criterion_main!`, except that a worker process (the env var set) runs
/// its commits instead of the benches.
fn main() {
    if let Some(kind) = std::env::var_os(WORKER) {
        worker(kind.to_str().expect("worker kind"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
