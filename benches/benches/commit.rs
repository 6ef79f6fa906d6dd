//! P1, P2: the cost of persisting one small change, per durability level,
//! against the physical floors and the peers, all in one criterion group
//! (`commit`) so every ratio comes from one run.
//!
//! Function ids are `<level>/<kind>/<label>`: level `flush` (survives kill -9)
//! or `sync` (survives power loss); kind `floor`, `ours`, `peer`, or `unsafe`
//! (a peer level that is not crash-safe, shown for reference only).
//!
//! After the group, the P1/P2 pairs are measured again *paired* (batches of
//! the two alternated, median of the per-round ratios), which keeps a
//! shared machine's drifting disk load out of the ratio; the results go to
//! target/persisted-bench/commit.json for the report.
//!
//!     cd benches && cargo bench --bench commit
//!     cd benches && cargo bench --bench commit -- 'flush/'   # one level

mod common;

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{Op, State, StateStoreExt as _};
use criterion::{criterion_group, criterion_main, Criterion};
use persisted_state::{Durability, Engine, Format, Store};

fn record_of(len: usize) -> Vec<u8> {
    let mut record = format!("{{\"set counter\":{}}}", 1u64 << 40).into_bytes();
    record.resize(len.saturating_sub(1), b' ');
    record.push(b'\n');
    record
}

/// One write(2) of a `len`-byte record to an open O_APPEND fd (then
/// fdatasync, if `sync`).
fn floor(len: usize, sync: bool) -> Op {
    let dir = common::tempdir();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("floor.log"))
        .unwrap();
    let record = record_of(len);
    let name = if sync {
        format!("sync/floor/append {len} B + fdatasync")
    } else {
        format!("flush/floor/write(2) {len} B")
    };
    Op::new(name, move || {
        // `write` on `&File` is exactly one write(2).
        let n = (&file).write(black_box(&record)).unwrap();
        assert_eq!(n, record.len());
        if sync {
            file.sync_data().unwrap();
        }
    })
    .keep(dir)
}

/// The best power-loss floor: pwrite(2) into a file whose blocks are
/// already written (zeros, synced), then fdatasync. No size change, so no
/// metadata to journal: what a preallocated or reused log pays (sled, a
/// SQLite WAL after its first checkpoint).
fn floor_prealloc(len: usize) -> Op {
    use std::os::unix::fs::FileExt;
    const SIZE: u64 = 16 << 20;
    let dir = common::tempdir();
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("floor.prealloc"))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        (&file).write_all(&zeros).unwrap();
    }
    file.sync_all().unwrap();
    let record = record_of(len);
    let mut offset = 0u64;
    Op::new(
        format!("sync/floor/pwrite {len} B into preallocated file + fdatasync"),
        move || {
            file.write_all_at(black_box(&record), offset).unwrap();
            file.sync_data().unwrap();
            offset += record.len() as u64;
            if offset + record.len() as u64 > SIZE {
                offset = 0;
            }
        },
    )
    .keep(dir)
}

fn ours(durability: Durability, engine: Engine, format: Format) -> Op {
    let dir = common::tempdir();
    let path = dir.path().join(common::file_name(format));
    Store::open_or(&path, State::new())
        .unwrap()
        .close()
        .unwrap();
    let store = Store::<State>::options()
        .durability(durability)
        .engine(engine)
        .open(&path)
        .unwrap();
    let name = format!(
        "{}/ours/{} {}",
        common::durability_label(durability),
        common::format_label(format),
        common::engine_label(engine),
    );
    let mut n = 0u64;
    // `store` is dropped (closed) before `dir` (kept) is removed.
    Op::new(name, move || {
        n += 1;
        store.set_counter(black_box(n)).unwrap();
    })
    .keep(dir)
}

/// serde_json of the whole state, written by `write(dir, path, bytes)`.
fn whole_file(name: &str, write: impl Fn(&Path, &Path, &[u8]) + 'static) -> Op {
    let dir = common::tempdir();
    let root: PathBuf = dir.path().to_owned();
    let path = root.join("state.json");
    let mut state = State::new();
    Op::new(name, move || {
        state.counter += 1;
        let bytes = serde_json::to_vec_pretty(&state).unwrap();
        write(&root, &path, &bytes);
    })
    .keep(dir)
}

fn hand_rolled() -> Vec<Op> {
    vec![
        whole_file(
            "flush/peer/serde_json + fs::write (naive)",
            |_, path, bytes| fs::write(path, bytes).unwrap(),
        ),
        whole_file("flush/peer/serde_json + tmp + rename", |_, path, bytes| {
            let tmp = path.with_extension("json.tmp");
            fs::write(&tmp, bytes).unwrap();
            fs::rename(&tmp, path).unwrap();
        }),
        whole_file(
            "sync/peer/serde_json + tmp + fsync + rename + fsync(dir)",
            |dir, path, bytes| {
                let tmp = path.with_extension("json.tmp");
                let mut file = File::create(&tmp).unwrap();
                file.write_all(bytes).unwrap();
                file.sync_all().unwrap();
                drop(file);
                fs::rename(&tmp, path).unwrap();
                File::open(dir).unwrap().sync_all().unwrap();
            },
        ),
    ]
}

