//! Files an earlier version wrote open to exactly the state they hold, in
//! every format and every recovery case (T18): the committed fixtures in
//! `tests/fixtures/v1/` (written once by `tests/fixtures/generate.rs`), and
//! the leftovers of a crashed write beside a store.

mod common;

#[path = "fixtures/generate.rs"]
mod generate;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use persisted_state::{Engine, Format, Persisted, Store};
use serde::{Deserialize, Serialize};

/// The struct the v1 fixtures hold. Frozen: the fixtures were written with
/// exactly these fields.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Job {
    pub last_id: u64,
    pub name: String,
    pub processed: Vec<String>,
    pub settings: BTreeMap<String, String>,
    pub tags: BTreeSet<String>,
}

const V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1");
const V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2");

/// Writes the fixtures of the current format version into the directory
/// `PERSISTED_WRITE_FIXTURES` names (`v2`); run once per format version,
/// see `tests/fixtures/generate.rs` (needs every format: `--all-features`).
#[cfg(all(feature = "yaml", feature = "toml", feature = "bincode"))]
#[test]
#[ignore = "writes tests/fixtures/<v> when PERSISTED_WRITE_FIXTURES=<v>"]
fn write_fixtures() {
    let Ok(version) = std::env::var("PERSISTED_WRITE_FIXTURES") else {
        eprintln!("set PERSISTED_WRITE_FIXTURES=v2 to write {V2}");
        return;
    };
    assert_ne!(version, "v1", "the v1 fixtures are never rewritten");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version);
    generate::write_all(&dir);
}

// --- the expected states, written out by hand -------------------------------

fn job(
    last_id: u64,
    name: &str,
    processed: &[&str],
    settings: &[(&str, &str)],
    tags: &[&str],
) -> Job {
    Job {
        last_id,
        name: name.into(),
        processed: processed.iter().map(|s| s.to_string()).collect(),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    }
}

/// `clean`: the snapshot alone.
fn clean_state() -> Job {
    job(
        10,
        "nightly import",
        &["a-1", "a-2"],
        &[("mode", "fast"), ("retries", "3")],
        &["blue"],
    )
}

/// `journal` and `stale_compaction`: the snapshot after set 11, push a-3,
/// insert path, remove retries, pop (a-3), push a-4, insert green, remove
/// blue, update {12, resumed, push a-5}, extend [a-6, a-7], set 13.
fn journal_state() -> Job {
    job(
        13,
        "nightly import (resumed)",
        &["a-1", "a-2", "a-4", "a-5", "a-6", "a-7"],
        &[("mode", "fast"), ("path", "C:\\data\n\"quoted\" ünï")],
        &["green"],
    )
}

/// `torn`: all but the last commit (set 13).
fn torn_state() -> Job {
    Job {
        last_id: 12,
        ..journal_state()
    }
}

/// `orphan`: the clean snapshot as edited by hand; the journal is not
/// replayed onto it.
fn orphan_state() -> Job {
    job(
        500,
        "nightly import (edited)",
        &["a-1", "a-2"],
        &[("mode", "fast"), ("retries", "3")],
        &["blue"],
    )
}

// --- helpers -----------------------------------------------------------------

/// One format's fixtures.
struct Fixtures {
    /// `V1` or `V2`.
    root: &'static str,
    format: Format,
    dir: &'static str,
    file: &'static str,
    /// The length of the `torn` journal once its torn record is cut off.
    torn_kept: usize,
}

/// A fixture directory copied to a temp dir, so opening it cannot change
/// the committed files.
struct Copy {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    path: PathBuf,
    /// The committed directory.
    fixture: PathBuf,
}

