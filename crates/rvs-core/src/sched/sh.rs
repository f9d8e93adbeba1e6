//! sh — Source Hashing (kernel-semantics §4.7).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_sh.c` (`ip_vs_sh_schedule`, `ip_vs_sh_reassign`,
//! `ip_vs_sh_get`, `ip_vs_sh_get_fallback`).
//!
//! - **Table**: 256 buckets (`CONFIG_IP_VS_SH_TAB_BITS` = 8), filled on bind and on every add,
//!   delete or edit by walking the dest list cyclically, each dest taking `weight` consecutive
//!   buckets, a weight-0 dest one bucket. The fill uses the *current* weight, so quiescing a
//!   dest reshuffles the table. An empty list leaves every bucket empty.
//! - **Key**: `bucket(offset) = (offset + hash_32(port + fold(saddr), 8)) mod 256`, with `port`
//!   the packet's source port when the service has sh-port (SCHED2) and the protocol has ports,
//!   else 0.
//! - **Lookup**: the dest in `bucket(0)` if it has weight > 0 and is not OVERLOAD; otherwise
//!   `None`, unless sh-fallback (SCHED1): then probe `bucket((k + bucket(0)) mod 256)` for
//!   k = 0..255 — i.e. bucket `k + 2·bucket(0)`, a kernel quirk — stopping with `None` at the
//!   first empty bucket and returning the first usable dest.
//!
//! The hashed address and port are `SchedInput::saddr` and `sport`: the client's. (When the
//! kernel schedules from an ICMP error's embedded packet, `ip_vs_iph_inverse`, it hashes that
//! packet's destination instead; an engine doing the same must pass the client there.)

use super::{Dests, SchedInput, Scheduler, hash::hash_32, hash_port, weight};
use crate::addr::fold;
use crate::dest::DestId;
use crate::rng::RandomSource;
use crate::service::ServiceFlags;

/// Bits of the table index.
pub const TAB_BITS: u32 = 8;
/// Number of buckets.
pub const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: u32 = TAB_SIZE as u32 - 1;

/// Source Hashing.
#[doc(alias = "ip_vs_sh_schedule")]
#[derive(Debug)]
pub struct Sh {
    buckets: [Option<DestId>; TAB_SIZE],
}

impl Default for Sh {
    fn default() -> Self {
        Sh {
            buckets: [None; TAB_SIZE],
        }
    }
}

/// The bucket of a (folded address, port) at `offset` (`ip_vs_sh_hashkey`).
#[inline]
pub fn bucket(addr_fold: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32((port as u32).wrapping_add(addr_fold), TAB_BITS)) & TAB_MASK)
        as usize
}

impl Sh {
    /// A scheduler with an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dest in each bucket (for tests and diagnostics).
    pub fn buckets(&self) -> &[Option<DestId>; TAB_SIZE] {
        &self.buckets
    }

    /// Refills the table from the dest list (`ip_vs_sh_reassign`).
    #[doc(alias = "ip_vs_sh_reassign")]
    fn reassign(&mut self, dests: Dests<'_>) {
        let order = dests.order;
        if order.is_empty() {
            self.buckets = [None; TAB_SIZE];
            return;
        }
        let mut i = 0;
        let mut count = 0i32;
        for b in self.buckets.iter_mut() {
            if i >= order.len() {
                i = 0;
            }
            let id = order[i];
            *b = Some(id);
            count += 1;
            if count >= weight(dests.get(id)) {
                i += 1;
                count = 0;
            }
        }
    }

    /// The dest in `b` and whether it may take the connection.
    fn probe(&self, dests: Dests<'_>, b: usize) -> Option<(DestId, bool)> {
        let id = self.buckets[b & (TAB_SIZE - 1)]?;
        // A dest that is gone from the arena cannot happen (the table is refilled on delete);
        // treat it as unavailable rather than trusting the id.
        let usable = dests
            .arena
            .get(id)
            .is_some_and(|d| weight(d) > 0 && !d.overload);
        Some((id, usable))
    }
}

impl Scheduler for Sh {
    fn name(&self) -> &'static str {
        "sh"
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

    fn upd_dest(&mut self, dests: Dests<'_>, _id: DestId) {
        self.reassign(dests);
    }

