//! dh — Destination Hashing (kernel-semantics §4.8).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_dh.c` (`ip_vs_dh_schedule`, `ip_vs_dh_reassign`).
//!
//! - **Table**: 256 buckets (`IP_VS_DH_TAB_BITS` = 8), one bucket per dest in list order,
//!   cycling; **weights are ignored** by the fill. The kernel refills it on bind, add and delete
//!   only: dh has no edit hook (weights are read at lookup time, so an edit needs no refill).
//! - **Key**: `hash_32(fold(daddr), 8)`, the packet's *destination* address.
//! - **Lookup**: the bucket's dest if it is AVAILABLE, has weight > 0 and is not OVERLOAD;
//!   otherwise `None`. No fallback.

use super::{Dests, SchedInput, Scheduler, hash::hash_32, weight};
use crate::addr::fold;
use crate::dest::DestId;
use crate::rng::RandomSource;

/// Bits of the table index.
pub const TAB_BITS: u32 = 8;
/// Number of buckets.
pub const TAB_SIZE: usize = 1 << TAB_BITS;

/// Destination Hashing.
#[doc(alias = "ip_vs_dh_schedule")]
#[derive(Debug)]
pub struct Dh {
    buckets: [Option<DestId>; TAB_SIZE],
}

impl Default for Dh {
    fn default() -> Self {
        Dh {
            buckets: [None; TAB_SIZE],
        }
    }
}

/// The bucket of a folded destination address (`ip_vs_dh_hashkey`).
#[inline]
pub fn bucket(addr_fold: u32) -> usize {
    hash_32(addr_fold, TAB_BITS) as usize & (TAB_SIZE - 1)
}

impl Dh {
    /// A scheduler with an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dest in each bucket (for tests and diagnostics).
    pub fn buckets(&self) -> &[Option<DestId>; TAB_SIZE] {
        &self.buckets
    }

    #[doc(alias = "ip_vs_dh_reassign")]
    fn reassign(&mut self, dests: Dests<'_>) {
        let order = dests.order;
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if order.is_empty() {
                None
            } else {
                Some(order[i % order.len()])
            };
        }
    }
}

impl Scheduler for Dh {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn init(&mut self, dests: Dests<'_>) {
        self.reassign(dests);
    }

    fn add_dest(&mut self, dests: Dests<'_>, _id: DestId) {
        self.reassign(dests);
    }

    fn del_dest(&mut self, dests: Dests<'_>, _id: DestId, _former_pos: usize) {
        self.reassign(dests);
    }

    // No upd_dest: the kernel's dh has no edit hook.

    fn schedule(
        &mut self,
        input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let id = self.buckets[bucket(fold(input.daddr))]?;
        let d = dests.arena.get(id)?;
        (d.available && weight(d) > 0 && !d.overload).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    #[test]
    fn dh_bucket_vectors_spec_10_2() {
        assert_eq!(bucket(0xC0A8_0102), 234);
        assert_eq!(bucket(0x0A00_0005), 174);
    }

    #[test]
    fn dh_one_bucket_per_dest_weight_ignored_spec_4_8() {
        let mut s = Dh::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 5);
        let c = svc.add(&mut s, "10.0.0.3", 3);
        let pattern = [c, b, a];
        for (i, got) in s.buckets().iter().enumerate() {
            assert_eq!(*got, Some(pattern[i % 3]));
        }
        // An edit does not refill (no hook), and the fill ignores weights anyway.
        svc.set_weight(&mut s, b, 0);
        for (i, got) in s.buckets().iter().enumerate() {
            assert_eq!(*got, Some(pattern[i % 3]));
        }
    }

    #[test]
    fn dh_lookup_by_destination_address_spec_4_8() {
        let mut s = Dh::new();
        let mut svc = Svc::default();
        for i in 0..256 {
            svc.add(&mut s, &format!("10.1.{}.{}", i / 200, i % 200 + 1), 1);
        }
        let mut inp = input("172.16.0.1");
        inp.daddr = "192.168.1.2".parse().unwrap();
        let hit = svc.order[234];
        assert_eq!(svc.pick(&mut s, &inp), Some(hit));
        // The source does not matter.
        inp.saddr = "10.9.9.9".parse().unwrap();
        assert_eq!(svc.pick(&mut s, &inp), Some(hit));
        // Unavailable, weight 0 or OVERLOAD: no fallback.
        svc.d(hit).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), None);
        svc.d(hit).overload = false;
        svc.set_weight(&mut s, hit, 0);
        assert_eq!(svc.pick(&mut s, &inp), None);
        svc.set_weight(&mut s, hit, 1);
        svc.d(hit).available = false;
        assert_eq!(svc.pick(&mut s, &inp), None);
    }

    #[test]
    fn dh_empty_and_delete_spec_4_8() {
        let mut s = Dh::new();
        let mut svc = Svc::default();
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), None);
        let a = svc.add(&mut s, "10.0.0.1", 1);
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), Some(a));
        svc.del(&mut s, a);
        assert_eq!(svc.pick(&mut s, &input("10.0.1.2")), None);
    }
}
