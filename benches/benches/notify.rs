//! P17 and P18 of issue 23: what change notifications cost a writer, and
//! how soon a waiting subscriber wakes.
//!
//! - **P17**: a `Flush` commit (`set_counter`) with 10 idle subscribers vs
//!   the same commit with none (two stores, batches alternated); goal
//!   <= 1.2x.
//! - **P18**: commit-to-wake of a subscriber waiting in this process
//!   (median of 2,000) vs one 64-byte `write(2)` (median); goal <= 30x.
//!   Also, for the README: another process's commit to a shared store
//!   (`Watch::Auto`) and a person's save (rename-over), commit or save to
//!   wake, medians. The other process is this binary run again
//!   (`PERSISTED_BENCH_NOTIFY_CHILD`).
//!
//!     cd benches && cargo bench --no-default-features --bench notify

mod common;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{State, StateStoreExt};
use persisted_state::{Store, Watch};

const CHILD: &str = "PERSISTED_BENCH_NOTIFY_CHILD";

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn p17() -> f64 {
    let dir = common::tempdir();
    let quiet: Store<State> = Store::open(dir.path().join("quiet.json")).unwrap();
    let watched: Store<State> = Store::open(dir.path().join("watched.json")).unwrap();
    let _idle: Vec<_> = (0..10).map(|_| watched.subscribe()).collect();
    let mut n = 0u64;
    let mut with = || {
        n += 1;
        watched.set_counter(black_box(n)).unwrap();
    };
    let mut m = 0u64;
    let mut without = || {
        m += 1;
        quiet.set_counter(black_box(m)).unwrap();
    };
    let (a, b, ratio) = common::paired(&mut with, &mut without, 40, 2_000);
    println!("P17: set_counter with 10 idle subscribers {a:.2} us, with none {b:.2} us");
    ratio
}

/// Median commit-to-wake (µs) of a subscriber thread waiting in this
/// process, over `samples` commits.
fn wake_in_process(samples: usize) -> f64 {
    let dir = common::tempdir();
    let store: Store<State> = Store::open(dir.path().join("wake.json")).unwrap();
    let sub = store.subscribe();
    let (woke, wakes) = mpsc::channel::<Instant>();
    let (next, go) = mpsc::channel::<()>();
    let waiter = std::thread::spawn(move || {
        while go.recv().is_ok() {
            if sub.wait_timeout(Duration::from_secs(5)).unwrap().is_some() {
                woke.send(Instant::now()).unwrap();
            }
        }
    });
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        next.send(()).unwrap();
        // Let the waiter reach its wait.
        std::thread::sleep(Duration::from_micros(200));
        let start = Instant::now();
        store.set_counter(i as u64).unwrap();
        let at = wakes.recv().unwrap();
        times.push(at.duration_since(start).as_secs_f64() * 1e6);
    }
    drop(next);
    waiter.join().unwrap();
    common::median(&mut times)
}

/// Median of one 64-byte `write(2)` (µs) to an `O_APPEND` file.
fn write_64() -> f64 {
    let dir = common::tempdir();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("floor"))
        .unwrap();
    let record = [b'x'; 64];
    let mut times: Vec<f64> = (0..20_000)
        .map(|_| {
            let start = Instant::now();
            file.write_all(black_box(&record)).unwrap();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    common::median(&mut times)
}

/// The other process: commits once per line read, printing the wall clock
/// just before each commit.
fn child(path: &str) {
    let store = Store::<State>::options().shared(true).open(path).unwrap();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for (i, line) in stdin.lock().lines().enumerate() {
        if line.is_err() {
            break;
        }
        let at = now_ns();
        store.set_counter(i as u64).unwrap();
        writeln!(out, "{at}").unwrap();
        out.flush().unwrap();
    }
}

/// Median (ms) from another process's commit to this process's
/// subscriber waking, over `samples`.
fn wake_other_process(samples: usize) -> f64 {
    let dir = common::tempdir();
    let path = dir.path().join("shared.json");
    let store = Store::<State>::options()
        .shared(true)
        .watch(Watch::Auto)
        .open(&path)
        .unwrap();
    let sub = store.subscribe();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut times = Vec::new();
    for _ in 0..samples {
        writeln!(to_child, "commit").unwrap();
        to_child.flush().unwrap();
        let change = sub.wait_timeout(Duration::from_secs(5)).unwrap();
        let woke = now_ns();
        let sent: u128 = from_child.next().unwrap().unwrap().parse().unwrap();
        if change.is_some() {
            times.push((woke.saturating_sub(sent)) as f64 / 1e6);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(to_child);
    child.wait().unwrap();
    common::median(&mut times)
}

/// Median (ms) from a person's save (rename-over) to the subscriber
/// waking with the adopted edit.
fn wake_hand_edit(samples: usize) -> f64 {
    let dir = common::tempdir();
    let path = dir.path().join("config.json");
    let store = Store::<State>::options()
        .watch(Watch::Auto)
        .open(&path)
        .unwrap();
    store.set_counter(0).unwrap();
    store.compact().unwrap();
    let sub = store.subscribe();
    let mut times = Vec::new();
    for i in 1..=samples {
        let text = format!("{{\n  \"counter\": {i},\n  \"name\": \"edited\"\n}}\n");
        let tmp = dir.path().join("config.json.tmp");
        std::fs::write(&tmp, text).unwrap();
        let start = Instant::now();
        std::fs::rename(&tmp, &path).unwrap();
        if sub.wait_timeout(Duration::from_secs(5)).unwrap().is_some() {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    common::median(&mut times)
}

fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
        return;
    }
    let p17 = p17();
    println!("paired P17 ratio, 10 idle subscribers / none: {p17:.2}");
    let wake = wake_in_process(2_000);
    let write = write_64();
    println!(
        "P18: commit-to-wake in this process {wake:.1} us (median), one 64-byte write(2) {write:.2} \
         us: ratio {:.1}",
        wake / write
    );
    let other = wake_other_process(100);
    println!("another process's commit to wake (Watch::Auto, shared): median {other:.1} ms");
    let edit = wake_hand_edit(50);
    println!("a person's save (rename-over) to wake (Watch::Auto): median {edit:.1} ms");
}
