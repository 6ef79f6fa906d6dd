//! A store in a tokio program, without an async store: a task waits for
//! changes with `changed()` (a plain future, no runtime of ours), quick
//! `Flush` commits run inline, and the calls that may block (`open`, a
//! `Sync` commit, `compact`, `close`) go through `spawn_blocking`.
//!
//! ```text
//! cargo run --example async_tokio
//! ```

use std::time::Duration;

use persisted_state::{Durability, Persisted, Store};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone)]
struct Inbox {
    messages: Vec<String>,
    /// How many were handled.
    handled: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("inbox.json");
    let audit_path = dir.path().join("audit.json");

    // Opening reads and may repair files: blocking work, off the runtime.
    let store = tokio::task::spawn_blocking(move || {
        Store::<Inbox>::options()
            .durability(Durability::Flush)
            .open(path)
    })
    .await??;

    // A reader task: wakes on every change, reads a snapshot (an Arc, so
    // no guard is held across an await).
    let sub = store.subscribe();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < 5 {
                let change = sub.changed().await?;
                let inbox = store.snapshot();
                seen = inbox.messages.len();
                println!(
                    "woke: {} commit(s) changed {:?}; {} message(s)",
                    change.commits, change.fields, seen
                );
            }
            Ok::<_, persisted_state::Error>(())
        })
    };

    // A `Flush` commit costs about a microsecond: fine inline.
    for i in 1..=4 {
        store.push_messages(format!("message {i}"))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.push_messages("message 5".into())?;

    // A `Sync` store's commit waits for an fsync (hundreds of µs to ms):
    // off the runtime, like `open`.
    let audit = tokio::task::spawn_blocking(move || {
        let audit = Store::<Inbox>::options()
            .durability(Durability::Sync)
            .open(audit_path)?;
        audit.push_messages("5 messages received".into())?;
        Ok::<_, persisted_state::Error>(audit)
    })
    .await??;

    tokio::time::timeout(Duration::from_secs(5), reader).await???;

    // Closing folds the journal (writes and fsyncs): off the runtime too.
    tokio::task::spawn_blocking(move || {
        store.set_handled(5)?;
        audit.close()?;
        store.close()
    })
    .await??;
    println!("closed");
    Ok(())
}
