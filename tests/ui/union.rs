use persisted_state::Persisted;

// serde cannot derive for unions, so this one derives only `Persisted`.
#[derive(Persisted)]
union State {
    id: u64,
    bits: f64,
}

fn main() {}
