//! The `persisted` tool against stores written by the library (this test
//! process, and a child killed with `kill -9`): what it shows equals what
//! the library opens; it refuses to write while a program holds the store.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use assert_cmd::Command;
use persisted_state::{Error, KeepHistory, Persisted, Store};
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct State {
    last_id: u64,
    processed: Vec<String>,
    settings: BTreeMap<String, u64>,
    tags: BTreeSet<String>,
    queue: VecDeque<u64>,
}

const TEXT: [&str; 3] = ["state.json", "state.yaml", "state.toml"];

fn persisted() -> Command {
    Command::cargo_bin("persisted").unwrap()
}

/// Runs the tool; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = persisted().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Commits of every kind, `n` of each round.
fn work(store: &Store<State>, from: u64, n: u64) {
    for i in from..from + n {
        match i % 6 {
            0 => store.set_last_id(i).unwrap(),
            1 => store.push_processed(format!("item-{i}")).unwrap(),
            2 => drop(store.insert_settings(format!("k{}", i % 4), i).unwrap()),
            3 => drop(store.insert_tags(format!("t{}", i % 5)).unwrap()),
            4 => {
                store.push_front_queue(i).unwrap();
                store.push_queue(i + 1).unwrap();
                store.pop_front_queue().unwrap();
            }
            _ => store
                .transaction(|tx| {
                    tx.set_last_id(i);
                    tx.push_processed(format!("tx-{i}"));
                    tx.remove_settings("k1");
                    tx.remove_tags("t2");
                    Ok::<_, Error>(())
                })
                .unwrap(),
        }
    }
}

fn shown(path: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["show", s(path), "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// What a crash of the process holding `path` open leaves: its files
/// (not the lock, which the kernel releases) copied to a fresh directory.
fn crash_copy(path: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(".lock") {
            std::fs::copy(entry.path(), dir.path().join(&name)).unwrap();
        }
    }
    let copy = dir.path().join(path.file_name().unwrap());
    (dir, copy)
}

fn json(state: &State) -> serde_json::Value {
    serde_json::to_value(state).unwrap()
}

#[test]
fn show_is_what_the_library_opens_in_every_text_format_while_it_is_open() {
    for name in TEXT {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let store = State::open(&path).unwrap();
        work(&store, 0, 40);
        // The program still holds the store: show takes no lock.
        assert_eq!(shown(&path, &[]), json(&store.get()), "{name}");
        let (code, native, _) = run(&["show", s(&path)]);
        assert_eq!(code, 0);
        assert!(!native.is_empty());
        store.compact().unwrap();
        work(&store, 40, 13);
        assert_eq!(shown(&path, &[]), json(&store.get()), "{name}");
    }
}

#[test]
fn show_at_and_as_of_are_state_at_and_log_lists_commits_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let store = Store::<State>::options()
        .keep_history(KeepHistory::Forever)
        .open(&path)
        .unwrap();
    work(&store, 0, 20);
    store.compact().unwrap();
    work(&store, 20, 10);
    let history = store.history().unwrap();
    for commit in &history {
        let at = shown(&path, &["--at", &commit.seq.to_string()]);
        assert_eq!(at, json(&store.state_at(commit.seq).unwrap()), "{commit:?}");
    }
    let last = history.last().unwrap();
    let time = humantime::format_rfc3339_millis(last.time).to_string();
    assert_eq!(shown(&path, &["--as-of", &time]), json(&store.get()));
    let (code, _, err) = run(&["show", s(&path), "--at", "999999"]);
    assert_eq!(code, 1);
    assert!(err.contains("not kept"), "{err}");

    let (code, out, _) = run(&["log", s(&path), "-n", "3"]);
    assert_eq!(code, 0);
    let seqs: Vec<u64> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let newest: Vec<u64> = history.iter().rev().take(3).map(|c| c.seq).collect();
    assert_eq!(seqs, newest, "{out}");
    let (_, out, _) = run(&["log", s(&path), "--fields", "tags"]);
    assert!(!out.is_empty());
    assert!(
        out.lines().all(|l| l.contains("tags")),
        "--fields shows only commits touching them:\n{out}"
    );
    assert!(out.contains("insert tags"), "{out}");
}

