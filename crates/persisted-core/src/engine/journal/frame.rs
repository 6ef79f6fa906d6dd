//! Encoding and decoding of the journal header and record frames (the
//! layout is specified in the parent module's documentation).

use crate::checksum::checksum;
use std::borrow::Cow;

use crate::crypt::{Crypt, RecordAad, ENVELOPE, MAGIC};
use crate::digits::{push_hex8, push_u64};
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

    pub(crate) fn binary_tag(self) -> u8 {
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

/// The journal format version new journals are written in. Version 1
/// journals are still read, and appended to in version 1.
pub(crate) const VERSION: u8 = 2;

/// How a journal's frames are laid out: its format, its version, and
/// whether it is an encrypted store's (binary frames whatever the format,
/// commit payloads sealed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) format: Format,
    pub(crate) version: u8,
    pub(crate) sealed: bool,
}

impl Layout {
    /// Binary frames: bincode journals, and every encrypted one.
    fn binary(self) -> bool {
        self.format == Format::Bincode || self.sealed
    }
}

/// What a version 2 frame says of its record besides the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta<'a> {
    /// The commit's wall-clock time, in milliseconds since the Unix epoch.
    pub(crate) time_ms: u64,
    /// The fields it touches: `=name` (replaced whole) or `+name` (an
    /// operation), comma-separated; `-` for none, `*` when unknown.
    pub(crate) fields: &'a [u8],
}

/// The journal's first line (or first 26 bytes for bincode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) format: Format,
    /// 1 or 2.
    pub(crate) version: u8,
    /// Fingerprint of the snapshot bytes the records apply to.
    pub(crate) base: u64,
    /// The sequence number the snapshot is at; the first record is `seq + 1`.
    pub(crate) seq: u64,
    /// An encrypted store's journal: an envelope precedes the header.
    pub(crate) sealed: bool,
}

impl Header {
    /// How the records after this header are laid out.
    pub(crate) fn layout(&self) -> Layout {
        Layout {
            format: self.format,
            version: self.version,
            sealed: self.sealed,
        }
    }
}

/// A verified record inside the journal bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) seq: u64,
    /// Version 2: the commit time (ms since the Unix epoch). Written for
    /// history and for people reading the journal; the library does not
    /// read it back yet.
    #[allow(dead_code)]
    pub(crate) time_ms: Option<u64>,
    /// Version 2: where the fields list is in the bytes (`start..end`).
    pub(crate) fields: Option<(usize, usize)>,
    /// Offset of the first payload byte.
    pub(crate) payload_at: usize,
    /// Offset just past the record.
    pub(crate) end: usize,
}

impl Frame {
    /// The fields list as written (`*` when the record could not list
    /// them).
    pub(crate) fn fields_bytes<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        match self.fields {
            Some((start, end)) => &bytes[start..end],
            None => b"*",
        }
    }

    /// The fingerprint this frame's intent record names (in `bytes`, the
    /// buffer it was decoded from); `None` for a commit.
    pub(crate) fn intent(&self, format: Format, bytes: &[u8]) -> Option<u64> {
        match self.kind {
            Kind::Intent => decode_intent(format, &bytes[self.payload_at..self.end]),
            Kind::Commit => None,
        }
    }
}

const BINARY_MAGIC: &[u8; 4] = b"PSTJ";
const BINARY_HEADER: usize = 4 + 1 + 1 + 8 + 8 + 4;
const BINARY_FRAME: usize = 1 + 8 + 4 + 4;
/// A version 2 binary frame's extra: time u64, fields length u16.
const BINARY_META: usize = 8 + 2;
/// The longest frame line a text reader looks at before calling it garbage.
const MAX_FRAME_LINE: usize = 80;
/// The longest fields list written; a longer one is written as `*`.
pub(crate) const MAX_FIELDS: usize = 4000;
/// The same for version 2 lines, which carry the fields list.
const MAX_FRAME_LINE_V2: usize = 128 + MAX_FIELDS;
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

