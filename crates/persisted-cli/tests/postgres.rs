#![cfg(feature = "postgres")]
//! `persisted show`, `log` and `verify` of a store kept in PostgreSQL
//! (`postgres://...#key`), against a real server this test starts: what the
//! tool shows equals what the library opens; `verify` finds a damaged log
//! and tables that do not match it.

#[path = "../../../tests/postgres_server/mod.rs"]
mod postgres_server;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use assert_cmd::Command;
use persisted_state::{Persisted, Store};
use postgres_server::PostgresServer;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct State {
    last_id: u64,
    ratio: f64,
    processed: Vec<String>,
    settings: BTreeMap<String, u64>,
    tags: BTreeSet<String>,
    queue: VecDeque<u64>,
}

/// Runs the tool; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("persisted")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A store with commits of every kind; returns its state.
fn fill(url: &str, key: &str) -> State {
    let store = Store::<State>::open_postgres(url, key).unwrap();
    for i in 0..30u64 {
        match i % 6 {
            0 => store.set_last_id(i).unwrap(),
            1 => store.push_processed(format!("item-{i}")).unwrap(),
            2 => drop(store.insert_settings(format!("k{}", i % 4), i).unwrap()),
            3 => drop(store.insert_tags(format!("t{}", 9 - i % 5)).unwrap()),
            4 => {
                store.push_front_queue(i).unwrap();
                store.push_queue(i + 1).unwrap();
                store.pop_front_queue().unwrap();
            }
            _ => store
                .update(|s| {
                    s.ratio = i as f64 / 4.0;
                    s.settings.remove("k1");
                })
                .unwrap(),
        }
    }
    store.get()
}

#[test]
fn show_log_and_verify_read_a_postgres_store() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.url();
    let state = fill(&url, "app");
    let target = format!("{url}#app");

    let (code, out, err) = run(&["show", &target]);
    assert_eq!(code, 0, "{err}");
    let shown: State = serde_json::from_str(&out).unwrap();
    assert_eq!(shown, state);
    let (code, out, _) = run(&["show", "--yaml", &target]);
    assert_eq!(code, 0);
    assert_eq!(serde_yaml::from_str::<State>(&out).unwrap(), state);

    // Commit 1 sets every field (the store's creation); commit 2 sets
    // `last_id` = 0; the last (30 calls, 5 of them three commits) is the
    // state now.
    let (code, out, err) = run(&["show", "--at", "2", &target]);
    assert_eq!(code, 0, "{err}");
    let at_two: State = serde_json::from_str(&out).unwrap();
    assert_eq!(at_two, State::default());
    let (code, out, _) = run(&["show", "--at", "41", &target]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<State>(&out).unwrap(), state);
    let (code, _, err) = run(&["show", "--at", "99", &target]);
    assert_eq!(code, 1);
    assert!(err.contains("commit 99 is not kept"), "{err}");

    let (code, out, _) = run(&["log", "-n", "3", &target]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].trim_start().starts_with("41 "), "{out}");
    assert!(lines[0].contains("set ratio"), "{out}");
    let (code, out, _) = run(&["log", "--fields", "tags", &target]);
    assert_eq!(code, 0);
    // Five inserts, and the first commit, which sets every field.
    assert_eq!(out.lines().count(), 6, "{out}");
    assert!(
        out.lines().take(5).all(|l| l.contains("insert tags")),
        "{out}"
    );
    assert!(out.lines().last().unwrap().contains("set tags"), "{out}");

    let (code, out, err) = run(&["verify", &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with(": ok"), "{out}");
}