#[cfg(feature = "peers")]
mod peers {
    use super::*;

    /// Every peer, as (constructor) so each is built right before it runs.
    pub fn all() -> Vec<fn() -> Vec<Op>> {
        vec![
            atomicwrites,
            pickledb,
            rustbreak,
            sqlite_all,
            redb_all,
            sled_all,
        ]
    }

    fn atomicwrites() -> Vec<Op> {
        vec![whole_file(
            "sync/peer/serde_json + atomicwrites",
            |_, path, bytes| {
                use ::atomicwrites::{AtomicFile, OverwriteBehavior};
                AtomicFile::new(path, OverwriteBehavior::AllowOverwrite)
                    .write(|f| f.write_all(bytes))
                    .unwrap();
            },
        )]
    }

    fn pickledb() -> Vec<Op> {
        use ::pickledb::{PickleDb, PickleDbDumpPolicy, SerializationMethod};
        let mut ops = Vec::new();
        for (method, label) in [
            (SerializationMethod::Json, "json"),
            (SerializationMethod::Bin, "bin"),
        ] {
            let dir = common::tempdir();
            let mut db = PickleDb::new(
                dir.path().join("state.db"),
                PickleDbDumpPolicy::AutoDump,
                method,
            );
            let mut state = State::new();
            ops.push(
                Op::new(format!("flush/peer/pickledb AutoDump {label}"), move || {
                    state.counter += 1;
                    db.set("state", &state).unwrap();
                })
                .keep(dir),
            );
        }
        ops
    }

    fn rustbreak() -> Vec<Op> {
        use ::rustbreak::deser::{Bincode, Ron, Yaml};
        use ::rustbreak::{FileDatabase, PathDatabase};

        // rustbreak has no level without fsync: every save() syncs the file.
        macro_rules! db {
            ($db:ident, $de:ty, $label:expr) => {{
                let dir = common::tempdir();
                let db =
                    $db::<State, $de>::create_at_path(dir.path().join("state.db"), State::new())
                        .unwrap();
                Op::new(
                    concat!("sync/peer/rustbreak ", stringify!($db), " ", $label),
                    move || {
                        db.write(|s| s.counter += 1).unwrap();
                        db.save().unwrap();
                    },
                )
                .keep(dir)
            }};
        }
        vec![
            db!(FileDatabase, Ron, "ron"),
            db!(FileDatabase, Yaml, "yaml"),
            db!(FileDatabase, Bincode, "bincode"),
            db!(PathDatabase, Ron, "ron"),
            db!(PathDatabase, Bincode, "bincode"),
        ]
    }

    pub fn sqlite(journal: &str, sync: &str) -> Op {
        use ::rusqlite::{params, Connection};
        let level = if sync == "FULL" { "sync" } else { "flush" };
        let dir = common::tempdir();
        let conn = Connection::open(dir.path().join("state.sqlite")).unwrap();
        conn.pragma_update(None, "journal_mode", journal).unwrap();
        conn.pragma_update(None, "synchronous", sync).unwrap();
        conn.execute_batch(
            "CREATE TABLE state (id INTEGER PRIMARY KEY, counter INTEGER NOT NULL, name TEXT NOT NULL);
             INSERT INTO state VALUES (1, 0, 'persisted-bench');",
        )
        .unwrap();
        let name = if journal == "DELETE" {
            format!("{level}/peer/rusqlite {journal} journal synchronous={sync} (SQLite default)")
        } else {
            format!("{level}/peer/rusqlite {journal} synchronous={sync}")
        };
        let mut n = 0i64;
        Op::new(name, move || {
            n += 1;
            let mut update = conn
                .prepare_cached("UPDATE state SET counter = ?1 WHERE id = 1")
                .unwrap();
            assert_eq!(update.execute(params![n]).unwrap(), 1);
        })
        .keep(dir)
    }

    fn sqlite_all() -> Vec<Op> {
        vec![
            sqlite("WAL", "OFF"),
            sqlite("WAL", "NORMAL"),
            sqlite("WAL", "FULL"),
            sqlite("DELETE", "FULL"),
        ]
    }

    pub fn redb(immediate: bool) -> Op {
        use ::redb::{Database, Durability, TableDefinition};
        const TABLE: TableDefinition<&str, u64> = TableDefinition::new("state");
        let (durability, name) = if immediate {
            (
                Durability::Immediate,
                "sync/peer/redb Durability::Immediate",
            )
        } else {
            (
                Durability::None,
                "flush/unsafe/redb Durability::None (not crash-safe)",
            )
        };
        let dir = common::tempdir();
        let db = Database::create(dir.path().join("state.redb")).unwrap();
        let mut n = 0u64;
        Op::new(name, move || {
            n += 1;
            let mut tx = db.begin_write().unwrap();
            tx.set_durability(durability).unwrap();
            {
                let mut table = tx.open_table(TABLE).unwrap();
                table.insert("counter", n).unwrap();
            }
            tx.commit().unwrap();
        })
        .keep(dir)
    }

