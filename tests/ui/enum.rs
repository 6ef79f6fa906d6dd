use persisted_state::Persisted;
use serde::{Deserialize, Serialize};

#[derive(Persisted, Serialize, Deserialize, Default, Clone)]
enum State {
    #[default]
    Idle,
    Running {
        last_id: u64,
    },
}

fn main() {}