/// The format byte of a binary header (bincode journals, and encrypted
/// ones of every format).
fn format_byte(format: Format) -> u8 {
    match format {
        Format::Json => 1,
        Format::Yaml => 2,
        Format::Bincode => 3,
        Format::Toml => 4,
    }
}

fn format_from_byte(byte: u8) -> Option<Format> {
    match byte {
        1 => Some(Format::Json),
        2 => Some(Format::Yaml),
        3 => Some(Format::Bincode),
        4 => Some(Format::Toml),
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

/// The journal's first bytes: an encrypted store's `envelope` (see
/// `crate::crypt`), then the header, binary for bincode and encrypted
/// journals, a text line otherwise.
pub(crate) fn encode_header(header: Header, envelope: Option<&[u8]>) -> Vec<u8> {
    if header.format == Format::Bincode || envelope.is_some() {
        let mut out = Vec::with_capacity(ENVELOPE + BINARY_HEADER);
        out.extend_from_slice(envelope.unwrap_or_default());
        let start = out.len();
        out.extend_from_slice(BINARY_MAGIC);
        out.push(header.version);
        out.push(format_byte(header.format));
        out.extend_from_slice(&header.base.to_le_bytes());
        out.extend_from_slice(&header.seq.to_le_bytes());
        let crc = checksum(&[&out[start..]]);
        out.extend_from_slice(&crc.to_le_bytes());
        return out;
    }
    let body = format!(
        "# persisted-journal v{} {} base={:016x} seq={}",
        header.version,
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
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] == MAGIC[..n] {
        return bytes.len() < ENVELOPE + BINARY_HEADER;
    }
    if bytes.first() == Some(&BINARY_MAGIC[0]) {
        let n = bytes.len().min(BINARY_MAGIC.len());
        return bytes.len() < BINARY_HEADER && bytes[..n] == BINARY_MAGIC[..n];
    }
    !bytes.contains(&b'\n')
}

/// Parses the header at the start of `bytes`; returns it and its length.
pub(crate) fn decode_header(bytes: &[u8]) -> Option<(Header, usize)> {
    if bytes.starts_with(MAGIC) {
        // An encrypted store's journal: the envelope (checked when the
        // store is unlocked), then a binary header.
        let (header, len) = decode_header(bytes.get(ENVELOPE..)?)?;
        if !bytes[ENVELOPE..].starts_with(BINARY_MAGIC) {
            return None;
        }
        return Some((
            Header {
                sealed: true,
                ..header
            },
            ENVELOPE + len,
        ));
    }
    if bytes.starts_with(BINARY_MAGIC) {
        let raw = bytes.get(..BINARY_HEADER)?;
        let (body, crc) = raw.split_at(BINARY_HEADER - 4);
        let version = raw[4];
        if !(1..=VERSION).contains(&version)
            || checksum(&[body]) != u32::from_le_bytes(crc.try_into().ok()?)
        {
            return None;
        }
        let header = Header {
            format: format_from_byte(raw[5])?,
            version,
            base: u64::from_le_bytes(raw[6..14].try_into().ok()?),
            seq: u64::from_le_bytes(raw[14..22].try_into().ok()?),
            sealed: false,
        };
        return Some((header, BINARY_HEADER));
    }
    let line_end = bytes.iter().take(200).position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..line_end]).ok()?;
    let (body, crc) = line.rsplit_once(" crc=")?;
    if u64::from(checksum(&[body.as_bytes()])) != parse_hex(crc)? {
        return None;
    }
    let mut words = body.strip_prefix("# persisted-journal v")?.split(' ');
    let version = match words.next()? {
        "1" => 1,
        "2" => 2,
        _ => return None,
    };
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
    Some((
        Header {
            format,
            version,
            base,
            seq,
            sealed: false,
        },
        line_end + 1,
    ))
}

