//! Internet checksums (RFC 1071), pseudo-headers, RFC 1624 incremental updates, and CRC32c.
//!
//! Conventions: a *sum* is the folded ones' complement sum of some data (what RFC 1071 calls
//! the sum before the final complement); a *checksum* is the complement of a sum, as written
//! on the wire. A packet verifies when the sum over it, checksum field included (plus the
//! pseudo-header where the protocol has one), is `0xffff`.
//!
//! The NAT hot path never recomputes a full checksum: it accumulates the change of every
//! rewritten 16-bit word in a [`Delta`] and applies it to each checksum field that covers
//! those words ([RFC 1624] eqn. 3: `HC' = ~(~HC + ~m + m')`). A checksum that was wrong before
//! the rewrite stays wrong after it, so a corrupt packet is never "repaired" on the way.
//!
//! SCTP uses CRC32c instead (RFC 9260 appendix A), which is not a ones' complement sum; it is
//! linear over GF(2), though, so [`crc32c_patch`] updates it after a change of a few bytes
//! in O(log n) without reading the rest of the packet.
//!
//! [RFC 1624]: https://www.rfc-editor.org/rfc/rfc1624

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Folds a wide accumulator to 16 bits with end-around carry (the value mod `0xffff`, with a
/// non-zero input never folding to 0).
#[inline]
pub const fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The RFC 1071 ones' complement sum of `data`, not complemented; an odd last byte is padded
/// with a zero byte on the right.
///
/// It adds 64-bit big-endian words with end-around carry and folds at the end: since
/// 2^16 ≡ 1 (mod 0xffff), the sum of wider words folds to the same 16-bit sum, with four times
/// fewer additions than a word-by-word loop.
pub fn data(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(w);
        // After an overflow `s < w <= u64::MAX`, so adding the carry cannot overflow.
        acc = s + carry as u64;
    }
    let mut rest: u64 = 0;
    let mut pairs = chunks.remainder().chunks_exact(2);
    for p in &mut pairs {
        rest += u16::from_be_bytes([p[0], p[1]]) as u64;
    }
    if let [last] = pairs.remainder() {
        rest += (*last as u64) << 8;
    }
    // `fold(acc)` and `rest` are both small: no overflow.
    fold(fold(acc) as u64 + rest)
}

/// Adds 16-bit sums in ones' complement arithmetic.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    let mut acc: u64 = 0;
    for &s in sums {
        acc += s as u64;
    }
    fold(acc)
}

/// Sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768) for `protocol` and an upper-layer
/// length of `len` bytes.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u16::from_be_bytes([s[0], s[1]]) as u64
        + u16::from_be_bytes([s[2], s[3]]) as u64
        + u16::from_be_bytes([d[0], d[1]]) as u64
        + u16::from_be_bytes([d[2], d[3]]) as u64
        + protocol as u64
        + len as u64;
    fold(acc)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1) for `next_header` and an upper-layer length
/// of `len` bytes.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u16 {
    combine(&[
        data(&src.octets()),
        data(&dst.octets()),
        fold(len as u64),
        next_header as u16,
    ])
}

/// Sum of the pseudo-header of either family. Addresses of mixed families are summed as they
/// come (a caller error that no packet of ours produces; it does not panic).
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, len: u32) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // An IPv4 upper-layer length never exceeds 16 bits; a larger value folds.
            combine(&[pseudo_header_v4(s, d, protocol, 0), fold(len as u64)])
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(s, d, protocol, len),
        _ => combine(&[
            addr_sum(src),
            addr_sum(dst),
            protocol as u16,
            fold(len as u64),
        ]),
    }
}

fn addr_sum(a: IpAddr) -> u16 {
    match a {
        IpAddr::V4(a) => data(&a.octets()),
        IpAddr::V6(a) => data(&a.octets()),
    }
}

/// The checksum to write for data whose sum (pseudo-header included) is `sum`.
#[inline]
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// The IPv4 header checksum of `header` as it would be with its checksum field (bytes 10..12)
/// set to zero. `header` is the whole header, options included.
pub fn ipv4_header(header: &[u8]) -> u16 {
    let sum = data(header);
    let current = match header.get(10..12) {
        Some(f) => u16::from_be_bytes([f[0], f[1]]),
        None => 0,
    };
    // Remove the current field from the sum: adding its complement subtracts it.
    !combine(&[sum, !current])
}

