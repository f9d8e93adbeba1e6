//! The engine: services, real servers, the connection tables, statistics and timers, and the
//! entry points the drivers call.

mod conn_ops;
pub use conn_ops::EvictReason;
mod control;
mod packet;
mod state;
pub use state::{STATE_MAGIC, STATE_VERSION, StateError, StateInfo, checksum, state_info};

use std::collections::VecDeque;

use core::net::IpAddr;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::addr::{Addr, V4, V6};
use crate::command::{AdmError, Command, Timeouts};
use crate::conn::{ConnTable, flags as cf};
use crate::decision::{DROP_REASONS, Decision, DropReason, Synth};
use crate::dest::{DestArena, DestId};
use crate::fullnat::PortPool;
use crate::profile::Profile;
use crate::proto::{self, TimeoutTable};
use crate::rng::{RandomSource, SplitMix64};
use crate::sched::SchedOptions;
use crate::service::{Protocol, ServiceKey, ServiceTable};
use crate::snapshot::{ConnView, DestView, IPVS_VERSION, InfoView, ServiceView, TotalsView};
use crate::stats::Stats;
use crate::sysctl::Sysctls;
use crate::time::{Instant, NANOS_PER_SEC, TICK_NANOS, Tick, secs_to_ticks};

/// How an engine is built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Behaviour profile.
    pub profile: Profile,
    /// Initial sysctl values.
    pub sysctls: Sysctls,
    /// Most entries (connections and templates) the table holds. The daemon's default is
    /// [`conn_max_for_memory`] of the machine's memory.
    pub conn_max: u32,
    /// The kernel's `conn_tab_bits`: only reported, as `size=2^bits` in listings.
    pub conn_tab_bits: u8,
    /// Seed of the table hash and of the random source (`twos`, the drop_entry defence).
    pub seed: u64,
    /// The time the engine starts at.
    pub start: Instant,
    /// Whether netfilter conntrack tracks the balancer's flows (true on a kube-proxy node,
    /// whose iptables rules register the conntrack hooks). Only kernel profiles read it
    /// (kernel-semantics §2.4; [`crate::conntrack`]).
    pub netfilter_conntrack: bool,
    /// Local addresses for full NAT.
    pub fullnat_addrs: Vec<IpAddr>,
    /// Scheduler options (Maglev table size and seed).
    #[serde(skip)]
    pub sched: SchedOptions,
    /// The bits of the kernel's per-namespace pointer that its service hash mixes in; only
    /// the order of unsorted listings depends on it ([`ServiceTable::kernel_order`]).
    pub svc_hash_salt: u8,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            profile: Profile::Safe,
            sysctls: Sysctls::default(),
            conn_max: 1 << 20,
            conn_tab_bits: 12,
            seed: 0x0005_eed0_f1b5,
            start: Instant::ZERO,
            netfilter_conntrack: false,
            fullnat_addrs: Vec::new(),
            sched: SchedOptions::default(),
            svc_hash_salt: 0,
        }
    }
}

/// Bytes the table's bound allows per entry when it is sized from memory: an IPv4 entry costs
/// 64 (measured: 63.6 at one million, `examples/table_memory.rs`), an IPv6 one about 100; 128
/// covers either with room to spare.
pub const BYTES_PER_ENTRY_BUDGET: u64 = 128;

/// The default bound of the connection table on a machine with `mem_total` bytes of memory
/// (rvs's own rule; conntrack sizes its table from memory too): 1/32 of the memory at
/// [`BYTES_PER_ENTRY_BUDGET`] bytes per entry, rounded down to a power of two, between 65 536 and
/// 16 777 216 entries. 4 GiB gives 1 048 576 entries (at most 64 MiB of IPv4 entries), 24 GiB
/// 4 194 304.
pub fn conn_max_for_memory(mem_total: u64) -> u32 {
    let n = (mem_total / 32 / BYTES_PER_ENTRY_BUDGET).clamp(1 << 16, 1 << 24);
    1u32 << (63 - n.leading_zeros())
}

