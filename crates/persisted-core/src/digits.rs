//! Numbers written as text without `core::fmt`: every journal commit writes
//! a few (the frame's sequence number, length and time; a YAML payload's
//! integers), and the formatting machinery costs more than the digits.

/// Pairs of decimal digits, "00" to "99".
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `n` in decimal, as `n.to_string()` writes it.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `n` in decimal, as `n.to_string()` writes it.
#[cfg_attr(not(feature = "yaml"), allow(dead_code))] // YAML payloads only
pub(crate) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `n` as 8 lowercase hex digits, as `format!("{n:08x}")` does.
pub(crate) fn push_hex8(out: &mut Vec<u8>, n: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..8).rev() {
        out.push(DIGITS[(n >> (shift * 4)) as usize & 0xf]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_format_would() {
        let mut unsigned = vec![0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1 << 32];
        unsigned.extend([1_795_967_255_638, u64::MAX, u64::MAX - 1]);
        unsigned.extend((0..20).map(|p| 10u64.pow(p)));
        unsigned.extend((1..20).map(|p| 10u64.pow(p) - 1));
        for n in unsigned {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for n in [0, -1, 1, -9, -10, -99, -100, 12_345, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            push_i64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for n in [0, 1, 0xf, 0x10, 0xdead_beef, 0x0123_4567, u32::MAX] {
            let mut out = Vec::new();
            push_hex8(&mut out, n);
            assert_eq!(out, format!("{n:08x}").as_bytes());
        }
    }
}