fn record_checksum(kind: Kind, seq: u64, meta: Option<Meta<'_>>, payload: &[u8]) -> u32 {
    // The fixed-size parts in one buffer: fewer CRC calls per record (open
    // verifies every record), the same value as over the parts one by one.
    let mut fixed = [0u8; 1 + 8 + 4 + 8 + 4];
    fixed[0] = kind.tag();
    fixed[1..9].copy_from_slice(&seq.to_le_bytes());
    fixed[9..13].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    match meta {
        None => checksum(&[&fixed[..13], payload]),
        Some(meta) => {
            fixed[13..21].copy_from_slice(&meta.time_ms.to_le_bytes());
            fixed[21..25].copy_from_slice(&(meta.fields.len() as u32).to_le_bytes());
            // A small record (most are) in one buffer and one CRC call.
            let mut small = [0u8; 256];
            let (f, p) = (meta.fields.len(), payload.len());
            if fixed.len() + f + p <= small.len() {
                small[..25].copy_from_slice(&fixed);
                small[25..25 + f].copy_from_slice(meta.fields);
                small[25 + f..25 + f + p].copy_from_slice(payload);
                checksum(&[&small[..25 + f + p]])
            } else {
                checksum(&[&fixed, meta.fields, payload])
            }
        }
    }
}

/// Appends one framed record to `out`; `meta` is written in version 2
/// journals (and must be `Some` there) and ignored in version 1.
pub(crate) fn encode_frame(
    layout: Layout,
    kind: Kind,
    seq: u64,
    meta: Meta<'_>,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let meta = (layout.version >= 2).then_some(meta);
    let crc = record_checksum(kind, seq, meta, payload);
    if layout.binary() {
        out.push(kind.binary_tag());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        if let Some(meta) = meta {
            out.extend_from_slice(&meta.time_ms.to_le_bytes());
            out.extend_from_slice(&(meta.fields.len() as u16).to_le_bytes());
            out.extend_from_slice(meta.fields);
        }
    } else {
        // `<tag><seq> <len> <crc:08x>[ <time_ms> <fields>]\n`, written
        // digit by digit (every commit writes one).
        out.extend_from_slice(text_prefix(layout.format));
        out.push(kind.tag());
        push_u64(out, seq);
        out.push(b' ');
        push_u64(out, payload.len() as u64);
        out.push(b' ');
        push_hex8(out, crc);
        if let Some(meta) = meta {
            out.push(b' ');
            push_u64(out, meta.time_ms);
            out.push(b' ');
            out.extend_from_slice(meta.fields);
        }
        out.push(b'\n');
    }
    out.extend_from_slice(payload);
}