/// Engine-wide event counters (beyond the kernel's statistics), for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineCounters {
    /// Drops, indexed by [`DropReason::index`].
    pub drops: Vec<u64>,
    /// New-connection packets that found an old entry and were scheduled afresh (port reuse,
    /// weight 0, removed real server).
    pub reuse_rescheduled: u64,
    /// Packets rescheduled because their real server was removed (`expire_nodest_conn`, or
    /// `safe`'s UDP rule).
    pub nodest_rescheduled: u64,
    /// `safe`: flows to a removed real server ended with resets.
    pub removed_resets: u64,
    /// Resets answered for TCP segments of unknown flows (what a director's local stack sends).
    pub unknown_flow_resets: u64,
    /// ICMP port-unreachable answers (no real server available, kernel-semantics §2.6.4).
    pub no_dest_unreachable: u64,
    /// Packets not for any service.
    pub passed: u64,
    /// Connections created.
    pub conns_created: u64,
    /// Templates created.
    pub templates_created: u64,
    /// Entries expired.
    pub expired: u64,
    /// Entries dropped by the drop_entry defence.
    pub defence_dropped_entries: u64,
    /// `safe`: entries given up to make room for a new connection, indexed by
    /// [`EvictReason`] (rvs's own rule).
    #[serde(default)]
    pub evicted: [u64; 4],
    /// `safe`: half-open entries expired by the shortened timeout while the table was under
    /// pressure.
    #[serde(default)]
    pub pressure_expired: u64,
    /// New entries that found the table at its bound (each either evicted another entry or
    /// was dropped as `table_full`).
    #[serde(default)]
    pub table_full: u64,
    /// `safe`: NAT connections from a real server to itself given full NAT (hairpin).
    #[serde(default)]
    pub hairpin_fullnat: u64,
}

impl EngineCounters {
    fn new() -> Self {
        EngineCounters {
            drops: vec![0; DROP_REASONS],
            ..Default::default()
        }
    }
    /// Drops for one reason.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops.get(r.index()).copied().unwrap_or(0)
    }
    /// Evictions for one reason.
    pub fn evicted_count(&self, r: EvictReason) -> u64 {
        self.evicted[r as usize]
    }
    /// Evictions, all reasons.
    pub fn evicted_total(&self) -> u64 {
        self.evicted.iter().sum()
    }
}

/// State of the automatic defences (kernel-semantics §2.12).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Defence {
    pub drop_rate: i32,
    pub drop_counter: i32,
    pub secure: bool,
    pub drop_entry: bool,
    pub todrop_counter: [i8; 9],
}

/// Everything but the connection tables (so a table and the rest can be borrowed at once).
pub(crate) struct Core {
    pub profile: Profile,
    pub sysctl: Sysctls,
    pub timeouts: TimeoutTable,
    pub services: ServiceTable,
    pub dests: DestArena,
    pub trash: Vec<DestId>,
    pub totals: Stats,
    pub rng: Box<dyn RandomSource>,
    pub out: VecDeque<Synth>,
    pub counters: EngineCounters,
    pub conn_max: u32,
    pub conn_tab_bits: u8,
    pub netfilter_conntrack: bool,
    pub sched_opts: SchedOptions,
    pub svc_hash_salt: u8,
    pub conn_count: usize,
    /// Successful control-plane operations so far (carried across a hand-over).
    pub generation: u64,
    pub now: Instant,
    /// While the wheel processes a slot: that slot's tick, the time the kernel's timer would
    /// have fired (so "expire later" re-arms from the deadline, not from `now`).
    pub timer_tick: Option<Tick>,
    /// Nothing is due before this instant (the packet path's one comparison).
    pub next_deadline: Instant,
    pub next_est: Instant,
    pub next_defence: Instant,
    pub next_trash: Instant,
    pub defence: Defence,
    pub ports_v4: PortPool,
    pub ports_v6: PortPool,
    /// MASQ real servers by (protocol, address, port), for `nat_icmp_send` (kernel-semantics §2.8).
    pub rs_index: HashMap<(Protocol, IpAddr, u16), u32>,
}

/// The IPVS engine. See the crate documentation for the contract.
pub struct Engine {
    pub(crate) core: Core,
    pub(crate) v4: ConnTable<V4>,
    pub(crate) v6: ConnTable<V6>,
}

