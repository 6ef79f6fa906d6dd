//! One writer process: a second open, from another process or from this
//! one, fails at once with an error naming the file.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{State, StateStoreExt};
use persisted_state::{Error, Persisted};

const CHILD: &str = "PERSISTED_LOCK_CHILD";

/// Runs only as the child: try to open and report how it went.
#[test]
fn lock_child_opener() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    // libtest has printed "test <name> ... " without a newline: end it.
    println!();
    let started = Instant::now();
    match State::open(&path) {
        Ok(store) => println!("OPENED {}", store.last_id()),
        Err(Error::Locked { path, .. }) => println!(
            "LOCKED {} {}",
            started.elapsed().as_millis(),
            path.display()
        ),
        Err(other) => println!("ERROR {other}"),
    }
}

fn run_child(path: &std::path::Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_child_opener",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("OPENED") || l.starts_with("LOCKED") || l.starts_with("ERROR"))
        .unwrap_or_default()
        .to_string()
}

/// Children are spawned here, so the tests that hold stores run one at a
/// time (a child forked by one test thread inherits another's lock).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_second_process_gets_a_lock_error_naming_the_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = State::open(&path).unwrap();
    store.set_last_id(4).unwrap();
    let rounds: usize = common::soak_size("PERSISTED_LOCK_ROUNDS", 10);
    for _ in 0..rounds {
        let report = run_child(&path);
        assert!(report.starts_with("LOCKED"), "{report}");
        assert!(report.ends_with("state.json"), "{report}");
        let millis: u64 = report.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(millis < 100, "rejected after {millis} ms");
    }
    // Still held after a compaction and after the snapshot is read by others.
    store.compact().unwrap();
    let _ = std::fs::read(&path).unwrap();
    assert!(run_child(&path).starts_with("LOCKED"));
    drop(store);
    assert_eq!(run_child(&path), "OPENED 4");
}

#[test]
fn a_second_open_in_the_same_process_is_refused_quickly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = State::open(&path).unwrap();
    let started = Instant::now();
    let err = State::open(&path).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(err, Error::Locked { .. }));
    assert!(err.to_string().contains("state.json"), "{err}");
    drop(store);
    State::open(&path).unwrap();
}

#[test]
fn the_lock_is_taken_back_after_the_holder_is_killed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    // A child holding the lock forever: `sleep` under flock is not ours,
    // so hold it through a child test binary that opens and then blocks
    // reading stdin.
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_child_holder",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERSISTED_LOCK_HOLDER", &path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(holder.stdout.take().unwrap()));
    assert!(lines.any(|l| l.is_ok_and(|l| l == "HOLDING")));
    assert!(matches!(State::open(&path), Err(Error::Locked { .. })));
    holder.kill().unwrap();
    holder.wait().unwrap();
    State::open(&path).unwrap();
}

/// Runs only as the child: open, say so, and wait on stdin until killed.
#[test]
fn lock_child_holder() {
    let Ok(path) = std::env::var("PERSISTED_LOCK_HOLDER") else {
        return;
    };
    let _store = State::open(&path).unwrap();
    println!("\nHOLDING");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