#[test]
fn verify_finds_a_damaged_log_and_tables_that_do_not_match_it() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.url();
    fill(&url, "app");
    let target = format!("{url}#app");

    // A row changed behind the library's back: the log replays to
    // something else.
    server.psql("UPDATE persisted_entry SET value = '777' WHERE key = 'app' AND k = 'k0'");
    let (code, out, _) = run(&["verify", &target]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("field `settings`: the log replays to"),
        "{out}"
    );

    // A log entry lost from the middle, and one that is not a record.
    server.psql("DELETE FROM persisted_log WHERE key = 'app' AND seq = 10");
    server.psql("UPDATE persisted_log SET record = 'not json' WHERE key = 'app' AND seq = 12");
    let (code, out, _) = run(&["verify", &target]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 11 follows 9"), "{out}");
    assert!(out.contains("log entry 12"), "{out}");

    // Rows of a field the layout does not list as a collection.
    server.psql("INSERT INTO persisted_item VALUES ('app', 'ghost', 0, '1')");
    let (_, out, _) = run(&["verify", &target]);
    assert!(out.contains("rows of field `ghost`"), "{out}");
}

#[test]
fn a_missing_key_a_missing_store_and_the_file_only_commands_are_clear_errors() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.url();

    let (code, _, err) = run(&["show", &format!("{url}#nothing")]);
    assert_eq!(code, 1);
    assert!(err.contains("holds no persisted-state store"), "{err}");

    fill(&url, "app");
    let (code, _, err) = run(&["show", &format!("{url}#apq")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("holds no store `apq`; its stores: app"),
        "{err}"
    );

    let (code, _, err) = run(&["show", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("add its key after `#`"), "{err}");

    let (code, _, err) = run(&["compact", &format!("{url}#app")]);
    assert_eq!(code, 1);
    assert!(err.contains("`compact` works on file stores"), "{err}");

    let (code, _, err) = run(&["show", "postgres://postgres@127.0.0.1:1/postgres#app"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn show_reads_over_tls_when_the_url_asks_for_it() {
    let Some(server) = PostgresServer::start_tls() else {
        return;
    };
    let state = fill(&server.url(), "app");
    let tls = format!(
        "{}?sslmode=require&sslrootcert={}#app",
        server.url(),
        server.certificate().display()
    );
    let (code, out, err) = run(&["show", &tls]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<State>(&out).unwrap(), state);
    let untrusted = format!("{}?sslmode=require#app", server.url());
    let (code, _, err) = run(&["show", &untrusted]);
    assert_eq!(code, 1);
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn an_encrypted_store_is_shown_with_its_key_and_refused_without() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.url();
    let key = persisted_state::Key::from_bytes([5; 32]);
    let store = Store::<State>::options()
        .encryption(key)
        .open_postgres(&url, "vault")
        .unwrap();
    store.push_processed("secret-item".into()).unwrap();
    store.insert_settings("secret-key".into(), 9).unwrap();
    store.set_last_id(3).unwrap();
    let state = store.get();
    let target = format!("{url}#vault");
    let with_key = |args: &[&str], key: &str| {
        let out = Command::cargo_bin("persisted")
            .unwrap()
            .env("PERSISTED_KEY", key)
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    };
    let right = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU="; // 32 bytes of 5
    let (code, out, err) = with_key(&["show", &target], right);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<State>(&out).unwrap(), state);
    let (code, out, err) = with_key(&["show", "--at", "3", &target], right);
    assert_eq!(code, 0, "{err}");
    let at_three: State = serde_json::from_str(&out).unwrap();
    assert_eq!(at_three.settings.get("secret-key"), Some(&9));
    assert_eq!(at_three.last_id, 0);
    let (code, out, err) = with_key(&["verify", &target], right);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = with_key(&["log", &target], right);
    assert_eq!(code, 0);
    assert!(out.lines().next().unwrap().contains("set last_id"), "{out}");

    let (code, _, err) = run(&["show", &target]);
    assert_eq!(code, 1);
    assert!(err.contains("is encrypted: give its key"), "{err}");
    let other = "BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY="; // 32 bytes of 6
    let (code, _, err) = with_key(&["show", &target], other);
    assert_eq!(code, 1);
    assert!(err.contains("encrypted with another key"), "{err}");
}
