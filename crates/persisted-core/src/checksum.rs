//! The two hashes on disk: a CRC32C per record (integrity) and an xxh3-64
//! fingerprint of the snapshot bytes a journal applies to (identity).

/// CRC32C over `parts`, XORed with a constant so that an all-zero record
/// (a zero-filled tail after a power cut) never carries a matching zero.
pub(crate) fn checksum(parts: &[&[u8]]) -> u32 {
    const MASK: u32 = 0xA5C3_5A3C;
    parts
        .iter()
        .fold(0, |crc, part| crc32c::crc32c_append(crc, part))
        ^ MASK
}

/// The fingerprint of a snapshot's exact bytes.
pub(crate) fn fingerprint(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_never_checksum_to_zero() {
        for n in 0..4096 {
            let zeros = vec![0u8; n];
            assert_ne!(checksum(&[&zeros]), 0, "{n} zero bytes");
        }
    }

    #[test]
    fn checksum_covers_every_part() {
        assert_ne!(checksum(&[b"ab", b"c"]), checksum(&[b"ab", b"d"]));
        assert_eq!(checksum(&[b"ab", b"c"]), checksum(&[b"abc"]));
    }
}
