//! ovf — Weighted Overflow (kernel-semantics §4.13).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_ovf.c` (`ip_vs_ovf_schedule`): among dests that are not
//! OVERLOAD, have weight ≠ 0 and no more active connections than their weight, the one with the
//! highest weight; ties go to the first in list order. Traffic overflows to the next-highest
//! weight once the top server has more active connections than its weight.

use super::{Dests, SchedInput, Scheduler, active, weight};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Weighted Overflow.
#[doc(alias = "ip_vs_ovf_schedule")]
#[derive(Debug, Default)]
pub struct Ovf;

impl Scheduler for Ovf {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let mut best: Option<(DestId, i32)> = None;
        for (id, d) in dests.iter() {
            let w = weight(d);
            if d.overload || active(d) > w || w == 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((id, w));
            }
        }
        best.map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    #[test]
    fn ovf_overflows_by_active_count_spec_4_13() {
        let mut s = Ovf;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 3);
        let b = svc.add(&mut s, "10.0.0.2", 2);
        let c = svc.add(&mut s, "10.0.0.3", 2);
        let inp = input("10.0.1.2");
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        svc.d(a).activeconns = 3; // active ≤ weight: still eligible
        svc.d(a).inactconns = 1000; // inactive ones do not count
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        svc.d(a).activeconns = 4; // overflow to weight 2: .3 first in list order
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
        svc.d(c).activeconns = 3;
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
        // Weight changes: .1 raised to 4 takes traffic again.
        svc.set_weight(&mut s, a, 4);
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        svc.set_weight(&mut s, a, 0);
        svc.d(b).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), None);
    }
}
