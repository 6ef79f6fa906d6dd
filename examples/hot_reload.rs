//! A config file a person edits while the program runs: every save is
//! picked up at once (in place, rename-over or an editor's backup rename),
//! and the program logs which fields changed. A save that does not parse
//! is reported and changes nothing; the next good save is taken.
//!
//! ```text
//! cargo run --features yaml --example hot_reload                 # runs until Ctrl-C
//! cargo run --features yaml --example hot_reload -- --demo       # edits the file itself, then stops
//! ```
//!
//! While it runs, edit `hot_reload.yaml` (in the current directory) with
//! any editor: change `level`, add a route, break the YAML and fix it.

use std::collections::BTreeMap;
use std::time::Duration;

use persisted_state::{Error, Origin, Persisted, Store, Watch};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Config {
    /// Log level: error, warn, info, debug.
    level: String,
    /// Requests per second allowed.
    rate_limit: u32,
    /// Path prefix -> upstream.
    routes: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            level: "info".into(),
            rate_limit: 100,
            routes: BTreeMap::from([("/api".into(), "http://127.0.0.1:8080".into())]),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = std::env::args().any(|a| a == "--demo");
    let dir = match demo {
        true => tempfile::tempdir()?.keep(),
        false => std::env::current_dir()?,
    };
    let path = dir.join("hot_reload.yaml");
    let store = Store::<Config>::options().watch(Watch::Auto).open(&path)?;
    store.compact()?; // the file shows the whole config from the start
    println!("watching {} (level {})", path.display(), store.level());

    let sub = store.subscribe();
    if demo {
        std::thread::spawn(move || edit_like_a_person(&path));
    }
    let mut saves = 0;
    loop {
        match sub.wait_timeout(Duration::from_secs(if demo { 3 } else { 3600 })) {
            Ok(Some(change)) => {
                let config = store.snapshot();
                let from = match change.origins.contains(&Origin::FileEdit) {
                    true => "your edit",
                    false => "this program",
                };
                println!(
                    "{from} changed {}: level={} rate_limit={} routes={:?}",
                    change.fields.join(", "),
                    config.level,
                    config.rate_limit,
                    config.routes
                );
                saves += 1;
            }
            Ok(None) if demo => break,
            Ok(None) => {}
            Err(Error::Parse {
                line,
                column,
                message,
                ..
            }) => {
                println!("that save does not parse (line {line}, column {column}: {message}); keeping the running config")
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!("{saves} change(s) seen");
    Ok(())
}

/// `--demo`: what a person would do, with pauses.
fn edit_like_a_person(path: &std::path::Path) {
    let pause = || std::thread::sleep(Duration::from_millis(300));
    pause();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // An editor that writes in place.
    let _ = std::fs::write(path, text.replace("level: info", "level: debug"));
    pause();
    // One that writes a temp file and renames it over.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tmp = path.with_extension("yaml.tmp");
    let _ = std::fs::write(&tmp, text.replace("rate_limit: 100", "rate_limit: 250"));
    let _ = std::fs::rename(&tmp, path);
    pause();
    // A typo, then its fix.
    let good = std::fs::read_to_string(path).unwrap_or_default();
    let _ = std::fs::write(path, "level: [debug\n");
    pause();
    let _ = std::fs::write(path, good.replace("level: debug", "level: warn"));
}
