//! The on-disk journal and bincode snapshot formats, written again from
//! their spec (the `//!` docs of `engine/journal/mod.rs` and
//! `format/bincode.rs`) without calling the engine's encoders, so tests can
//! build valid frames around damaged payloads and a mistake in the engine's
//! encoder is not copied into the inputs that check it.

use crate::Format;

/// XORed into every CRC-32C so that all-zero bytes never verify.
const MASK: u32 = 0xA5C3_5A3C;

/// The masked CRC-32C of `parts` laid end to end.
pub fn checksum(parts: &[&[u8]]) -> u32 {
    parts
        .iter()
        .fold(0, |crc, part| crc32c::crc32c_append(crc, part))
        ^ MASK
}

/// The fingerprint a journal header and an intent give a snapshot: xxh3.
pub fn fingerprint(snapshot: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(snapshot)
}

/// A version 1 journal header tying it to the snapshot whose fingerprint
/// is `base`.
pub fn encode_header(format: Format, base: u64, seq: u64) -> Vec<u8> {
    encode_header_version(format, 1, base, seq)
}

/// A journal header of `version` (1 or 2).
pub fn encode_header_version(format: Format, version: u8, base: u64, seq: u64) -> Vec<u8> {
    if format == Format::Bincode {
        let mut out = b"PSTJ".to_vec();
        out.extend_from_slice(&[version, 3]);
        out.extend_from_slice(&base.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        let crc = checksum(&[&out]);
        out.extend_from_slice(&crc.to_le_bytes());
        return out;
    }
    let name = match format {
        Format::Yaml => "yaml",
        Format::Toml => "toml",
        Format::Json => "json",
        Format::Bincode => "bincode",
    };
    let body = format!("# persisted-journal v{version} {name} base={base:016x} seq={seq}");
    let crc = checksum(&[body.as_bytes()]);
    format!("{body} crc={crc:08x}\n").into_bytes()
}

/// Appends a record with a valid frame to `out`; `tag` is `b'@'` (a
/// commit) or `b'!'` (a compaction intent).
pub fn encode_record(format: Format, tag: u8, seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = payload.len() as u32;
    let crc = checksum(&[&[tag], &seq.to_le_bytes(), &len.to_le_bytes(), payload]);
    if format == Format::Bincode {
        out.push(if tag == b'!' { 0xC1 } else { 0xC0 });
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
    } else {
        let prefix = if format == Format::Yaml { "--- # " } else { "" };
        out.extend_from_slice(format!("{prefix}{}{seq} {len} {crc:08x}\n", tag as char).as_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a version 2 record: the frame also carries the commit time and
/// the fields list (`=name`/`+name`, comma-separated; `-` none; `*`
/// unknown), both covered by the checksum.
pub fn encode_record_v2(
    format: Format,
    tag: u8,
    seq: u64,
    time_ms: u64,
    fields: &[u8],
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let len = payload.len() as u32;
    let crc = checksum(&[
        &[tag],
        &seq.to_le_bytes(),
        &len.to_le_bytes(),
        &time_ms.to_le_bytes(),
        &(fields.len() as u32).to_le_bytes(),
        fields,
        payload,
    ]);
    if format == Format::Bincode {
        out.push(if tag == b'!' { 0xC1 } else { 0xC0 });
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&time_ms.to_le_bytes());
        out.extend_from_slice(&(fields.len() as u16).to_le_bytes());
        out.extend_from_slice(fields);
    } else {
        let prefix = if format == Format::Yaml { "--- # " } else { "" };
        out.extend_from_slice(
            format!("{prefix}{}{seq} {len} {crc:08x} {time_ms} ", tag as char).as_bytes(),
        );
        out.extend_from_slice(fields);
        out.push(b'\n');
    }
    out.extend_from_slice(payload);
}

/// The payload of an intent record naming the snapshot `fingerprint`.
pub fn intent_payload(format: Format, fingerprint: u64) -> Vec<u8> {
    match format {
        Format::Bincode => fingerprint.to_le_bytes().to_vec(),
        _ => format!("# compaction fingerprint={fingerprint:016x}\n").into_bytes(),
    }
}

/// A bincode snapshot around `payload`: `PSTB | 1 | len u64 | crc u32`.
pub fn bincode_snapshot(payload: &[u8]) -> Vec<u8> {
    let mut out = b"PSTB".to_vec();
    out.push(1);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&[payload]).to_le_bytes());
    out.extend_from_slice(payload);
    out
}
