//! rr — Round Robin (kernel-semantics §4.1).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_rr.c` (`ip_vs_rr_schedule`, `ip_vs_rr_del_dest`).
//!
//! The state is a cursor: either the list head or the dest picked last. A pick walks the list
//! circularly from the dest after the cursor and takes the first one that is not OVERLOAD and
//! has weight > 0; from the head, the walk is a single pass. The pick becomes the cursor; a
//! failed pick leaves it alone. Adding a dest does not move the cursor (the newcomer sits at the
//! head, so it is reached when the walk wraps). Deleting the cursor's dest moves the cursor to
//! that dest's predecessor (possibly the head), so its successor comes next.

use super::{Dests, SchedInput, Scheduler, weight};
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Round Robin.
#[doc(alias = "ip_vs_rr_schedule")]
#[derive(Debug, Default)]
pub struct Rr {
    /// The dest picked last; `None` is the list head.
    cursor: Option<DestId>,
    /// Where `cursor` stood last time we looked (a hint: checked before use).
    hint: usize,
}

impl Rr {
    /// A scheduler with its cursor at the head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Position of the cursor in the list, `None` for the head.
    fn cursor_pos(&self, dests: Dests<'_>) -> Option<usize> {
        let id = self.cursor?;
        if dests.order.get(self.hint) == Some(&id) {
            return Some(self.hint);
        }
        // Adds at the head shift it; otherwise search. A cursor that is no longer listed (which
        // the del_dest callback prevents) counts as the head.
        dests.position(id)
    }
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn init(&mut self, _dests: Dests<'_>) {
        self.cursor = None;
    }

    fn export_state(&self, dests: Dests<'_>) -> Vec<i64> {
        vec![self.cursor_pos(dests).map_or(-1, |p| p as i64)]
    }

