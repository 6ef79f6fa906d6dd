//! Encoding and decoding of the journal header and record frames (the
//! layout is specified in the parent module's documentation).

use crate::checksum::checksum;
use crate::options::Format;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A committed change set.
    Commit,
    /// A compaction is about to replace the snapshot with one whose
    /// fingerprint the payload holds.
    Intent,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Commit => b'@',
            Kind::Intent => b'!',
        }
    }

    fn from_tag(tag: u8) -> Option<Kind> {
        match tag {
            b'@' => Some(Kind::Commit),
            b'!' => Some(Kind::Intent),
            _ => None,
        }
    }

    fn binary_tag(self) -> u8 {
        match self {
            Kind::Commit => 0xC0,
            Kind::Intent => 0xC1,
        }
    }

    fn from_binary_tag(tag: u8) -> Option<Kind> {
        match tag {
            0xC0 => Some(Kind::Commit),
            0xC1 => Some(Kind::Intent),
            _ => None,
        }
    }
}

/// The journal's first line (or first 26 bytes for bincode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) format: Format,
    /// Fingerprint of the snapshot bytes the records apply to.
    pub(crate) base: u64,
    /// The sequence number the snapshot is at; the first record is `seq + 1`.
    pub(crate) seq: u64,
}

/// A verified record inside the journal bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) seq: u64,
    /// Offset of the first payload byte.
    pub(crate) payload_at: usize,
    /// Offset just past the record.
    pub(crate) end: usize,
}

const BINARY_MAGIC: &[u8; 4] = b"PSTJ";
const BINARY_HEADER: usize = 4 + 1 + 1 + 8 + 8 + 4;
const BINARY_FRAME: usize = 1 + 8 + 4 + 4;
/// The longest frame line a text reader looks at before calling it garbage.
const MAX_FRAME_LINE: usize = 80;
/// Records longer than this are refused when written and invalid when read.
pub(crate) const MAX_RECORD: usize = u32::MAX as usize;

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Yaml => "yaml",
        Format::Toml => "toml",
        Format::Bincode => "bincode",
    }
}

/// The format byte of a binary header. Only bincode journals are binary,
/// so only bincode's byte is written; JSON's and YAML's are still read,
/// to name the mismatch. TOML journals are text and have none.
const BINCODE_FORMAT_BYTE: u8 = 3;

fn format_from_byte(byte: u8) -> Option<Format> {
    match byte {
        1 => Some(Format::Json),
        2 => Some(Format::Yaml),
        BINCODE_FORMAT_BYTE => Some(Format::Bincode),
        _ => None,
    }
}

/// The text a frame line starts with: YAML frames are document starts with
/// a comment, so the journal stays a valid YAML stream. JSON and TOML
/// journals (whose payloads are JSON lines) have none.
fn text_prefix(format: Format) -> &'static [u8] {
    match format {
        Format::Yaml => b"--- # ",
        Format::Json | Format::Toml | Format::Bincode => b"",
    }
}

pub(crate) fn encode_header(header: Header) -> Vec<u8> {
    if header.format == Format::Bincode {
        let mut out = Vec::with_capacity(BINARY_HEADER);
        out.extend_from_slice(BINARY_MAGIC);
        out.push(1);
        out.push(BINCODE_FORMAT_BYTE);
        out.extend_from_slice(&header.base.to_le_bytes());
        out.extend_from_slice(&header.seq.to_le_bytes());
        let crc = checksum(&[&out]);
        out.extend_from_slice(&crc.to_le_bytes());
        return out;
    }
    let body = format!(
        "# persisted-journal v1 {} base={:016x} seq={}",
        format_name(header.format),
        header.base,
        header.seq
    );
    let crc = checksum(&[body.as_bytes()]);
    format!("{body} crc={crc:08x}\n").into_bytes()
}

