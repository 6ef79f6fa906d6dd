//! A real `kill -9` of a child process writing in a loop loses no
//! acknowledged commit and never shows half a commit, in every format.
//!
//! The child is this test binary run again with `PERSISTED_KILL9_CHILD`
//! set: it commits in a loop and prints `ACK <n>` after each commit
//! returns (and drops its oldest items now and then, so the state stays
//! small however long a soak runs). The parent kills it after a varying number of acks. Set
//! `PERSISTED_KILL9_ROUNDS` for a longer soak.

mod common;

use common::{formats, state_path, State, StateStoreExt};
use persisted_state::{Format, Store};

const CHILD: &str = "PERSISTED_KILL9_CHILD";

/// Runs only as the child: commit forever (bounded), acking each commit.
#[test]
fn kill9_child_writer() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    use std::io::Write;
    let store = Store::<State>::options()
        .journal_limit(8 * 1024) // compactions happen, so kills land in them too
        .open(&path)
        .unwrap();
    let mut out = std::io::stdout().lock();
    // libtest has printed "test <name> ... " without a newline: end it.
    writeln!(out).unwrap();
    let start = last_item(&store.get());
    for n in start + 1..start + 100_000 {
        // A collection op, a plain set, and a two-field transaction.
        store.push_processed(format!("item-{n}")).unwrap();
        store.set_last_id(n).unwrap();
        store
            .transaction(|tx| {
                tx.settings.insert("a".into(), n.to_string());
                tx.settings.insert("b".into(), n.to_string());
                Ok::<_, persisted_state::Error>(())
            })
            .unwrap();
        // Keep the state small however many rounds a soak runs: drop the
        // oldest items in one commit of its own.
        if store.read().processed.len() > KEEP_ITEMS {
            store
                .update(|s| {
                    s.processed.drain(..KEEP_ITEMS / 2);
                })
                .unwrap();
        }
        writeln!(out, "ACK {n}").unwrap();
        out.flush().unwrap();
    }
}

/// How many items the child keeps before it drops the older half.
const KEEP_ITEMS: usize = 256;

/// The number of the newest processed item (0 before the first).
fn last_item(state: &State) -> u64 {
    state.processed.last().map_or(0, |item| {
        item.strip_prefix("item-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not an item: {item:?}"))
    })
}

fn check_invariants(state: &State, acked: u64, format: Format) {
    let n = last_item(state);
    assert!(
        n >= acked,
        "{format:?}: lost acknowledged commits: {n} < {acked}"
    );
    let first = n + 1 - state.processed.len() as u64;
    for (item, k) in state.processed.iter().zip(first..) {
        assert_eq!(
            item,
            &format!("item-{k}"),
            "{format:?}: processed out of order"
        );
    }
    assert!(
        state.processed.len() <= KEEP_ITEMS + 1,
        "{format:?}: the oldest items were not dropped"
    );
    // Commits land in order: push(n), set(n), tx(n).
    assert!(
        state.last_id == n || state.last_id + 1 == n,
        "{format:?}: {state:?}"
    );
    let a = state.settings.get("a");
    assert_eq!(a, state.settings.get("b"), "{format:?}: half a transaction");
    let tx = a.map_or(0, |v| v.parse::<u64>().unwrap());
    assert!(
        tx == state.last_id || tx + 1 == state.last_id,
        "{format:?}: {state:?}"
    );
}

#[test]
fn kill9_of_a_writer_loses_no_acknowledged_commit() {
    let rounds: u64 = common::soak_size("PERSISTED_KILL9_ROUNDS", 17);
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let mut acked = 0;
        for round in 0..rounds {
            let kill_after = 1 + (round * 37) % 120;
            if let Some(n) =
                common::kill9_after_acks("kill9_child_writer", CHILD, &path, kill_after)
            {
                acked = n;
            }
            let store = Store::<State>::open(&path).unwrap();
            check_invariants(&store.get(), acked, format);
        }
        assert!(acked > 0);
        eprintln!("T7: {format:?}: {rounds} kill -9, last acknowledged commit {acked}");
    }
}
