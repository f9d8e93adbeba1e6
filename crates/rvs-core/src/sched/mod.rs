//! Schedulers: one file per ipvsadm `-s` name, like the kernel's `ip_vs_<name>.c`
//! (kernel-semantics §4).
//!
//! A scheduler picks a real server for a *new* connection. It sees the service's real servers
//! in kernel order (newest first, kernel-semantics §1.3) through [`Dests`], and the packet's
//! addresses through [`SchedInput`]. Callbacks tell it when the list changed, so table-based
//! schedulers (sh, dh, mh) rebuild and cursor-based ones (rr, wrr) fix their cursor, as the
//! kernel's `add_dest/del_dest/upd_dest` hooks do. Schedulers never touch connection counters or
//! the OVERLOAD flag: the engine maintains them (kernel-semantics §4.15) and schedulers read them.

use core::net::IpAddr;

use crate::dest::{Dest, DestArena, DestId};
use crate::rng::RandomSource;
use crate::service::ServiceFlags;
use crate::time::Instant;

pub mod dh;
pub mod fo;
pub mod hash;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

pub use mh::{MaglevError, MaglevHandoff, MaglevTable};

/// The real servers of one service, in kernel order (newest first).
#[derive(Clone, Copy)]
pub struct Dests<'a> {
    /// Ids in kernel order.
    pub order: &'a [DestId],
    /// Where the real servers live.
    pub arena: &'a DestArena,
}

impl<'a> Dests<'a> {
    /// Iterates `(id, dest)` in kernel order.
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &'a Dest)> + '_ {
        let arena = self.arena;
        self.order.iter().map(move |&id| (id, &arena[id]))
    }
    /// A real server by id.
    pub fn get(&self, id: DestId) -> &'a Dest {
        &self.arena[id]
    }
    /// Number of real servers.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// Position of `id` in kernel order.
    pub fn position(&self, id: DestId) -> Option<usize> {
        self.order.iter().position(|&d| d == id)
    }
}

/// What a scheduler may look at in the packet and its context.
#[derive(Clone, Copy, Debug)]
pub struct SchedInput {
    /// Current time (lblc/lblcr caches and their garbage collection).
    pub now: Instant,
    /// IP protocol number of the packet.
    pub protocol: u8,
    /// Client (source) address.
    pub saddr: IpAddr,
    /// Client (source) port.
    pub sport: u16,
    /// Destination address of the packet (the virtual address).
    pub daddr: IpAddr,
    /// Destination port of the packet.
    pub dport: u16,
    /// The service flags (scheduler flags SCHED1..3 select sh/mh options).
    pub flags: ServiceFlags,
    /// `net.ipv4.vs.lblc_expiration` in seconds.
    pub lblc_expiration: u32,
    /// `net.ipv4.vs.lblcr_expiration` in seconds.
    pub lblcr_expiration: u32,
}

/// Maglev table parameters (our extension, issue 3): a prime table size and a hash seed.
/// The default is the kernel's: 4093 slots and the kernel's fixed keys (kernel-semantics §4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevConfig {
    /// Table size M, a prime (the kernel's 4093 by default; 65537 as in the Maglev paper).
    pub table_size: u32,
    /// Hash seed; `None` = the kernel's keys, so rvs picks what the kernel picks.
    pub seed: Option<u64>,
}

impl Default for MaglevConfig {
    fn default() -> Self {
        MaglevConfig {
            table_size: 4093,
            seed: None,
        }
    }
}

/// Options that are not part of ipvsadm's service but change how schedulers are built
/// (our extensions, see `mh`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedOptions {
    /// Maglev table size and seed; `None` = the kernel's 4093 slots and keys.
    pub maglev: Option<MaglevConfig>,
}

/// A scheduling algorithm bound to one service.
pub trait Scheduler: Send {
    /// The ipvsadm name.
    fn name(&self) -> &'static str;

    /// The scheduler was bound to a service with these real servers (`init_service`).
    fn init(&mut self, dests: Dests<'_>) {
        let _ = dests;
    }

    /// `id` was added (it is already at the head of `dests`).
    fn add_dest(&mut self, dests: Dests<'_>, id: DestId) {
        let _ = (dests, id);
    }

    /// `id` was removed; `dests` no longer holds it; it stood at position `former_pos`.
    fn del_dest(&mut self, dests: Dests<'_>, id: DestId, former_pos: usize) {
        let _ = (dests, id, former_pos);
    }

    /// `id`'s weight or thresholds changed (it is still in `dests`).
    fn upd_dest(&mut self, dests: Dests<'_>, id: DestId) {
        let _ = (dests, id);
    }

