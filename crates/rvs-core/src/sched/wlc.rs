//! wlc — Weighted Least Connection, ipvsadm's default (kernel-semantics §4.4).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_wlc.c` (`ip_vs_wlc_schedule`): minimises
//! overhead / weight with the overhead `active × 256 + inactive`, comparing
//! `oh(least) × w(dest) > oh(dest) × w(least)` in 64-bit arithmetic. The first dest that is not
//! OVERLOAD with weight > 0 starts; ties keep the earlier dest.

use super::{Dests, SchedInput, Scheduler, conn_overhead, weighted_least};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Weighted Least Connection.
#[doc(alias = "ip_vs_wlc_schedule")]
#[derive(Debug, Default)]
pub struct Wlc;

impl Scheduler for Wlc {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        weighted_least(dests, conn_overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    #[test]
    fn wlc_weighted_ratio_and_ties_spec_4_4() {
        let mut s = Wlc;
        let mut svc = Svc::default();
        svc.add(&mut s, "10.0.0.1", 1);
        svc.add(&mut s, "10.0.0.2", 2);
        svc.add(&mut s, "10.0.0.3", 3);
        let inp = input("10.0.1.2");
        let names: Vec<String> = (0..6)
            .map(|_| {
                let id = svc.pick_count(&mut s, &inp);
                svc.name(id)
            })
            .collect();
        // The kernel's wlc run in results/sched-distribution: rs3 rs2 rs1 rs3 rs2 rs3.
        assert_eq!(
            names,
            [
                "10.0.0.3", "10.0.0.2", "10.0.0.1", "10.0.0.3", "10.0.0.2", "10.0.0.3"
            ]
        );
    }

    #[test]
    fn wlc_weight_zero_never_wins_and_overload_skipped_spec_4_4() {
        let mut s = Wlc;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        let c = svc.add(&mut s, "10.0.0.3", 1);
        svc.d(a).activeconns = 100;
        svc.set_weight(&mut s, c, 0); // first in list, weight 0, idle
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), Some(b));
        svc.d(b).overload = true;
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), Some(a));
        svc.d(a).overload = true;
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), None);
    }

    #[test]
    fn wlc_uses_64_bit_products_spec_4_4() {
        // List .2 (w 1), .1 (w 4096), both with 4096 active conns (overhead 2^20). The test
        // for replacing .2 is 2^20 × 4096 = 2^32 > 2^20 × 1: true in 64 bits, but 0 in 32.
        let mut s = Wlc;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 4096);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        svc.d(a).activeconns = 4096;
        svc.d(b).activeconns = 4096;
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), Some(a));
    }
}