#[test]
fn show_as_of_across_a_gap_in_the_history_is_the_true_state_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let forever = || {
        Store::<State>::options()
            .keep_history(KeepHistory::Forever)
            .open(&path)
            .unwrap()
    };
    let store = forever();
    work(&store, 0, 3);
    store.close().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let in_gap = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let store = Store::<State>::open(&path).unwrap(); // no history kept
    work(&store, 3, 2);
    store.close().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let store = forever();
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    assert_eq!(shown(&path, &["--as-of", &now]), json(&store.get()));
    let (code, _, err) = run(&["show", s(&path), "--as-of", &in_gap]);
    assert_eq!(code, 1);
    assert!(err.contains("gap"), "{err}");
}

/// Flips a byte inside the payload of the journal's record `n` (0-based).
fn damage_record(journal: &Path, n: usize) {
    let mut bytes = std::fs::read(journal).unwrap();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    // JSON: header, then frame line + payload line per record.
    let payload = line_starts[2 + 2 * n];
    bytes[payload + 3] ^= 0x01;
    std::fs::write(journal, bytes).unwrap();
}

fn journal(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        "{}.journal",
        path.file_name().unwrap().to_str().unwrap()
    ))
}

#[test]
fn verify_reports_damage_with_its_position_and_repair_makes_the_store_open() {
    let live = tempfile::tempdir().unwrap();
    let store = State::open(live.path().join("state.json")).unwrap();
    work(&store, 0, 3);
    let expected_prefix = store.get();
    work(&store, 3, 5);
    let (_dir, path) = crash_copy(Store::file_path(&store));
    let (code, out, _) = run(&["verify", s(&path)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": ok"), "{out}");

    damage_record(&journal(&path), 3);
    let (code, out, _) = run(&["verify", s(&path)]);
    assert_eq!(code, 1, "{out}");
    let journal_name = format!("{}:", journal(&path).display());
    assert!(
        out.contains(&journal_name) && out.contains("damaged record"),
        "{out}"
    );
    // The library refuses it too, until repaired.
    assert!(matches!(State::open(&path), Err(Error::Corrupt { .. })));
    let (code, out, err) = run(&["repair", s(&path)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("set aside") && out.contains(".dropped-"),
        "{out}"
    );
    let store = State::open(&path).unwrap();
    let prefix = store.get();
    assert!(
        prefix.last_id >= expected_prefix.last_id,
        "{prefix:?} vs {expected_prefix:?}"
    );
    drop(store);
    let (code, out, _) = run(&["verify", s(&path)]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn verify_calls_a_torn_tail_a_note_not_a_problem() {
    let live = tempfile::tempdir().unwrap();
    let store = State::open(live.path().join("state.json")).unwrap();
    work(&store, 0, 4);
    let (_dir, path) = crash_copy(Store::file_path(&store));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(journal(&path))
        .unwrap();
    file.write_all(b"@99 12 0000").unwrap();
    let (code, out, _) = run(&["verify", s(&path)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("torn tail"), "{out}");
}

#[test]
fn compact_edit_convert_repair_refuse_while_a_program_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let out = dir.path().join("state.yaml");
    for shared in [false, true] {
        let store = Store::<State>::options()
            .shared(shared)
            .open(&path)
            .unwrap();
        work(&store, 0, 5);
        for args in [
            vec!["compact", s(&path)],
            vec!["edit", s(&path)],
            vec!["convert", s(&path), s(&out)],
            vec!["repair", s(&path)],
        ] {
            let (code, _, err) = run(&args);
            assert_eq!(code, 1, "{args:?}");
            let mode = if shared {
                "shared mode"
            } else {
                "exclusive mode"
            };
            assert!(err.contains("refused") && err.contains(mode), "{err}");
        }
        assert!(!out.exists());
        drop(store);
    }
}

#[test]
fn compact_folds_the_journal_and_keeps_the_history_going() {
    let live = tempfile::tempdir().unwrap();
    let opts = Store::<State>::options().keep_history(KeepHistory::Forever);
    let store = opts.clone().open(live.path().join("state.toml")).unwrap();
    work(&store, 0, 12);
    store.compact().unwrap();
    work(&store, 12, 12);
    let expected = store.get();
    let (_dir, path) = crash_copy(Store::file_path(&store));
    let (code, out, err) = run(&["compact", s(&path)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("folded 1"), "{out}");
    let journal_text = std::fs::read_to_string(journal(&path)).unwrap();
    assert_eq!(journal_text.lines().count(), 1, "{journal_text}");
    let store = opts.open(&path).unwrap();
    assert_eq!(store.get(), expected);
    // Every commit is still in the history, the folded ones included.
    let history = store.history().unwrap();
    assert_eq!(
        store.state_at(history.last().unwrap().seq).unwrap(),
        expected
    );
    drop(store);
    let (code, out, _) = run(&["compact", s(&path)]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to compact"), "{out}");
}

fn with_editor(script: &str, path: &Path) -> (i32, String, String) {
    let out = persisted()
        .args(["edit", s(path)])
        .env_remove("VISUAL")
        .env("EDITOR", script)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn edit_applies_an_edit_that_parses_and_keeps_one_that_does_not() {
    let live = tempfile::tempdir().unwrap();
    let store = State::open(live.path().join("state.json")).unwrap();
    store.set_last_id(42).unwrap();
    store.push_processed("a".into()).unwrap();
    let (dir, path) = crash_copy(Store::file_path(&store));
    let snapshot = std::fs::read(&path).unwrap();
    let journal_before = std::fs::read(journal(&path)).unwrap();
    let bad = dir.path().join("bad-editor.sh");
    std::fs::write(&bad, "#!/bin/sh\nprintf '{\"last_id\": ' > \"$1\"\n").unwrap();
    let (code, _, err) = with_editor(&format!("sh {}", s(&bad)), &path);
    assert_eq!(code, 1);
    assert!(
        err.contains("does not parse") && err.contains("kept at"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), snapshot, "nothing changed");
    assert_eq!(std::fs::read(journal(&path)).unwrap(), journal_before);
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".edit-"))
        .collect();
    assert_eq!(kept.len(), 1, "the edit is kept for the person");

    let (code, out, err) = with_editor("sed -i s/42/43/", &path);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replaced"), "{out}");
    let store = State::open(&path).unwrap();
    assert_eq!(store.last_id(), 43);
    assert_eq!(store.processed(), ["a"]);
}

/// The drafts `persisted edit` kept, name and content.
fn drafts(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut kept: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".edit-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    kept.sort();
    kept
}

#[test]
fn every_rejected_draft_keeps_its_own_file_and_none_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    State::open(&path).unwrap().close().unwrap();
    let snapshot = std::fs::read(&path).unwrap();
    // Two rejected edits in the same second, then an editor that fails
    // after saving, then one that fails without saving.
    let write = |text: &str| {
        let script = dir.path().join(format!("editor-{}.sh", text.len()));
        std::fs::write(&script, format!("#!/bin/sh\nprintf '{text}' > \"$1\"\n")).unwrap();
        format!("sh {}", s(&script))
    };
    for text in ["{\"last_id\": ", "{\"last_id\": 1,"] {
        let (code, _, err) = with_editor(&write(text), &path);
        assert_eq!(code, 1);
        assert!(err.contains("kept at"), "{err}");
    }
    let failing = dir.path().join("failing.sh");
    std::fs::write(
        &failing,
        "#!/bin/sh\nprintf 'half a thought' > \"$1\"\nexit 3\n",
    )
    .unwrap();
    let (code, _, err) = with_editor(&format!("sh {}", s(&failing)), &path);
    assert_eq!(code, 1);
    assert!(err.contains("failed") && err.contains("kept at"), "{err}");
    let (code, _, err) = with_editor("false", &path);
    assert_eq!(code, 1);
    assert!(err.contains("nothing changed"), "{err}");
    let kept = drafts(dir.path());
    let contents: Vec<&[u8]> = kept.iter().map(|(_, c)| &c[..]).collect();
    assert_eq!(
        contents,
        [
            &b"{\"last_id\": "[..],
            &b"{\"last_id\": 1,"[..],
            &b"half a thought"[..]
        ],
        "{kept:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), snapshot, "nothing changed");
}

#[test]
fn convert_writes_a_store_the_library_opens_in_the_other_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let expected = {
        let store = State::open(&path).unwrap();
        work(&store, 0, 30);
        store.get()
    };
    for name in ["copy.yaml", "copy.toml"] {
        let out = dir.path().join(name);
        let (code, _, err) = run(&["convert", s(&path), s(&out)]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(State::open(&out).unwrap().get(), expected, "{name}");
        let (code, _, err) = run(&["convert", s(&path), s(&out)]);
        assert_eq!(code, 1);
        assert!(err.contains("exists"), "{err}");
    }
}

#[test]
fn bincode_stores_verify_and_log_but_show_needs_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let store = State::open(&path).unwrap();
    work(&store, 0, 6);
    let (code, out, _) = run(&["verify", s(&path)]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&["log", s(&path)]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), store.history().unwrap().len(), "{out}");
    assert!(out.contains("set last_id"), "{out}");
    let (code, _, err) = run(&["show", s(&path)]);
    assert_eq!(code, 1);
    assert!(err.contains("Rust type"), "{err}");
}

#[test]
fn usage_help_unknown_files_and_formats() {
    for command in [
        "show", "log", "verify", "compact", "edit", "convert", "repair",
    ] {
        persisted().args([command, "--help"]).assert().success();
    }
    persisted().arg("--help").assert().success();
    persisted().arg("frobnicate").assert().code(2);
    persisted().args(["show"]).assert().code(2);
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["show", s(&dir.path().join("missing.json"))]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = run(&["verify", s(&dir.path().join("notes.txt"))]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot tell the format"), "{err}");
}

const CHILD: &str = "PERSISTED_CLI_CHILD";

/// Runs only as the child: commits until killed, acking each.
#[test]
fn cli_child_writer() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let store = Store::<State>::options()
        .journal_limit(4096)
        .open(&path)
        .unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    for i in store.last_id() + 1.. {
        store
            .transaction(|tx| {
                tx.set_last_id(i);
                tx.push_processed(format!("item-{i}"));
                Ok::<_, Error>(())
            })
            .unwrap();
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn show_after_kill9_is_what_the_library_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    for round in 0..3 {
        let mut child = Process::new(std::env::current_exe().unwrap())
            .args(["cli_child_writer", "--exact", "--nocapture"])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let acks = lines
            .map_while(Result::ok)
            .filter(|l| l.starts_with("ACK "))
            .take(200 + round * 50)
            .count();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(acks > 0);
        // Read before any open cuts the tail: the tool's view of the
        // files the kill left.
        let seen = shown(&path, &[]);
        let (code, out, _) = run(&["verify", s(&path)]);
        assert_eq!(code, 0, "{out}");
        let state = State::open(&path).unwrap().get();
        assert_eq!(seen, json(&state), "round {round}");
    }
}

/// The committed compatibility fixtures (`tests/fixtures/v2`): what crashes
/// and hand edits leave, as the library's own open resolves them.
fn fixture(format: &str, case: &str) -> PathBuf {
    let name = match format {
        "json" => "state.json",
        "yaml" => "state.yaml",
        _ => "state.toml",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/v2")
        .join(format)
        .join(case)
        .join(name)
}

/// `show` of the store at `path` is its snapshot alone (the snapshot copied
/// where no journal is beside it): the journal is not applied.
fn snapshot_alone(path: &Path) -> serde_json::Value {
    let with_journal = shown(path, &[]);
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join(path.file_name().unwrap());
    std::fs::copy(path, &alone).unwrap();
    assert_eq!(with_journal, shown(&alone, &[]), "{}", path.display());
    with_journal
}

#[test]
fn stale_orphaned_and_torn_journals_show_as_the_library_opens_them() {
    for format in ["json", "yaml", "toml"] {
        // A compaction cut before the journal was reset: the snapshot holds
        // everything, and the old journal is not applied twice.
        let stale = snapshot_alone(&fixture(format, "stale_compaction"));
        let (code, out, _) = run(&["verify", s(&fixture(format, "stale_compaction"))]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("already folded"), "{out}");
        // The same commits replayed from the journal give the same state.
        assert_eq!(shown(&fixture(format, "journal"), &[]), stale, "{format}");
        // A snapshot edited after a crash: the edit wins.
        snapshot_alone(&fixture(format, "orphan"));
        let (code, out, _) = run(&["verify", s(&fixture(format, "orphan"))]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("earlier snapshot"), "{out}");
        // A torn tail: every whole record, and verify calls it a note.
        let torn = shown(&fixture(format, "torn"), &[]);
        assert_ne!(torn, stale, "{format}: the cut record is not applied");
        let (code, out, _) = run(&["verify", s(&fixture(format, "torn"))]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("torn tail"), "{out}");
    }
}

const KEY_B64: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="; // 32 x 0x42

fn encrypted_store(path: &Path) -> Store<State> {
    Store::<State>::options()
        .encryption(persisted_state::Key::from_bytes([0x42; 32]))
        .keep_history(KeepHistory::Forever)
        .open(path)
        .unwrap()
}

/// Runs the tool with the key in `PERSISTED_KEY`.
fn run_keyed(args: &[&str]) -> (i32, String, String) {
    let out = persisted()
        .args(args)
        .env("PERSISTED_KEY", KEY_B64)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_encrypted_store_is_shown_logged_and_verified_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json.enc");
    let store = encrypted_store(&path);
    work(&store, 0, 12);
    store.compact().unwrap();
    work(&store, 12, 6);
    assert_eq!(shown_keyed(&path), json(&store.get()));
    let (code, _, err) = run(&["show", s(&path)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("PERSISTED_KEY") && err.contains("--key-file"),
        "{err}"
    );
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, [0x42u8; 32]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (code, out, err) = run(&["show", s(&path), "--key-file", s(&key_file), "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        json(&store.get())
    );
    let (code, out, _) = run_keyed(&["log", s(&path), "-n", "2"]);
    assert_eq!((code, out.lines().count()), (0, 2), "{out}");
    let (code, out, _) = run_keyed(&["verify", s(&path)]);
    assert_eq!(code, 0, "{out}");
    let first = store.history().unwrap()[0].seq;
    let (code, out, _) = run_keyed(&["show", s(&path), "--at", &first.to_string(), "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        json(&store.state_at(first).unwrap())
    );
}

fn shown_keyed(path: &Path) -> serde_json::Value {
    let (code, out, err) = run_keyed(&["show", s(path), "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn verify_tells_a_torn_tail_from_a_record_that_does_not_authenticate() {
    let live = tempfile::tempdir().unwrap();
    let store = encrypted_store(&live.path().join("state.json.enc"));
    work(&store, 0, 4);
    let (dir, path) = crash_copy(Store::file_path(&store));
    let journal = journal(&path);
    let bytes = std::fs::read(&journal).unwrap();
    // A torn tail: a note, not a problem.
    std::fs::write(&journal, &bytes[..bytes.len() - 3]).unwrap();
    let (code, out, _) = run_keyed(&["verify", s(&path)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("torn tail"), "{out}");
    // A record whose checksum is good but whose seal is not: a problem.
    let records = persisted_state_core::__tool::read_records(&bytes);
    let last = records.records.last().unwrap();
    // Rebuilt by the format spec with its checksum, so only the seal is
    // wrong (encrypted journals use the binary frame).
    let mut payload = bytes[last.payload_at..last.end].to_vec();
    payload[14] ^= 0x01;
    let mut tampered = bytes[..last.start].to_vec();
    persisted_state_core::__fuzz::spec::encode_record_v2(
        persisted_state::Format::Bincode,
        b'@',
        last.seq,
        last.time_ms.unwrap(),
        last.fields.as_deref().unwrap_or("*").as_bytes(),
        &payload,
        &mut tampered,
    );
    std::fs::write(&journal, &tampered).unwrap();
    assert_eq!(
        persisted_state_core::__tool::read_records(&tampered)
            .records
            .len(),
        records.records.len(),
        "the frame still verifies"
    );
    let (code, out, _) = run_keyed(&["verify", s(&path)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not authenticate"), "{out}");
    drop(dir);
}

#[test]
fn edit_of_an_encrypted_store_keeps_its_draft_private_and_seals_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml.enc");
    let store = encrypted_store(&path);
    store.set_last_id(42).unwrap();
    drop(store);
    let out = persisted()
        .args(["edit", s(&path)])
        .env("PERSISTED_KEY", KEY_B64)
        .env_remove("VISUAL")
        .env("EDITOR", "sed -i s/42/43/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        common_files(dir.path())
            .iter()
            .all(|f| !f.contains(".edit-")),
        "no plaintext draft beside the store"
    );
    let bytes = std::fs::read(&path).unwrap();
    assert!(persisted_state_core::__tool::is_sealed(&bytes));
    assert_eq!(encrypted_store(&path).last_id(), 43);
}

fn common_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