impl Fixtures {
    fn copy(&self, case: &str) -> Copy {
        let fixture = Path::new(self.root).join(self.dir).join(case);
        let dir = tempfile::tempdir().unwrap();
        let mut copied = 0;
        for entry in fs::read_dir(&fixture).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
            copied += 1;
        }
        assert!(copied > 0, "{} is empty", fixture.display());
        Copy {
            dir: dir.path().to_path_buf(),
            path: dir.path().join(self.file),
            fixture,
            _dir: dir,
        }
    }

    fn committed(&self, case: &str, name: &str) -> Vec<u8> {
        fs::read(Path::new(self.root).join(self.dir).join(case).join(name)).unwrap()
    }

    fn journal_name(&self) -> String {
        format!("{}.journal", self.file)
    }

    /// A journal that holds a header and no records.
    fn assert_header_only(&self, journal: &[u8], what: &str) {
        if self.format == Format::Bincode {
            assert_eq!(journal.len(), 26, "{what}: {journal:?}");
            assert_eq!(&journal[..4], b"PSTJ", "{what}");
        } else {
            let text = String::from_utf8_lossy(journal);
            assert!(
                text.starts_with("# persisted-journal v") && text.lines().count() == 1,
                "{what}: {text:?}"
            );
        }
    }

    /// Opens a copy of `case` and checks the state and that the snapshot
    /// was not rewritten. Returns the copy and the open store (the files are
    /// checked while it is open: dropping it compacts).
    fn open_case(&self, case: &str, expected: &Job) -> (Copy, Store<Job>) {
        let copy = self.copy(case);
        let what = format!("{}/{case}", self.dir);
        let store = Job::open(&copy.path).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(store.get(), *expected, "{what}");
        assert_eq!(
            fs::read(&copy.path).unwrap(),
            fs::read(copy.fixture.join(self.file)).unwrap(),
            "{what}: opening changed the snapshot"
        );
        (copy, store)
    }

    /// After the checks of a case: the store takes new commits, which
    /// survive a crash (replayed from the journal as recovery left it) and
    /// a clean close.
    fn assert_writable(&self, copy: &Copy, store: Store<Job>, expected: &Job, what: &str) {
        store.set_last_id(4242).unwrap();
        store.push_processed("after-upgrade".into()).unwrap();
        let mut next = expected.clone();
        next.last_id = 4242;
        next.processed.push("after-upgrade".into());
        let (_crashed, image) = common::crash_image(&copy.path);
        assert_eq!(
            Job::open(&image).unwrap().get(),
            next,
            "{what}: after a crash"
        );
        store.close().unwrap();
        assert_eq!(
            Job::open(&copy.path).unwrap().get(),
            next,
            "{what}: after a close"
        );
    }

    fn check_all(&self) {
        let journal_name = self.journal_name();
        let dir = self.dir;

        // (a) A snapshot alone.
        let (copy, store) = self.open_case("clean", &clean_state());
        self.assert_header_only(
            &fs::read(copy.dir.join(&journal_name)).unwrap(),
            &format!("{dir}/clean: the new journal"),
        );
        self.assert_writable(&copy, store, &clean_state(), &format!("{dir}/clean"));

        // (b) A snapshot and a journal of records: replayed, journal kept.
        let (copy, store) = self.open_case("journal", &journal_state());
        assert_eq!(
            fs::read(copy.dir.join(&journal_name)).unwrap(),
            self.committed("journal", &journal_name),
            "{dir}/journal: a valid journal is left as it is"
        );
        assert_eq!(
            common::files_in(&copy.dir),
            [
                self.file.to_string(),
                journal_name.clone(),
                format!("{}.lock", self.file)
            ]
        );
        self.assert_writable(&copy, store, &journal_state(), &format!("{dir}/journal"));

        // (c) A torn last record: dropped, the journal cut to the record before.
        let (copy, store) = self.open_case("torn", &torn_state());
        let torn = self.committed("torn", &journal_name);
        let whole = self.committed("journal", &journal_name);
        let kept = fs::read(copy.dir.join(&journal_name)).unwrap();
        assert!(
            torn.len() > self.torn_kept,
            "{dir}/torn: the fixture is torn"
        );
        assert_eq!(
            kept.len(),
            self.torn_kept,
            "{dir}/torn: cut to the last good record"
        );
        assert_eq!(kept, whole[..self.torn_kept], "{dir}/torn");
        assert_eq!(
            torn[..self.torn_kept],
            whole[..self.torn_kept],
            "{dir}/torn"
        );
        let next_frame: &[u8] = match self.format {
            Format::Json | Format::Toml => b"@",
            Format::Yaml => b"--- # @",
            _ => &[0xC0],
        };
        assert!(
            whole[self.torn_kept..].starts_with(next_frame),
            "{dir}/torn: the cut is at a record boundary"
        );
        assert!(
            common::files_in(&copy.dir)
                .iter()
                .all(|f| !f.contains("dropped") && !f.contains("orphaned")),
            "{dir}/torn: a torn tail alone is not kept aside"
        );
        self.assert_writable(&copy, store, &torn_state(), &format!("{dir}/torn"));

        // (d) A stale journal beside the snapshot its compaction wrote: not
        // replayed again, reset.
        let (copy, store) = self.open_case("stale_compaction", &journal_state());
        self.assert_header_only(
            &fs::read(copy.dir.join(&journal_name)).unwrap(),
            &format!("{dir}/stale_compaction: the reset journal"),
        );
        assert_eq!(
            common::files_in(&copy.dir),
            [
                self.file.to_string(),
                journal_name.clone(),
                format!("{}.lock", self.file)
            ]
        );
        self.assert_writable(
            &copy,
            store,
            &journal_state(),
            &format!("{dir}/stale_compaction"),
        );

        // (e) A snapshot changed after a crash: the change wins, the journal
        // is kept aside, never replayed.
        let (copy, store) = self.open_case("orphan", &orphan_state());
        let orphans: Vec<_> = common::files_in(&copy.dir)
            .into_iter()
            .filter(|f| f.starts_with(&format!("{journal_name}.orphaned-")))
            .collect();
        assert_eq!(orphans.len(), 1, "{dir}/orphan: {orphans:?}");
        assert_eq!(
            fs::read(copy.dir.join(&orphans[0])).unwrap(),
            self.committed("orphan", &journal_name),
            "{dir}/orphan: the orphaned journal is kept whole"
        );
        self.assert_header_only(
            &fs::read(copy.dir.join(&journal_name)).unwrap(),
            &format!("{dir}/orphan: the new journal"),
        );
        self.assert_writable(&copy, store, &orphan_state(), &format!("{dir}/orphan"));
    }
}

