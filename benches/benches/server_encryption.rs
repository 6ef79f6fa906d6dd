//! What encrypting a server store costs (issue 21's "document the cost"):
//! an encrypted store on Redis and on PostgreSQL against a plain one on
//! the same server, paired in one run (batches alternated, median of the
//! per-round ratios). Each field's value is sealed, so a collection travels
//! as one value: a push onto a list of `LIST` items sends (and logs) the
//! whole list, where a plain store sends the one item.
//!
//! - `set_counter(n)`: one small field;
//! - `push_items(..)` then `pop_items()` on a list kept at `LIST` items of
//!   32 bytes: O(the list) encrypted, O(1) plain.
//!
//!     cd benches && cargo bench --no-default-features --bench server_encryption

mod common;
#[path = "../../tests/postgres_server/mod.rs"]
mod postgres_server;
#[path = "../../tests/redis_server/mod.rs"]
mod redis_server;

use std::hint::black_box;

use persisted_state::{Key, Persisted, Result, Store};
use serde::{Deserialize, Serialize};

/// Items in the list the collection rows push onto and pop from.
const LIST: usize = 1_000;

#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Board {
    counter: u64,
    items: Vec<String>,
}

/// A plain and an encrypted store opened by `open` (`None`: no key),
/// each with `LIST` items.
fn pair(open: &dyn Fn(Option<Key>) -> Result<Store<Board>>) -> (Store<Board>, Store<Board>) {
    let items: Vec<String> = (0..LIST).map(|i| format!("{i:0>32}")).collect();
    let plain = open(None).expect("open plain");
    let sealed = open(Some(Key::from_bytes([7; 32]))).expect("open encrypted");
    plain.set_items(items.clone()).expect("fill");
    sealed.set_items(items).expect("fill");
    (plain, sealed)
}

fn compare(server: &str, plain: &Store<Board>, sealed: &Store<Board>) {
    let mut n = 0u64;
    let mut a = || {
        n += 1;
        sealed.set_counter(black_box(n)).expect("set");
    };
    let mut m = 0u64;
    let mut b = || {
        m += 1;
        plain.set_counter(black_box(m)).expect("set");
    };
    let (enc, pla, ratio) = common::paired(&mut a, &mut b, 20, 100);
    println!(
        "{server}: set_counter encrypted / plain: {ratio:.2}x ({enc:.0} vs {pla:.0} µs)"
    );
    let push_pop = |store: &Store<Board>| {
        store.push_items(black_box("x".repeat(32))).expect("push");
        store.pop_items().expect("pop");
    };
    let mut a = || push_pop(sealed);
    let mut b = || push_pop(plain);
    let (enc, pla, ratio) = common::paired(&mut a, &mut b, 20, 50);
    println!(
        "{server}: push + pop on a {LIST}-item list, encrypted / plain: {ratio:.2}x ({enc:.0} vs \
         {pla:.0} µs per pair)"
    );
}

fn main() {
    let redis = redis_server::RedisServer::start(redis_server::Aof::Everysec)
        .expect("redis-server is needed for this bench");
    let url = redis.url();
    let (plain, sealed) = pair(&|key| match key {
        Some(key) => Store::options().encryption(key).open_redis(&url, "sealed"),
        None => Store::open_redis(&url, "plain"),
    });
    compare("redis", &plain, &sealed);
    drop((plain, sealed, redis));

    let postgres = postgres_server::PostgresServer::start_durable()
        .expect("PostgreSQL (Debian package postgresql) is needed for this bench");
    let url = postgres.url();
    let (plain, sealed) = pair(&|key| match key {
        Some(key) => Store::options().encryption(key).open_postgres(&url, "sealed"),
        None => Store::open_postgres(&url, "plain"),
    });
    compare("postgres", &plain, &sealed);
}