/// An accumulated change of ones' complement sums: the RFC 1624 `~m + m'` terms of every
/// rewritten 16-bit word, ready to be applied to each checksum that covers those words.
///
/// ```
/// use rvs_packet::checksum::Delta;
/// let mut d = Delta::ZERO;
/// d.add16(0x1234, 0x4321);
/// // A checksum over the single word 0x1234 is !0x1234; after the rewrite it is !0x4321.
/// assert_eq!(d.apply(!0x1234u16), !0x4321u16);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(u64);

/// Keeps an accumulator below 2^34 without changing its value modulo 0xffff (2^32 ≡ 1).
#[inline]
const fn squash(acc: u64) -> u64 {
    (acc & 0xffff_ffff) + (acc >> 32)
}

impl Delta {
    /// No change.
    pub const ZERO: Delta = Delta(0);

    /// Records that a 16-bit word changed from `old` to `new`.
    #[inline]
    pub fn add16(&mut self, old: u16, new: u16) {
        self.0 = squash(self.0 + (!old) as u64 + new as u64);
    }

    /// Records that a 32-bit big-endian field (two 16-bit words) changed from `old` to `new`.
    ///
    /// Summing 32-bit words is exact: 0xffffffff = 0xffff × 0x10001, so a 32-bit complement
    /// is also a negation modulo 0xffff.
    #[inline]
    pub fn add32(&mut self, old: u32, new: u32) {
        self.0 = squash(self.0 + (!old) as u64 + new as u64);
    }

    /// Records that a 128-bit big-endian field (an IPv6 address) changed from `old` to `new`.
    #[inline]
    pub fn add128(&mut self, old: u128, new: u128) {
        let mut acc = self.0;
        for i in 0..4 {
            let sh = 32 * i;
            acc += (!(old >> sh) as u32) as u64 + ((new >> sh) as u32) as u64;
        }
        self.0 = squash(acc);
    }

    /// Records that the bytes `old` became `new`. Both must have the same length and start at
    /// an even offset of the checksummed data; an odd last byte is the high byte of its word.
    /// Extra bytes of the longer slice are ignored.
    #[inline]
    pub fn add_bytes(&mut self, old: &[u8], new: &[u8]) {
        let n = old.len().min(new.len());
        let (old, new) = (&old[..n], &new[..n]);
        let mut acc = self.0;
        let mut o = old.chunks_exact(4);
        let mut w = new.chunks_exact(4);
        for (a, b) in (&mut o).zip(&mut w) {
            acc += (!u32::from_be_bytes([a[0], a[1], a[2], a[3]])) as u64;
            acc += u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
            acc = squash(acc);
        }
        let (mut o, mut w) = (o.remainder().chunks_exact(2), w.remainder().chunks_exact(2));
        for (a, b) in (&mut o).zip(&mut w) {
            acc += (!u16::from_be_bytes([a[0], a[1]])) as u64;
            acc += u16::from_be_bytes([b[0], b[1]]) as u64;
        }
        if let ([a], [b]) = (o.remainder(), w.remainder()) {
            acc += (!u16::from_be_bytes([*a, 0])) as u64;
            acc += u16::from_be_bytes([*b, 0]) as u64;
        }
        self.0 = squash(acc);
    }

    /// Records that an address changed (4 or 16 bytes). Mixed families are summed as bytes.
    #[inline]
    pub fn add_addr(&mut self, old: IpAddr, new: IpAddr) {
        match (old, new) {
            (IpAddr::V4(a), IpAddr::V4(b)) => self.add32(a.to_bits(), b.to_bits()),
            (IpAddr::V6(a), IpAddr::V6(b)) => self.add128(a.to_bits(), b.to_bits()),
            _ => self.add16(addr_sum(old), addr_sum(new)),
        }
    }

    /// The sum of two changes.
    #[inline]
    pub fn merged(self, other: Delta) -> Delta {
        Delta(squash(self.0 + other.0))
    }

    /// Whether the change is nil in ones' complement arithmetic (`+0` or `-0`).
    #[inline]
    pub fn is_noop(self) -> bool {
        let f = fold(self.0);
        f == 0 || f == 0xffff
    }

