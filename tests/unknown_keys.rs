//! DESIGN "Schema evolution": keys a snapshot holds that the struct does not
//! know are kept where they were, at every depth, through every later save,
//! and open names each one's path (`store.recovery()` and a warning), so a
//! typo is found. A UTF-8 byte-order mark is accepted.

mod common;

use std::fs;

use persisted_state::{Error, Persisted, RecoveryEvent, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Server {
    host: String,
    #[serde(default)]
    tls_cert: Option<String>,
}

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Config {
    name: String,
    server: Server,
    backups: Vec<Server>,
}

/// The same document in each text format: a typo at the top, one inside
/// `server`, one inside the second of `backups`.
fn documents() -> Vec<(&'static str, &'static str)> {
    let mut docs = vec![(
        "config.json",
        r#"{
  "name": "app",
  "nmae": "typo at the top",
  "server": {
    "host": "localhost",
    "tls_certt": "typo.pem"
  },
  "backups": [
    {
      "host": "a"
    },
    {
      "hots": "b",
      "host": "b"
    }
  ]
}
"#,
    )];
    if cfg!(feature = "yaml") {
        docs.push((
            "config.yaml",
            "name: app\nnmae: typo at the top\nserver:\n  host: localhost\n  tls_certt: typo.pem\n\
             backups:\n- host: a\n- hots: b\n  host: b\n",
        ));
    }
    if cfg!(feature = "toml") {
        docs.push((
            "config.toml",
            "name = \"app\"\nnmae = \"typo at the top\"\n\n[server]\nhost = \"localhost\"\n\
             tls_certt = \"typo.pem\"\n\n[[backups]]\nhost = \"a\"\n\n[[backups]]\nhots = \"b\"\n\
             host = \"b\"\n",
        ));
    }
    docs
}

#[test]
fn unknown_keys_are_kept_where_they_were_at_every_depth_and_reported() {
    for (name, text) in documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        let store: Store<Config> = Store::open(&path).unwrap();
        let keys = ["nmae", "server.tls_certt", "backups[1].hots"];
        match &store.recovery().events[..] {
            [RecoveryEvent::UnknownKeys { keys: found, .. }] => {
                assert_eq!(found, &keys, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        let report = store.recovery().events[0].to_string();
        assert!(report.contains("server.tls_certt"), "{report}");
        // Change the struct around them, including the tables holding them.
        store.set_name("renamed".into()).unwrap();
        store
            .update_server(|s| s.host = "example.org".into())
            .unwrap();
        store.update_backups(|b| b[1].host = "c".into()).unwrap();
        store.compact().unwrap();
        store.close().unwrap();
        let written = fs::read_to_string(&path).unwrap();
        for (key, value) in [
            ("nmae", "typo at the top"),
            ("tls_certt", "typo.pem"),
            ("hots", "b"),
        ] {
            assert!(
                written.contains(key) && written.contains(value),
                "{name}: {key} lost:\n{written}"
            );
        }
        // Each is still in its table: reading the file back finds them at
        // the same paths.
        let store: Store<Config> = Store::open(&path).unwrap();
        match &store.recovery().events[..] {
            [RecoveryEvent::UnknownKeys { keys: found, .. }] => {
                assert_eq!(found, &keys, "{name}:\n{written}")
            }
            other => panic!("{name}: {other:?}\n{written}"),
        }
        let got = store.get();
        assert_eq!(
            (
                got.name.as_str(),
                got.server.host.as_str(),
                got.backups[1].host.as_str()
            ),
            ("renamed", "example.org", "c")
        );
    }
}

#[test]
fn a_nested_unknown_key_stays_in_place_among_its_siblings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    fs::write(&path, documents()[0].1).unwrap();
    let store: Store<Config> = Store::open(&path).unwrap();
    store.set_name("x".into()).unwrap();
    store.close().unwrap();
    let written = fs::read_to_string(&path).unwrap();
    let order = |a: &str, b: &str| written.find(a).unwrap() < written.find(b).unwrap();
    assert!(
        order("\"name\"", "\"nmae\"") && order("\"nmae\"", "\"server\""),
        "{written}"
    );
    assert!(order("\"hots\"", "\"host\": \"b\""), "{written}");
}

#[test]
fn a_byte_order_mark_is_accepted_in_every_text_format() {
    for (name, text) in documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        fs::write(&path, &bytes).unwrap();
        let store: Store<Config> =
            Store::open(&path).unwrap_or_else(|e| panic!("{name}: a BOM is refused: {e}"));
        assert_eq!(store.name(), "app", "{name}");
        store.set_name("after".into()).unwrap();
        drop(store);
        assert_eq!(Store::<Config>::open(&path).unwrap().name(), "after");
    }
}

#[test]
fn a_missing_field_names_the_alias_for_a_renamed_field_and_the_default_for_a_new_one() {
    #[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone)]
    struct Renamed {
        title: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("renamed.json");
    fs::write(&path, "{\n  \"name\": \"old\"\n}\n").unwrap();
    let err = Store::<Renamed>::open(&path).unwrap_err();
    let Error::Parse { message, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(message.contains("#[serde(alias"), "{message}");
    assert!(message.contains("#[serde(default)]"), "{message}");
}