/// Decodes and verifies the record starting at `at`; `None` when the bytes
/// there are not a whole, valid record (torn, zeroed, garbage, corrupt).
pub(crate) fn decode_frame(layout: Layout, bytes: &[u8], at: usize) -> Option<Frame> {
    let v2 = layout.version >= 2;
    let rest = bytes.get(at..)?;
    let (kind, seq, len, crc, meta, header_len) = if layout.binary() {
        let raw = rest.get(..BINARY_FRAME)?;
        let fixed = (
            Kind::from_binary_tag(raw[0])?,
            u64::from_le_bytes(raw[1..9].try_into().ok()?),
            u32::from_le_bytes(raw[9..13].try_into().ok()?) as usize,
            u32::from_le_bytes(raw[13..17].try_into().ok()?),
        );
        let (meta, header_len) = if v2 {
            let extra = rest.get(BINARY_FRAME..BINARY_FRAME + BINARY_META)?;
            let time_ms = u64::from_le_bytes(extra[..8].try_into().ok()?);
            let fields_len = u16::from_le_bytes(extra[8..10].try_into().ok()?) as usize;
            let start = at + BINARY_FRAME + BINARY_META;
            (
                Some((time_ms, start, start + fields_len)),
                BINARY_FRAME + BINARY_META + fields_len,
            )
        } else {
            (None, BINARY_FRAME)
        };
        (fixed.0, fixed.1, fixed.2, fixed.3, meta, header_len)
    } else {
        let rest = rest.strip_prefix(text_prefix(layout.format))?;
        let prefix_len = text_prefix(layout.format).len();
        let max_line = if v2 {
            MAX_FRAME_LINE_V2
        } else {
            MAX_FRAME_LINE
        };
        let line_len = memchr::memchr(b'\n', &rest[..rest.len().min(max_line)])?;
        // Parsed as bytes: open reads one frame line per record.
        let line = &rest[..line_len];
        let kind = Kind::from_tag(*line.first()?)?;
        // One pass over the line, word by word (open reads one per record).
        let mut cursor = Words { line, at: 1 };
        let seq = decimal(cursor.word()?)?;
        let len = usize::try_from(decimal(cursor.word()?)?).ok()?;
        let crc_word = cursor.word()?;
        if crc_word.len() != 8 {
            return None;
        }
        let crc = u32::try_from(hex(crc_word)?).ok()?;
        let meta = if v2 {
            let time_ms = decimal(cursor.word()?)?;
            let fields = cursor.word()?;
            if fields.is_empty() {
                return None;
            }
            let start = at + prefix_len + line_len - fields.len();
            Some((time_ms, start, start + fields.len()))
        } else {
            None
        };
        if !cursor.done() {
            return None;
        }
        (kind, seq, len, crc, meta, prefix_len + line_len + 1)
    };
    if len > MAX_RECORD {
        return None;
    }
    let payload_at = at.checked_add(header_len)?;
    let end = payload_at.checked_add(len)?;
    let payload = bytes.get(payload_at..end)?;
    let written = match meta {
        Some((time_ms, start, end)) => Some(Meta {
            time_ms,
            fields: bytes.get(start..end)?,
        }),
        None => None,
    };
    if record_checksum(kind, seq, written, payload) != crc {
        return None;
    }
    if !layout.binary() && payload.last() != Some(&b'\n') {
        return None;
    }
    Some(Frame {
        kind,
        seq,
        time_ms: meta.map(|(time_ms, _, _)| time_ms),
        fields: written
            .filter(|meta| meta.fields != b"*")
            .and(meta.map(|(_, start, end)| (start, end))),
        payload_at,
        end,
    })
}

/// The space-separated words of a frame line, read one at a time.
struct Words<'a> {
    line: &'a [u8],
    /// Where the next word starts; past the end once the last was read.
    at: usize,
}

impl<'a> Words<'a> {
    /// The next word (possibly empty, between two spaces); `None` after
    /// the last.
    fn word(&mut self) -> Option<&'a [u8]> {
        let rest = self.line.get(self.at..)?;
        // Words are short: a plain loop beats a vectorized search here.
        let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.at += len + 1;
        Some(&rest[..len])
    }

    /// True when every word was read.
    fn done(&self) -> bool {
        self.at > self.line.len()
    }
}

/// Strict decimal, as bytes: digits only, no sign, no overflow.
fn decimal(word: &[u8]) -> Option<u64> {
    // Up to 19 digits cannot overflow a u64; longer ones are checked.
    if word.is_empty() || word.len() > 20 {
        return None;
    }
    let mut n = 0u64;
    for &b in &word[..word.len().min(19)] {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + u64::from(digit);
    }
    if let Some(&b) = word.get(19) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(n)
}

/// The value of each lowercase hex digit; 0xff for every other byte.
const HEX_DIGIT: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Strict lowercase hex, as bytes (see [`parse_hex`]).
fn hex(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 16 {
        return None;
    }
    let mut n = 0u64;
    for &b in word {
        let digit = HEX_DIGIT[usize::from(b)];
        if digit == 0xff {
            return None;
        }
        n = n << 4 | u64::from(digit);
    }
    Some(n)
}

/// Strict lowercase hex, as written: any other spelling of the same number
/// is a changed byte and must not verify.
fn parse_hex(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(word, 16).ok()
}