    fn schedule(
        &mut self,
        input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let addr = fold(input.saddr);
        let port = hash_port(input);
        let ihash = bucket(addr, port, 0);
        let (id, usable) = self.probe(dests, ihash)?;
        if usable {
            return Some(id);
        }
        if !input.flags.has(ServiceFlags::SCHED1) {
            return None;
        }
        // sh-fallback (`ip_vs_sh_get_fallback`).
        for offset in 0..TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) & TAB_MASK;
            let (id, usable) = self.probe(dests, bucket(addr, port, roffset))?;
            if usable {
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

    #[test]
    fn sh_bucket_vectors_spec_10_2() {
        assert_eq!(bucket(0xC0A8_0102, 0, 0), 234);
        assert_eq!(bucket(0xC0A8_0102, 12345, 0), 73);
        assert_eq!(bucket(0x0A00_0005, 0, 0), 174);
        assert_eq!(bucket(0x0A00_0005, 12345, 0), 13);
    }

    #[test]
    fn sh_fill_by_current_weight_spec_4_7() {
        let mut s = Sh::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 2);
        let c = svc.add(&mut s, "10.0.0.3", 3);
        // List c, b, a: c c c b b a c c c b b a ...
        let pattern = [c, c, c, b, b, a];
        for (i, got) in s.buckets().iter().enumerate() {
            assert_eq!(*got, Some(pattern[i % 6]), "bucket {i}");
        }
        // Quiescing b gives it a single bucket: c c c b a ...
        svc.set_weight(&mut s, b, 0);
        let pattern = [c, c, c, b, a];
        for (i, got) in s.buckets().iter().enumerate() {
            assert_eq!(*got, Some(pattern[i % 5]), "bucket {i}");
        }
        svc.del(&mut s, a);
        svc.del(&mut s, b);
        svc.del(&mut s, c);
        assert!(s.buckets().iter().all(Option::is_none));
    }

    #[test]
    fn sh_lookup_and_port_spec_4_7() {
        let mut s = Sh::new();
        let mut svc = Svc::default();
        // 256 dests of weight 1: bucket i holds the dest at list position i.
        let ids: Vec<DestId> = (0..256)
            .map(|i| svc.add(&mut s, &format!("10.1.{}.{}", i / 200, i % 200 + 1), 1))
            .collect();
        let at = |b: usize| svc.order[b];
        let mut inp = input("192.168.1.2");
        inp.sport = 12345;
        assert_eq!(svc.pick(&mut s, &inp), Some(at(234)));
        // sh-port only with SCHED2 and a protocol with ports.
        inp.flags = ServiceFlags(ServiceFlags::SCHED2);
        assert_eq!(svc.pick(&mut s, &inp), Some(at(73)));
        inp.protocol = 1; // ICMP
        assert_eq!(svc.pick(&mut s, &inp), Some(at(234)));
        let _ = ids;
    }

    #[test]
    fn sh_unavailable_without_and_with_fallback_spec_4_7() {
        let mut s = Sh::new();
        let mut svc = Svc::default();
        for i in 0..256 {
            svc.add(&mut s, &format!("10.1.{}.{}", i / 200, i % 200 + 1), 1);
        }
        let at = |svc: &Svc, b: usize| svc.order[b];
        let mut inp = input("192.168.1.2"); // bucket 234
        let hit = at(&svc, 234);
        svc.d(hit).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), None);
        // Fallback probes bucket (k + 2·234) mod 256: first 212, then 213, ...
        inp.flags = ServiceFlags(ServiceFlags::SCHED1);
        assert_eq!(svc.pick(&mut s, &inp), Some(at(&svc, 212)));
        let d212 = at(&svc, 212);
        // Weight 0 refills the table (same layout here: weight 0 still gets one bucket).
        svc.set_weight(&mut s, d212, 0);
        assert_eq!(svc.pick(&mut s, &inp), Some(at(&svc, 213)));
    }

    #[test]
    fn sh_fallback_stops_at_empty_bucket_spec_4_7() {
        let mut s = Sh::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        svc.d(a).overload = true;
        let mut inp = input("192.168.1.2");
        inp.flags = ServiceFlags(ServiceFlags::SCHED1);
        assert_eq!(svc.pick(&mut s, &inp), None);
        let empty = Sh::new();
        let mut empty = empty;
        assert_eq!(svc.pick(&mut empty, &inp), None);
    }
}
