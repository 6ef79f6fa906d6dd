use persisted_state::Persisted;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Clone)]
struct State {
    #[persisted(journal = false)]
    last_id: u64,
}

fn main() {}