/// The plaintext payload of the commit `frame` in `bytes`: as it is, or
/// opened with `crypt` in an encrypted store's journal; `None` when it does
/// not authenticate (another key, moved, tampered with).
pub(crate) fn commit_payload<'a>(
    crypt: Option<&Crypt>,
    bytes: &'a [u8],
    frame: &Frame,
) -> Option<Cow<'a, [u8]>> {
    let payload = &bytes[frame.payload_at..frame.end];
    let Some(crypt) = crypt else {
        return Some(Cow::Borrowed(payload));
    };
    let aad = RecordAad {
        tag: frame.kind.binary_tag(),
        seq: frame.seq,
        time_ms: frame.time_ms.unwrap_or(0),
        fields: frame.fields_bytes(bytes),
    };
    crypt.open_record(aad, payload).map(Cow::Owned)
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

    /// Every format in both versions.
    fn layouts() -> impl Iterator<Item = Layout> {
        FORMATS.into_iter().flat_map(|format| {
            [1, 2].map(|version| Layout {
                format,
                version,
                sealed: false,
            })
        })
    }

    const META: Meta<'static> = Meta {
        time_ms: 1_764_410_000_123,
        fields: b"=last_id,+processed",
    };

    #[test]
    fn a_text_frame_whose_payload_does_not_end_its_line_is_invalid() {
        for layout in layouts().filter(|l| l.format != Format::Bincode) {
            // A frame whose length and checksum match a payload without its
            // final newline: what a record cut just before `\n` would be if
            // its frame had been written for the cut payload.
            let mut out = Vec::new();
            encode_frame(layout, Kind::Commit, 1, META, b"{\"set a\":1}", &mut out);
            assert!(decode_frame(layout, &out, 0).is_none(), "{layout:?}");
            let mut whole = Vec::new();
            encode_frame(
                layout,
                Kind::Commit,
                1,
                META,
                b"{\"set a\":1}\n",
                &mut whole,
            );
            assert!(decode_frame(layout, &whole, 0).is_some(), "{layout:?}");
        }
    }

    #[test]
    fn header_round_trips_and_rejects_any_change() {
        for layout in layouts() {
            let header = Header {
                format: layout.format,
                version: layout.version,
                base: 0x0123_4567_89ab_cdef,
                seq: 41,
                sealed: false,
            };
            let bytes = encode_header(header, None);
            assert_eq!(decode_header(&bytes), Some((header, bytes.len())));
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0x04;
                assert_ne!(
                    decode_header(&bad).map(|h| h.0),
                    Some(header),
                    "{layout:?} byte {i}"
                );
            }
        }
    }

    #[test]
    fn frame_round_trips_and_every_cut_or_flip_is_invalid() {
        for layout in layouts() {
            let mut bytes = Vec::new();
            encode_frame(layout, Kind::Commit, 42, META, b"last_id: 12\n", &mut bytes);
            let frame = decode_frame(layout, &bytes, 0).unwrap();
            assert_eq!(
                (frame.kind, frame.seq, frame.end),
                (Kind::Commit, 42, bytes.len())
            );
            assert_eq!(&bytes[frame.payload_at..frame.end], b"last_id: 12\n");
            if layout.version == 2 {
                assert_eq!(frame.time_ms, Some(META.time_ms));
                let (start, end) = frame.fields.unwrap();
                assert_eq!(&bytes[start..end], META.fields);
            } else {
                assert_eq!((frame.time_ms, frame.fields), (None, None));
            }
            for cut in 0..bytes.len() {
                assert!(
                    decode_frame(layout, &bytes[..cut], 0).is_none(),
                    "{layout:?} cut {cut}"
                );
            }
            // The time and the fields list are covered by the checksum.
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0x02;
                assert!(
                    decode_frame(layout, &bad, 0)
                        .is_none_or(|f| f.seq != 42 || f.end != bytes.len()),
                    "{layout:?} flip at {i}"
                );
            }
        }
    }

    #[test]
    fn zeros_are_never_a_frame() {
        for layout in layouts() {
            for n in 0..64 {
                assert!(decode_frame(layout, &vec![0; n], 0).is_none());
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