/// Access to the table of one family.
pub(crate) trait Fam: Addr {
    fn split(e: &mut Engine) -> (&mut Core, &mut ConnTable<Self>);
    fn table(e: &Engine) -> &ConnTable<Self>;
    fn ports(c: &mut Core) -> &mut PortPool;
}

impl Fam for V4 {
    fn split(e: &mut Engine) -> (&mut Core, &mut ConnTable<V4>) {
        (&mut e.core, &mut e.v4)
    }
    fn table(e: &Engine) -> &ConnTable<V4> {
        &e.v4
    }
    fn ports(c: &mut Core) -> &mut PortPool {
        &mut c.ports_v4
    }
}

impl Fam for V6 {
    fn split(e: &mut Engine) -> (&mut Core, &mut ConnTable<V6>) {
        (&mut e.core, &mut e.v6)
    }
    fn table(e: &Engine) -> &ConnTable<V6> {
        &e.v6
    }
    fn ports(c: &mut Core) -> &mut PortPool {
        &mut c.ports_v6
    }
}

const ESTIMATOR_PERIOD: u64 = 2 * NANOS_PER_SEC;
const DEFENCE_PERIOD: u64 = NANOS_PER_SEC;
const TRASH_PERIOD: u64 = 60 * NANOS_PER_SEC;

impl Engine {
    /// A new engine.
    pub fn new(cfg: EngineConfig) -> Self {
        let start = cfg.start;
        let mut v4 = ConnTable::new(cfg.seed, start.tick());
        let mut v6 = ConnTable::new(cfg.seed.rotate_left(17) ^ 0x6a09_e667, start.tick());
        let (mut ports_v4, mut ports_v6) = (PortPool::default(), PortPool::default());
        for a in &cfg.fullnat_addrs {
            if let Some(x) = V4::from_ip(*a) {
                v4.lpool.push(x);
                ports_v4.add_address();
            } else if let Some(x) = V6::from_ip(*a) {
                v6.lpool.push(x);
                ports_v6.add_address();
            }
        }
        Engine {
            core: Core {
                profile: cfg.profile,
                sysctl: cfg.sysctls,
                timeouts: TimeoutTable::default(),
                services: ServiceTable::default(),
                dests: DestArena::default(),
                trash: Vec::new(),
                totals: Stats::default(),
                rng: Box::new(SplitMix64::new(cfg.seed)),
                out: VecDeque::new(),
                counters: EngineCounters::new(),
                conn_max: cfg.conn_max,
                conn_tab_bits: cfg.conn_tab_bits,
                netfilter_conntrack: cfg.netfilter_conntrack,
                sched_opts: cfg.sched,
                svc_hash_salt: cfg.svc_hash_salt,
                conn_count: 0,
                generation: 0,
                now: start,
                timer_tick: None,
                next_deadline: start,
                next_est: start.add_nanos(ESTIMATOR_PERIOD),
                next_defence: start.add_nanos(DEFENCE_PERIOD),
                next_trash: start.add_nanos(TRASH_PERIOD),
                defence: Defence::default(),
                ports_v4,
                ports_v6,
                rs_index: HashMap::new(),
            },
            v4,
            v6,
        }
    }

    /// Replaces the random source (tests inject a deterministic one).
    pub fn set_random_source(&mut self, rng: Box<dyn RandomSource>) {
        self.core.rng = rng;
    }

    /// Reserves table memory for `conn_max` entries up front, so the packet path never grows
    /// the table.
    pub fn preallocate(&mut self, v6_too: bool) {
        self.v4.reserve(self.core.conn_max as usize);
        if v6_too {
            self.v6.reserve(self.core.conn_max as usize);
        }
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.core.profile
    }

    /// Switches the profile (existing entries stay).
    pub fn set_profile(&mut self, p: Profile) {
        self.core.profile = p;
    }

    /// The sysctls.
    pub fn sysctls(&self) -> &Sysctls {
        &self.core.sysctl
    }

    /// Whether netfilter conntrack is modelled as tracking the flows.
    pub fn netfilter_conntrack(&self) -> bool {
        self.core.netfilter_conntrack
    }

