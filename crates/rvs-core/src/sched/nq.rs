//! nq — Never Queue (kernel-semantics §4.6).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_nq.c` (`ip_vs_nq_schedule`): skipping dests that are
//! OVERLOAD or have weight 0, the first dest with no active connection is returned at once;
//! otherwise the one minimising `(active + 1) / weight` (64-bit cross-multiplication, ties keep
//! the earlier dest), as sed.

use super::{Dests, SchedInput, Scheduler, active, weight};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Never Queue.
#[doc(alias = "ip_vs_nq_schedule")]
#[derive(Debug, Default)]
pub struct Nq;

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        // (id, load, weight) of the best so far.
        let mut least: Option<(DestId, i64, i64)> = None;
        for (id, d) in dests.iter() {
            let w = weight(d);
            if d.overload || w == 0 {
                continue;
            }
            if active(d) == 0 {
                return Some(id);
            }
            let doh = active(d).wrapping_add(1) as i64;
            let w = w as i64;
            if least.is_none_or(|(_, loh, lw)| loh * w > doh * lw) {
                least = Some((id, doh, w));
            }
        }
        least.map(|(id, _, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    #[test]
    fn nq_first_idle_wins_immediately_spec_4_6() {
        let mut s = Nq;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 100);
        let c = svc.add(&mut s, "10.0.0.3", 1);
        let inp = input("10.0.1.2");
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
        svc.d(c).activeconns = 1;
        // .2 is busy but has a huge weight; .1 is idle and wins.
        svc.d(b).activeconns = 1;
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        svc.d(a).activeconns = 1;
        // None idle: (1+1)/1, (1+1)/100, (1+1)/1 → .2.
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
    }

    #[test]
    fn nq_ties_and_eligibility_spec_4_6() {
        let mut s = Nq;
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 2);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        let c = svc.add(&mut s, "10.0.0.3", 1);
        let inp = input("10.0.1.2");
        svc.d(a).activeconns = 3; // 4/2 = 2
        svc.d(b).activeconns = 1; // 2/1 = 2
        svc.d(c).activeconns = 1; // 2/1 = 2
        assert_eq!(svc.pick(&mut s, &inp), Some(c));
        svc.set_weight(&mut s, c, 0);
        svc.d(c).activeconns = 0; // idle but weight 0: skipped
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
        svc.d(b).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), Some(a));
        svc.d(a).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), None);
    }
}
