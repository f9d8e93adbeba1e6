//! The engine has no randomness of its own: the `twos` scheduler draws from a
//! [`RandomSource`] that the caller seeds (or replaces, in tests), so every run is reproducible.

/// A source of uniformly distributed random numbers.
pub trait RandomSource: Send {
    /// A uniformly distributed number in `0..n` (`n > 0`); the kernel's
    /// `get_random_u32_below(n)`.
    fn below(&mut self, n: u32) -> u32;
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough for load balancing.
/// Written here because the engine needs only these ten lines, seeded by its configuration.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SplitMix64 {
    fn below(&mut self, n: u32) -> u32 {
        // Lemire's multiply-shift reduction; the bias for n < 2^32 is below 2^-32.
        (((self.next_u64() >> 32) * n as u64) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_reproducible() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for n in 1..1000u32 {
            let x = a.below(n);
            assert!(x < n);
            assert_eq!(x, b.below(n));
        }
    }
}
