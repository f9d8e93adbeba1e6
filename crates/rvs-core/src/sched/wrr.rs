//! wrr — Weighted Round Robin (kernel-semantics §4.2).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_wrr.c` (`ip_vs_wrr_schedule`, `ip_vs_wrr_dest_changed`,
//! `ip_vs_wrr_init_svc`).
//!
//! State: a cursor (the list head or the position of the last pick), `di` = gcd of the
//! positive weights (1 if none), `mw` = max weight − (di − 1), and `cw`, the current weight
//! threshold. A pick
//! continues after the cursor and takes the first dest that is not OVERLOAD with weight ≥ cw;
//! at the end of the list cw drops by di and the walk restarts from the head; when cw reaches 0
//! it wraps to mw. Passes are bounded so that a fully overloaded service returns `None` after
//! every dest has been checked with cw = 1 (the `last_pass`/`restarted`/`stop` logic of the
//! kernel).
//!
//! Every add, delete or edit resets the cursor to the head and recomputes di and mw; cw becomes
//! mw if it is 0 or above mw, else it is rounded to the next step of the new di.
//!
//! Because a service is created empty (cw = 0) and dests are added one at a time, the cw a
//! service starts with depends on the adds: the first add alone gives di = its weight and
//! mw = 1, hence cw = 1, and later adds keep cw = 1 (it is ≤ mw, and rounding to a step of di
//! gives 1 again). So a new service with weights 3, 2, 1 starts with its cw = 1 pass
//! (C, B, A, A, B, A, ...); the sequence A, B, A, C, B, A of kernel-semantics §4.2's example is
//! what a service gets when wrr is bound to it with the dests already present (init: cw = mw). Both
//! are the same cycle; only the entry point differs.

use super::{Dests, SchedInput, Scheduler, weight};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Weighted Round Robin.
#[doc(alias = "ip_vs_wrr_schedule")]
#[derive(Clone, Copy, Debug)]
pub struct Wrr {
    /// Position of the last pick; `None` is the list head. Valid until the next change, which
    /// resets it.
    cl: Option<usize>,
    /// Current weight.
    cw: i32,
    /// Maximum weight minus (di − 1).
    mw: i32,
    /// Decreasing interval: gcd of the positive weights.
    di: i32,
}

impl Default for Wrr {
    fn default() -> Self {
        // What init_service computes for an empty service.
        Wrr {
            cl: None,
            cw: 0,
            mw: 0,
            di: 1,
        }
    }
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// gcd of the weights > 0, or 1 if there are none (`ip_vs_wrr_gcd_weight`).
fn gcd_weight(dests: Dests<'_>) -> i32 {
    let g = dests
        .iter()
        .map(|(_, d)| weight(d))
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g > 0 { g } else { 1 }
}

/// The largest weight, at least 0 (`ip_vs_wrr_max_weight`).
fn max_weight(dests: Dests<'_>) -> i32 {
    dests.iter().map(|(_, d)| weight(d)).fold(0, i32::max)
}

impl Wrr {
    /// A scheduler for an empty service.
    pub fn new() -> Self {
        Self::default()
    }

    fn recompute(&mut self, dests: Dests<'_>) {
        self.cl = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
    }

    /// The kernel's `ip_vs_wrr_dest_changed`, shared by add, delete and edit.
    #[doc(alias = "ip_vs_wrr_dest_changed")]
    fn changed(&mut self, dests: Dests<'_>) {
        self.recompute(dests);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = ((self.cw / self.di) * self.di).saturating_add(1);
        }
    }
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn init(&mut self, dests: Dests<'_>) {
        self.recompute(dests);
        self.cw = self.mw;
    }

    fn export_state(&self, _dests: Dests<'_>) -> Vec<i64> {
        let cl = self.cl.map_or(-1, |p| p as i64);
        vec![cl, self.cw as i64, self.mw as i64, self.di as i64]
    }

    fn import_state(&mut self, dests: Dests<'_>, state: &[i64]) -> bool {
        let &[cl, cw, mw, di] = state else {
            return false;
        };
        // mw and di follow from the weights: `init` has just computed them.
        if mw != self.mw as i64 || di != self.di as i64 {
            return false;
        }
        let Ok(cw) = i32::try_from(cw) else {
            return false;
        };
        let cl = match cl {
            -1 => None,
            p => match usize::try_from(p) {
                Ok(p) if p < dests.len() => Some(p),
                _ => return false,
            },
        };
        self.cl = cl;
        self.cw = cw;
        true
    }

    fn add_dest(&mut self, dests: Dests<'_>, _id: DestId) {
        self.changed(dests);
    }

    fn del_dest(&mut self, dests: Dests<'_>, _id: DestId, _former_pos: usize) {
        self.changed(dests);
    }

