//! The engine's own notion of time. The engine never reads a clock: every entry point takes
//! `now`, and the caller guarantees it never goes backwards (the data plane reads a monotonic
//! clock, the simulator advances a virtual one).

use serde::{Deserialize, Serialize};

/// A point in time, in nanoseconds since an arbitrary epoch chosen by the caller.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Instant(u64);

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }
    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms * 1_000_000)
    }
    /// From seconds since the epoch.
    pub const fn from_secs(s: u64) -> Self {
        Instant(s * NANOS_PER_SEC)
    }
    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Seconds since the epoch, as a float (for reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    /// `self + ns`, saturating.
    pub const fn add_nanos(self, ns: u64) -> Self {
        Instant(self.0.saturating_add(ns))
    }
    /// `self + secs`, saturating.
    pub const fn add_secs(self, secs: u64) -> Self {
        self.add_nanos(secs.saturating_mul(NANOS_PER_SEC))
    }
    /// Nanoseconds from `earlier` to `self` (0 if `earlier` is later).
    pub const fn nanos_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
    /// The engine tick that contains this instant.
    pub const fn tick(self) -> Tick {
        Tick((self.0 / TICK_NANOS) as u32)
    }
}

/// Length of one engine tick: 4 ms, the kernel's jiffy at `CONFIG_HZ=250` (Debian's setting).
/// Connection deadlines are kept in ticks, so 32 bits cover 198 days.
pub const TICK_NANOS: u64 = 4_000_000;
/// Ticks per second.
pub const TICKS_PER_SEC: u32 = 250;

/// A time in engine ticks (4 ms), wrapping after 2^32 ticks (198 days). Comparisons use
/// wrapping arithmetic, like the kernel's `time_after()`, so they are correct for any two ticks
/// less than 99 days apart; the longest timeout the engine accepts (31 days) is far below that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tick(pub u32);

impl Tick {
    /// `self + n` ticks.
    #[inline]
    pub const fn add(self, n: u32) -> Tick {
        Tick(self.0.wrapping_add(n))
    }
    /// Whether `self` is strictly after `other` (the kernel's `time_after`).
    #[inline]
    pub const fn after(self, other: Tick) -> bool {
        (other.0.wrapping_sub(self.0) as i32) < 0
    }
    /// Whether `self` is at or before `other`.
    #[inline]
    pub const fn at_or_before(self, other: Tick) -> bool {
        !self.after(other)
    }
    /// Ticks from `earlier` to `self`, 0 if `self` is not after `earlier`.
    #[inline]
    pub const fn since(self, earlier: Tick) -> u32 {
        if self.after(earlier) {
            self.0.wrapping_sub(earlier.0)
        } else {
            0
        }
    }
}

/// Seconds to ticks, saturating at the largest timeout the engine handles.
pub const fn secs_to_ticks(secs: u32) -> u32 {
    let t = secs as u64 * TICKS_PER_SEC as u64;
    if t > (i32::MAX as u64) {
        i32::MAX as u32
    } else {
        t as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_comparisons_wrap() {
        let a = Tick(u32::MAX - 5);
        let b = a.add(10);
        assert!(b.after(a));
        assert!(!a.after(b));
        assert_eq!(b.since(a), 10);
        assert_eq!(a.since(b), 0);
        assert!(a.at_or_before(a));
    }

    #[test]
    fn instant_to_tick() {
        assert_eq!(Instant::from_millis(7).tick(), Tick(1));
        assert_eq!(Instant::from_secs(1).tick(), Tick(250));
    }
}