    /// Applies the change to a checksum field value (RFC 1624 eqn. 3).
    ///
    /// A nil change returns `check` unchanged, so that a rewrite to the same value leaves the
    /// bytes alone (eqn. 3 would otherwise turn `0xffff` into `0x0000`).
    #[inline]
    pub fn apply(self, check: u16) -> u16 {
        if self.is_noop() {
            return check;
        }
        !fold((!check) as u64 + self.0)
    }
}

/// RFC 1624 eqn. 3 for one 16-bit word: the checksum after the word `old` became `new`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let mut d = Delta::ZERO;
    d.add16(old, new);
    d.apply(check)
}

/// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address).
#[inline]
pub fn update32(check: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let mut d = Delta::ZERO;
    d.add32(u32::from_be_bytes(old), u32::from_be_bytes(new));
    d.apply(check)
}

/// RFC 1624 eqn. 3 for a 128-bit field (an IPv6 address).
#[inline]
pub fn update128(check: u16, old: [u8; 16], new: [u8; 16]) -> u16 {
    let mut d = Delta::ZERO;
    d.add128(u128::from_be_bytes(old), u128::from_be_bytes(new));
    d.apply(check)
}

// ---------------------------------------------------------------------------------------------
// CRC32c (Castagnoli), reflected, as SCTP uses it (RFC 9260 §6.8 and appendix A).
//
// Written by hand rather than taken from the `crc32c` crate: the crate is fast but brings
// unsafe SIMD code, std, and no way to patch a CRC; SCTP is rare enough on a balancer that a
// portable slicing-by-8 table (8 KiB, built at compile time) is plenty.
// ---------------------------------------------------------------------------------------------

/// The reflected Castagnoli polynomial.
const CRC32C_POLY: u32 = 0x82f6_3b78;

const CRC32C_TABLES: [[u32; 256]; 8] = crc32c_tables();

const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ CRC32C_POLY
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut j = 1;
        while j < 8 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            j += 1;
        }
        i += 1;
    }
    t
}

/// Runs the CRC register over `data` (no initial value or final XOR applied here).
fn crc32c_raw(mut crc: u32, data: &[u8]) -> u32 {
    let t = &CRC32C_TABLES;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ b as u32) & 0xff) as usize];
    }
    crc
}

/// CRC32c of `data` (initial value and final XOR `0xffffffff`); `"123456789"` gives
/// `0xe3069283`.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_raw(!0, data)
}

/// CRC32c of the concatenation of `parts`, without copying them together.
pub fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    let mut crc = !0;
    for p in parts {
        crc = crc32c_raw(crc, p);
    }
    !crc
}

/// Multiplies two polynomials modulo the CRC polynomial, in the reflected representation
/// (bit 31 is the coefficient of x^0).
const fn gf2_mulmod(a: u32, mut b: u32) -> u32 {
    let mut p = 0;
    let mut i = 0;
    while i < 32 {
        if a & (1 << (31 - i)) != 0 {
            p ^= b;
        }
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC32C_POLY
        } else {
            b >> 1
        };
        i += 1;
    }
    p
}

