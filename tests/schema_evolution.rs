//! Old files open after the struct gains a `#[serde(default)]` field or
//! loses one, snapshots and journals alike.

mod common;

use std::fs;

use persisted_state::{Persisted, Store};
use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;
    #[derive(Persisted, Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
    pub struct Config {
        pub name: String,
        pub retries: u32,
        pub legacy: Vec<String>,
    }
}

mod v2 {
    use super::*;
    /// `legacy` removed, `timeout_ms` added with a default.
    #[derive(Persisted, Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
    pub struct Config {
        pub name: String,
        pub retries: u32,
        #[serde(default = "default_timeout")]
        pub timeout_ms: u64,
    }
    fn default_timeout() -> u64 {
        1_000
    }
}

use v1::ConfigStoreExt as _;
use v2::ConfigStoreExt as _;

fn text_formats() -> Vec<&'static str> {
    let mut names = vec!["config.json"];
    if cfg!(feature = "yaml") {
        names.push("config.yaml");
    }
    if cfg!(feature = "toml") {
        names.push("config.toml");
    }
    names
}

#[test]
fn an_old_snapshot_and_journal_open_after_a_field_is_added_and_one_removed() {
    for name in text_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let old = Store::<v1::Config>::open(&path).unwrap();
        old.set_name("svc".into()).unwrap();
        old.close().unwrap();
        let old = Store::<v1::Config>::open(&path).unwrap();
        // These stay in the journal: the new version must replay them.
        old.set_retries(3).unwrap();
        old.push_legacy("x".into()).unwrap();
        old.set_legacy(vec!["y".into()]).unwrap();
        let (_crashed, copy) = common::crash_image(&path);
        drop(old);

        let new = Store::<v2::Config>::open(&copy).unwrap();
        assert_eq!(
            new.get(),
            v2::Config {
                name: "svc".into(),
                retries: 3,
                timeout_ms: 1_000
            },
            "{name}"
        );
        new.set_timeout_ms(5).unwrap();
        new.close().unwrap();
        let text = fs::read_to_string(&copy).unwrap();
        assert!(
            text.contains("legacy"),
            "{name}: the removed field's key is kept: {text}"
        );
        let new = Store::<v2::Config>::open(&copy).unwrap();
        assert_eq!(new.timeout_ms(), 5);
    }
}

mod v3 {
    use super::*;
    /// `timeout_ms` added without `#[serde(default)]`: old files cannot fill it.
    #[derive(Persisted, Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
    pub struct Config {
        pub name: String,
        pub retries: u32,
        pub timeout_ms: u64,
    }
}

#[test]
fn a_new_field_without_a_default_is_an_error_that_says_to_add_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    v1::Config::open(&path).unwrap().close().unwrap();
    let before = fs::read(&path).unwrap();
    let err = v3::Config::open(&path).unwrap_err().to_string();
    assert!(err.contains("missing field `timeout_ms`"), "{err}");
    assert!(err.contains("#[serde(default)]"), "{err}");
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "the file is left as it was"
    );
}

#[cfg(feature = "yaml")]
#[test]
fn a_yaml_11_boolean_is_an_error_that_names_the_yaml_12_spelling() {
    #[derive(Persisted, Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
    struct Flags {
        verbose: bool,
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    fs::write(&path, "verbose: yes\n").unwrap();
    let err = Flags::open(&path).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
    assert!(err.contains("`true` and `false`"), "{err}");
    fs::write(&path, "verbose: true\n").unwrap();
    assert!(Flags::open(&path).unwrap().verbose());
}
