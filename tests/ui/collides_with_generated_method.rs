use persisted_state::Persisted;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Clone)]
struct State {
    items: Vec<String>,
    push_items: bool,
}

fn main() {}
