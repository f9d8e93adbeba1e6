//! The kernel's rate estimator (`ip_vs_est.c`, kernel-semantics §6.3): every 2 seconds, for each
//! counter, an exponentially weighted moving average with weight 1/4 in fixed point. Packets and
//! connections are kept scaled by 2^10 per second, bytes by 2^5.

use serde::{Deserialize, Serialize};

use super::Counters;

/// Rates as `ipvsadm --rate` prints them (per second, rounded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets in per second.
    pub inpps: u64,
    /// Packets out per second.
    pub outpps: u64,
    /// Bytes in per second.
    pub inbps: u64,
    /// Bytes out per second.
    pub outbps: u64,
}

/// Estimator state of one stats object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimator {
    last: Counters,
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
}

/// `avg += (sample - avg) >> 2`, in signed 64-bit arithmetic as the kernel does.
#[inline]
fn ewma(avg: &mut u64, sample: u64) {
    let diff = (sample as i64).wrapping_sub(*avg as i64) >> 2;
    *avg = (*avg as i64).wrapping_add(diff) as u64;
}

impl Estimator {
    /// One 2-second tick with the counters as they are now.
    pub fn update(&mut self, now: &Counters) {
        let d = now.since(&self.last);
        self.last = *now;
        ewma(&mut self.cps, d.conns << 9);
        ewma(&mut self.inpps, d.inpkts << 9);
        ewma(&mut self.outpps, d.outpkts << 9);
        ewma(&mut self.inbps, d.inbytes << 4);
        ewma(&mut self.outbps, d.outbytes << 4);
    }

    /// The kernel's `ip_vs_zero_estimator`: the next delta starts from `now`, rates are 0.
    pub fn reset(&mut self, now: &Counters) {
        *self = Estimator {
            last: *now,
            ..Estimator::default()
        };
    }

    /// The kernel's `ip_vs_read_estimator`: rounded per-second rates.
    pub fn rates(&self) -> Rates {
        Rates {
            cps: (self.cps + 0x1FF) >> 10,
            inpps: (self.inpps + 0x1FF) >> 10,
            outpps: (self.outpps + 0x1FF) >> 10,
            inbps: (self.inbps + 0xF) >> 5,
            outbps: (self.outbps + 0xF) >> 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kernel-semantics §6.3: after a step from 0 to a constant rate R, the reported rate is about
    /// R·(1 − 0.75^n) after n ticks.
    #[test]
    fn step_response_spec_6_3() {
        let mut e = Estimator::default();
        let mut c = Counters::default();
        let mut seen = vec![];
        for _ in 0..5 {
            c.inpkts += 2000; // 1000 packets per second over a 2 s tick
            c.inbytes += 2_000_000;
            e.update(&c);
            seen.push((e.rates().inpps, e.rates().inbps));
        }
        assert_eq!(seen[0].0, 250);
        assert_eq!(seen[1].0, 437); // 0.4375 * 1000, floored by the fixed point
        assert_eq!(seen[4].0, 763);
        assert_eq!(seen[0].1, 250_000);
    }

    #[test]
    fn reset_restarts_rates() {
        let mut e = Estimator::default();
        let mut c = Counters {
            conns: 100,
            ..Default::default()
        };
        e.update(&c);
        assert!(e.rates().cps > 0);
        e.reset(&c);
        assert_eq!(e.rates(), Rates::default());
        c.conns += 2;
        e.update(&c);
        assert_eq!(e.rates().cps, 0); // 1 conn/s * 0.25 = 0.25, rounds to 0
    }
}
