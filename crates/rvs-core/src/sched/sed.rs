//! sed — Shortest Expected Delay (kernel-semantics §4.5).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_sed.c` (`ip_vs_sed_schedule`): like wlc, but the load is
//! `activeconns + 1` (inactive connections are ignored), so it minimises `(active + 1) / weight`.
//! Eligibility (not OVERLOAD, the first needs weight > 0) and ties (earlier dest) as wlc.

use super::{Dests, SchedInput, Scheduler, active, weighted_least};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Shortest Expected Delay.
#[doc(alias = "ip_vs_sed_schedule")]
#[derive(Debug, Default)]
pub struct Sed;

impl Scheduler for Sed {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        weighted_least(dests, |d| active(d).wrapping_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    #[test]
    fn sed_ignores_inactive_and_prefers_weight_spec_4_5() {
        let mut s = Sed;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 2);
        let c = svc.add(&mut s, "10.0.0.3", 3);
        let inp = input("10.0.1.2");
        svc.d(c).inactconns = 1000;
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
        // (2+1)/3 = 1 vs (0+1)/1 = 1 vs (1+1)/2 = 1: all tie → first (.3).
        svc.d(c).activeconns = 2;
        svc.d(b).activeconns = 1;
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
        // (3+1)/3 > (1+1)/2 = (0+1)/1 → .2 (earlier than .1).
        svc.d(c).activeconns = 3;
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
        svc.d(b).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        svc.set_weight(&mut s, a, 0);
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
    }
}
