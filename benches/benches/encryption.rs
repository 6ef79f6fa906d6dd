//! P16, P16b: what encryption at rest costs a commit, paired in one run
//! (encrypted vs plain, the same store otherwise), and the ciphers the
//! choice was made between, each sealing a small record.
//!
//! - **P16**: an encrypted `Flush` `set_counter` <= 2x a plain one.
//! - **P16b**: an encrypted `Sync` `set_counter` <= 1.15x a plain one.
//!
//!     cd benches && cargo bench --no-default-features --bench encryption

mod common;

use std::hint::black_box;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use common::{State, StateStoreExt as _};
use criterion::{criterion_group, criterion_main, Criterion};
use persisted_state::{Durability, Key, Store};

fn store(dir: &std::path::Path, durability: Durability, encrypted: bool) -> Store<State> {
    let options = Store::<State>::options().durability(durability);
    match encrypted {
        true => options
            .encryption(Key::from_bytes([7; 32]))
            .open(dir.join("enc.json.enc")),
        false => options.open(dir.join("plain.json")),
    }
    .unwrap()
}

/// One 60-byte record sealed with `C` and a 12- or 24-byte nonce from a
/// counter (as the store draws them), in place.
fn seal_with<C: AeadInPlace + KeyInit>(nonce_len: usize) -> impl FnMut() {
    let cipher = C::new_from_slice(&[7u8; 32]).unwrap();
    let mut buf = Vec::with_capacity(128);
    let mut nonce = vec![0u8; nonce_len];
    let mut n = 0u64;
    move || {
        n += 1;
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        buf.clear();
        buf.extend_from_slice(&[b'x'; 60]);
        cipher
            .encrypt_in_place(
                nonce.as_slice().into(),
                b"store id, generation, seq",
                &mut buf,
            )
            .unwrap();
        black_box(&buf);
    }
}

fn encryption(c: &mut Criterion) {
    let mut g = c.benchmark_group("cipher");
    let mut siv = seal_with::<aes_gcm_siv::Aes256GcmSiv>(12);
    g.bench_function("seal 60 B/AES-256-GCM-SIV (chosen)", |b| b.iter(&mut siv));
    let mut gcm = seal_with::<aes_gcm::Aes256Gcm>(12);
    g.bench_function("seal 60 B/AES-256-GCM", |b| b.iter(&mut gcm));
    let mut xchacha = seal_with::<chacha20poly1305::XChaCha20Poly1305>(24);
    g.bench_function("seal 60 B/XChaCha20-Poly1305", |b| b.iter(&mut xchacha));
    g.finish();

    let dir = common::tempdir();
    let mut extras = Vec::new();
    for (label, durability, rounds, batch) in [
        (
            "P16 encrypted / plain, Flush set_counter",
            Durability::Flush,
            41,
            5000,
        ),
        (
            "P16b encrypted / plain, Sync set_counter",
            Durability::Sync,
            41,
            25,
        ),
    ] {
        let (plain, sealed) = (
            store(dir.path(), durability, false),
            store(dir.path(), durability, true),
        );
        let mut n = 0u64;
        let mut run_sealed = || {
            n += 1;
            sealed.set_counter(black_box(n)).unwrap();
        };
        let mut m = 0u64;
        let mut run_plain = || {
            m += 1;
            plain.set_counter(black_box(m)).unwrap();
        };
        let (ts, tp, r) = common::paired(&mut run_sealed, &mut run_plain, rounds, batch);
        eprintln!(
            "encryption: paired {label}: encrypted {ts:.2} us/op, plain {tp:.2} us/op, ratio {r:.2}"
        );
        extras.push((label, r));
        drop((plain, sealed));
        let _ = std::fs::remove_dir_all(dir.path());
        std::fs::create_dir_all(dir.path()).unwrap();
    }
    common::record_extra("encryption", &extras);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = encryption
}
criterion_main!(benches);
