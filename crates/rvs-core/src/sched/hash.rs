//! The kernel hash functions the hashing schedulers need (kernel-semantics §4.7–§4.9, test vectors
//! §10.2).
//!
//! - [`hash_32`]: the multiplicative hash of `include/linux/hash.h`, used by sh, dh, lblc and
//!   lblcr to pick a bucket.
//! - [`hsiphash`] / [`hsiphash_u32`]: the 64-bit kernel's `hsiphash` (`lib/siphash.c`), which
//!   there is SipHash-1-3 with two 64-bit key words and the low 32 bits of the result. mh hashes
//!   a 4-byte value with it. (32-bit kernels use HalfSipHash instead and pick other servers;
//!   rvs targets the 64-bit variant, kernel-semantics §4.9.)

/// The golden-ratio multiplier of the kernel's `hash_32` (`GOLDEN_RATIO_32`).
pub const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The kernel's `hash_32(val, bits)`: `val × 0x61C88647 mod 2^32`, keeping the top `bits` bits.
///
/// `bits` is 1..=32 in the kernel; 0 gives 0 here, and values above 32 act as 32.
#[inline]
pub const fn hash_32(val: u32, bits: u32) -> u32 {
    let bits = if bits > 32 { 32 } else { bits };
    // Shift in 64 bits so that `bits == 0` (a shift by 32) is well defined.
    ((val.wrapping_mul(GOLDEN_RATIO_32) as u64) >> (32 - bits)) as u32
}

/// An `hsiphash` key as the 64-bit kernel stores it (`hsiphash_key_t`: two `unsigned long`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HsipKey(pub [u64; 2]);

const C0: u64 = 0x736f_6d65_7073_6575; // "somepseu"
const C1: u64 = 0x646f_7261_6e64_6f6d; // "dorandom"
const C2: u64 = 0x6c79_6765_6e65_7261; // "lygenera"
const C3: u64 = 0x7465_6462_7974_6573; // "tedbytes"

#[derive(Clone, Copy)]
struct Sip([u64; 4]);

impl Sip {
    #[inline(always)]
    fn new(key: &HsipKey) -> Self {
        let [k0, k1] = key.0;
        Sip([C0 ^ k0, C1 ^ k1, C2 ^ k0, C3 ^ k1])
    }

    /// The standard SipRound (rotations 13, 32, 16, 21, 17, 32).
    #[inline(always)]
    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.0;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13);
        v1 ^= v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16);
        v3 ^= v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21);
        v3 ^= v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17);
        v1 ^= v2;
        v2 = v2.rotate_left(32);
        self.0 = [v0, v1, v2, v3];
    }

    /// One compression round for a 64-bit message word.
    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.0[0] ^= m;
    }

    /// Finalisation with three rounds ("1-3"), keeping the low 32 bits.
    #[inline(always)]
    fn finish(mut self, last: u64) -> u32 {
        self.compress(last);
        self.0[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        let [v0, v1, v2, v3] = self.0;
        (v0 ^ v1 ^ v2 ^ v3) as u32
    }
}

/// The 64-bit kernel's `hsiphash(data, len, key)`: SipHash-1-3 truncated to 32 bits.
pub fn hsiphash(data: &[u8], key: &HsipKey) -> u32 {
    let mut s = Sip::new(key);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        s.compress(u64::from_le_bytes(w));
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    let last = ((data.len() as u64) << 56) | u64::from_le_bytes(tail);
    s.finish(last)
}

/// `hsiphash` of a `u32` stored in memory as the x86 kernel stores it (little-endian): the
/// fast form of `hsiphash(&v.to_le_bytes(), key)` that mh uses (kernel-semantics §4.9).
#[inline]
pub fn hsiphash_u32(v: u32, key: &HsipKey) -> u32 {
    Sip::new(key).finish((4u64 << 56) | v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the kernel's KUnit siphash test on 64-bit machines (bytes 00..0f).
    const KUNIT_KEY: HsipKey = HsipKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);

    #[test]
    fn hsiphash_kunit_vectors_spec_10_2() {
        // lib/siphash_kunit.c, hsiphash vectors for inputs 00, 00 01, 00 01 02, ...
        let expected: [u32; 10] = [
            0x050f_c4dc,
            0x7d57_ca93,
            0x4dc7_d44d,
            0xe7dd_f7fb,
            0x88d3_8328,
            0x4953_3b67,
            0xc59f_22a7,
            0x9bb1_1140,
            0x8d29_9a8e,
            0x6c06_3de4,
        ];
        let input: Vec<u8> = (0u8..10).collect();
        for (len, want) in expected.iter().enumerate() {
            assert_eq!(hsiphash(&input[..len], &KUNIT_KEY), *want, "length {len}");
        }
    }

    #[test]
    fn hsiphash_u32_matches_byte_form_spec_10_2() {
        assert_eq!(hsiphash_u32(0x0302_0100, &KUNIT_KEY), 0x88d3_8328);
        let k = HsipKey([2_654_435_761, 2_654_435_761]);
        for v in [0u32, 1, 0xC0A8_0102, u32::MAX, 0x1234_5678] {
            assert_eq!(hsiphash_u32(v, &k), hsiphash(&v.to_le_bytes(), &k));
        }
    }

    #[test]
    fn hash_32_buckets_spec_10_2() {
        // sh/dh bucket of 192.168.1.2 and 10.0.0.5 with 8 bits (port 0).
        assert_eq!(hash_32(0xC0A8_0102, 8), 234);
        assert_eq!(hash_32(0x0A00_0005, 8), 174);
        // sh-port with source port 12345 is added to the folded address.
        assert_eq!(hash_32(0xC0A8_0102u32.wrapping_add(12345), 8), 73);
        assert_eq!(hash_32(0x0A00_0005u32.wrapping_add(12345), 8), 13);
        assert_eq!(hash_32(1, 0), 0);
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
    }
}