    fn redb_all() -> Vec<Op> {
        vec![redb(true), redb(false)]
    }

    fn sled(flush: bool) -> Op {
        let dir = common::tempdir();
        let db = ::sled::open(dir.path().join("state.sled")).unwrap();
        let mut n = 0u64;
        let name = if flush {
            "sync/peer/sled insert + flush"
        } else {
            "flush/unsafe/sled insert, no flush (not crash-safe)"
        };
        Op::new(name, move || {
            n += 1;
            db.insert(b"counter", &n.to_le_bytes()).unwrap();
            if flush {
                db.flush().unwrap();
            }
        })
        .keep(dir)
    }

    fn sled_all() -> Vec<Op> {
        vec![sled(false), sled(true)]
    }
}

fn commit(c: &mut Criterion) {
    let record = common::set_counter_record_bytes(Format::Json);
    let record_len = record.round() as usize;
    let mut extras = vec![
        ("json record bytes per set_counter", record),
        (
            "yaml record bytes per set_counter",
            common::set_counter_record_bytes(Format::Yaml),
        ),
        (
            "bincode record bytes per set_counter",
            common::set_counter_record_bytes(Format::Bincode),
        ),
    ];

    let mut makers: Vec<Box<dyn Fn() -> Vec<Op>>> = Vec::new();
    makers.push(Box::new(move || {
        let mut lens = vec![30, record_len];
        lens.dedup();
        let mut ops: Vec<Op> = lens.into_iter().map(|len| floor(len, false)).collect();
        ops.push(floor(record_len, true));
        ops.push(floor_prealloc(record_len));
        ops
    }));
    for durability in [Durability::Flush, Durability::Sync] {
        for engine in [Engine::Journal, Engine::Snapshot] {
            for format in [Format::Json, Format::Yaml, Format::Bincode] {
                makers.push(Box::new(move || vec![ours(durability, engine, format)]));
            }
        }
    }
    makers.push(Box::new(hand_rolled));
    #[cfg(feature = "peers")]
    for make in peers::all() {
        makers.push(Box::new(make));
    }

    let mut g = c.benchmark_group("commit");
    for make in makers {
        // Built right before they run, dropped (closed, dir removed) right after.
        for mut op in make() {
            g.bench_function(op.name.clone(), |b| b.iter(|| (op.run)()));
        }
    }
    g.finish();

    // Paired ratios for P1 and P2 (see the module docs).
    let mut pair = |label: &str, mut a: Op, mut b: Op, rounds: usize, batch: usize| {
        let (ta, tb, r) = common::paired(&mut a.run, &mut b.run, rounds, batch);
        eprintln!(
            "commit: paired {label}: {} {ta:.2} us/op, {} {tb:.2} us/op, ratio {r:.2}",
            a.name, b.name
        );
        extras.push((leak(format!("paired {label}")), r));
    };
    pair(
        "P1 ours flush / write(2)",
        ours(Durability::Flush, Engine::Journal, Format::Json),
        floor(record_len, false),
        41,
        5000,
    );
    pair(
        "P2 ours sync / append + fdatasync",
        ours(Durability::Sync, Engine::Journal, Format::Json),
        floor(record_len, true),
        41,
        25,
    );
    // A commit that does not follow another within 5 us first looks for a
    // hand edit of the snapshot (one stat): the cost of that look, paired
    // against a commit in a burst (which does not look). Only the commit
    // is timed; the pause before it is not.
    {
        let timed = |pause: bool| {
            let mut op = ours(Durability::Flush, Engine::Journal, Format::Json);
            move || {
                if pause {
                    let until = std::time::Instant::now() + std::time::Duration::from_micros(20);
                    while std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
                let start = std::time::Instant::now();
                (op.run)();
                start.elapsed()
            }
        };
        let (mut after_pause, mut in_burst) = (timed(true), timed(false));
        let (ta, tb, r) = common::paired_timed(&mut after_pause, &mut in_burst, 41, 2000);
        eprintln!(
            "commit: paired hand-edit look: a commit after a pause {ta:.2} us/op, in a burst \
             {tb:.2} us/op, ratio {r:.2}"
        );
        extras.push(("paired hand-edit look: after a pause / in a burst", r));
    }
    #[cfg(feature = "peers")]
    {
        pair(
            "P2 ours sync / rusqlite WAL FULL",
            ours(Durability::Sync, Engine::Journal, Format::Json),
            peers::sqlite("WAL", "FULL"),
            21,
            25,
        );
        pair(
            "P2 ours sync / redb Immediate",
            ours(Durability::Sync, Engine::Journal, Format::Json),
            peers::redb(true),
            21,
            25,
        );
    }
    let extras: Vec<(&str, f64)> = extras.iter().map(|(k, v)| (*k, *v)).collect();
    common::record_extra("commit", &extras);
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = commit
}
criterion_main!(benches);