    fn upd_dest(&mut self, dests: Dests<'_>, _id: DestId) {
        self.changed(dests);
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        if self.mw == 0 {
            return None; // "no destination available"
        }
        let order = dests.order;
        // A cursor beyond the list (a change without a callback) counts as the head.
        let last = self.cl.filter(|&c| c < order.len());
        let mut start = last.map_or(0, |c| c + 1);
        let mut last_pass = false;
        let mut restarted = false;
        let mut stop: Option<usize> = None;
        // The largest weight of a dest that is not OVERLOAD (0 if none), once needed.
        let mut top: Option<i32> = None;
        loop {
            for (pos, &id) in order.iter().enumerate().skip(start) {
                let d = dests.get(id);
                if !d.overload && weight(d) >= self.cw {
                    self.cl = Some(pos);
                    return Some(id);
                }
                if stop == Some(pos) {
                    // "all destinations are overloaded"; the cursor stays on `stop`.
                    self.cl = stop;
                    return None;
                }
            }
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    // Every dest was checked with cw = 1: overloaded. The walk ended at the head.
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first pass at cw = 1 only covered the dests after `last`; finish with the
                // ones up to it.
                stop = last;
            }
            start = 0;
            // Shortcut, same result: a full pass with cw above every usable weight finds
            // nothing, and while cw stays above both that weight and di its only effect is
            // cw −= di. Do those passes at once: with a huge weight on an OVERLOAD dest the
            // kernel would walk the list up to ~2^31 times here.
            if stop.is_none() {
                let top = *top.get_or_insert_with(|| {
                    dests
                        .iter()
                        .filter(|(_, d)| !d.overload)
                        .map(|(_, d)| weight(d))
                        .fold(0, i32::max)
                });
                let floor = top.max(self.di) as i64;
                let (cw, di) = (self.cw as i64, self.di as i64);
                if cw > floor {
                    let passes = (cw - floor + di - 1) / di;
                    self.cw = (cw - passes * di) as i32;
                    last_pass = self.cw <= self.di;
                    if last_pass && restarted && last.is_some() {
                        stop = last;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    fn seq(svc: &mut Svc, s: &mut Wrr, n: usize) -> Vec<String> {
        let inp = input("10.0.1.2");
        (0..n)
            .map(|_| {
                let id = svc.pick_count(s, &inp);
                let name = svc.name(id);
                name.rsplit('.').next().unwrap().to_string()
            })
            .collect()
    }

    fn svc_with(s: &mut Wrr, weights: &[(&str, u32)]) -> (Svc, Vec<DestId>) {
        let mut svc = Svc::default();
        s.init(svc.dests());
        let ids = weights.iter().map(|&(a, w)| svc.add(s, a, w)).collect();
        (svc, ids)
    }

    /// Dests already in the service when wrr is bound to it (`ipvsadm -E -s wrr` on an
    /// existing service): `init` sees them all at once. (Another instance takes the add calls.)
    fn bound_after(s: &mut Wrr, weights: &[(&str, u32)]) -> (Svc, Vec<DestId>) {
        let mut svc = Svc::default();
        let ids = weights
            .iter()
            .map(|&(a, w)| svc.add(&mut Wrr::new(), a, w))
            .collect();
        s.init(svc.dests());
        (svc, ids)
    }

    #[test]
    fn wrr_weights_3_2_1_bound_to_existing_dests_spec_4_2() {
        // kernel-semantics §4.2 example: A=.1 (3), B=.2 (2), C=.3 (1), list C, B, A, cw starting at
        // mw = 3.
        let mut s = Wrr::new();
        let (mut svc, _) =
            bound_after(&mut s, &[("10.0.0.1", 3), ("10.0.0.2", 2), ("10.0.0.3", 1)]);
        assert_eq!(
            seq(&mut svc, &mut s, 12),
            ["1", "2", "1", "3", "2", "1", "1", "2", "1", "3", "2", "1"]
        );
    }

    #[test]
    fn wrr_weights_3_2_1_added_one_by_one_spec_4_2() {
        // Added to a new service: after the first add alone, di = 3 and mw = 3 − (3 − 1) = 1,
        // so cw = 1, and later adds keep it (cw ≤ mw, di = 1). The same cycle as above, entered
        // at its cw = 1 pass: C, B, A, then A, B, A.
        let mut s = Wrr::new();
        let (mut svc, _) = svc_with(&mut s, &[("10.0.0.1", 3), ("10.0.0.2", 2), ("10.0.0.3", 1)]);
        assert_eq!(s.cw, 1);
        assert_eq!(
            seq(&mut svc, &mut s, 12),
            ["3", "2", "1", "1", "2", "1", "3", "2", "1", "1", "2", "1"]
        );
    }

    #[test]
    fn wrr_weights_1_2_3_added_in_order_start_at_cw_1_spec_4_2() {
        // The kernel run of results/sched-distribution: rs1 (1), rs2 (2), rs3 (3) added in
        // order leave cw = 1, so the first round is rs3 rs2 rs1.
        let mut s = Wrr::new();
        let (mut svc, _) = svc_with(&mut s, &[("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 3)]);
        assert_eq!(
            seq(&mut svc, &mut s, 12),
            ["3", "2", "1", "3", "3", "2", "3", "2", "1", "3", "3", "2"]
        );
    }

    #[test]
    fn wrr_weights_4_2_gcd_spec_4_2() {
        // A=.1 (4), B=.2 (2): di = 2, mw = 3, A twice as often as B.
        let mut s = Wrr::new();
        let (mut svc, _) = bound_after(&mut s, &[("10.0.0.1", 4), ("10.0.0.2", 2)]);
        assert_eq!((s.di, s.mw, s.cw), (2, 3, 3));
        assert_eq!(seq(&mut svc, &mut s, 6), ["1", "2", "1", "1", "2", "1"]);
        // Added one by one: A alone gives mw = 1, cw = 1; adding B rounds cw to (1/2)·2 + 1 = 1.
        let mut s = Wrr::new();
        let (mut svc, _) = svc_with(&mut s, &[("10.0.0.1", 4), ("10.0.0.2", 2)]);
        assert_eq!((s.di, s.mw, s.cw), (2, 3, 1));
        assert_eq!(seq(&mut svc, &mut s, 6), ["2", "1", "1", "2", "1", "1"]);
    }

    #[test]
    fn wrr_weights_4_3_2_ratio_spec_4_2() {
        let mut s = Wrr::new();
        let (mut svc, _) = svc_with(&mut s, &[("10.0.0.1", 4), ("10.0.0.2", 3), ("10.0.0.3", 2)]);
        // cw starts at 1, list .3 .2 .1:
        // cw 1: .3 .2 .1 | cw 4: .1 | cw 3: .2 .1 | cw 2: .3 .2 .1 | cw 1: .3 ...
        assert_eq!(
            seq(&mut svc, &mut s, 10),
            ["3", "2", "1", "1", "2", "1", "3", "2", "1", "3"]
        );
        let mut counts = [0; 3];
        for n in seq(&mut svc, &mut s, 9 * 10) {
            counts[n.parse::<usize>().unwrap() - 1] += 1;
        }
        assert_eq!(counts, [40, 30, 20]);
    }

    #[test]
    fn wrr_weight_change_mid_sequence_spec_4_2() {
        let mut s = Wrr::new();
        let (mut svc, ids) = svc_with(&mut s, &[("10.0.0.1", 3), ("10.0.0.2", 2), ("10.0.0.3", 1)]);
        assert_eq!(seq(&mut svc, &mut s, 3), ["3", "2", "1"]);
        // cw is 1. Setting .1 to 6: di 1, mw 6, cw stays 1; the cursor goes to the head.
        svc.set_weight(&mut s, ids[0], 6);
        assert_eq!((s.cw, s.mw, s.di), (1, 6, 1));
        // cw 1: .3 .2 .1 | cw 6: .1 | cw 5: .1 | cw 4: .1 | cw 3: .1
        assert_eq!(
            seq(&mut svc, &mut s, 7),
            ["3", "2", "1", "1", "1", "1", "1"]
        );
        // Weights 6, 2, 2: di 2, mw 5; cw 3 is rounded to a step of di: (3 / 2) · 2 + 1 = 3.
        svc.set_weight(&mut s, ids[2], 2);
        assert_eq!((s.cw, s.mw, s.di), (3, 5, 2));
        // Weights 6, 2, 4: cw 3: .3 .1 | cw 1: .3 .2 .1 | cw 5: .1
        svc.set_weight(&mut s, ids[2], 4);
        assert_eq!(seq(&mut svc, &mut s, 6), ["3", "1", "3", "2", "1", "1"]);
    }

    #[test]
    fn wrr_cw_above_new_max_resets_spec_4_2() {
        let mut s = Wrr::new();
        let (mut svc, ids) = bound_after(&mut s, &[("10.0.0.1", 5), ("10.0.0.2", 1)]);
        assert_eq!(s.cw, 5);
        svc.del(&mut s, ids[0]);
        assert_eq!((s.cw, s.mw), (1, 1));
        assert_eq!(seq(&mut svc, &mut s, 2), ["2", "2"]);
    }

    /// The kernel's loop, without the shortcut.
    fn reference_schedule(w: &mut Wrr, dests: Dests<'_>) -> Option<DestId> {
        if w.mw == 0 {
            return None;
        }
        let order = dests.order;
        let last = w.cl;
        let mut start = last.map_or(0, |c| c + 1);
        let (mut last_pass, mut restarted, mut stop) = (false, false, None);
        loop {
            for (pos, &id) in order.iter().enumerate().skip(start) {
                let d = dests.get(id);
                if !d.overload && weight(d) >= w.cw {
                    w.cl = Some(pos);
                    return Some(id);
                }
                if stop == Some(pos) {
                    w.cl = stop;
                    return None;
                }
            }
            w.cw -= w.di;
            if w.cw <= 0 {
                w.cw = w.mw;
                if last_pass || last.is_none() {
                    w.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = w.cw <= w.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
            start = 0;
        }
    }

    proptest::proptest! {
        /// The shortcut over fruitless passes changes nothing: same picks, same cw and cursor.
        #[test]
        fn wrr_shortcut_matches_kernel_loop_spec_4_2(
            ws in proptest::collection::vec((0u32..40, proptest::bool::weighted(0.4)), 1..7),
            picks in 1usize..30,
        ) {
            let mut fast = Wrr::new();
            let mut svc = Svc::default();
            fast.init(svc.dests());
            for (i, &(w, _)) in ws.iter().enumerate() {
                svc.add(&mut fast, &format!("10.0.0.{}", i + 1), w * 3);
            }
            let mut slow = fast;
            for (k, &(_, over)) in ws.iter().enumerate() {
                let id = svc.order[ws.len() - 1 - k];
                svc.d(id).overload = over;
            }
            let rng = &mut super::super::testutil::Replay(Vec::new(), 0);
            for i in 0..picks {
                if i == picks / 2 {
                    // Lift every OVERLOAD halfway.
                    for id in svc.order.clone() {
                        svc.d(id).overload = false;
                    }
                }
                let a = fast.schedule(&input("10.0.1.2"), svc.dests(), rng);
                let b = reference_schedule(&mut slow, svc.dests());
                proptest::prop_assert_eq!(a, b);
                proptest::prop_assert_eq!((fast.cw, fast.cl), (slow.cw, slow.cl));
            }
        }
    }

    #[test]
    fn wrr_huge_overloaded_weight_is_fast_spec_4_2() {
        let mut s = Wrr::new();
        let (mut svc, ids) = svc_with(&mut s, &[("10.0.0.1", 1), ("10.0.0.2", i32::MAX as u32)]);
        svc.d(ids[1]).overload = true;
        // The kernel would pass over the list ~2^31 times; the shortcut makes it immediate.
        assert_eq!(seq(&mut svc, &mut s, 3), ["1", "1", "1"]);
        svc.d(ids[0]).overload = true;
        assert_eq!(svc.pick(&mut s, &input("10.0.0.9")), None);
    }

    #[test]
    fn wrr_all_weights_zero_spec_4_2() {
        let mut s = Wrr::new();
        let (mut svc, ids) = svc_with(&mut s, &[("10.0.0.1", 1)]);
        svc.set_weight(&mut s, ids[0], 0);
        assert_eq!(s.mw, 0);
        assert_eq!(svc.pick(&mut s, &input("10.0.0.9")), None);
    }

    #[test]
    fn wrr_all_overloaded_returns_none_and_recovers_spec_4_2() {
        let mut s = Wrr::new();
        let (mut svc, ids) = svc_with(&mut s, &[("10.0.0.1", 3), ("10.0.0.2", 2), ("10.0.0.3", 1)]);
        assert_eq!(seq(&mut svc, &mut s, 2), ["3", "2"]);
        for &id in &ids {
            svc.d(id).overload = true;
        }
        assert_eq!(svc.pick(&mut s, &input("10.0.0.9")), None);
        assert_eq!(svc.pick(&mut s, &input("10.0.0.9")), None);
        svc.d(ids[2]).overload = false;
        assert_eq!(seq(&mut svc, &mut s, 2), ["3", "3"]);
    }

    #[test]
    fn wrr_low_weight_dest_reached_when_others_overloaded_spec_4_2() {
        // Only the weight-1 dest is eligible and the cursor is past it: the final pass with
        // cw = 1 must still find it (the `stop` logic).
        let mut s = Wrr::new();
        let (mut svc, ids) = svc_with(&mut s, &[("10.0.0.1", 3), ("10.0.0.2", 2), ("10.0.0.3", 1)]);
        assert_eq!(seq(&mut svc, &mut s, 4), ["3", "2", "1", "1"]);
        svc.d(ids[0]).overload = true;
        svc.d(ids[1]).overload = true;
        assert_eq!(seq(&mut svc, &mut s, 3), ["3", "3", "3"]);
    }
}
