use persisted_state::Persisted;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default, Clone)]
struct Settings {
    verbose: bool,
}

#[derive(Persisted, Serialize, Deserialize, Default, Clone)]
struct State {
    last_id: u64,
    #[serde(flatten)]
    settings: Settings,
}

fn main() {}
