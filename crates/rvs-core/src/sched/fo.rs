//! fo — Weighted Failover (kernel-semantics §4.12).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_fo.c` (`ip_vs_fo_schedule`): the dest with the highest
//! weight among those that are not OVERLOAD and have weight > 0; ties go to the first in list
//! order (strict `>`).

use super::{Dests, SchedInput, Scheduler, weight};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Weighted Failover.
#[doc(alias = "ip_vs_fo_schedule")]
#[derive(Debug, Default)]
pub struct Fo;

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let mut best = None;
        let mut hw = 0;
        for (id, d) in dests.iter() {
            let w = weight(d);
            if !d.overload && w > hw {
                best = Some(id);
                hw = w;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    #[test]
    fn fo_highest_weight_with_changes_spec_4_12() {
        let mut s = Fo;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 3);
        let b = svc.add(&mut s, "10.0.0.2", 2);
        let c = svc.add(&mut s, "10.0.0.3", 1);
        let inp = input("10.0.1.2");
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        // Connections do not matter.
        svc.d(a).activeconns = 1000;
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        // Fail over to the next weight, then back.
        svc.d(a).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
        svc.d(a).overload = false;
        svc.set_weight(&mut s, a, 0);
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
        // Tie: .3 raised to 2 comes first in list order.
        svc.set_weight(&mut s, c, 2);
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
        svc.set_weight(&mut s, b, 0);
        svc.set_weight(&mut s, c, 0);
        assert_eq!(svc.pick(&mut s, &inp), None);
    }
}
