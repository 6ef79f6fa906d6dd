use persisted::{Persisted, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct State { last_id: u64, processed: Vec<String>, settings: BTreeMap<String, String> }
fn main() {
    for f in ["/tmp/scratch/state.yaml", "/tmp/scratch/state.json"] {
        let _ = std::fs::remove_file(format!("{f}.journal"));
        let _ = std::fs::remove_file(f);
        let s: Store<State> = State::open(f).unwrap();
        s.set_last_id(42).unwrap();
        s.push_processed("item-42".into()).unwrap();
        s.insert_settings("k".into(), "multi\nline".into()).unwrap();
        s.update(|s| { s.last_id += 1; s.processed.push("x".into()); }).unwrap();
        println!("--- {f}\n{}", std::fs::read_to_string(f).unwrap());
        println!("--- journal\n{}", std::fs::read_to_string(format!("{f}.journal")).unwrap());
        std::mem::forget(s);
    }
}
