//! Byte-range helpers shared by the header modules.
//!
//! Each header module keeps its own private `field` module of offsets and ranges (the smoltcp
//! pattern); these helpers read and write big-endian integers at such offsets. They index the
//! slice directly, so they may only be called once a `check_len` has proved the range exists.

/// A byte range inside a header.
pub(crate) type Field = core::ops::Range<usize>;

/// Reads a big-endian `u16` at `at`.
#[inline]
pub(crate) fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian `u32` at `at`.
#[inline]
pub(crate) fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a big-endian `u16` at `at`.
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian `u32` at `at`.
#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