/// True when `bytes` (a journal whose header does not verify) end inside
/// the header: a text journal without one line break, or fewer bytes than
/// a binary header that start like one. No record can follow such a cut.
pub(crate) fn is_cut_header(bytes: &[u8]) -> bool {
    if bytes.first() == Some(&BINARY_MAGIC[0]) {
        let n = bytes.len().min(BINARY_MAGIC.len());
        return bytes.len() < BINARY_HEADER && bytes[..n] == BINARY_MAGIC[..n];
    }
    !bytes.contains(&b'\n')
}

/// Parses the header at the start of `bytes`; returns it and its length.
pub(crate) fn decode_header(bytes: &[u8]) -> Option<(Header, usize)> {
    if bytes.starts_with(BINARY_MAGIC) {
        let raw = bytes.get(..BINARY_HEADER)?;
        let (body, crc) = raw.split_at(BINARY_HEADER - 4);
        if raw[4] != 1 || checksum(&[body]) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let header = Header {
            format: format_from_byte(raw[5])?,
            base: u64::from_le_bytes(raw[6..14].try_into().ok()?),
            seq: u64::from_le_bytes(raw[14..22].try_into().ok()?),
        };
        return Some((header, BINARY_HEADER));
    }
    let line_end = bytes.iter().take(200).position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..line_end]).ok()?;
    let (body, crc) = line.rsplit_once(" crc=")?;
    if u64::from(checksum(&[body.as_bytes()])) != parse_hex(crc)? {
        return None;
    }
    let mut words = body.strip_prefix("# persisted-journal v1 ")?.split(' ');
    let format = match words.next()? {
        "json" => Format::Json,
        "yaml" => Format::Yaml,
        "toml" => Format::Toml,
        _ => return None,
    };
    let base = parse_hex(words.next()?.strip_prefix("base=")?)?;
    let seq = words.next()?.strip_prefix("seq=")?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    Some((Header { format, base, seq }, line_end + 1))
}

fn record_checksum(kind: Kind, seq: u64, payload: &[u8]) -> u32 {
    checksum(&[
        &[kind.tag()],
        &seq.to_le_bytes(),
        &(payload.len() as u32).to_le_bytes(),
        payload,
    ])
}

/// Appends one framed record to `out`.
pub(crate) fn encode_frame(
    format: Format,
    kind: Kind,
    seq: u64,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let crc = record_checksum(kind, seq, payload);
    if format == Format::Bincode {
        out.push(kind.binary_tag());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
    } else {
        use std::io::Write;
        out.extend_from_slice(text_prefix(format));
        // Writing into a Vec cannot fail.
        let _ = writeln!(
            out,
            "{}{seq} {} {crc:08x}",
            kind.tag() as char,
            payload.len()
        );
    }
    out.extend_from_slice(payload);
}

/// Decodes and verifies the record starting at `at`; `None` when the bytes
/// there are not a whole, valid record (torn, zeroed, garbage, corrupt).
pub(crate) fn decode_frame(format: Format, bytes: &[u8], at: usize) -> Option<Frame> {
    let rest = bytes.get(at..)?;
    let (kind, seq, len, crc, header_len) = if format == Format::Bincode {
        let raw = rest.get(..BINARY_FRAME)?;
        (
            Kind::from_binary_tag(raw[0])?,
            u64::from_le_bytes(raw[1..9].try_into().ok()?),
            u32::from_le_bytes(raw[9..13].try_into().ok()?) as usize,
            u32::from_le_bytes(raw[13..17].try_into().ok()?),
            BINARY_FRAME,
        )
    } else {
        let rest = rest.strip_prefix(text_prefix(format))?;
        let prefix_len = text_prefix(format).len();
        let line_len = rest.iter().take(MAX_FRAME_LINE).position(|&b| b == b'\n')?;
        let line = std::str::from_utf8(&rest[..line_len]).ok()?;
        let kind = Kind::from_tag(*line.as_bytes().first()?)?;
        let mut words = line[1..].split(' ');
        let seq = parse_decimal(words.next()?)?;
        let len = usize::try_from(parse_decimal(words.next()?)?).ok()?;
        let crc_word = words.next()?;
        if crc_word.len() != 8 || words.next().is_some() {
            return None;
        }
        let crc = u32::try_from(parse_hex(crc_word)?).ok()?;
        (kind, seq, len, crc, prefix_len + line_len + 1)
    };
    if len > MAX_RECORD {
        return None;
    }
    let payload_at = at + header_len;
    let end = payload_at.checked_add(len)?;
    let payload = bytes.get(payload_at..end)?;
    if record_checksum(kind, seq, payload) != crc {
        return None;
    }
    if format != Format::Bincode && payload.last() != Some(&b'\n') {
        return None;
    }
    Some(Frame {
        kind,
        seq,
        payload_at,
        end,
    })
}