    /// Sets whether netfilter conntrack tracks the flows (kernel profiles only).
    pub fn set_netfilter_conntrack(&mut self, on: bool) {
        self.core.netfilter_conntrack = on;
    }

    /// The time of the last input.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// Decides what to do with one packet. `now` should not be earlier than any previous
    /// `now`; an earlier one is taken as the latest seen (the engine's clock never goes back).
    pub fn handle_packet(&mut self, now: Instant, pkt: &rvs_packet::PacketMeta) -> Decision {
        self.handle_timeout(now);
        match (pkt.src, pkt.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => packet::handle::<V4>(self, now, pkt),
            (IpAddr::V6(_), IpAddr::V6(_)) => packet::handle::<V6>(self, now, pkt),
            _ => {
                self.core.counters.passed += 1;
                Decision::Pass
            }
        }
    }

    /// Runs every timer due at `now`: connection expiry, the 2-second estimator, the 1-second
    /// defence update, the 60-second trash sweep. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = now.max(self.core.now);
        self.core.now = now;
        if now < self.core.next_deadline {
            return; // nothing is due: the common case on the packet path
        }
        let t = now.tick();
        if self.v4.wheel.next_tick().at_or_before(t) {
            let (core, tab) = V4::split(self);
            core.run_wheel(tab, now);
        }
        if self.v6.wheel.next_tick().at_or_before(t) {
            let (core, tab) = V6::split(self);
            core.run_wheel(tab, now);
        }
        while self.core.next_est <= now {
            self.core.next_est = self.core.next_est.add_nanos(ESTIMATOR_PERIOD);
            self.core.estimator_tick();
        }
        while self.core.next_defence <= now {
            self.core.next_defence = self.core.next_defence.add_nanos(DEFENCE_PERIOD);
            self.defence_tick(now);
        }
        while self.core.next_trash <= now {
            self.core.next_trash = self.core.next_trash.add_nanos(TRASH_PERIOD);
            self.core.trash_tick(now);
        }
        // The wheels have processed every tick up to `now`: the next one is due at the start
        // of the following tick.
        let next_tick = Instant::from_nanos((now.as_nanos() / TICK_NANOS + 1) * TICK_NANOS);
        self.core.next_deadline = next_tick
            .min(self.core.next_est)
            .min(self.core.next_defence)
            .min(self.core.next_trash);
    }

    /// The earliest time at which [`Engine::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self
            .core
            .next_est
            .min(self.core.next_defence)
            .min(self.core.next_trash);
        for w in [self.v4.wheel.earliest(), self.v6.wheel.earliest()]
            .into_iter()
            .flatten()
        {
            let at = Instant::from_nanos(w.0 as u64 * crate::time::TICK_NANOS);
            // Ticks wrap after 198 days; an instant before `now` means "due".
            t = t.min(at.max(self.core.now));
        }
        t
    }

    /// A packet the engine wants sent (resets towards removed real servers under `safe`).
    pub fn poll_output(&mut self) -> Option<Synth> {
        self.core.out.pop_front()
    }

    /// Applies a control-plane operation. On error nothing changes.
    pub fn apply(&mut self, now: Instant, cmd: Command) -> Result<(), AdmError> {
        self.handle_timeout(now);
        let r = control::apply(self, now, cmd);
        if r.is_ok() {
            self.core.generation += 1;
        }
        r
    }

    /// The configuration generation: successful [`Engine::apply`] calls since the engine was
    /// created, carried across hand-overs ([`Engine::export_state`]).
    pub fn generation(&self) -> u64 {
        self.core.generation
    }

    /// Event counters.
    pub fn counters(&self) -> &EngineCounters {
        &self.core.counters
    }

    /// Entries in the tables (connections and templates).
    pub fn conn_count(&self) -> usize {
        self.core.conn_count
    }

    /// The table's bound (`conn_max`).
    pub fn conn_max(&self) -> u32 {
        self.core.conn_max
    }

    /// `safe`: whether the table is under pressure (at least 7/8 of its bound in use: half-open
    /// entries then get a shorter timeout).
    pub fn under_pressure(&self) -> bool {
        self.core.profile == Profile::Safe && self.core.under_pressure()
    }

    /// Entries on each eviction list of both tables: (half-open, closed or UDP).
    pub fn eviction_lists(&self) -> (usize, usize) {
        use crate::conn::List;
        (
            self.v4.list_len(List::Embryonic) + self.v6.list_len(List::Embryonic),
            self.v4.list_len(List::Idle) + self.v6.list_len(List::Idle),
        )
    }

    /// Heap bytes held by both connection tables.
    pub fn table_heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    /// Header facts for listings.
    pub fn info(&self) -> InfoView {
        InfoView {
            version: IPVS_VERSION,
            conn_tab_size: 1u32 << self.core.conn_tab_bits.min(31),
            conn_count: self.core.conn_count as u64,
            conn_max: self.core.conn_max as u64,
        }
    }

    /// The timeouts `ipvsadm -L --timeout` shows.
    pub fn timeouts(&self) -> Timeouts {
        self.core.timeouts.ipvsadm()
    }

    /// Totals (`/proc/net/ip_vs_stats`).
    pub fn totals(&self) -> TotalsView {
        TotalsView {
            stats: self.core.totals.reported(),
            rates: self.core.totals.rates(),
        }
    }

    /// Every service, in the kernel's hash-table order ([`ServiceTable::kernel_order`]), with
    /// its real servers in kernel order (newest first).
    pub fn services(&self) -> Vec<ServiceView> {
        let c = &self.core;
        c.services
            .kernel_order(c.svc_hash_salt)
            .iter()
            .filter_map(|&id| c.services.get(id))
            .map(|s| ServiceView {
                key: s.cfg.key,
                scheduler: s.cfg.scheduler.clone(),
                flags: s.cfg.flags,
                timeout: s.cfg.timeout,
                netmask: s.cfg.netmask,
                pe_name: s.cfg.pe_name.clone(),
                stats: s.stats.reported(),
                rates: s.stats.rates(),
                dests: s.dests.iter().map(|&d| dest_view(&c.dests[d])).collect(),
            })
            .collect()
    }

    /// One service by key.
    pub fn service(&self, key: &ServiceKey) -> Option<ServiceView> {
        self.services().into_iter().find(|s| &s.key == key)
    }

    /// One real server of a service.
    pub fn dest(&self, key: &ServiceKey, addr: IpAddr, port: u16) -> Option<DestView> {
        let c = &self.core;
        let svc = c.services.get(c.services.find_key(key)?)?;
        svc.dests
            .iter()
            .map(|&d| &c.dests[d])
            .find(|d| d.cfg.addr == addr && d.cfg.port == port)
            .map(dest_view)
    }

    /// Every entry of the connection tables (`ipvsadm -Lnc`).
    pub fn conns(&self) -> Vec<ConnView> {
        let mut v = Vec::with_capacity(self.core.conn_count);
        conn_views(&self.core, &self.v4, &mut v);
        conn_views(&self.core, &self.v6, &mut v);
        v
    }
}

