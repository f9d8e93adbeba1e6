//! Latency histograms: log-linear buckets (HDR-style), so a run of ten million connections
//! keeps a few kilobytes per histogram and percentiles stay within the bucket precision.
//!
//! `Hist<B>` has `2^B` sub-buckets per power of two: values below `2^(B+1)` are exact, larger
//! ones are kept within a relative error of `2^-B` (B = 6: 1.6 %; B = 3: 12.5 %). A percentile
//! is reported as the middle of its bucket.

use serde::Serialize;

/// A log-linear histogram of non-negative integers (the simulator records microseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hist<const B: u32> {
    counts: Vec<u64>,
    n: u64,
    max: u64,
    sum: u128,
}

impl<const B: u32> Hist<B> {
    const SUB: u64 = 1 << B;

    /// The bucket of value `v`.
    #[inline]
    fn index(v: u64) -> usize {
        if v < 2 * Self::SUB {
            v as usize
        } else {
            let e = 63 - v.leading_zeros(); // >= B + 1
            let shift = e - B;
            ((shift as u64) * Self::SUB + (v >> shift)) as usize
        }
    }

    /// Lowest and highest value of bucket `i`.
    fn bounds(i: usize) -> (u64, u64) {
        let i = i as u64;
        if i < 2 * Self::SUB {
            (i, i)
        } else {
            let shift = i / Self::SUB - 1;
            let m = i % Self::SUB + Self::SUB;
            (m << shift, ((m + 1) << shift) - 1)
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        let i = Self::index(v);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.n += 1;
        self.sum += v as u128;
        if v > self.max {
            self.max = v;
        }
    }

    /// Number of values.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether no value was recorded.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The largest value (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (exact).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }

    /// The `p`-quantile (`0 < p <= 1`, nearest rank), as the middle of its bucket (never above
    /// the exact maximum); `None` when empty.
    pub fn quantile(&self, p: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((p * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = Self::bounds(i);
                return Some((lo + (hi - lo) / 2).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.n += other.n;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The usual summary, in milliseconds.
    pub fn summary_ms(&self) -> LatencySummary {
        let ms = |v: Option<u64>| v.map(|x| x as f64 / 1000.0);
        LatencySummary {
            count: self.n,
            mean_ms: (self.n > 0).then(|| self.mean() / 1000.0),
            p50_ms: ms(self.quantile(0.5)),
            p90_ms: ms(self.quantile(0.9)),
            p99_ms: ms(self.quantile(0.99)),
            p999_ms: ms(self.quantile(0.999)),
            max_ms: ms((self.n > 0).then_some(self.max)),
        }
    }
}

/// Percentiles of a latency histogram, in milliseconds (`None` when there is no value).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Values.
    pub count: u64,
    /// Mean.
    pub mean_ms: Option<f64>,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Maximum (exact).
    pub max_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise() {
        let mut prev_hi = None;
        for i in 0..2000usize {
            let (lo, hi) = Hist::<6>::bounds(i);
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "bucket {i}");
            }
            assert_eq!(Hist::<6>::index(lo), i);
            assert_eq!(Hist::<6>::index(hi), i);
            assert!((hi - lo) as f64 <= lo as f64 / 64.0 + 1.0);
            prev_hi = Some(hi);
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::<6>::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5).unwrap() as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.02, "{p50}");
        assert_eq!(h.quantile(1.0), Some(1_000_000));
        assert_eq!(h.max(), 1_000_000);
        let mut g = Hist::<6>::default();
        g.record(5);
        g.merge(&h);
        assert_eq!(g.len(), 1001);
        assert_eq!(g.quantile(0.0001), Some(5));
        assert!(Hist::<3>::default().quantile(0.5).is_none());
    }
}