/// Strict lowercase hex, as written: any other spelling of the same number
/// is a changed byte and must not verify.
fn parse_hex(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(word, 16).ok()
}

/// Strict decimal: digits only, no sign, no leading `+`.
fn parse_decimal(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok()
}

/// The payload of an intent record, naming the new snapshot's fingerprint.
pub(crate) fn encode_intent(format: Format, fingerprint: u64) -> Vec<u8> {
    if format == Format::Bincode {
        fingerprint.to_le_bytes().to_vec()
    } else {
        format!("# compaction fingerprint={fingerprint:016x}\n").into_bytes()
    }
}

pub(crate) fn decode_intent(format: Format, payload: &[u8]) -> Option<u64> {
    if format == Format::Bincode {
        return Some(u64::from_le_bytes(payload.try_into().ok()?));
    }
    let text = std::str::from_utf8(payload).ok()?;
    let hex = text
        .strip_prefix("# compaction fingerprint=")?
        .strip_suffix('\n')?;
    parse_hex(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: [Format; 4] = [Format::Json, Format::Yaml, Format::Toml, Format::Bincode];

    #[test]
    fn a_text_frame_whose_payload_does_not_end_its_line_is_invalid() {
        for format in [Format::Json, Format::Yaml, Format::Toml] {
            // A frame whose length and checksum match a payload without its
            // final newline: what a record cut just before `\n` would be if
            // its frame had been written for the cut payload.
            let mut out = Vec::new();
            encode_frame(format, Kind::Commit, 1, b"{\"set a\":1}", &mut out);
            assert!(decode_frame(format, &out, 0).is_none(), "{format:?}");
            let mut whole = Vec::new();
            encode_frame(format, Kind::Commit, 1, b"{\"set a\":1}\n", &mut whole);
            assert!(decode_frame(format, &whole, 0).is_some(), "{format:?}");
        }
    }

    #[test]
    fn header_round_trips_and_rejects_any_change() {
        for format in FORMATS {
            let header = Header {
                format,
                base: 0x0123_4567_89ab_cdef,
                seq: 41,
            };
            let bytes = encode_header(header);
            assert_eq!(decode_header(&bytes), Some((header, bytes.len())));
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0x04;
                assert_ne!(
                    decode_header(&bad).map(|h| h.0),
                    Some(header),
                    "{format:?} byte {i}"
                );
            }
        }
    }

    #[test]
    fn frame_round_trips_and_every_cut_is_invalid() {
        for format in FORMATS {
            let mut bytes = Vec::new();
            encode_frame(format, Kind::Commit, 42, b"last_id: 12\n", &mut bytes);
            let frame = decode_frame(format, &bytes, 0).unwrap();
            assert_eq!(
                (frame.kind, frame.seq, frame.end),
                (Kind::Commit, 42, bytes.len())
            );
            assert_eq!(&bytes[frame.payload_at..frame.end], b"last_id: 12\n");
            for cut in 0..bytes.len() {
                assert!(
                    decode_frame(format, &bytes[..cut], 0).is_none(),
                    "{format:?} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn zeros_are_never_a_frame() {
        for format in FORMATS {
            for n in 0..64 {
                assert!(decode_frame(format, &vec![0; n], 0).is_none());
            }
        }
    }

    #[test]
    fn intent_round_trips() {
        for format in FORMATS {
            let payload = encode_intent(format, 77);
            assert_eq!(decode_intent(format, &payload), Some(77));
        }
    }
}