fn dest_view(d: &crate::dest::Dest) -> DestView {
    DestView {
        addr: d.cfg.addr,
        port: d.cfg.port,
        fwd: d.cfg.fwd,
        weight: d.cfg.weight,
        u_threshold: d.cfg.u_threshold,
        l_threshold: d.cfg.l_threshold,
        activeconns: d.activeconns,
        inactconns: d.inactconns,
        persistconns: d.persistconns,
        overloaded: d.overload,
        tunnel: d.cfg.tunnel,
        stats: d.stats.reported(),
        rates: d.stats.rates(),
    }
}

fn conn_views<A: Addr>(core: &Core, tab: &ConnTable<A>, out: &mut Vec<ConnView>) {
    let now = core.now.tick();
    for (_, c) in tab.iter() {
        let template = c.is_template();
        let proto = if template && c.proto == 0 {
            "IP"
        } else {
            Protocol::from_ipproto(c.proto)
                .map(Protocol::name)
                .unwrap_or("IP")
        };
        let state = if template {
            if c.state & 1 != 0 { "ASSURED" } else { "NONE" }
        } else {
            Protocol::from_ipproto(c.proto)
                .map(|p| proto::state_name(p, c.state))
                .unwrap_or("NONE")
        };
        let vaddr = if template && c.proto == 0 {
            // fwmark templates keep the mark in the address; it shows as an IPv4 address.
            let b = c.vaddr.to_ip();
            match b {
                IpAddr::V4(a) => IpAddr::V4(a),
                IpAddr::V6(a) => {
                    let o = a.octets();
                    IpAddr::V4(core::net::Ipv4Addr::new(o[0], o[1], o[2], o[3]))
                }
            }
        } else {
            c.vaddr.to_ip()
        };
        let fwd = crate::dest::ForwardMethod::from_conn_flags(c.flags);
        let local = if c.fwd() == cf::FWD_FULLNAT {
            tab.lpool
                .get(c.laddr as usize)
                .map(|a| (a.to_ip(), c.lport))
        } else {
            None
        };
        out.push(ConnView {
            proto: proto.to_string(),
            caddr: c.caddr.to_ip(),
            cport: c.cport,
            vaddr,
            vport: c.vport,
            daddr: c.daddr.to_ip(),
            dport: c.dport,
            state: state.to_string(),
            expires_ms: c.expires.since(now) as u64 * 4,
            template,
            fwd,
            local,
        });
    }
}

