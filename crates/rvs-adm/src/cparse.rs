//! The C library number and address parsers ipvsadm uses, with their exact acceptance rules
//! (`strtol`, `atoi`, `inet_aton`, `inet_pton`).

use core::net::{Ipv4Addr, Ipv6Addr};

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `strtol(s, &end, 10)`: the value and how many bytes were consumed (0 when no digits);
/// `None` as value on overflow of a 64-bit `long` (ERANGE).
fn strtol10(s: &[u8]) -> (Option<i64>, usize) {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: i128 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v * 10 + (s[i] - b'0') as i128;
        if v > i64::MAX as i128 + 1 {
            overflow = true;
            v = i64::MAX as i128 + 1;
        }
        i += 1;
    }
    if i == start {
        return (Some(0), 0);
    }
    let v = if neg { -v } else { v };
    if overflow || v > i64::MAX as i128 || v < i64::MIN as i128 {
        (None, i)
    } else {
        (Some(v as i64), i)
    }
}

/// ipvsadm's `string_to_number(s, min, max)`: the whole string must be a base-10 `long` in
/// `min..=max`.
pub(crate) fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let b = s.as_bytes();
    let (v, end) = strtol10(b);
    if end == 0 || end != b.len() {
        return None;
    }
    let v = v?;
    (min <= v && v <= max).then_some(v)
}

/// ipvsadm's `parse_fwmark`: a whole base-10 number in `1..=u32::MAX`.
pub(crate) fn parse_fwmark(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let (v, end) = strtol10(b);
    if end == 0 || end != b.len() {
        return None;
    }
    let v = v?;
    (v > 0 && v <= u32::MAX as i64).then_some(v as u32)
}

/// `atoi`: leading white space, a sign, digits; stops at the first other byte.
pub(crate) fn atoi(s: &str) -> i32 {
    let b = s.as_bytes();
    let (v, _) = strtol10(b);
    v.unwrap_or(0) as i32
}

/// glibc `inet_aton`: one to four dot-separated parts, each decimal, octal (`0` prefix) or hex
/// (`0x` prefix); the last part fills the remaining bytes; trailing white space and anything
/// after it is accepted.
pub(crate) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    let mut i = 0;
    loop {
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        let mut base = 10u64;
        if b[i] == b'0' {
            i += 1;
            if i < b.len() && (b[i] == b'x' || b[i] == b'X') {
                base = 16;
                i += 1;
            } else {
                base = 8;
            }
        }
        let mut val: u64 = 0;
        while i < b.len() {
            let c = b[i];
            let d = if c.is_ascii_digit() {
                if base == 8 && (c == b'8' || c == b'9') {
                    return None;
                }
                (c - b'0') as u64
            } else if base == 16 && c.is_ascii_hexdigit() {
                (c.to_ascii_lowercase() - b'a' + 10) as u64
            } else {
                break;
            };
            val = val * base + d;
            if val > 0xffff_ffff {
                return None;
            }
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            if parts.len() >= 3 || val > 0xff {
                return None;
            }
            parts.push(val);
            i += 1;
            continue;
        }
        if i < b.len() && !is_c_space(b[i]) {
            return None;
        }
        let n = parts.len();
        let max = match n {
            0 => 0xffff_ffff,
            1 => 0xff_ffff,
            2 => 0xffff,
            _ => 0xff,
        };
        if val > max {
            return None;
        }
        let mut addr = val as u32;
        for (k, p) in parts.iter().enumerate() {
            addr |= (*p as u32) << (24 - 8 * k);
        }
        return Some(Ipv4Addr::from(addr));
    }
}

/// `inet_pton(AF_INET6, ...)`.
pub(crate) fn inet_pton6(s: &str) -> Option<Ipv6Addr> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_rules() {
        assert_eq!(string_to_number("80", 0, 65535), Some(80));
        assert_eq!(string_to_number(" +80", 0, 65535), Some(80));
        assert_eq!(string_to_number("80 ", 0, 65535), None);
        assert_eq!(string_to_number("", 0, 65535), None);
        assert_eq!(string_to_number("-1", 0, 65535), None);
        assert_eq!(string_to_number("99999999999999999999", 0, i64::MAX), None);
        assert_eq!(parse_fwmark("4294967295"), Some(u32::MAX));
        assert_eq!(parse_fwmark("0"), None);
        assert_eq!(atoi(" 64abc"), 64);
    }

    #[test]
    fn aton_forms() {
        assert_eq!(inet_aton("10.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("0x0a.0.0.010"), Some(Ipv4Addr::new(10, 0, 0, 8)));
        assert_eq!(
            inet_aton("4294967040"),
            Some(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(inet_aton("1.2.3.4 junk"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("09"), None);
        assert_eq!(inet_aton("host"), None);
        assert_eq!(inet_aton(""), None);
    }
}