    /// The scheduler's own state for a hand-over to another process (`crate::state`), as
    /// plain numbers: positions in kernel order, never ids. Schedulers whose state is a pure
    /// function of the real servers (the tables of sh, dh, mh) and stateless ones export
    /// nothing: `init` on the same real servers rebuilds them. lblc and lblcr do not carry
    /// their caches (they re-learn them).
    fn export_state(&self, dests: Dests<'_>) -> Vec<i64> {
        let _ = dests;
        Vec::new()
    }

    /// Restores what [`Scheduler::export_state`] returned, after `init` on the same real
    /// servers in the same order; `false` if the state does not fit them (nothing changes).
    fn import_state(&mut self, dests: Dests<'_>, state: &[i64]) -> bool {
        let _ = dests;
        state.is_empty()
    }

    /// Picks a real server for a new connection, or `None` ("no destination available").
    fn schedule(
        &mut self,
        input: &SchedInput,
        dests: Dests<'_>,
        rng: &mut dyn RandomSource,
    ) -> Option<DestId>;
}

/// Every scheduler name, in the order ipvsadm's help lists them.
pub const NAMES: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// A fresh scheduler by ipvsadm name (the kernel's `ip_vs_scheduler_get`); `None` if the name is
/// unknown, or for `mh` if `opts.maglev` is invalid (check it first with
/// [`MaglevConfig::validate`], whose error message is meant for the user).
pub fn by_name(name: &str, opts: &SchedOptions) -> Option<Box<dyn Scheduler>> {
    Some(match name {
        "rr" => Box::new(rr::Rr::new()),
        "wrr" => Box::new(wrr::Wrr::new()),
        "lc" => Box::new(lc::Lc),
        "wlc" => Box::new(wlc::Wlc),
        "lblc" => Box::new(lblc::Lblc::new()),
        "lblcr" => Box::new(lblcr::Lblcr::new()),
        "dh" => Box::new(dh::Dh::new()),
        "sh" => Box::new(sh::Sh::new()),
        "sed" => Box::new(sed::Sed),
        "nq" => Box::new(nq::Nq),
        "fo" => Box::new(fo::Fo),
        "ovf" => Box::new(ovf::Ovf),
        "mh" => Box::new(mh::Mh::new(opts.maglev.unwrap_or_default()).ok()?),
        "twos" => Box::new(twos::Twos),
        _ => return None,
    })
}

// ---- helpers shared by several schedulers --------------------------------------------------
//
// The kernel keeps weights and connection counters in signed `int`s and does its arithmetic
// there. These helpers give the same numbers, so comparisons and overflows match bit for bit.

/// A weight as the kernel's `int`. rvs stores weights as `u32`; values above `i32::MAX` (which
/// the kernel rejects with ERANGE) are treated as `i32::MAX`.
#[inline]
pub(crate) fn weight(d: &Dest) -> i32 {
    i32::try_from(d.cfg.weight).unwrap_or(i32::MAX)
}

/// `activeconns` as the kernel's `atomic_t` value.
#[inline]
pub(crate) fn active(d: &Dest) -> i32 {
    d.activeconns as i32
}

/// The kernel's `ip_vs_dest_conn_overhead` in its own `int` arithmetic:
/// `(activeconns << 8) + inactconns`, wrapping (kernel-semantics §4.0).
#[inline]
pub(crate) fn conn_overhead(d: &Dest) -> i32 {
    active(d).wrapping_shl(8).wrapping_add(d.inactconns as i32)
}

/// The source port that sh and mh mix into the hash: the packet's source port when the service
/// has SCHED2 (sh-port / mh-port) and the protocol carries ports (TCP, UDP, SCTP), else 0
/// (`ip_vs_sh_get_port`, `ip_vs_mh_get_port`).
#[inline]
pub(crate) fn hash_port(input: &SchedInput) -> u16 {
    const TCP: u8 = 6;
    const UDP: u8 = 17;
    const SCTP: u8 = 132;
    if input.flags.has(ServiceFlags::SCHED2) && matches!(input.protocol, TCP | UDP | SCTP) {
        input.sport
    } else {
        0
    }
}