/// `X2N[k]` is x^(2^k) modulo the polynomial.
const X2N: [u32; 64] = {
    let mut t = [0u32; 64];
    t[0] = 1 << 30; // x^1
    let mut k = 1;
    while k < 64 {
        t[k] = gf2_mulmod(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// x^(8 * n) modulo the polynomial: the effect of `n` zero bytes on the CRC register.
fn x8n(n: u64) -> u32 {
    let mut p: u32 = 1 << 31; // x^0
    let mut n = n;
    let mut k = 3; // 8 = 2^3
    while n != 0 && k < X2N.len() {
        if n & 1 != 0 {
            p = gf2_mulmod(X2N[k], p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

/// Updates a CRC32c after the bytes `old` of the covered data became `new`, with `trailing`
/// bytes of data after them. Bytes before the change need not be known.
///
/// CRC32c is linear over GF(2): for two messages of the same length, the XOR of their CRCs is
/// the CRC of their XOR taken with a zero register. The XOR of the messages is zero but for the
/// changed bytes, followed by `trailing` zero bytes, whose effect is a multiplication by
/// x^(8·trailing). So an SCTP port rewrite costs about 40 table look-ups and shifts, whatever the
/// packet's length.
pub fn crc32c_patch(crc: u32, old: &[u8], new: &[u8], trailing: usize) -> u32 {
    let n = old.len().min(new.len());
    let mut diff = 0u32;
    for (a, b) in old[..n].iter().zip(&new[..n]) {
        diff = (diff >> 8) ^ CRC32C_TABLES[0][((diff ^ (a ^ b) as u32) & 0xff) as usize];
    }
    if diff == 0 {
        return crc;
    }
    crc ^ gf2_mulmod(x8n(trailing as u64), diff)
}

#[cfg(test)]
mod test {
    use super::*;

    /// A plain word-by-word RFC 1071 sum, as the reference.
    fn slow_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                (c[0] as u16) << 8
            };
            acc += w as u32;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn sum_matches_reference_on_all_lengths() {
        let bytes: [u8; 67] =
            core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(0xa5));
        for n in 0..bytes.len() {
            assert_eq!(data(&bytes[..n]), slow_sum(&bytes[..n]), "len {n}");
        }
        let ff = [0xffu8; 40];
        assert_eq!(data(&ff), 0xffff);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn ipv4_header_checksum_known() {
        // A textbook header: 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header(&h), 0xb861);
        assert_eq!(data(&h), 0xffff);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut h = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let old = [h[16], h[17], h[18], h[19]];
        let new = [10, 1, 2, 3];
        let c = update32(0xb861, old, new);
        h[16..20].copy_from_slice(&new);
        assert_eq!(c, ipv4_header(&h));
        assert_eq!(update16(0x1234, 0xabcd, 0xabcd), 0x1234);
        assert_eq!(
            update16(0xffff, 7, 7),
            0xffff,
            "a nil change keeps the bytes"
        );
    }

    #[test]
    fn wide_adds_equal_word_adds() {
        let old: [u8; 16] = core::array::from_fn(|i| (i as u8).wrapping_mul(91).wrapping_add(7));
        let new: [u8; 16] = core::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ 0xc3);
        let mut words = Delta::ZERO;
        for i in (0..16).step_by(2) {
            words.add16(
                u16::from_be_bytes([old[i], old[i + 1]]),
                u16::from_be_bytes([new[i], new[i + 1]]),
            );
        }
        let mut wide = Delta::ZERO;
        wide.add128(u128::from_be_bytes(old), u128::from_be_bytes(new));
        let mut bytes = Delta::ZERO;
        bytes.add_bytes(&old, &new);
        let mut quads = Delta::ZERO;
        for i in (0..16).step_by(4) {
            let w = |b: &[u8; 16]| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            quads.add32(w(&old), w(&new));
        }
        for c in [0u16, 1, 0x1234, 0xfffe, 0xffff] {
            let want = words.apply(c);
            assert_eq!(wide.apply(c), want);
            assert_eq!(bytes.apply(c), want);
            assert_eq!(quads.apply(c), want);
        }
        // Odd lengths: the last byte is the high byte of a word.
        let mut odd = Delta::ZERO;
        odd.add_bytes(&old[..7], &new[..7]);
        let mut odd_words = Delta::ZERO;
        odd_words.add_bytes(&old[..6], &new[..6]);
        odd_words.add16(
            u16::from_be_bytes([old[6], 0]),
            u16::from_be_bytes([new[6], 0]),
        );
        assert_eq!(odd.apply(0x4321), odd_words.apply(0x4321));
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c_parts(&[b"1234", b"", b"56789"]), 0xe306_9283);
        // 32 bytes of zeros (RFC 3720 B.4 test vector).
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    }

    #[test]
    fn crc32c_patch_matches_recompute() {
        let mut msg: [u8; 301] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for at in [0usize, 1, 5, 100, 297] {
            for trailing_cut in [0usize, 1, 3] {
                let end = msg.len() - trailing_cut;
                if at + 4 > end {
                    continue;
                }
                let before = crc32c(&msg[..end]);
                let old = [msg[at], msg[at + 1], msg[at + 2], msg[at + 3]];
                let new = [old[0] ^ 0x5a, old[1], old[2].wrapping_add(9), 0x77];
                msg[at..at + 4].copy_from_slice(&new);
                let after = crc32c(&msg[..end]);
                let trailing = end - (at + 4);
                assert_eq!(
                    crc32c_patch(before, &old, &new, trailing),
                    after,
                    "at {at} end {end}"
                );
            }
        }
    }
}
