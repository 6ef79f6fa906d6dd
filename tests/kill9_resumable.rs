//! The resumable-job pattern — push the item and advance `last_id` in one
//! transaction — survives a real `kill -9` atomically in every format: on
//! reopen `last_id == processed.len()`, never one without the other, and no
//! acknowledged item is lost. The state starts with many items (20,000 in
//! `cargo test`, 200,000 in the soak), so the transaction's record must stay
//! O(the change) for the loop to run at all.
//!
//! The child is this test binary run again with `PERSISTED_RESUME_CHILD`
//! set. `PERSISTED_RESUME_ROUNDS` sets the number of kills per format and
//! `PERSISTED_RESUME_ITEMS` the initial items (`scripts/soak.sh` sets both).

mod common;

use common::{formats, state_path, State};
use persisted_state::{Format, Persisted, Store};

const CHILD: &str = "PERSISTED_RESUME_CHILD";

fn initial_items() -> u64 {
    common::soak_size("PERSISTED_RESUME_ITEMS", 20_000)
}

fn initial() -> State {
    let items = initial_items();
    State {
        last_id: items,
        processed: (1..=items).map(|n| format!("item-{n}")).collect(),
        ..State::default()
    }
}

/// Runs only as the child: resume after `last_id`, one transaction per
/// item, acking each.
#[test]
fn resumable_child_job() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let store = Store::options()
        // Compactions happen, so kills land in them too.
        .journal_limit(32 * 1024)
        .open_or(&path, initial())
        .unwrap();
    common::resume_and_ack(&store);
}

fn check(state: &State, acked: u64, format: Format) {
    assert_eq!(
        state.last_id,
        state.processed.len() as u64,
        "{format:?}: last_id and processed disagree"
    );
    assert!(
        state.last_id >= acked,
        "{format:?}: lost acknowledged items: {} < {acked}",
        state.last_id
    );
    let last = state.processed.last().map(String::as_str);
    assert_eq!(
        last,
        Some(&*format!("item-{}", state.last_id)),
        "{format:?}"
    );
}

#[test]
fn kill9_of_the_resumable_job_pattern_never_splits_push_and_set() {
    let rounds: u64 = common::soak_size("PERSISTED_RESUME_ROUNDS", 6);
    for format in formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), format);
        let mut acked = 0;
        for round in 0..rounds {
            let kill_after = 1 + (round * 389) % 1500;
            if let Some(n) =
                common::kill9_after_acks("resumable_child_job", CHILD, &path, kill_after)
            {
                acked = n;
            }
            let store = State::open(&path).unwrap();
            check(&store.get(), acked, format);
        }
        assert!(acked > initial_items());
        eprintln!(
            "resumable: {format:?}: {rounds} kill -9, last acknowledged item {acked}, \
             last_id == processed.len() every time"
        );
    }
}