impl Core {
    /// Estimator tick: publish counters and update rates (kernel-semantics §6.2–§6.3). With
    /// `run_estimation=0` (5.16+) nothing advances.
    fn estimator_tick(&mut self) {
        if self.sysctl.run_estimation == 0
            && self.profile != Profile::Linux4_19
            && self.profile != Profile::Linux5_9
        {
            return;
        }
        self.totals.tick();
        for &id in self.services.ids().to_vec().iter() {
            if let Some(s) = self.services.get_mut(id) {
                s.stats.tick();
            }
        }
        let ids = self.dests.ids();
        for id in ids {
            self.dests[id].stats.tick();
        }
    }

    /// The trash sweep (kernel-semantics §1.3): free a trashed real server once it has no
    /// references and has been idle for 120 s.
    fn trash_tick(&mut self, now: Instant) {
        let mut keep = Vec::with_capacity(self.trash.len());
        for &id in &self.trash {
            let Some(d) = self.dests.get_mut(id) else {
                continue;
            };
            if d.refs > 0 {
                keep.push(id);
                continue;
            }
            match d.trash_idle_since {
                None => {
                    d.trash_idle_since = Some(now);
                    keep.push(id);
                }
                Some(t) if now.nanos_since(t) < 2 * TRASH_PERIOD => keep.push(id),
                Some(_) => {
                    self.dests.remove(id);
                }
            }
        }
        self.trash = keep;
    }

    /// `ticks` from seconds.
    #[inline]
    pub fn ticks(secs: u32) -> u32 {
        secs_to_ticks(secs)
    }

    /// The current tick (during expiry processing: the tick the timer fired at).
    #[inline]
    pub fn tick(&self) -> Tick {
        self.timer_tick.unwrap_or_else(|| self.now.tick())
    }

    /// Counts a drop.
    #[inline]
    pub fn count_drop(&mut self, r: DropReason) {
        if let Some(c) = self.counters.drops.get_mut(r.index()) {
            *c += 1;
        }
    }
}

impl crate::dest::ForwardMethod {
    /// The method recorded in an entry's flags.
    pub fn from_conn_flags(f: u16) -> Self {
        use crate::dest::ForwardMethod as F;
        match f & cf::FWD_MASK {
            cf::FWD_MASQ => F::Masq,
            cf::FWD_LOCAL => F::Local,
            cf::FWD_TUNNEL => F::Tunnel,
            cf::FWD_FULLNAT => F::FullNat,
            _ => F::Route,
        }
    }
    /// The flag bits of the method.
    pub fn conn_flags(self) -> u16 {
        use crate::dest::ForwardMethod as F;
        match self {
            F::Masq => cf::FWD_MASQ,
            F::Local => cf::FWD_LOCAL,
            F::Tunnel => cf::FWD_TUNNEL,
            F::Route => cf::FWD_ROUTE,
            F::FullNat => cf::FWD_FULLNAT,
        }
    }
}
