//! Shared by the integration tests: a state struct and the formats this
//! build has.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use persisted_state::{Format, Persisted};
use persisted_state_core::__fuzz::spec;
use serde::{Deserialize, Serialize};

/// The state most tests persist.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct State {
    /// The last item processed.
    pub last_id: u64,
    pub processed: Vec<String>,
    pub settings: BTreeMap<String, String>,
}

/// The formats enabled in this build.
pub fn formats() -> Vec<Format> {
    let mut formats = vec![Format::Json];
    if cfg!(feature = "yaml") {
        formats.push(Format::Yaml);
    }
    if cfg!(feature = "toml") {
        formats.push(Format::Toml);
    }
    if cfg!(feature = "bincode") {
        formats.push(Format::Bincode);
    }
    formats
}

/// A file name whose extension names `format`.
pub fn file_name(format: Format) -> &'static str {
    match format {
        Format::Json => "state.json",
        Format::Yaml => "state.yaml",
        Format::Toml => "state.toml",
        Format::Bincode => "state.bin",
        _ => unreachable!("no other formats"),
    }
}

/// `dir/<file_name(format)>`.
pub fn state_path(dir: &Path, format: Format) -> PathBuf {
    dir.join(file_name(format))
}

/// The journal beside a snapshot.
pub fn journal_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".journal");
    path.with_file_name(name)
}

/// Names of the files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a crash of the process holding `path` open would leave: a copy of
/// its snapshot and journal in a fresh directory (the live store keeps its
/// lock, so the copy is opened instead).
pub fn crash_image(path: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(path.file_name().unwrap());
    std::fs::copy(path, &copy).unwrap();
    if journal_of(path).exists() {
        std::fs::copy(journal_of(path), journal_of(&copy)).unwrap();
    }
    (dir, copy)
}

/// A version 2 intent record naming `snapshot`, built from the format spec
/// (`persisted_state_core::__fuzz::spec`): `!<seq> <len> <crc> <time> -` +
/// `# compaction fingerprint=<hex>\n` for text, `0xC1 | seq | len | crc |
/// time | 1 | - | fingerprint` for bincode.
pub fn intent_record(format: Format, seq: u64, snapshot: &[u8]) -> Vec<u8> {
    let payload = spec::intent_payload(format, spec::fingerprint(snapshot));
    let mut out = Vec::new();
    // Journals written now are version 2.
    spec::encode_record_v2(
        format,
        b'!',
        seq,
        1_764_000_000_000,
        b"-",
        &payload,
        &mut out,
    );
    out
}

/// The size a soak asks for in the environment variable `var` (see
/// `scripts/soak.sh`), or `smoke`, the size of a normal `cargo test`.
pub fn soak_size<T: std::str::FromStr>(var: &str, smoke: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(smoke)
}

/// The resumable job as a child process runs it until killed: after
/// `last_id`, one transaction per item (push it, advance `last_id`),
/// printing `ACK <n>` once each is acknowledged (what
/// [`kill9_after_acks`] reads).
pub fn resume_and_ack(store: &persisted_state::Store<State>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // libtest has printed "test <name> ... " without a newline: end it.
    writeln!(out).unwrap();
    let start = store.last_id() + 1;
    for n in start..start + 1_000_000 {
        let mut tx = store.begin();
        tx.push_processed(format!("item-{n}"));
        tx.set_last_id(n);
        tx.commit().unwrap();
        writeln!(out, "ACK {n}").unwrap();
        out.flush().unwrap();
    }
}

/// Runs the test `child_test` of this test binary as a child process with
/// `var` set to `path`, reads the `ACK <n>` lines it prints after each
/// acknowledged commit, kills it with SIGKILL after `kill_after` of them,
/// and returns the last acknowledged number (acks already in the pipe
/// count), or `None` if it acknowledged nothing.
pub fn kill9_after_acks(child_test: &str, var: &str, path: &Path, kill_after: u64) -> Option<u64> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ack = |line: std::io::Result<String>| -> Option<u64> {
        line.unwrap()
            .strip_prefix("ACK ")
            .map(|n| n.parse().unwrap())
    };
    let (mut acked, mut seen) = (None, 0);
    for line in lines.by_ref() {
        if let Some(n) = ack(line) {
            acked = Some(n);
            seen += 1;
            if seen == kill_after {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
                           // Acks printed before the kill are still in the pipe.
    for line in lines {
        if let Some(n) = ack(line) {
            acked = Some(n);
        }
    }
    child.wait().unwrap();
    acked
}