/// The weighted-least-load pick that wlc, sed, lblc and lblcr share (kernel-semantics §4.4, §4.5):
/// the first dest that is not OVERLOAD and has weight > 0 starts as `least`; every later dest that
/// is not OVERLOAD replaces it when `load(least) × w(dest) > load(dest) × w(least)` in 64-bit
/// arithmetic. Ties keep the earlier dest; weight-0 dests can never win (their left side is 0).
#[inline]
pub(crate) fn weighted_least(dests: Dests<'_>, load: impl Fn(&Dest) -> i32) -> Option<DestId> {
    let mut it = dests.iter();
    let (mut least_id, mut least) = it.by_ref().find(|(_, d)| !d.overload && weight(d) > 0)?;
    let mut loh = load(least) as i64;
    for (id, d) in it {
        if d.overload {
            continue;
        }
        let doh = load(d) as i64;
        if loh * weight(d) as i64 > doh * weight(least) as i64 {
            least_id = id;
            least = d;
            loh = doh;
        }
    }
    Some(least_id)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A tiny service model for the scheduler unit tests: a dest list kept in kernel order, with
    //! the callbacks the engine would make.

    use super::*;
    use crate::dest::DestConfig;
    use crate::service::ServiceId;

    /// The real servers of one service.
    #[derive(Default)]
    pub struct Svc {
        pub arena: DestArena,
        pub order: Vec<DestId>,
    }

    /// A dest of service 0 with the given weight, AVAILABLE, no connections.
    pub fn dest(addr: &str, port: u16, weight: u32) -> Dest {
        let key = crate::service::ServiceKey::Fwmark { v6: false, mark: 1 };
        Dest::new(
            ServiceId(0),
            key,
            DestConfig::new(addr.parse().unwrap(), port).weight(weight),
        )
    }

    /// An input from `saddr` to 10.0.0.100:80 (TCP) at time 0 with default sysctls.
    pub fn input(saddr: &str) -> SchedInput {
        SchedInput {
            now: Instant::ZERO,
            protocol: 6,
            saddr: saddr.parse().unwrap(),
            sport: 40000,
            daddr: "10.0.0.100".parse().unwrap(),
            dport: 80,
            flags: ServiceFlags::default(),
            lblc_expiration: 24 * 60 * 60,
            lblcr_expiration: 24 * 60 * 60,
        }
    }

    /// A random source that replays fixed numbers (each taken modulo the bound).
    pub struct Replay(pub Vec<u32>, pub usize);

    impl RandomSource for Replay {
        fn below(&mut self, n: u32) -> u32 {
            let v = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
            v % n
        }
    }

    impl Svc {
        pub fn dests(&self) -> Dests<'_> {
            Dests {
                order: &self.order,
                arena: &self.arena,
            }
        }
        /// Adds at the head, as the kernel does, and tells the scheduler.
        pub fn add(&mut self, s: &mut dyn Scheduler, addr: &str, weight: u32) -> DestId {
            let id = self.arena.insert(dest(addr, 80, weight));
            self.order.insert(0, id);
            s.add_dest(self.dests(), id);
            id
        }
        /// Removes from the list (the dest stays in the arena, not AVAILABLE, like the trash).
        pub fn del(&mut self, s: &mut dyn Scheduler, id: DestId) {
            let pos = self.order.iter().position(|&d| d == id).unwrap();
            self.order.remove(pos);
            self.arena[id].available = false;
            s.del_dest(self.dests(), id, pos);
        }
        /// Edits the weight (last_weight follows non-zero weights) and tells the scheduler.
        pub fn set_weight(&mut self, s: &mut dyn Scheduler, id: DestId, weight: u32) {
            let d = &mut self.arena[id];
            d.cfg.weight = weight;
            if weight != 0 {
                d.last_weight = weight;
            }
            s.upd_dest(self.dests(), id);
        }
        pub fn d(&mut self, id: DestId) -> &mut Dest {
            &mut self.arena[id]
        }
        pub fn pick(&self, s: &mut dyn Scheduler, input: &SchedInput) -> Option<DestId> {
            s.schedule(input, self.dests(), &mut Replay(Vec::new(), 0))
        }
        /// Picks and counts the pick as a new inactive connection, as the replay model does.
        pub fn pick_count(&mut self, s: &mut dyn Scheduler, input: &SchedInput) -> Option<DestId> {
            let id = self.pick(s, input)?;
            self.arena[id].inactconns += 1;
            Some(id)
        }
        /// The address of a dest, for readable assertions.
        pub fn name(&self, id: Option<DestId>) -> String {
            id.map_or("none".into(), |id| self.arena[id].cfg.addr.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{Svc, input};
    use super::*;
    use crate::rng::SplitMix64;
    use proptest::prelude::*;

    #[test]
    fn by_name_knows_every_scheduler_spec_4() {
        for name in NAMES {
            let s = by_name(name, &SchedOptions::default()).unwrap();
            assert_eq!(s.name(), name);
        }
        assert!(by_name("none", &SchedOptions::default()).is_none());
        assert!(by_name("WRR", &SchedOptions::default()).is_none());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u32),
        Del(usize),
        Revive(usize),
        Weight(usize, u32),
        Overload(usize, bool),
        Conns(usize, u32, u32),
        Pick {
            client: u32,
            daddr: u8,
            sport: u16,
            flags: u32,
            secs: u32,
        },
    }

    fn weight_strategy() -> impl Strategy<Value = u32> {
        prop_oneof![
            4 => 0u32..6,
            1 => Just(65535u32),
            1 => Just(i32::MAX as u32 + 7),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => weight_strategy().prop_map(Op::Add),
            1 => any::<usize>().prop_map(Op::Del),
            1 => any::<usize>().prop_map(Op::Revive),
            2 => (any::<usize>(), weight_strategy()).prop_map(|(i, w)| Op::Weight(i, w)),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(i, o)| Op::Overload(i, o)),
            2 => (any::<usize>(), 0u32..2000, 0u32..5000).prop_map(|(i, a, n)| Op::Conns(i, a, n)),
            8 => (any::<u32>(), 0u8..4, any::<u16>(), 0u32..4, 0u32..2000).prop_map(
                |(client, daddr, sport, flags, secs)| Op::Pick { client, daddr, sport, flags, secs }
            ),
        ]
    }

    /// Schedulers that return `None` only when no dest is eligible at all.
    fn complete(name: &str) -> bool {
        !matches!(name, "sh" | "dh" | "mh")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// kernel-semantics §4.0, §4.15: whatever the dest set and its history, a scheduler returns
        /// a dest of the service that has weight > 0 and (except a dest cached by lblc, which the
        /// kernel does not re-check for OVERLOAD) is not OVERLOAD; ovf's also has
        /// active ≤ weight. And the exhaustive ones return `None` only if nothing is eligible.
        #[test]
        fn schedulers_never_pick_an_ineligible_dest_spec_4_0(
            name in proptest::sample::select(NAMES.to_vec()),
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            let opts = SchedOptions {
                maglev: Some(MaglevConfig { table_size: 251, seed: Some(1) }),
            };
            let mut s = by_name(name, &opts).unwrap();
            let mut svc = Svc::default();
            s.init(svc.dests());
            let mut rng = SplitMix64::new(5);
            let mut now = Instant::ZERO;
            let mut deleted: Vec<DestId> = Vec::new();
            let mut n_added = 0u32;
            for op in ops {
                let pick_of = |svc: &Svc, i: usize| svc.order.get(i % svc.order.len().max(1)).copied();
                match op {
                    Op::Add(w) => {
                        n_added += 1;
                        let id = svc.add(&mut *s, &format!("10.9.{}.{}", n_added / 250, n_added % 250 + 1), w);
                        svc.d(id).last_weight = w;
                    }
                    Op::Del(i) => {
                        if let Some(id) = pick_of(&svc, i) {
                            svc.del(&mut *s, id);
                            deleted.push(id);
                        }
                    }
                    Op::Revive(i) => {
                        if !deleted.is_empty() {
                            let id = deleted.remove(i % deleted.len());
                            svc.order.insert(0, id);
                            svc.d(id).available = true;
                            s.add_dest(svc.dests(), id);
                        }
                    }
                    Op::Weight(i, w) => {
                        if let Some(id) = pick_of(&svc, i) {
                            svc.set_weight(&mut *s, id, w);
                        }
                    }
                    Op::Overload(i, o) => {
                        if let Some(id) = pick_of(&svc, i) {
                            svc.d(id).overload = o;
                        }
                    }
                    Op::Conns(i, a, n) => {
                        if let Some(id) = pick_of(&svc, i) {
                            svc.d(id).activeconns = a;
                            svc.d(id).inactconns = n;
                        }
                    }
                    Op::Pick { client, daddr, sport, flags, secs } => {
                        now = now.add_secs(secs as u64);
                        let mut inp = input("10.0.0.1");
                        inp.saddr = IpAddr::V4(client.into());
                        inp.daddr = IpAddr::V4([192, 168, 0, daddr].into());
                        inp.sport = sport;
                        inp.flags = ServiceFlags(flags * ServiceFlags::SCHED1);
                        inp.now = now;
                        inp.lblc_expiration = 600;
                        inp.lblcr_expiration = 600;
                        let got = s.schedule(&inp, svc.dests(), &mut rng);
                        match got {
                            Some(id) => {
                                prop_assert!(svc.order.contains(&id), "{name}: not in the service");
                                let d = &svc.arena[id];
                                prop_assert!(d.cfg.weight > 0, "{name}: weight 0");
                                prop_assert!(d.available, "{name}: not AVAILABLE");
                                if name != "lblc" {
                                    prop_assert!(!d.overload, "{name}: OVERLOAD");
                                }
                                if name == "ovf" {
                                    prop_assert!(d.activeconns as i64 <= weight(d) as i64);
                                }
                            }
                            None if complete(name) => {
                                let eligible = svc.dests().iter().any(|(_, d)| {
                                    !d.overload
                                        && d.cfg.weight > 0
                                        && (name != "ovf" || active(d) <= weight(d))
                                });
                                prop_assert!(!eligible, "{name}: None with an eligible dest");
                            }
                            None => {}
                        }
                    }
                }
            }
        }
    }
}
