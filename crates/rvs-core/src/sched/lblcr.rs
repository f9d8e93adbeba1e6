//! lblcr — Locality-Based Least Connection with Replication (kernel-semantics §4.11).
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_lblcr.c` (`ip_vs_lblcr_schedule`, `ip_vs_dest_set_min`,
//! `ip_vs_dest_set_max`, `ip_vs_dest_set_insert`, `ip_vs_dest_set_erase`, `ip_vs_lblcr_new`).
//!
//! Like lblc, keyed by the packet's destination address, but each entry holds a *set* of dests
//! (newest member first) and the time the set last changed (`lastmod`).
//!
//! - Entry found: `lastuse = now`; `dest` = the set's least-loaded member by the wlc rule (the
//!   first member must be not OVERLOAD, weight > 0 and AVAILABLE; later members replace it when
//!   not OVERLOAD, AVAILABLE and less loaded). Then, if the set has more than one member and
//!   `now > lastmod + lblcr_expiration`, its *most* loaded member (weight > 0) is removed
//!   (`lastmod = now`) — `dest` may be that very member and is still used, as in the kernel. If
//!   `dest` exists and is not "overloaded" (lblc's rule) it is returned. Otherwise the wlc pick
//!   over the whole service is added to the set (`lastmod = now` if it was not a member) and
//!   returned.
//! - No entry: the wlc pick, and a new entry whose set holds it.
//!
//! Garbage collection and the handling of deleted dests are lblc's (see [`super::lblc`]), with
//! `net.ipv4.vs.lblcr_expiration` for the full check.

use core::net::IpAddr;

use super::lblc::{CacheEntry, DestRef, LocalityCache, lbl_overloaded};
use super::{Dests, SchedInput, Scheduler, conn_overhead, weight, weighted_least};
use crate::dest::{Dest, DestId};
use crate::rng::RandomSource;
use crate::time::{Instant, NANOS_PER_SEC};

#[derive(Debug)]
struct Entry {
    daddr: IpAddr,
    /// Members, newest first (the kernel inserts at the head of its list).
    set: Vec<DestRef>,
    lastmod: Instant,
    lastuse: Instant,
}

impl CacheEntry for Entry {
    fn daddr(&self) -> IpAddr {
        self.daddr
    }
    fn lastuse(&self) -> Instant {
        self.lastuse
    }
}

/// The members with the dests they still name.
fn members<'a>(set: &'a [DestRef], dests: Dests<'a>) -> impl Iterator<Item = (DestId, &'a Dest)> {
    set.iter()
        .filter_map(move |m| m.resolve(dests).map(|d| (m.id, d)))
}

/// The least-loaded usable member (`ip_vs_dest_set_min`).
fn set_min(set: &[DestRef], dests: Dests<'_>) -> Option<DestId> {
    let mut it = members(set, dests);
    let (mut least_id, mut least) = it
        .by_ref()
        .find(|(_, d)| !d.overload && weight(d) > 0 && d.available)?;
    let mut loh = conn_overhead(least) as i64;
    for (id, d) in it {
        if d.overload {
            continue;
        }
        let doh = conn_overhead(d) as i64;
        if loh * weight(d) as i64 > doh * weight(least) as i64 && d.available {
            least_id = id;
            least = d;
            loh = doh;
        }
    }
    Some(least_id)
}

/// The most-loaded member with weight > 0 (`ip_vs_dest_set_max`).
fn set_max(set: &[DestRef], dests: Dests<'_>) -> Option<DestId> {
    let mut it = members(set, dests);
    let (mut most_id, mut most) = it.by_ref().find(|(_, d)| weight(d) > 0)?;
    let mut moh = conn_overhead(most) as i64;
    for (id, d) in it {
        let doh = conn_overhead(d) as i64;
        if moh * (weight(d) as i64) < doh * weight(most) as i64 && weight(d) > 0 {
            most_id = id;
            most = d;
            moh = doh;
        }
    }
    Some(most_id)
}

/// Locality-Based Least Connection with Replication.
#[doc(alias = "ip_vs_lblcr_schedule")]
#[derive(Debug)]
pub struct Lblcr {
    cache: LocalityCache<Entry>,
}

impl Default for Lblcr {
    fn default() -> Self {
        Lblcr {
            cache: LocalityCache::new(),
        }
    }
}

impl Lblcr {
    /// A scheduler with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cache entries.
    pub fn entries(&self) -> usize {
        self.cache.len()
    }

    /// The server set cached for a destination address, newest member first.
    pub fn set_of(&mut self, daddr: IpAddr) -> Option<Vec<DestId>> {
        self.cache
            .get_mut(daddr)
            .map(|e| e.set.iter().map(|m| m.id).collect())
    }
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn schedule(
        &mut self,
        input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let now = input.now;
        let exp = input.lblcr_expiration as u64 * NANOS_PER_SEC;
        self.cache.collect(now, input.lblcr_expiration);
        if let Some(e) = self.cache.get_mut(input.daddr) {
            e.lastuse = now;
            let dest = set_min(&e.set, dests);
            if e.set.len() > 1
                && now.as_nanos() > e.lastmod.as_nanos().saturating_add(exp)
                && let Some(m) = set_max(&e.set, dests)
                && let Some(pos) = e.set.iter().position(|r| r.id == m)
            {
                e.set.remove(pos);
                e.lastmod = now;
            }
            if let Some(id) = dest
                && !lbl_overloaded(dests.get(id), dests)
            {
                return Some(id);
            }
            let id = weighted_least(dests, conn_overhead)?;
            let r = DestRef::new(id, dests.get(id));
            if !e.set.contains(&r) {
                e.set.insert(0, r);
                e.lastmod = now;
            }
            return Some(id);
        }
        let id = weighted_least(dests, conn_overhead)?;
        self.cache.insert(Entry {
            daddr: input.daddr,
            set: vec![DestRef::new(id, dests.get(id))],
            lastmod: now,
            lastuse: now,
        });
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    fn at(secs: u64) -> SchedInput {
        let mut i = input("10.0.1.2");
        i.daddr = "192.168.0.1".parse().unwrap();
        i.now = Instant::from_secs(secs);
        i.lblcr_expiration = 600;
        i
    }

    #[test]
    fn lblcr_set_grows_when_overloaded_spec_4_11() {
        let mut s = Lblcr::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 4);
        let b = svc.add(&mut s, "10.0.0.2", 2);
        let daddr = at(0).daddr;
        assert_eq!(svc.pick(&mut s, &at(0)), Some(b));
        assert_eq!(s.set_of(daddr), Some(vec![b]));
        // .2 overloaded in lblc's sense (3 > 2 while .1 has 0·2 < 4): wlc → .1 joins the set.
        svc.d(b).activeconns = 3;
        assert_eq!(svc.pick(&mut s, &at(1)), Some(a));
        assert_eq!(s.set_of(daddr), Some(vec![a, b]));
        // Now the set's least loaded member is used: .1 (0/4) over .2 (768/2).
        assert_eq!(svc.pick(&mut s, &at(2)), Some(a));
        svc.d(a).activeconns = 2; // 512/4 = 128 < 768/2: still .1
        assert_eq!(svc.pick(&mut s, &at(3)), Some(a));
        assert_eq!(s.entries(), 1);
    }

    #[test]
    fn lblcr_set_shrinks_after_expiration_spec_4_11() {
        let mut s = Lblcr::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 4);
        let b = svc.add(&mut s, "10.0.0.2", 2);
        let daddr = at(0).daddr;
        svc.pick(&mut s, &at(0));
        svc.d(b).activeconns = 3;
        assert_eq!(svc.pick(&mut s, &at(10)), Some(a)); // set {a, b}, lastmod 10
        // Not yet (strictly after lastmod + 600).
        assert_eq!(svc.pick(&mut s, &at(610)), Some(a));
        assert_eq!(s.set_of(daddr), Some(vec![a, b]));
        // At 611 the most loaded member (.2: 768/2 > 0/4) leaves the set.
        assert_eq!(svc.pick(&mut s, &at(611)), Some(a));
        assert_eq!(s.set_of(daddr), Some(vec![a]));
        // A single member is never removed.
        assert_eq!(svc.pick(&mut s, &at(5000)), Some(a));
        assert_eq!(s.set_of(daddr), Some(vec![a]));
    }

    #[test]
    fn lblcr_returns_min_even_if_just_removed_spec_4_11() {
        // All members but one are unusable for set_min; set_max picks that same one.
        let mut s = Lblcr::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        let daddr = at(0).daddr;
        assert_eq!(svc.pick(&mut s, &at(0)), Some(b));
        svc.d(b).activeconns = 2; // 2 > 1, and .1 has 0·2 < 1: overloaded
        assert_eq!(svc.pick(&mut s, &at(1)), Some(a));
        svc.d(b).activeconns = 0;
        // .2 (older member) is set to weight 0: set_min → .1, set_max → .1 (only weight > 0).
        svc.set_weight(&mut s, b, 0);
        svc.d(a).activeconns = 1;
        assert_eq!(svc.pick(&mut s, &at(700)), Some(a));
        assert_eq!(s.set_of(daddr), Some(vec![b]));
    }

    #[test]
    fn lblcr_no_dest_spec_4_11() {
        let mut s = Lblcr::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        svc.d(a).overload = true;
        assert_eq!(svc.pick(&mut s, &at(0)), None);
        assert_eq!(s.entries(), 0);
    }

    #[test]
    fn lblcr_gc_drops_idle_entries_spec_4_11() {
        let mut s = Lblcr::new();
        let mut svc = Svc::default();
        svc.add(&mut s, "10.0.0.1", 1);
        svc.pick(&mut s, &at(0));
        let mut other = at(1800);
        other.daddr = "192.168.0.2".parse().unwrap();
        svc.pick(&mut s, &other);
        // The full check at 1800 s dropped the entry idle since 0 (600 s expiration).
        assert_eq!(s.entries(), 1);
        assert_eq!(s.set_of(at(0).daddr), None);
    }
}