#[test]
fn v1_json_fixtures_open_to_their_exact_state() {
    Fixtures {
        root: V1,
        format: Format::Json,
        dir: "json",
        file: "state.json",
        torn_kept: TORN_KEPT_JSON,
    }
    .check_all();
}

#[cfg(feature = "yaml")]
#[test]
fn v1_yaml_fixtures_open_to_their_exact_state() {
    Fixtures {
        root: V1,
        format: Format::Yaml,
        dir: "yaml",
        file: "state.yaml",
        torn_kept: TORN_KEPT_YAML,
    }
    .check_all();
}

#[cfg(feature = "toml")]
#[test]
fn v1_toml_fixtures_open_to_their_exact_state() {
    Fixtures {
        root: V1,
        format: Format::Toml,
        dir: "toml",
        file: "state.toml",
        torn_kept: TORN_KEPT_TOML,
    }
    .check_all();
}

#[cfg(feature = "bincode")]
#[test]
fn v1_bincode_fixtures_open_to_their_exact_state() {
    Fixtures {
        root: V1,
        format: Format::Bincode,
        dir: "bincode",
        file: "state.bin",
        torn_kept: TORN_KEPT_BINCODE,
    }
    .check_all();
}

/// The torn journals' lengths up to their last whole record (read off the
/// committed fixtures: the `journal` case's length minus its last record).
const TORN_KEPT_JSON: usize = 583;
#[cfg(feature = "yaml")]
const TORN_KEPT_YAML: usize = 596;
#[cfg(feature = "toml")]
const TORN_KEPT_TOML: usize = 583;
#[cfg(feature = "bincode")]
const TORN_KEPT_BINCODE: usize = 478;
const V2_TORN_KEPT_JSON: usize = 834;
const V2_TORN_KEPT_YAML: usize = 847;
const V2_TORN_KEPT_TOML: usize = 834;
const V2_TORN_KEPT_BINCODE: usize = 679;

