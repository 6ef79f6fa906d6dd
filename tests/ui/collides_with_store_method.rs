use persisted_state::Persisted;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Clone)]
struct State {
    last_id: u64,
    read: Vec<String>,
}

fn main() {}
