//! twos — Weighted Random Twos Choice (kernel-semantics §4.14).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_twos.c` (`ip_vs_twos_schedule`):
//!
//! 1. `total` = sum of the weights of the dests that are not OVERLOAD and have weight > 0;
//!    none → `None`.
//! 2. Two numbers are drawn, `r1` then `r2`, each with `rng.below(total + 1)`: uniform over
//!    `0..=total`, inclusive, so the first eligible dest gets `weight + 1` chances out of
//!    `total + 1`.
//! 3. Walking the eligible dests in list order, each weight is subtracted from both; the first
//!    dest where `r1 ≤ 0` is choice 1, the first where `r2 ≤ 0` is choice 2.
//! 4. Choice 2 wins when `w2 × overhead1 > w1 × overhead2`, else choice 1.
//!
//! The arithmetic is the kernel's 32-bit signed `int`, wrapping, including the products of
//! step 4, which overflow with large weights times connection counts.

use super::{Dests, SchedInput, Scheduler, conn_overhead, weight};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Weighted Random Twos Choice.
#[doc(alias = "ip_vs_twos_schedule")]
#[derive(Debug, Default)]
pub struct Twos;

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let eligible = || {
            dests
                .iter()
                .filter(|(_, d)| !d.overload && weight(d) > 0)
                .map(|(id, d)| (id, weight(d), d))
        };
        let mut total: i32 = 0;
        // As in the kernel, choice 1 starts as the last eligible dest: it stays so only if the
        // sum overflowed and r1 never reached 0.
        let mut choice1 = None;
        for (id, w, _) in eligible() {
            total = total.wrapping_add(w);
            choice1 = Some(id);
        }
        let mut choice1 = choice1?;
        let bound = total.wrapping_add(1) as u32;
        let mut draw = || {
            if bound == 0 {
                0
            } else {
                rng.below(bound) as i32
            }
        };
        let mut r1 = draw();
        let mut r2 = draw();

        let (mut w1, mut oh1) = (-1i32, 0i32);
        let mut choice2: Option<(DestId, i32, i32)> = None;
        for (id, w, d) in eligible() {
            r1 = r1.wrapping_sub(w);
            r2 = r2.wrapping_sub(w);
            if r1 <= 0 && w1 == -1 {
                choice1 = id;
                w1 = w;
                oh1 = conn_overhead(d);
            }
            if r2 <= 0 && choice2.is_none() {
                choice2 = Some((id, w, conn_overhead(d)));
            }
            if w1 != -1 && choice2.is_some() {
                break;
            }
        }
        match choice2 {
            Some((id2, w2, oh2)) if w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2) => Some(id2),
            _ => Some(choice1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Replay, Svc, input};
    use super::*;

    fn pick(svc: &Svc, r: &[u32]) -> Option<DestId> {
        Twos.schedule(&input("10.0.1.2"), svc.dests(), &mut Replay(r.to_vec(), 0))
    }

    fn three() -> (Svc, [DestId; 3]) {
        let mut svc = Svc::default();
        let a = svc.add(&mut Twos, "10.0.0.1", 1);
        let b = svc.add(&mut Twos, "10.0.0.2", 2);
        let c = svc.add(&mut Twos, "10.0.0.3", 3);
        (svc, [a, b, c]) // list order c (3), b (2), a (1); total 6, draws in 0..=6
    }

    #[test]
    fn twos_draw_mapping_inclusive_bias_spec_4_14() {
        let (svc, [a, b, c]) = three();
        // Idle servers: the tie keeps choice 1, so the result is where r1 lands.
        // r = 0..=3 → c (4 of 7 values: weight + 1), 4..=5 → b, 6 → a.
        let want = [c, c, c, c, b, b, a];
        for (r, w) in want.iter().enumerate() {
            assert_eq!(pick(&svc, &[r as u32, 0]), Some(*w), "r1 = {r}");
        }
    }

    #[test]
    fn twos_draws_r1_then_r2_and_prefers_less_loaded_spec_4_14() {
        let (mut svc, [a, _b, c]) = three();
        svc.d(c).inactconns = 10; // 10 / 3
        svc.d(a).inactconns = 3; // 3 / 1
        // r1 → c, r2 → a: a wins iff w_a·oh_c > w_c·oh_a: 1·10 > 3·3.
        assert_eq!(pick(&svc, &[0, 6]), Some(a));
        // Swapped draws: choice 1 = a, choice 2 = c: c wins iff 3·3 > 1·10: no → a.
        assert_eq!(pick(&svc, &[6, 0]), Some(a));
        svc.d(a).inactconns = 4; // 1·10 > 3·12? no → c
        assert_eq!(pick(&svc, &[0, 6]), Some(c));
    }

    #[test]
    fn twos_uses_wrapping_32_bit_products_spec_4_14() {
        let mut svc = Svc::default();
        let a = svc.add(&mut Twos, "10.0.0.1", 65536);
        let b = svc.add(&mut Twos, "10.0.0.2", 1);
        // List b (1), a (65536); r1 = 0 → b, r2 = 65537 → a.
        svc.d(b).activeconns = 1 << 15; // overhead 2^23
        svc.d(a).activeconns = 1; // overhead 256
        // w_a·oh_b = 2^16·2^23 = 2^39 → wraps to 0 in 32 bits; w_b·oh_a = 256: 0 > 256 is false,
        // so the kernel keeps b although a is far less loaded.
        assert_eq!(pick(&svc, &[0, 65537]), Some(b));
    }

    #[test]
    fn twos_skips_overload_and_weight_zero_spec_4_14() {
        let (mut svc, [a, b, c]) = three();
        svc.d(c).overload = true;
        svc.set_weight(&mut Twos, b, 0);
        for r in 0..=1 {
            assert_eq!(pick(&svc, &[r, r]), Some(a));
        }
        svc.d(a).overload = true;
        assert_eq!(pick(&svc, &[0, 0]), None);
    }
}
