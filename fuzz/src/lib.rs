//! Turns fuzzer bytes into a snapshot and a journal and opens them on the
//! in-memory disk of `persisted_state_core::__fuzz` (T16, RELIABILITY.md).
//!
//! The checksums on disk would stop a byte-level fuzzer at the frame, so
//! the first input byte picks a mode; some modes build valid frames and
//! checksums (`persisted_state_core::__fuzz::spec`, written from the format spec) around the
//! fuzzed bytes so the payload parsers see them. Nothing here may panic:
//! a crash is always the library's.

use std::sync::OnceLock;

use persisted_state_core::__fuzz::spec::{
    bincode_snapshot, encode_header, encode_record, fingerprint, intent_payload,
};
use persisted_state_core::{__fuzz, Format};

fn open(format: Format, snapshot: &[u8], journal: Option<&[u8]>) {
    __fuzz::open(format, snapshot, journal);
}

/// A format's seed files and the `seq` of the seed journal's header.
struct Seed {
    snapshot: Vec<u8>,
    journal: Vec<u8>,
    header_seq: u64,
}

fn seed(format: Format) -> &'static Seed {
    static SEEDS: [OnceLock<Seed>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = match format {
        Format::Json => 0,
        Format::Yaml => 1,
        Format::Toml => 2,
        _ => 3,
    };
    SEEDS[slot].get_or_init(|| {
        let (snapshot, journal) = __fuzz::seed_files(format);
        let header_seq = if format == Format::Bincode {
            u64::from_le_bytes(journal[14..22].try_into().expect("a bincode header"))
        } else {
            let end = journal
                .iter()
                .position(|&b| b == b'\n')
                .expect("a header line");
            String::from_utf8_lossy(&journal[..end])
                .split(' ')
                .find_map(|w| w.strip_prefix("seq=").map(str::to_string))
                .and_then(|w| w.parse().ok())
                .expect("seq= in the header")
        };
        Seed {
            snapshot,
            journal,
            header_seq,
        }
    })
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    for (i, b) in data.iter().skip(at).take(8).enumerate() {
        bytes[i] = *b;
    }
    u64::from_le_bytes(bytes)
}

/// Re-framed records: after a flags byte (bit 0: the header `seq` is the
/// next 8 bytes; bit 1: the header's base is not the snapshot's; bit 2:
/// sequence gaps allowed), chunks of `<b> <payload>`: `b & 0x7f` payload
/// bytes, an intent record when `b & 0x80`.
fn reframed_journal(format: Format, seed: &Seed, data: &[u8]) -> Vec<u8> {
    let Some((&flags, mut rest)) = data.split_first() else {
        return encode_header(format, fingerprint(&seed.snapshot), seed.header_seq);
    };
    let header_seq = if flags & 1 != 0 {
        let seq = u64_at(rest, 0);
        rest = rest.get(8..).unwrap_or_default();
        seq
    } else {
        seed.header_seq
    };
    let base = if flags & 2 != 0 {
        fingerprint(rest)
    } else {
        fingerprint(&seed.snapshot)
    };
    let mut out = encode_header(format, base, header_seq);
    let mut seq = header_seq;
    while let Some((&b, tail)) = rest.split_first() {
        let len = usize::from(b & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        let step = if flags & 4 != 0 && chunk.first() == Some(&0xff) {
            2
        } else {
            1
        };
        seq = seq.wrapping_add(step);
        let tag = if b & 0x80 != 0 { b'!' } else { b'@' };
        let mut payload = if tag == b'!' && chunk.is_empty() {
            // A well-formed intent naming the snapshot.
            intent_payload(format, fingerprint(&seed.snapshot))
        } else {
            chunk.to_vec()
        };
        if format != Format::Bincode && payload.last() != Some(&b'\n') {
            payload.push(b'\n');
        }
        encode_record(format, tag, seq, &payload, &mut out);
    }
    out
}

/// The seed snapshot of `format` with a journal made from `data`. The
/// first byte picks how: 0 the bytes as they are, 1 byte edits of the
/// seed journal (`<offset u16> <value>` triples), 2 the seed journal with
/// the bytes appended, 3 re-framed records (see `reframed_journal`).
pub fn journal(format: Format, data: &[u8]) {
    let seed = seed(format);
    let Some((&mode, rest)) = data.split_first() else {
        open(format, &seed.snapshot, Some(&[]));
        return;
    };
    let journal = match mode % 4 {
        0 => rest.to_vec(),
        1 => {
            let mut journal = seed.journal.clone();
            let edits = rest.chunks_exact(3);
            let remainder = edits.remainder().first().copied();
            for edit in edits {
                let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % journal.len();
                journal[at] = edit[2];
            }
            if let Some(cut) = remainder {
                let keep = journal.len() - usize::from(cut) % journal.len();
                journal.truncate(keep);
            }
            journal
        }
        2 => {
            let mut journal = seed.journal.clone();
            journal.extend_from_slice(rest);
            journal
        }
        _ => reframed_journal(format, seed, rest),
    };
    open(format, &seed.snapshot, Some(&journal));
}

/// A snapshot made from `data`, alone or beside the seed journal. The
/// first byte's bit 0 adds the seed journal; for bincode, bit 1 wraps the
/// bytes in a valid header and checksum so the decoder sees them.
pub fn snapshot(format: Format, data: &[u8]) {
    let seed = seed(format);
    let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let snapshot = if format == Format::Bincode && flags & 2 != 0 {
        bincode_snapshot(rest)
    } else {
        rest.to_vec()
    };
    let journal = (flags & 1 != 0).then_some(&seed.journal[..]);
    open(format, &snapshot, journal);
}
