//! lblc — Locality-Based Least Connection (kernel-semantics §4.10), and the cache both lblc and
//! lblcr use.
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_lblc.c` (`ip_vs_lblc_schedule`, `__ip_vs_lblc_schedule`,
//! `is_overloaded`, `ip_vs_lblc_new`, `ip_vs_lblc_check_expire`, `ip_vs_lblc_full_check`).
//!
//! For cache clusters: the packet's **destination** address is remembered with the dest it was
//! sent to, in a table of 1024 buckets keyed by `hash_32(fold(daddr), 10)`.
//!
//! - A cached entry gets `lastuse = now`; its dest is returned if it is AVAILABLE, has
//!   weight > 0 and is not "overloaded" in lblc's sense: `active > weight` while some dest of
//!   the service has `active × 2 < weight`. (The OVERLOAD *flag* is not tested for a cached
//!   dest, as in the kernel.)
//! - Otherwise the weighted-least-connection pick (wlc's rule) chooses, and the entry is created
//!   or pointed at the new dest with `lastuse = now`. Nothing found: `None`, cache untouched.
//!
//! # Garbage collection
//!
//! The kernel runs a timer every 60 s per service. Every 30th run (counting only runs that did
//! not have to trim) is a full check that drops entries with `now ≥ lastuse + expiration`
//! (`net.ipv4.vs.lblc_expiration`, default 24 h); on the other runs, if the table holds more
//! than 16384 entries (1024 × 16), entries idle for ≥ 6 min are dropped bucket by bucket from a
//! rover until `min((entries − 16384) × 4/3, 8192)` are gone.
//!
//! rvs has no timers: the cache's `collect` runs, from `schedule()`, every run that fell
//! due up to `input.now`, each at its own due time, so the result is the kernel's. The clock
//! starts at the first scheduling decision rather than at service creation (no entry can exist
//! before that; only the phase of the 60-s grid differs). Runs that cannot change anything are
//! skipped arithmetically, so a long idle period costs O(1) plus one full check.
//!
//! # Cached dests that were deleted
//!
//! The kernel's cache holds a reference that keeps a deleted dest in the trash, not AVAILABLE,
//! until the entry goes. rvs's trash does not know about cache entries, so an entry also
//! records the dest's address and port and the service it belonged to: if the arena slot was
//! freed or reused by another dest, the entry counts as pointing to an unavailable dest, which
//! is what the kernel would see.

use core::net::IpAddr;

use super::{
    Dests, SchedInput, Scheduler, active, conn_overhead, hash::hash_32, weight, weighted_least,
};
use crate::addr::fold;
use crate::dest::{Dest, DestId};
use crate::rng::RandomSource;
use crate::service::ServiceId;
use crate::time::{Instant, NANOS_PER_SEC};

/// Bits of the cache's bucket index (`IP_VS_LBLC_TAB_BITS`, also lblcr's).
pub const TAB_BITS: u32 = 10;
/// Number of buckets.
pub const TAB_SIZE: usize = 1 << TAB_BITS;
/// Entries above which the periodic run trims (`max_size` = 1024 × 16).
pub const MAX_SIZE: usize = TAB_SIZE * 16;
/// Period of the garbage collection (`CHECK_EXPIRE_INTERVAL`).
pub const CHECK_EXPIRE_INTERVAL_SECS: u64 = 60;
/// Idle time after which a trimming run may drop an entry (`ENTRY_TIMEOUT`).
pub const ENTRY_TIMEOUT_SECS: u64 = 6 * 60;
/// Every this many runs, a full expiration check (`COUNT_FOR_FULL_EXPIRATION`).
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

const PERIOD_NS: u64 = CHECK_EXPIRE_INTERVAL_SECS * NANOS_PER_SEC;

/// A dest as a cache remembers it: its id plus what identifies it, to notice a reused id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DestRef {
    pub id: DestId,
    svc: ServiceId,
    addr: IpAddr,
    port: u16,
}

impl DestRef {
    pub fn new(id: DestId, d: &Dest) -> Self {
        DestRef {
            id,
            svc: d.svc,
            addr: d.cfg.addr,
            port: d.cfg.port,
        }
    }

    /// The dest, if the id still names the same one; `None` means "gone" (treat as not
    /// AVAILABLE).
    pub fn resolve<'a>(&self, dests: Dests<'a>) -> Option<&'a Dest> {
        dests
            .arena
            .get(self.id)
            .filter(|d| d.svc == self.svc && d.cfg.addr == self.addr && d.cfg.port == self.port)
    }
}

/// What the cache needs from an entry.
pub(crate) trait CacheEntry {
    fn daddr(&self) -> IpAddr;
    fn lastuse(&self) -> Instant;
}

/// The per-service table of lblc and lblcr: 1024 buckets of entries keyed by destination
/// address, plus the state of the periodic garbage collection.
#[derive(Debug)]
pub(crate) struct LocalityCache<E> {
    buckets: Box<[Vec<E>]>,
    entries: usize,
    rover: usize,
    counter: u32,
    /// Due time of the next periodic run; `None` until the first decision.
    next_run: Option<Instant>,
}

impl<E: CacheEntry> LocalityCache<E> {
    pub fn new() -> Self {
        LocalityCache {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_run: None,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    fn bucket(addr: IpAddr) -> usize {
        hash_32(fold(addr), TAB_BITS) as usize & (TAB_SIZE - 1)
    }

    pub fn get_mut(&mut self, addr: IpAddr) -> Option<&mut E> {
        self.buckets
            .get_mut(Self::bucket(addr))?
            .iter_mut()
            .find(|e| e.daddr() == addr)
    }

    /// Adds an entry for an address that has none.
    pub fn insert(&mut self, e: E) {
        if let Some(b) = self.buckets.get_mut(Self::bucket(e.daddr())) {
            b.push(e);
            self.entries += 1;
        }
    }

    /// Drops the entries of bucket `j` that `expired` selects; returns how many.
    fn sweep(&mut self, j: usize, expired: impl Fn(&E) -> bool) -> usize {
        let Some(b) = self.buckets.get_mut(j) else {
            return 0;
        };
        let before = b.len();
        b.retain(|e| !expired(e));
        let gone = before - b.len();
        self.entries -= gone;
        gone
    }

    /// The full check at time `t` (`ip_vs_lblc_full_check`): every bucket, from the one after
    /// the rover all the way round, so the rover ends where it started.
    fn full_check(&mut self, t: Instant, expiration_secs: u32) {
        let exp = expiration_secs as u64 * NANOS_PER_SEC;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & (TAB_SIZE - 1);
            self.sweep(j, |e| {
                t.as_nanos() >= e.lastuse().as_nanos().saturating_add(exp)
            });
        }
        self.rover = j;
    }

    /// A trimming run at time `t` (the rest of `ip_vs_lblc_check_expire`).
    fn trim(&mut self, t: Instant) {
        let mut goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2) as i64;
        let idle = ENTRY_TIMEOUT_SECS * NANOS_PER_SEC;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & (TAB_SIZE - 1);
            goal -= self.sweep(j, |e| {
                t.as_nanos() >= e.lastuse().as_nanos().saturating_add(idle)
            }) as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }

    /// Runs every periodic collection due at or before `now` (the kernel's timer), each at its
    /// own due time.
    pub fn collect(&mut self, now: Instant, expiration_secs: u32) {
        let Some(mut t) = self.next_run else {
            self.next_run = Some(now.add_nanos(PERIOD_NS));
            return;
        };
        while t <= now {
            if self.counter % COUNT_FOR_FULL_EXPIRATION == 0 {
                if self.entries <= MAX_SIZE {
                    // With no decision in between, later full checks due by `now` remove a
                    // superset of what this one would, and nothing else happens between them
                    // (the count can only fall): run only the last one.
                    let cycle = PERIOD_NS * COUNT_FOR_FULL_EXPIRATION as u64;
                    t = t.add_nanos(now.nanos_since(t) / cycle * cycle);
                }
                self.full_check(t, expiration_secs);
                self.counter = 1;
            } else if self.entries <= MAX_SIZE {
                // Runs that only count, up to the next full check or `now`.
                let left = COUNT_FOR_FULL_EXPIRATION - self.counter % COUNT_FOR_FULL_EXPIRATION;
                let due = now.nanos_since(t) / PERIOD_NS + 1;
                let k = due.min(left as u64);
                self.counter += k as u32;
                t = t.add_nanos(k * PERIOD_NS);
                continue;
            } else {
                self.trim(t);
            }
            t = t.add_nanos(PERIOD_NS);
        }
        self.next_run = Some(t);
    }
}

/// lblc's and lblcr's "overloaded": more active connections than the weight while some dest
/// of the service has fewer than half its weight (`is_overloaded`).
pub(crate) fn lbl_overloaded(d: &Dest, dests: Dests<'_>) -> bool {
    active(d) > weight(d)
        && dests
            .iter()
            .any(|(_, m)| active(m).wrapping_mul(2) < weight(m))
}

#[derive(Debug)]
struct Entry {
    daddr: IpAddr,
    dest: DestRef,
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

/// Locality-Based Least Connection.
#[doc(alias = "ip_vs_lblc_schedule")]
#[derive(Debug)]
pub struct Lblc {
    cache: LocalityCache<Entry>,
}

impl Default for Lblc {
    fn default() -> Self {
        Lblc {
            cache: LocalityCache::new(),
        }
    }
}

impl Lblc {
    /// A scheduler with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cache entries.
    pub fn entries(&self) -> usize {
        self.cache.len()
    }
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn schedule(
        &mut self,
        input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        let now = input.now;
        self.cache.collect(now, input.lblc_expiration);
        if let Some(e) = self.cache.get_mut(input.daddr) {
            e.lastuse = now;
            if let Some(d) = e.dest.resolve(dests)
                && d.available
                && weight(d) > 0
                && !lbl_overloaded(d, dests)
            {
                return Some(e.dest.id);
            }
        }
        let id = weighted_least(dests, conn_overhead)?;
        let dest = DestRef::new(id, dests.get(id));
        // `ip_vs_lblc_new`: keep an entry that already names this dest, else replace it.
        match self.cache.get_mut(input.daddr) {
            Some(e) => {
                if e.dest != dest {
                    e.dest = dest;
                    e.lastuse = now;
                }
            }
            None => self.cache.insert(Entry {
                daddr: input.daddr,
                dest,
                lastuse: now,
            }),
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;

    fn at(daddr: &str, secs: u64) -> SchedInput {
        let mut i = input("10.0.1.2");
        i.daddr = daddr.parse().unwrap();
        i.now = Instant::from_secs(secs);
        i
    }

    #[test]
    fn lblc_sticks_to_cached_dest_spec_4_10() {
        let mut s = Lblc::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        // First for 192.168.0.1: wlc → .2 (first). Then load .2: still cached.
        assert_eq!(svc.pick_count(&mut s, &at("192.168.0.1", 0)), Some(b));
        svc.d(b).inactconns = 100;
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 1)), Some(b));
        // Another destination address gets its own wlc pick.
        assert_eq!(svc.pick(&mut s, &at("192.168.0.2", 1)), Some(a));
        assert_eq!(s.entries(), 2);
    }

    #[test]
    fn lblc_overloaded_rule_spec_4_10() {
        let mut s = Lblc::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 4);
        let b = svc.add(&mut s, "10.0.0.2", 2);
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 0)), Some(b));
        // .2 has 3 active > weight 2, but nobody has active·2 < weight: stays.
        svc.d(b).activeconns = 3;
        svc.d(a).activeconns = 2; // 4 < 4 false
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 1)), Some(b));
        // .1 drops to 1 active (2 < 4): .2 is overloaded, wlc → .1, entry replaced.
        svc.d(a).activeconns = 1;
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 2)), Some(a));
        svc.d(a).activeconns = 3;
        svc.d(b).activeconns = 0;
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 3)), Some(a));
    }

    #[test]
    fn lblc_invalid_cached_dest_reschedules_spec_4_10() {
        let mut s = Lblc::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 0)), Some(b));
        // The OVERLOAD flag is not tested for a cached dest (kernel behaviour).
        svc.d(b).overload = true;
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 1)), Some(b));
        // Weight 0: reschedule (wlc skips OVERLOAD .2 anyway).
        svc.set_weight(&mut s, b, 0);
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 2)), Some(a));
        // Deleted (not AVAILABLE): reschedule.
        svc.d(b).overload = false;
        svc.set_weight(&mut s, b, 1);
        svc.d(b).inactconns = 0;
        svc.d(a).inactconns = 5;
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 3)), Some(a));
        svc.del(&mut s, a);
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 4)), Some(b));
        // Nothing eligible: None, and the entry stays as it was.
        svc.d(b).overload = true;
        svc.set_weight(&mut s, b, 0);
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 5)), None);
        assert_eq!(s.entries(), 1);
    }

    #[test]
    fn lblc_reused_arena_slot_is_not_trusted_spec_4_10() {
        let mut s = Lblc::new();
        let mut svc = Svc::default();
        let a = svc.add(&mut s, "10.0.0.1", 1);
        let b = svc.add(&mut s, "10.0.0.2", 1);
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 0)), Some(b));
        // b is deleted and freed; its slot goes to a new dest .3, which must not inherit the
        // cache entry.
        svc.del(&mut s, b);
        svc.arena.remove(b);
        svc.d(a).inactconns = 1;
        let c = svc.add(&mut s, "10.0.0.3", 1);
        assert_eq!(c, b, "slot reused");
        svc.d(c).inactconns = 2;
        assert_eq!(svc.pick(&mut s, &at("192.168.0.1", 1)), Some(a));
    }

    #[test]
    fn lblc_expiry_full_check_every_30_runs_spec_4_10() {
        let mut s = Lblc::new();
        let mut svc = Svc::default();
        svc.add(&mut s, "10.0.0.1", 1);
        let mut i = at("192.168.0.1", 0);
        i.lblc_expiration = 600; // 10 min
        svc.pick(&mut s, &i);
        assert_eq!(s.entries(), 1);
        // Runs at 60, 120, ... s; the 30th run (counter 30) at 1800 s is the full check.
        let mut j = at("192.168.9.9", 1799);
        j.lblc_expiration = 600;
        svc.pick(&mut s, &j);
        assert_eq!(s.entries(), 2, "no full check before 1800 s");
        j.daddr = "192.168.9.8".parse().unwrap();
        j.now = Instant::from_secs(1800);
        svc.pick(&mut s, &j);
        // 192.168.0.1 (idle since 0) expired; 192.168.9.9 (used at 1799) did not.
        assert_eq!(s.entries(), 2);
        assert!(s.cache.get_mut("192.168.0.1".parse().unwrap()).is_none());
        // A long idle period: one more full check removes everything idle ≥ 10 min.
        j.daddr = "192.168.9.7".parse().unwrap();
        j.now = Instant::from_secs(1800 + 86_400 * 365);
        svc.pick(&mut s, &j);
        assert_eq!(s.entries(), 1);
    }

    #[test]
    fn lblc_expiry_boundary_is_inclusive_spec_4_10() {
        // Full check at 1800 s drops an entry with lastuse + expiration == 1800.
        let mut c: LocalityCache<Entry> = LocalityCache::new();
        c.collect(Instant::ZERO, 3600);
        let id = DestRef {
            id: DestId(0),
            svc: ServiceId(0),
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        for (a, used) in [("1.1.1.1", 1200), ("1.1.1.2", 1201)] {
            c.insert(Entry {
                daddr: a.parse().unwrap(),
                dest: id,
                lastuse: Instant::from_secs(used),
            });
        }
        c.collect(Instant::from_secs(1800), 600);
        assert_eq!(c.len(), 1);
        assert!(c.get_mut("1.1.1.2".parse().unwrap()).is_some());
    }

    #[test]
    fn lblc_trims_above_max_size_spec_4_10() {
        let mut c: LocalityCache<Entry> = LocalityCache::new();
        c.collect(Instant::ZERO, 86_400);
        let id = DestRef {
            id: DestId(0),
            svc: ServiceId(0),
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        // 20000 entries: 3000 idle since 0, the rest used at 100 s.
        for i in 0..20_000u32 {
            c.insert(Entry {
                daddr: IpAddr::V4((0x0b00_0000 + i).into()),
                dest: id,
                lastuse: Instant::from_secs(if i < 3000 { 0 } else { 100 }),
            });
        }
        // Runs at 60..=300 s: over max but nothing idle ≥ 6 min yet; the counter does not
        // move while trimming.
        c.collect(Instant::from_secs(300), 86_400);
        assert_eq!((c.len(), c.counter), (20_000, 1));
        // Run at 360 s: entries idle since 0 qualify; goal = min(3616·4/3, 8192) = 4821 > 3000,
        // so the whole table is scanned and all 3000 go.
        c.collect(Instant::from_secs(360), 86_400);
        assert_eq!(c.len(), 17_000);
        // At 480 s the rest (used at 100 s) qualify; goal = min(616·4/3, 8192) = 821: the scan
        // stops after the bucket where the goal is met.
        c.collect(Instant::from_secs(420), 86_400);
        assert_eq!(c.len(), 17_000);
        c.collect(Instant::from_secs(480), 86_400);
        let gone = 17_000 - c.len();
        assert!((821..821 + 64).contains(&gone), "{gone}");
        assert!(c.len() <= MAX_SIZE);
    }
}