/// The version 2 fixtures, in every enabled format.
#[test]
fn v2_fixtures_open_to_their_exact_state() {
    let all = [
        (Format::Json, "json", "state.json", V2_TORN_KEPT_JSON),
        (Format::Yaml, "yaml", "state.yaml", V2_TORN_KEPT_YAML),
        (Format::Toml, "toml", "state.toml", V2_TORN_KEPT_TOML),
        (
            Format::Bincode,
            "bincode",
            "state.bin",
            V2_TORN_KEPT_BINCODE,
        ),
    ];
    let enabled = common::formats();
    for (format, dir, file, torn_kept) in all {
        if enabled.contains(&format) {
            Fixtures {
                root: V2,
                format,
                dir,
                file,
                torn_kept,
            }
            .check_all();
        }
    }
}

#[test]
fn every_committed_fixture_is_checked() {
    for root in [V1, V2] {
        let mut cases = Vec::new();
        for (_, dir, _) in generate::FORMATS {
            for entry in fs::read_dir(Path::new(root).join(dir)).unwrap() {
                cases.push(format!(
                    "{dir}/{}",
                    entry.unwrap().file_name().to_string_lossy()
                ));
            }
        }
        cases.sort();
        let mut expected = Vec::new();
        for dir in ["bincode", "json", "toml", "yaml"] {
            for case in ["clean", "journal", "orphan", "stale_compaction", "torn"] {
                expected.push(format!("{dir}/{case}"));
            }
        }
        assert_eq!(cases, expected, "{root}");
    }
}

// --- leftovers -----------------------------------------------------------------

#[test]
fn temp_files_of_a_crashed_write_are_removed_and_lookalikes_are_untouched() {
    for format in common::formats() {
        let dir = tempfile::tempdir().unwrap();
        let name = common::file_name(format);
        let path = dir.path().join(name);
        let store = Job::open(&path).unwrap();
        store.set_last_id(1).unwrap();
        store.close().unwrap();

        // What a crash in a compaction (snapshot, then journal reset) leaves.
        let leftovers = [
            format!(".{name}.tmp-123-abc"),
            format!(".{name}.journal.tmp-77-0000abcd0"),
        ];
        let lookalikes = [
            format!("{name}.tmp"),
            format!(".{name}.tmp"),
            format!("{name}.tmp-123-abc"),
            format!(".{name}.bak"),
            ".other.json.tmp-1".to_string(),
            "notes.txt".to_string(),
        ];
        for file in leftovers.iter().chain(&lookalikes) {
            fs::write(dir.path().join(file), format!("bytes of {file}")).unwrap();
        }
        let store = Job::open(&path).unwrap();
        assert_eq!(store.last_id(), 1, "{format:?}");
        let check = |when: &str| {
            for file in &leftovers {
                assert!(
                    !dir.path().join(file).exists(),
                    "{format:?} {when}: {file} was left"
                );
            }
            for file in &lookalikes {
                assert_eq!(
                    fs::read_to_string(dir.path().join(file)).unwrap(),
                    format!("bytes of {file}"),
                    "{format:?} {when}: {file} was touched"
                );
            }
        };
        check("after open");
        store.set_last_id(2).unwrap();
        store.compact().unwrap();
        store.close().unwrap();
        check("after compaction and close");
        let mut expected: Vec<String> = lookalikes.to_vec();
        expected.extend([
            name.to_string(),
            format!("{name}.journal"),
            format!("{name}.lock"),
        ]);
        expected.sort();
        assert_eq!(common::files_in(dir.path()), expected, "{format:?}");
    }
}

#[test]
fn the_snapshots_permission_bits_survive_compaction() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for format in common::formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(common::file_name(format));
        let store = Job::open(&path).unwrap();
        store.set_last_id(1).unwrap();
        store.close().unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        let store = Job::open(&path).unwrap();
        store.set_last_id(2).unwrap();
        store.compact().unwrap();
        assert_eq!(mode(&path), 0o600, "{format:?}: after compact");
        store.push_processed("x".into()).unwrap();
        store.close().unwrap();
        assert_eq!(mode(&path), 0o600, "{format:?}: after close");

        let store = Store::<Job>::options()
            .engine(Engine::Snapshot)
            .open(&path)
            .unwrap();
        store.set_last_id(3).unwrap();
        drop(store);
        assert_eq!(
            mode(&path),
            0o600,
            "{format:?}: after a snapshot-engine write"
        );
        assert_eq!(Job::open(&path).unwrap().last_id(), 3);
    }
}
