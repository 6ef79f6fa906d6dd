//! A write that fails (here: the file-size limit, `ulimit -f`, giving
//! EFBIG like a full disk) returns the error, keeps the change out of
//! memory, cuts the partial record off, and loses no earlier commit.

#![cfg(unix)]

mod common;

use std::process::Command;

use common::{State, StateStoreExt};
use persisted_state::{Error, Persisted};

const CHILD: &str = "PERSISTED_FSIZE_CHILD";

/// Runs only as the child, under a small RLIMIT_FSIZE set by the parent
/// (with SIGXFSZ ignored, so the write fails with EFBIG instead).
#[test]
fn fsize_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    println!();
    let store = State::open(&path).unwrap();
    let mut acked = 0u64;
    let mut failure = None;
    for n in 1..10_000u64 {
        match store.push_processed(format!("item-{n}-{}", "y".repeat(100))) {
            Ok(()) => acked = n,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the size limit was never hit");
    assert!(matches!(failure, Error::Io { .. }), "{failure}");
    assert!(
        failure.to_string().contains("state.json.journal"),
        "{failure}"
    );
    assert_eq!(
        store.read().processed.len() as u64,
        acked,
        "memory kept a failed change"
    );
    // The partial record was cut off, so a smaller commit still fits.
    store.set_last_id(acked).unwrap();
    println!("ACKED {acked}");
    // The new snapshot is larger than the limit: compaction fails cleanly
    // and leaves the old snapshot alone.
    let err = store.compact().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(
        !store.is_poisoned(),
        "a failed temp-file write is not a sync failure"
    );
    println!("COMPACTION FAILED CLEANLY");
    // Leave without compacting (it would hit the limit too): a crash.
    std::process::exit(0);
}

#[test]
fn a_failed_append_keeps_memory_and_disk_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    // The snapshot (about 12 KB) and an empty journal are made before the
    // limit applies.
    let big = State {
        settings: (0..100)
            .map(|i| (format!("key-{i:03}"), "v".repeat(100)))
            .collect(),
        ..State::default()
    };
    persisted_state::Store::open_or(&path, big)
        .unwrap()
        .close()
        .unwrap();
    let snapshot = std::fs::read(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "trap '' XFSZ; ulimit -f 40 && exec '{}' fsize_child --exact --nocapture --test-threads=1",
        exe.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env(CHILD, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let acked: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ACKED "))
        .unwrap_or_else(|| {
            panic!(
                "child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .parse()
        .unwrap();
    assert!(acked > 10);
    assert!(stdout.contains("COMPACTION FAILED CLEANLY"), "{stdout}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        snapshot,
        "the old snapshot is intact"
    );
    let leftovers = common::files_in(dir.path());
    assert!(
        leftovers.iter().any(|f| f.contains(".tmp-")) || leftovers.len() == 3,
        "{leftovers:?}"
    );
    let store = State::open(&path).unwrap();
    assert_eq!(store.read().processed.len() as u64, acked);
    assert_eq!(store.last_id(), acked);
    assert!(common::files_in(dir.path())
        .iter()
        .all(|f| !f.contains(".tmp-")));
    store.push_processed("after".into()).unwrap();
    drop(store);
    assert_eq!(
        State::open(&path).unwrap().read().processed.len() as u64,
        acked + 1
    );
}
