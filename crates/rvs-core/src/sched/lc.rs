//! lc — Least Connection (kernel-semantics §4.3).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_lc.c` (`ip_vs_lc_schedule`): among the dests that are not
//! OVERLOAD and whose weight is not 0, the one with the smallest connection overhead
//! (`active × 256 + inactive`, compared as the kernel's `unsigned int`); ties go to the first in
//! list order (strict `<`). Weights play no other part.

use super::{Dests, SchedInput, Scheduler, conn_overhead, weight};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Least Connection.
#[doc(alias = "ip_vs_lc_schedule")]
#[derive(Debug, Default)]
pub struct Lc;

impl Scheduler for Lc {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let mut least: Option<(DestId, u32)> = None;
        for (id, d) in dests.iter() {
            if d.overload || weight(d) == 0 {
                continue;
            }
            let doh = conn_overhead(d) as u32;
            if least.is_none_or(|(_, loh)| doh < loh) {
                least = Some((id, doh));
            }
        }
        least.map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    #[test]
    fn lc_min_overhead_first_wins_ties_spec_4_3() {
        let mut s = Lc;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 5);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        let c = svc.add(&mut s, "10.0.0.3", 1);
        let inp = input("10.0.1.2");
        // All 0: the first in list order (.3, the newest).
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
        // One active connection weighs as 256 inactive ones.
        svc.d(c).activeconns = 1;
        svc.d(b).inactconns = 255;
        svc.d(a).inactconns = 256;
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
        svc.d(b).inactconns = 256;
        // .3 (256), .2 (256), .1 (256): tie → .3.
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
    }

    #[test]
    fn lc_skips_weight_zero_and_overload_spec_4_3() {
        let mut s = Lc;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        svc.d(a).inactconns = 10;
        svc.set_weight(&mut s, b, 0);
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), Some(a));
        svc.d(a).overload = true;
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), None);
    }
}
