use persisted_state::Persisted;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Clone)]
struct State<T> {
    last_id: u64,
    items: Vec<T>,
}

fn main() {}