    fn import_state(&mut self, dests: Dests<'_>, state: &[i64]) -> bool {
        match *state {
            [-1] => {
                self.cursor = None;
                true
            }
            [p] => match usize::try_from(p).ok().and_then(|p| dests.order.get(p)) {
                Some(&id) => {
                    self.cursor = Some(id);
                    self.hint = p as usize;
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    #[doc(alias = "ip_vs_rr_del_dest")]
    fn del_dest(&mut self, dests: Dests<'_>, id: DestId, former_pos: usize) {
        if self.cursor == Some(id) {
            // The predecessor in the list now stands just before where `id` was.
            self.cursor = former_pos
                .checked_sub(1)
                .and_then(|p| dests.order.get(p).copied());
            self.hint = former_pos.saturating_sub(1);
        }
    }

    fn schedule(
        &mut self,
        _input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let order = dests.order;
        // From the head: one pass over the list. From a dest: the rest of the list, then its
        // start up to and including the cursor itself. Both are `n` steps from `start`.
        let start = self.cursor_pos(dests).map_or(0, |c| c + 1).min(order.len());
        let (before, after) = order.split_at(start);
        let positions = (start..order.len()).chain(0..start);
        for (pos, &id) in positions.zip(after.iter().chain(before)) {
            let d = dests.get(id);
            if !d.overload && weight(d) > 0 {
                self.cursor = Some(id);
                self.hint = pos;
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    fn seq(svc: &mut Svc, s: &mut Rr, n: usize) -> Vec<String> {
        let inp = input("10.0.1.2");
        (0..n)
            .map(|_| {
                let id = svc.pick_count(s, &inp);
                svc.name(id)
            })
            .collect()
    }

    #[test]
    fn rr_cycles_in_kernel_order_spec_4_1() {
        let mut s = Rr::new();
        let mut svc = Svc::default();
        s.init(svc.dests());
        for (a, w) in [("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 3)] {
            svc.add(&mut s, a, w);
        }
        // Newest first: .3, .2, .1, whatever the weights.
        assert_eq!(
            seq(&mut svc, &mut s, 6),
            [
                "10.0.0.3", "10.0.0.2", "10.0.0.1", "10.0.0.3", "10.0.0.2", "10.0.0.1"
            ]
        );
    }

    #[test]
    fn rr_skips_weight_zero_and_overload_spec_4_1() {
        let mut s = Rr::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        let c = svc.add(&mut s, "10.0.0.3", 1);
        svc.set_weight(&mut s, b, 0);
        svc.d(c).overload = true;
        assert_eq!(seq(&mut svc, &mut s, 3), ["10.0.0.1"; 3]);
        svc.d(a).overload = true;
        assert_eq!(svc.pick(&mut s, &input("10.0.0.9")), None);
        // A failed pick keeps the cursor on .1: once .3 recovers it comes next, then .1.
        svc.d(c).overload = false;
        svc.d(a).overload = false;
        assert_eq!(seq(&mut svc, &mut s, 2), ["10.0.0.3", "10.0.0.1"]);
    }

    #[test]
    fn rr_single_eligible_dest_is_found_from_itself_spec_4_1() {
        let mut s = Rr::new();
        let mut svc = Svc::default();
        svc.add(&mut s, "10.0.0.1", 1);
        assert_eq!(seq(&mut svc, &mut s, 3), ["10.0.0.1"; 3]);
    }

    #[test]
    fn rr_delete_cursor_moves_to_predecessor_spec_4_1() {
        let mut s = Rr::new();
        let mut svc = Svc::default();
        let _a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        let _c = svc.add(&mut s, "10.0.0.3", 1);
        let _d = svc.add(&mut s, "10.0.0.4", 1);
        // Order .4 .3 .2 .1; pick .4, .3, .2: cursor on .2.
        assert_eq!(
            seq(&mut svc, &mut s, 3),
            ["10.0.0.4", "10.0.0.3", "10.0.0.2"]
        );
        // Deleting .2 puts the cursor on .3, so .1 (the old successor) is next.
        svc.del(&mut s, b);
        assert_eq!(
            seq(&mut svc, &mut s, 3),
            ["10.0.0.1", "10.0.0.4", "10.0.0.3"]
        );
    }

    #[test]
    fn rr_delete_cursor_at_first_position_goes_to_head_spec_4_1() {
        let mut s = Rr::new();
        let mut svc = Svc::default();
        svc.add(&mut s, "10.0.0.1", 1);
        svc.add(&mut s, "10.0.0.2", 1);
        let c = svc.add(&mut s, "10.0.0.3", 1);
        assert_eq!(seq(&mut svc, &mut s, 1), ["10.0.0.3"]);
        svc.del(&mut s, c);
        // Cursor at the head: the walk starts at the first dest, .2.
        assert_eq!(seq(&mut svc, &mut s, 2), ["10.0.0.2", "10.0.0.1"]);
    }

    #[test]
    fn rr_delete_other_dest_keeps_cursor_spec_4_1() {
        let mut s = Rr::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        svc.add(&mut s, "10.0.0.2", 1);
        svc.add(&mut s, "10.0.0.3", 1);
        assert_eq!(seq(&mut svc, &mut s, 2), ["10.0.0.3", "10.0.0.2"]);
        svc.del(&mut s, a);
        assert_eq!(seq(&mut svc, &mut s, 2), ["10.0.0.3", "10.0.0.2"]);
    }

    #[test]
    fn rr_add_does_not_move_cursor_spec_4_1() {
        let mut s = Rr::new();
        let mut svc = Svc::default();
        svc.add(&mut s, "10.0.0.1", 1);
        svc.add(&mut s, "10.0.0.2", 1);
        assert_eq!(seq(&mut svc, &mut s, 1), ["10.0.0.2"]);
        // .3 goes to the head: visited after the walk wraps.
        svc.add(&mut s, "10.0.0.3", 1);
        assert_eq!(
            seq(&mut svc, &mut s, 4),
            ["10.0.0.1", "10.0.0.3", "10.0.0.2", "10.0.0.1"]
        );
    }

    #[test]
    fn rr_empty_service_spec_4_1() {
        let mut s = Rr::new();
        let svc = Svc::default();
        assert_eq!(svc.pick(&mut s, &input("10.0.0.9")), None);
    }
}
