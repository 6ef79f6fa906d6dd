use persisted_state::Persisted;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Clone)]
#[serde(transparent)]
struct State {
    last_id: u64,
}

fn main() {}
