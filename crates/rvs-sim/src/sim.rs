//! The discrete-event loop: clients, pods, the control plane and the engine, in virtual time.
//!
//! Events sit in a binary heap ordered by (time, sequence number), so two events at the same
//! nanosecond run in the order they were scheduled, and a run is a pure function of the
//! scenario, the profile row, the variant and the options.
//!
//! To keep the cost per connection low, a connection whose handshake is answered at once is
//! handled in one event: the engine sees the SYN, the server's SYN-ACK, the client's ACK and the
//! close exchange back to back, each stamped with its modelled time (a fraction of the round
//! trip after the SYN; the engine clamps them to be monotonic, and at its 4 ms tick the
//! difference cannot show). Only attempts that wait (a dropped or unanswered SYN, an ICMP
//! error that comes later, a held connection) get events of their own.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{
    Answer, Decision, DropReason, Engine, EngineConfig, Forward, Instant, PacketMeta, Xmit,
};
use rvs_packet::TcpFlags;

use crate::balancer::{Balancer, Stub};
use crate::ports::{IN_USE, Ports};
use crate::profile::ProfileSpec;
use crate::rng::{Rng, derive};
use crate::scenario::{
    Action, Arrivals, CloseSide, CpModel, Gone, Proto, Scenario, UdpPorts, Variant, ns,
};
use crate::stats::{Drain, DrainSummary, EngineFacts, Outcome, ProtoStats, RunResult};

const NONE: u32 = u32::MAX;
const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const SYN: u8 = TcpFlags::SYN;
const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
const ACK: u8 = TcpFlags::ACK;
const FINACK: u8 = TcpFlags::FIN | TcpFlags::ACK;
const RSTACK: u8 = TcpFlags::RST | TcpFlags::ACK;
/// EADDRNOTAVAIL: the client retries this much later (tcpclient's 20 ms).
const PORT_RETRY: u64 = 20 * MS;

/// Overrides and switches of one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop starting connections after this many attempts (per run).
    pub max_connections: Option<u64>,
    /// Override the scenario's duration.
    pub duration_s: Option<f64>,
    /// Benchmark baseline only: replace the engine by a stateless stub ([`Stub`]).
    pub stub_engine: bool,
}

/// Runs one (profile, variant) of a scenario. `progress`, if given, accumulates the virtual
/// nanoseconds simulated (for a progress bar).
pub fn run(
    sc: &Scenario,
    prof: &ProfileSpec,
    variant: Option<&Variant>,
    opts: &RunOptions,
    progress: Option<&AtomicU64>,
) -> RunResult {
    if opts.stub_engine {
        World::new(sc, prof, variant, opts, Stub::default()).run(progress)
    } else {
        let engine = Engine::new(engine_config(sc, prof, variant));
        World::new(sc, prof, variant, opts, engine).run(progress)
    }
}

/// The engine configuration of a run: the profile's sysctls, then `[engine]`'s, then the
/// variant's; the engine's seed derives from the scenario seed.
pub fn engine_config(sc: &Scenario, prof: &ProfileSpec, variant: Option<&Variant>) -> EngineConfig {
    let mut cfg = EngineConfig {
        profile: prof.profile,
        netfilter_conntrack: sc
            .engine
            .netfilter_conntrack
            .unwrap_or(prof.netfilter_conntrack),
        conn_max: sc.engine.conn_max,
        seed: derive(sc.seed, 0xe9),
        start: Instant::ZERO,
        ..EngineConfig::default()
    };
    let all = prof
        .sysctls
        .iter()
        .cloned()
        .chain(
            sc.engine
                .sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string())),
        )
        .chain(
            variant
                .into_iter()
                .flat_map(|v| v.sysctls.iter().map(|(k, v)| (k.clone(), v.to_string()))),
        );
    for (k, v) in all {
        // Checked when the scenario was validated.
        let _ = cfg.sysctls.set(&k, &v);
    }
    cfg
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodPhase {
    Starting,
    Ready,
    PreStop,
    Draining,
    Gone,
}

/// What an endpoint looks like to the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EpState {
    NotReady,
    Ready,
    TermServing,
    TermNotServing,
    Removed,
}

impl PodPhase {
    fn endpoint(self) -> EpState {
        match self {
            PodPhase::Starting => EpState::NotReady,
            PodPhase::Ready => EpState::Ready,
            PodPhase::PreStop => EpState::TermServing,
            PodPhase::Draining => EpState::TermNotServing,
            PodPhase::Gone => EpState::Removed,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct LbState {
    present: bool,
    weight: u32,
    /// In kube-proxy's graceful-termination list.
    graceful: bool,
    /// Index of the open drain record.
    drain: Option<usize>,
}

struct Pod {
    ip: IpAddr,
    phase: PodPhase,
    old: bool,
    gone: Gone,
    lb: [LbState; 2],
    /// The director's neighbour resolution towards this pod fails at this time.
    neigh_fail_at: u64,
}

/// How a pod answers a SYN (or a datagram).
enum Answering {
    Accept,
    Rst,
    Silence,
    Unreachable,
}

struct Group {
    proto: Proto,
    rate: Option<f64>,
    arrivals: Arrivals,
    interval: u64,
    concurrency: u32,
    rtt: f64,
    jitter: f64,
    lo: u16,
    nports: u32,
    tw_reuse: bool,
    time_wait: u64,
    syn_retries: u8,
    connect_timeout: u64,
    close: CloseSide,
    hold: u64,
    udp_ports: UdpPorts,
    sockets: u32,
    udp_timeout: u64,
    udp_attempts: u8,
}

struct Host {
    ip: IpAddr,
    group: u32,
    /// Per local port (index from the range's low end): the millisecond from which it may be
    /// used again ([`IN_USE`] while a socket holds it).
    ports: Ports,
    perturb: u32,
    port_offset: u32,
    /// Offset of the host's seconds clock (for tcp_tw_reuse's whole-second test).
    clock_offset: u64,
    rng: Rng,
    udp_fixed: Vec<u32>,
    udp_next: u32,
    epoch: u32,
    active: bool,
}

/// An attempt (TCP connect or UDP query) waiting for something.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    host: u32,
    slot: u32,
    port: u32,
    start: u64,
    tag: u32,
    udp: bool,
    /// TCP: SYNs sent; UDP: tries sent.
    sent: u8,
    draining: bool,
    gone: bool,
    live: bool,
    /// The pod the last packet went to (NONE: none yet).
    pod: u32,
}

/// An established connection that stays open (`hold_ms > 0`).
#[derive(Clone, Copy, Debug, Default)]
struct Open {
    host: u32,
    slot: u32,
    port: u32,
    pod: u32,
    rtt: u64,
    live: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Open loop: the next arrival of a host.
    Arrival {
        host: u32,
        epoch: u32,
    },
    /// Start an attempt (a closed loop's next iteration, or a retry after EADDRNOTAVAIL).
    Start {
        host: u32,
        slot: u32,
        epoch: u32,
    },
    /// A pending attempt's next deadline (retransmission, timeout).
    Timer {
        p: u32,
        tag: u32,
    },
    /// An ICMP error reaches a pending attempt.
    Icmp {
        p: u32,
        tag: u32,
        unreach: bool,
    },
    /// A held connection closes.
    Close {
        c: u32,
    },
    PodReady {
        pod: u32,
    },
    PodSigterm {
        pod: u32,
    },
    PodExit {
        pod: u32,
    },
    /// The control plane sees a pod's endpoint change.
    Observe {
        pod: u32,
        state: u8,
    },
    Sync,
    Check,
    Deadline {
        pod: u32,
        vs: u8,
    },
    Script {
        idx: u32,
    },
    RolloutStart,
    PhaseStart {
        idx: u32,
    },
    PhaseEnd {
        idx: u32,
    },
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: u64,
    seq: u64,
    ev: Ev,
}

struct Cp {
    model: CpModel,
    sync_delay: u64,
    min_sync: u64,
    check_interval: u64,
    deadline: u64,
    view: Vec<EpState>,
    last_sync: Option<u64>,
    sync_scheduled: bool,
}

struct DrainRec {
    pod: u32,
    vs: usize,
    start: u64,
    end: Option<u64>,
}

struct World<'s, B: Balancer> {
    sc: &'s Scenario,
    prof_label: String,
    variant_label: Option<String>,
    lb: B,
    end: u64,
    now: u64,
    q: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    vip: IpAddr,
    vport: u16,
    /// The virtual services: [tcp, udp].
    vs: [Option<ServiceKey>; 2],
    pods: Vec<Pod>,
    next_pod_addr: u128,
    groups: Vec<Group>,
    hosts: Vec<Host>,
    pending: Vec<Pending>,
    pending_free: Vec<u32>,
    open: Vec<Open>,
    open_free: Vec<u32>,
    cp: Cp,
    cp_rng: Rng,
    drains: Vec<DrainRec>,
    stats: [ProtoStats; 2],
    phase_names: Vec<String>,
    gone_default: Gone,
    gone_override: Option<Gone>,
    max_conns: u64,
    started: u64,
    events: u64,
    synthesized: u64,
}

fn add_to_ip(ip: IpAddr, k: u128) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(k as u32)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(k)).into()),
    }
}

impl<'s, B: Balancer> World<'s, B> {
    fn new(
        sc: &'s Scenario,
        prof: &ProfileSpec,
        variant: Option<&Variant>,
        opts: &RunOptions,
        lb: B,
    ) -> Self {
        let duration = opts.duration_s.unwrap_or(sc.duration_s);
        let end = ns(duration);
        let bin = ns(sc
            .timeline_bin_s
            .unwrap_or_else(|| (duration / 600.0).ceil().max(1.0)));
        let windows: Vec<(u64, u64)> = sc
            .phases
            .iter()
            .map(|p| (ns(p.start_s), ns(p.end_s)))
            .collect();
        let groups: Vec<Group> = sc
            .clients
            .iter()
            .map(|c| {
                let nports = (c.port_range[1] - c.port_range[0]) as u32 + 1;
                Group {
                    proto: c.protocol,
                    rate: c.rate,
                    arrivals: c.arrivals,
                    interval: (c.interval_ms.unwrap_or(0.0) * MS as f64) as u64,
                    concurrency: c.concurrency,
                    rtt: c.rtt_us * 1000.0,
                    jitter: c.rtt_jitter_us * 1000.0,
                    lo: c.port_range[0],
                    nports,
                    tw_reuse: c.tcp_tw_reuse == 1,
                    time_wait: ns(c.time_wait_s),
                    syn_retries: c.syn_retries,
                    connect_timeout: (c.connect_timeout_ms * MS as f64) as u64,
                    close: c.close,
                    hold: (c.hold_ms * MS as f64) as u64,
                    udp_ports: c.udp_ports,
                    sockets: c.sockets,
                    udp_timeout: (c.udp_timeout_ms * MS as f64) as u64,
                    udp_attempts: c.udp_attempts,
                }
            })
            .collect();
        let mut hosts = Vec::new();
        for (gi, c) in sc.clients.iter().enumerate() {
            let g = &groups[gi];
            for k in 0..c.count {
                let idx = hosts.len() as u64;
                let mut rng = Rng::stream(sc.seed, 1000 + idx);
                let port_offset = rng.next_u64() as u32;
                let perturb = rng.next_u64() as u32;
                let clock_offset = rng.below(SEC);
                let mut udp_fixed = Vec::new();
                if g.proto == Proto::Udp && g.udp_ports == UdpPorts::Fixed {
                    while udp_fixed.len() < g.sockets as usize {
                        let p = rng.below(g.nports as u64) as u32;
                        if !udp_fixed.contains(&p) {
                            udp_fixed.push(p);
                        }
                    }
                }
                hosts.push(Host {
                    ip: add_to_ip(c.address, k as u128),
                    group: gi as u32,
                    ports: Ports::new(g.nports),
                    perturb,
                    port_offset,
                    clock_offset,
                    rng,
                    udp_fixed,
                    udp_next: 0,
                    epoch: 0,
                    active: false,
                });
            }
        }
        let gone_override = variant.and_then(|v| v.gone);
        let mk_stats = || ProtoStats::new(windows.clone(), bin.max(1), end);
        let mut stats = [mk_stats(), mk_stats()];
        if let Some(h) = hosts.first() {
            let g: &Group = &groups[h.group as usize];
            if g.nports <= crate::stats::PORT_TABLE_MAX {
                stats[(g.proto == Proto::Udp) as usize].track_ports(g.lo, g.nports);
            }
        }
        World {
            sc,
            prof_label: prof.label.clone(),
            variant_label: variant.map(|v| v.label.clone()),
            lb,
            end,
            now: 0,
            q: BinaryHeap::new(),
            seq: 0,
            vip: sc.service.vip,
            vport: sc.service.port,
            vs: [None, None],
            pods: Vec::new(),
            next_pod_addr: 1,
            groups,
            hosts,
            pending: Vec::new(),
            pending_free: Vec::new(),
            open: Vec::new(),
            open_free: Vec::new(),
            cp: Cp {
                model: sc.control_plane.model,
                sync_delay: (sc.control_plane.sync_delay_ms * MS as f64) as u64,
                min_sync: (sc.control_plane.min_sync_period_ms * MS as f64) as u64,
                check_interval: ns(sc.control_plane.check_interval_s),
                deadline: ns(sc.control_plane.deadline_s),
                view: Vec::new(),
                last_sync: None,
                sync_scheduled: false,
            },
            cp_rng: Rng::stream(sc.seed, 2),
            drains: Vec::new(),
            stats,
            phase_names: sc.phases.iter().map(|p| p.name.clone()).collect(),
            gone_default: gone_override.unwrap_or(sc.pods.gone),
            gone_override,
            max_conns: opts.max_connections.unwrap_or(u64::MAX),
            started: 0,
            events: 0,
            synthesized: 0,
        }
    }

    #[inline]
    fn at(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.q.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn run(mut self, progress: Option<&AtomicU64>) -> RunResult {
        self.setup();
        let mut reported = 0u64;
        while let Some(Reverse(s)) = self.q.pop() {
            if s.at > self.end {
                break;
            }
            self.now = s.at;
            self.events += 1;
            self.handle(s.ev);
            if self.events & 0xffff == 0
                && let Some(p) = progress
            {
                p.fetch_add(self.now - reported, Ordering::Relaxed);
                reported = self.now;
            }
        }
        if let Some(p) = progress {
            p.fetch_add(self.end.saturating_sub(reported), Ordering::Relaxed);
        }
        self.finish()
    }

    // ---- setup ----------------------------------------------------------------------------

    fn setup(&mut self) {
        let sc = self.sc;
        for (i, proto) in [(0usize, Proto::Tcp), (1, Proto::Udp)] {
            if sc.clients.iter().any(|c| c.protocol == proto) {
                let key = ServiceKey::Addr {
                    proto: if proto == Proto::Tcp {
                        Protocol::Tcp
                    } else {
                        Protocol::Udp
                    },
                    addr: self.vip,
                    port: self.vport,
                };
                let _ = self.lb.apply(
                    0,
                    Command::AddService(ServiceConfig::new(key).scheduler(&sc.service.scheduler)),
                );
                self.vs[i] = Some(key);
            }
        }
        let n = sc.initial_pods();
        for k in 0..n {
            let ip = sc.service.addresses.get(k as usize).copied();
            let p = self.new_pod(ip, false);
            self.pods[p as usize].phase = PodPhase::Ready;
            self.cp.view[p as usize] = EpState::Ready;
        }
        // The initial real servers, in pod order (as `ipvsadm -a` rs1, rs2, rs3).
        for p in 0..n {
            for vs in 0..2 {
                if self.vs[vs].is_some() {
                    self.lb_add(p, vs, 1);
                }
            }
        }
        if self.cp.model == CpModel::KubeProxy {
            let first = self.cp_rng.below(self.cp.check_interval.max(1));
            self.at(first, Ev::Check);
        }
        for (i, e) in sc.events.iter().enumerate() {
            self.at(ns(e.at_s), Ev::Script { idx: i as u32 });
        }
        if let Some(r) = &sc.rollout {
            self.at(ns(r.at_s), Ev::RolloutStart);
        }
        if sc.clients_only_in_phases {
            for (i, p) in sc.phases.iter().enumerate() {
                self.at(ns(p.start_s), Ev::PhaseStart { idx: i as u32 });
                self.at(ns(p.end_s), Ev::PhaseEnd { idx: i as u32 });
            }
        } else {
            self.activate_clients();
        }
    }

    fn new_pod(&mut self, ip: Option<IpAddr>, old: bool) -> u32 {
        let ip = ip.unwrap_or_else(|| {
            let a = add_to_ip(self.sc.service.pod_network, self.next_pod_addr);
            self.next_pod_addr += 1;
            a
        });
        self.pods.push(Pod {
            ip,
            phase: PodPhase::Starting,
            old,
            gone: self.gone_default,
            lb: [LbState::default(); 2],
            neigh_fail_at: 0,
        });
        self.cp.view.push(EpState::NotReady);
        self.pods.len() as u32 - 1
    }

    fn activate_clients(&mut self) {
        let now = self.now;
        for h in 0..self.hosts.len() {
            let host = &mut self.hosts[h];
            host.epoch = host.epoch.wrapping_add(1);
            host.active = true;
            let epoch = host.epoch;
            let g = &self.groups[host.group as usize];
            match g.rate {
                Some(rate) => {
                    let mean = SEC as f64 / rate;
                    let first = match g.arrivals {
                        Arrivals::Poisson => host.rng.exp(mean),
                        Arrivals::Fixed => host.rng.below(mean.max(1.0) as u64),
                    };
                    self.at(
                        now + first,
                        Ev::Arrival {
                            host: h as u32,
                            epoch,
                        },
                    );
                }
                None => {
                    for slot in 0..g.concurrency {
                        self.at(
                            now,
                            Ev::Start {
                                host: h as u32,
                                slot,
                                epoch,
                            },
                        );
                    }
                }
            }
        }
    }

    // ---- dispatch -------------------------------------------------------------------------

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Arrival { host, epoch } => self.arrival(host, epoch),
            Ev::Start { host, slot, epoch } => {
                let h = &self.hosts[host as usize];
                if h.active && h.epoch == epoch {
                    self.start(host, slot);
                }
            }
            Ev::Timer { p, tag } => self.timer(p, tag),
            Ev::Icmp { p, tag, unreach } => self.icmp(p, tag, unreach),
            Ev::Close { c } => self.close_held(c),
            Ev::PodReady { pod } => self.pod_ready(pod),
            Ev::PodSigterm { pod } => self.pod_sigterm(pod),
            Ev::PodExit { pod } => self.pod_exit(pod),
            Ev::Observe { pod, state } => self.observe(pod, state),
            Ev::Sync => self.sync(),
            Ev::Check => self.check(),
            Ev::Deadline { pod, vs } => self.deadline(pod, vs as usize),
            Ev::Script { idx } => self.script(idx as usize),
            Ev::RolloutStart => {
                for p in &mut self.pods {
                    p.old = true;
                }
                self.reconcile();
            }
            Ev::PhaseStart { .. } => self.activate_clients(),
            Ev::PhaseEnd { .. } => {
                for h in &mut self.hosts {
                    h.active = false;
                }
            }
        }
    }

    // ---- clients --------------------------------------------------------------------------

    fn arrival(&mut self, host: u32, epoch: u32) {
        let h = &mut self.hosts[host as usize];
        if !h.active || h.epoch != epoch {
            return;
        }
        let g = &self.groups[h.group as usize];
        let mean = SEC as f64 / g.rate.unwrap_or(1.0);
        let gap = match g.arrivals {
            Arrivals::Poisson => h.rng.exp(mean),
            Arrivals::Fixed => mean as u64,
        };
        let now = self.now;
        self.at(now + gap.max(1), Ev::Arrival { host, epoch });
        self.start(host, NONE);
    }

    /// Starts a connection or query from `host` (`slot`: its closed loop, or [`NONE`]).
    fn start(&mut self, host: u32, slot: u32) {
        if self.started >= self.max_conns {
            return;
        }
        let gi = self.hosts[host as usize].group as usize;
        let udp = self.groups[gi].proto == Proto::Udp;
        let port = if udp {
            self.pick_port_udp(host)
        } else {
            self.pick_port_tcp(host)
        };
        let Some(port) = port else {
            // EADDRNOTAVAIL. A closed loop (tcpclient) retries 20 ms later; an open-loop
            // arrival fails at once (the application's connect() returned the error).
            let now = self.now;
            self.stats[udp as usize].count(now, |c| c.eaddrnotavail += 1);
            if slot != NONE {
                let epoch = self.hosts[host as usize].epoch;
                self.at(now + PORT_RETRY, Ev::Start { host, slot, epoch });
            }
            return;
        };
        self.started += 1;
        let mut a = Pending {
            host,
            slot,
            port,
            start: self.now,
            tag: 0,
            udp,
            sent: 0,
            draining: false,
            gone: false,
            live: true,
            pod: NONE,
        };
        if udp {
            self.send_query(&mut a, None);
        } else {
            self.send_syn(&mut a, None);
        }
    }

    /// Linux 6.1's `__inet_hash_connect` for one destination ([`Ports::pick`]); after a
    /// success the perturbation grows by the distance scanned (at least a random even number
    /// below 16) plus 2.
    fn pick_port_tcp(&mut self, host: u32) -> Option<u32> {
        let now_ms = (self.now / MS) as u32;
        let h = &mut self.hosts[host as usize];
        let (idx, i) = h
            .ports
            .pick(h.perturb.wrapping_add(h.port_offset), now_ms)?;
        h.ports.set(idx, IN_USE);
        let r = (h.rng.below(8) * 2) as u32;
        h.perturb = h.perturb.wrapping_add(i.max(r) + 2);
        Some(idx)
    }

    /// UDP: a fixed socket's port (used in turn), or a fresh socket's random free port.
    fn pick_port_udp(&mut self, host: u32) -> Option<u32> {
        let now_ms = (self.now / MS) as u32;
        let h = &mut self.hosts[host as usize];
        if !h.udp_fixed.is_empty() {
            let i = h.udp_next as usize % h.udp_fixed.len();
            h.udp_next = h.udp_next.wrapping_add(1);
            return Some(h.udp_fixed[i]);
        }
        let size = h.ports.len() as u64;
        let first = h.rng.below(size);
        for k in 0..size {
            let idx = ((first + k) % size) as u32;
            if h.ports.usable(idx, now_ms) {
                h.ports.set(idx, IN_USE);
                return Some(idx);
            }
        }
        None
    }

    #[inline]
    fn rtt(&mut self, host: u32) -> u64 {
        let h = &mut self.hosts[host as usize];
        let g = &self.groups[h.group as usize];
        g.rtt as u64 + h.rng.exp(g.jitter)
    }

    #[inline]
    fn lport(&self, host: u32, port: u32) -> u16 {
        let h = &self.hosts[host as usize];
        self.groups[h.group as usize].lo + port as u16
    }

    /// The pod a forwarded packet goes to.
    #[inline]
    fn pod_of(&self, d: &Decision) -> Option<u32> {
        if let Decision::Forward(Forward {
            xmit: Xmit::Nat {
                dst: Some((ip, _)), ..
            },
            ..
        }) = d
        {
            self.pods
                .iter()
                .rposition(|p| p.ip == *ip)
                .map(|i| i as u32)
        } else {
            None
        }
    }

    /// How pod `pod` answers a new connection (TCP) or a datagram (UDP) at `now`.
    fn answering(&self, pod: u32, udp: bool) -> Answering {
        let p = &self.pods[pod as usize];
        match p.phase {
            PodPhase::Ready | PodPhase::PreStop => Answering::Accept,
            PodPhase::Draining if udp || self.sc.pods.accept_after_sigterm => Answering::Accept,
            PodPhase::Starting | PodPhase::Draining => Answering::Rst,
            PodPhase::Gone => match p.gone {
                Gone::Rst => Answering::Rst,
                Gone::Silence => Answering::Silence,
                Gone::Unreachable => Answering::Unreachable,
            },
        }
    }

    /// Marks what an attempt's forwarded packet tells about its server.
    #[inline]
    fn classify(&mut self, a: &mut Pending, pod: u32, vs: usize) {
        a.pod = pod;
        let p = &self.pods[pod as usize];
        let draining = !p.lb[vs].present || p.lb[vs].weight == 0;
        let gone = !matches!(p.phase, PodPhase::Ready | PodPhase::PreStop)
            && !(p.phase == PodPhase::Draining && (a.udp || self.sc.pods.accept_after_sigterm));
        a.draining |= draining;
        a.gone |= gone;
        if draining || gone {
            let now = self.now;
            self.stats[vs].count(now, |c| c.pkts_to_draining += 1);
        }
    }

    /// When the director's failed neighbour resolution towards `pod` answers a packet sent now
    /// with ICMP host unreachable: the end of the resolution in progress, or of a new one.
    fn neigh_fail(&mut self, pod: u32) -> u64 {
        let arp = ns(self.sc.pods.arp_fail_s);
        let p = &mut self.pods[pod as usize];
        if p.neigh_fail_at <= self.now {
            p.neigh_fail_at = self.now + arp;
        }
        p.neigh_fail_at
    }

    /// A client-to-service segment (`(seq, ack)` numbers).
    fn tcp_in(
        &mut self,
        at: u64,
        host: u32,
        port: u32,
        flags: u8,
        (seq, ack): (u32, u32),
    ) -> Decision {
        let src = (self.hosts[host as usize].ip, self.lport(host, port));
        self.lb.packet(
            at,
            &PacketMeta::tcp(src, (self.vip, self.vport), flags, seq, ack),
        )
    }

    /// A pod-to-client segment (the engine's reply path).
    fn tcp_out(
        &mut self,
        at: u64,
        pod: u32,
        host: u32,
        port: u32,
        flags: u8,
        (seq, ack): (u32, u32),
    ) -> Decision {
        let dst = (self.hosts[host as usize].ip, self.lport(host, port));
        let src = (self.pods[pod as usize].ip, self.vport);
        self.lb
            .packet(at, &PacketMeta::tcp(src, dst, flags, seq, ack))
    }

    /// Sends a SYN for attempt `a` (`p`: its pending slot, if it has one) and follows what
    /// happens as far as it goes without waiting.
    fn send_syn(&mut self, a: &mut Pending, p: Option<u32>) {
        let t = self.now;
        a.sent += 1;
        let (host, port) = (a.host, a.port);
        let d = self.tcp_in(t, host, port, SYN, (1000, 0));
        match d {
            Decision::Forward(_) => {
                let Some(pod) = self.pod_of(&d) else {
                    return self.wait_tcp(a, p);
                };
                self.classify(a, pod, 0);
                match self.answering(pod, false) {
                    Answering::Accept => self.established(a, p, pod),
                    Answering::Rst => {
                        let r = self.rtt(host);
                        let _ = self.tcp_out(t + r / 2, pod, host, port, RSTACK, (0, 1001));
                        self.resolve(a, p, Outcome::Refused, t + r);
                    }
                    Answering::Silence => self.wait_tcp(a, p),
                    Answering::Unreachable => {
                        let slot = self.park_unreachable(a, p, pod, host);
                        self.arm_tcp(slot);
                    }
                }
            }
            Decision::Answer(Answer::TcpRst { .. } | Answer::IcmpPortUnreachable) => {
                let r = self.rtt(host);
                self.resolve(a, p, Outcome::Refused, t + r);
            }
            Decision::Drop(_) | Decision::Pass => self.wait_tcp(a, p),
        }
    }

    /// The SYN reached a listening pod: the handshake completes; with no hold time the
    /// connection also closes in this event.
    fn established(&mut self, a: &mut Pending, p: Option<u32>, pod: u32) {
        let t = self.now;
        let (host, port) = (a.host, a.port);
        let r = self.rtt(host);
        let _ = self.tcp_out(t + r / 2, pod, host, port, SYNACK, (5000, 1001));
        let _ = self.tcp_in(t + r, host, port, ACK, (1001, 5001));
        let connected = t + r;
        let g = &self.groups[self.hosts[host as usize].group as usize];
        let hold = g.hold;
        self.record(a, Outcome::Ok, connected);
        if let Some(slot) = p {
            self.unpark(slot);
        }
        if hold > 0 {
            let c = self.open_alloc(Open {
                host,
                slot: a.slot,
                port,
                pod,
                rtt: r,
                live: true,
            });
            self.at(connected + hold, Ev::Close { c });
        } else {
            // The client reads the server's banner (sent on accept), then the close.
            self.close_exchange(host, a.slot, port, pod, connected + r, r);
        }
    }

    /// The close exchange starting at `at` (banner read, or hold time over), then the port's
    /// fate and the closed loop's next iteration.
    fn close_exchange(&mut self, host: u32, slot: u32, port: u32, pod: u32, at: u64, r: u64) {
        let close = self.groups[self.hosts[host as usize].group as usize].close;
        let (free_at, done) = match close {
            CloseSide::Client => {
                let d = self.tcp_in(at, host, port, FINACK, (1001, 5001));
                if matches!(d, Decision::Answer(_)) {
                    // The balancer reset the flow (safe: its server was removed).
                    return self.cut(host, slot, port, at);
                }
                let _ = self.tcp_out(at + r / 2, pod, host, port, FINACK, (5001, 1002));
                let _ = self.tcp_in(at + r, host, port, ACK, (1002, 5002));
                // TIME_WAIT from the server's FIN.
                (self.time_wait_end(host, at + r), at)
            }
            CloseSide::Server => {
                let _ = self.tcp_out(at - r / 2, pod, host, port, FINACK, (5001, 1001));
                let d = self.tcp_in(at, host, port, FINACK, (1001, 5002));
                if matches!(d, Decision::Answer(_)) {
                    return self.cut(host, slot, port, at);
                }
                let _ = self.tcp_out(at + r / 2, pod, host, port, ACK, (5002, 1002));
                (at + r, at)
            }
        };
        self.free_port(host, port, free_at);
        self.next_iteration(host, slot, done);
    }

    /// An established connection ended by a reset.
    fn cut(&mut self, host: u32, slot: u32, port: u32, at: u64) {
        let udp = false;
        self.stats[udp as usize].count(at, |c| c.resets += 1);
        self.free_port(host, port, at);
        self.next_iteration(host, slot, at);
    }

    /// When a client port in TIME_WAIT since `rx` (the last segment received) may be used
    /// again: with tcp_tw_reuse, once the host's seconds clock has ticked past `rx` (Linux
    /// compares `ktime_get_seconds()` with the TIME_WAIT's timestamp second); else at the end
    /// of TIME_WAIT.
    fn time_wait_end(&self, host: u32, rx: u64) -> u64 {
        let h = &self.hosts[host as usize];
        let g = &self.groups[h.group as usize];
        if g.tw_reuse {
            let local = rx + h.clock_offset;
            ((local / SEC + 1) * SEC - h.clock_offset).min(rx + g.time_wait)
        } else {
            rx + g.time_wait
        }
    }

    #[inline]
    fn free_port(&mut self, host: u32, port: u32, at: u64) {
        let h = &mut self.hosts[host as usize];
        if !h.udp_fixed.is_empty() {
            return;
        }
        h.ports
            .set(port, at.div_ceil(MS).min(IN_USE as u64 - 1) as u32);
    }

    /// A closed loop goes on after the attempt ended at `done`.
    fn next_iteration(&mut self, host: u32, slot: u32, done: u64) {
        if slot == NONE {
            return;
        }
        let h = &self.hosts[host as usize];
        let g = &self.groups[h.group as usize];
        let at = done + g.interval;
        let epoch = h.epoch;
        self.at(at.max(self.now), Ev::Start { host, slot, epoch });
    }

    /// Records an outcome, frees the port, continues the loop.
    fn resolve(&mut self, a: &mut Pending, p: Option<u32>, o: Outcome, at: u64) {
        self.record(a, o, at);
        if let Some(slot) = p {
            self.unpark(slot);
        }
        self.free_port(a.host, a.port, at);
        self.next_iteration(a.host, a.slot, at);
    }

    #[inline]
    fn record(&mut self, a: &Pending, o: Outcome, at: u64) {
        let lat_us = (at - a.start) / 1000;
        let st = &mut self.stats[a.udp as usize];
        st.record(a.start, o, lat_us, a.draining, a.gone);
        if a.host == 0 && st.ports.is_some() {
            let server = (o == Outcome::Ok && a.pod != NONE).then_some(a.pod);
            st.record_port(a.start, a.port, o, server);
        }
    }

    /// Nothing answered (yet): make sure the attempt has a pending slot and a timer.
    fn wait_tcp(&mut self, a: &mut Pending, p: Option<u32>) {
        let slot = self.park(a, p);
        self.arm_tcp(slot);
    }

    /// Parks attempt `a` whose packet went to a gone pod that answers with nothing but the
    /// director's neighbour failure: schedules the ICMP host unreachable that reaches the
    /// client, and returns the pending slot (the caller arms its own retransmit timer).
    fn park_unreachable(&mut self, a: &mut Pending, p: Option<u32>, pod: u32, host: u32) -> u32 {
        let fail = self.neigh_fail(pod);
        let r = self.rtt(host) / 2;
        let slot = self.park(a, p);
        let tag = self.pending[slot as usize].tag;
        self.at(
            fail + r,
            Ev::Icmp {
                p: slot,
                tag,
                unreach: true,
            },
        );
        slot
    }

    fn park(&mut self, a: &mut Pending, p: Option<u32>) -> u32 {
        match p {
            Some(slot) => {
                let tag = self.pending[slot as usize].tag;
                self.pending[slot as usize] = Pending { tag, ..*a };
                slot
            }
            None => {
                let slot = match self.pending_free.pop() {
                    Some(s) => s,
                    None => {
                        self.pending.push(Pending::default());
                        self.pending.len() as u32 - 1
                    }
                };
                let tag = self.pending[slot as usize].tag.wrapping_add(1);
                *a = Pending {
                    tag,
                    live: true,
                    ..*a
                };
                self.pending[slot as usize] = *a;
                slot
            }
        }
    }

    fn unpark(&mut self, slot: u32) {
        let e = &mut self.pending[slot as usize];
        if e.live {
            e.live = false;
            e.tag = e.tag.wrapping_add(1);
            self.pending_free.push(slot);
        }
    }

    /// The next deadline of a waiting TCP attempt: its next SYN retransmission (RTO 1 s,
    /// doubling), the application's timeout, or the kernel giving up after `syn_retries`.
    fn arm_tcp(&mut self, slot: u32) {
        let a = self.pending[slot as usize];
        let g = &self.groups[self.hosts[a.host as usize].group as usize];
        let mut next = if a.sent <= g.syn_retries {
            a.start + ((1u64 << a.sent) - 1) * SEC
        } else {
            a.start + ((1u64 << (g.syn_retries + 1)) - 1) * SEC
        };
        if g.connect_timeout > 0 {
            next = next.min(a.start + g.connect_timeout);
        }
        self.at(
            next.max(self.now),
            Ev::Timer {
                p: slot,
                tag: a.tag,
            },
        );
    }

    fn timer(&mut self, slot: u32, tag: u32) {
        let mut a = self.pending[slot as usize];
        if !a.live || a.tag != tag {
            return;
        }
        let now = self.now;
        let g = &self.groups[self.hosts[a.host as usize].group as usize];
        if a.udp {
            if a.sent >= g.udp_attempts {
                return self.resolve(&mut a, Some(slot), Outcome::Timeout, now);
            }
            return self.send_query(&mut a, Some(slot));
        }
        let give_up = a.start + ((1u64 << (g.syn_retries + 1)) - 1) * SEC;
        if (g.connect_timeout > 0 && now >= a.start + g.connect_timeout) || now >= give_up {
            return self.resolve(&mut a, Some(slot), Outcome::Timeout, now);
        }
        self.send_syn(&mut a, Some(slot));
    }

    fn icmp(&mut self, slot: u32, tag: u32, unreach: bool) {
        let mut a = self.pending[slot as usize];
        if !a.live || a.tag != tag {
            return;
        }
        let o = if unreach {
            Outcome::Unreachable
        } else {
            Outcome::Refused
        };
        let now = self.now;
        self.resolve(&mut a, Some(slot), o, now);
    }

    fn open_alloc(&mut self, o: Open) -> u32 {
        match self.open_free.pop() {
            Some(i) => {
                self.open[i as usize] = o;
                i
            }
            None => {
                self.open.push(o);
                self.open.len() as u32 - 1
            }
        }
    }

    /// A held connection closes: normally, or it finds its server gone.
    fn close_held(&mut self, c: u32) {
        let o = self.open[c as usize];
        if !o.live {
            return;
        }
        self.open[c as usize].live = false;
        self.open_free.push(c);
        let now = self.now;
        if self.pods[o.pod as usize].phase == PodPhase::Gone {
            let _ = self.tcp_in(now, o.host, o.port, FINACK, (1001, 5001));
            if self.pods[o.pod as usize].gone == Gone::Rst {
                let _ = self.tcp_out(now + o.rtt / 2, o.pod, o.host, o.port, RSTACK, (5001, 1002));
            }
            return self.cut(o.host, o.slot, o.port, now);
        }
        self.close_exchange(o.host, o.slot, o.port, o.pod, now, o.rtt);
    }

    /// Sends (or re-sends) a UDP query.
    fn send_query(&mut self, a: &mut Pending, p: Option<u32>) {
        let t = self.now;
        a.sent += 1;
        let (host, port) = (a.host, a.port);
        let src = (self.hosts[host as usize].ip, self.lport(host, port));
        let d = self
            .lb
            .packet(t, &PacketMeta::udp(src, (self.vip, self.vport), 32));
        match d {
            Decision::Forward(_) => {
                let Some(pod) = self.pod_of(&d) else {
                    return self.wait_udp(a, p);
                };
                self.classify(a, pod, 1);
                match self.answering(pod, true) {
                    Answering::Accept => {
                        let r = self.rtt(host);
                        let reply =
                            PacketMeta::udp((self.pods[pod as usize].ip, self.vport), src, 64);
                        let _ = self.lb.packet(t + r / 2, &reply);
                        self.resolve(a, p, Outcome::Ok, t + r);
                    }
                    Answering::Rst => {
                        let r = self.rtt(host);
                        self.resolve(a, p, Outcome::Refused, t + r);
                    }
                    Answering::Silence => self.wait_udp(a, p),
                    Answering::Unreachable => {
                        let slot = self.park_unreachable(a, p, pod, host);
                        self.arm_udp(slot);
                    }
                }
            }
            Decision::Answer(_) => {
                let r = self.rtt(host);
                self.resolve(a, p, Outcome::Refused, t + r);
            }
            Decision::Drop(_) | Decision::Pass => self.wait_udp(a, p),
        }
    }

    fn wait_udp(&mut self, a: &mut Pending, p: Option<u32>) {
        let slot = self.park(a, p);
        self.arm_udp(slot);
    }

    fn arm_udp(&mut self, slot: u32) {
        let a = self.pending[slot as usize];
        let g = &self.groups[self.hosts[a.host as usize].group as usize];
        let at = a.start + a.sent as u64 * g.udp_timeout;
        self.at(
            at.max(self.now),
            Ev::Timer {
                p: slot,
                tag: a.tag,
            },
        );
    }

    // ---- pods and the rollout -------------------------------------------------------------

    fn set_phase(&mut self, pod: u32, phase: PodPhase) {
        self.pods[pod as usize].phase = phase;
        if self.cp.model != CpModel::None {
            let at = self.now + self.cp.sync_delay;
            let state = phase.endpoint() as u8;
            self.at(at, Ev::Observe { pod, state });
        }
    }

    fn pod_ready(&mut self, pod: u32) {
        if self.pods[pod as usize].phase != PodPhase::Starting {
            return;
        }
        self.set_phase(pod, PodPhase::Ready);
        if self.sc.rollout.is_some() {
            self.reconcile();
        }
    }

    /// Starts a pod's termination: preStop (still serving), SIGTERM, exit.
    fn terminate(&mut self, pod: u32) {
        let p = &self.sc.pods;
        let (prestop, grace, exit) = (ns(p.prestop_s), ns(p.grace_s), ns(p.exit_after_sigterm_s));
        let now = self.now;
        self.set_phase(pod, PodPhase::PreStop);
        let sigterm = now + prestop.min(grace);
        let exit_at = (sigterm + exit).min(now + grace);
        self.at(sigterm, Ev::PodSigterm { pod });
        self.at(exit_at.max(sigterm), Ev::PodExit { pod });
    }

    fn pod_sigterm(&mut self, pod: u32) {
        if self.pods[pod as usize].phase == PodPhase::PreStop {
            self.set_phase(pod, PodPhase::Draining);
        }
    }

    fn pod_exit(&mut self, pod: u32) {
        if self.pods[pod as usize].phase != PodPhase::Gone {
            self.set_phase(pod, PodPhase::Gone);
        }
    }

    /// The Deployment controller during a rollout: create new pods up to `replicas +
    /// max_surge`, terminate old ones while at least `replicas - max_unavailable` stay ready.
    fn reconcile(&mut self) {
        let Some(r) = self.sc.rollout.clone() else {
            return;
        };
        let n = self.sc.initial_pods();
        let alive = |p: &Pod| matches!(p.phase, PodPhase::Starting | PodPhase::Ready);
        let mut old_alive = self.pods.iter().filter(|p| p.old && alive(p)).count() as u32;
        let mut new_alive = self.pods.iter().filter(|p| !p.old && alive(p)).count() as u32;
        let mut ready = self
            .pods
            .iter()
            .filter(|p| p.phase == PodPhase::Ready)
            .count() as u32;
        while new_alive < n && old_alive + new_alive < n + r.max_surge {
            let pod = self.new_pod(None, false);
            let at = self.now + ns(self.sc.pods.ready_after_s);
            self.at(at, Ev::PodReady { pod });
            new_alive += 1;
        }
        while old_alive > 0 {
            // Prefer an old pod that is not ready.
            let victim = self
                .pods
                .iter()
                .position(|p| p.old && p.phase == PodPhase::Starting)
                .or_else(|| {
                    if ready > n.saturating_sub(r.max_unavailable) {
                        self.pods
                            .iter()
                            .position(|p| p.old && p.phase == PodPhase::Ready)
                    } else {
                        None
                    }
                });
            let Some(v) = victim else { break };
            if self.pods[v].phase == PodPhase::Ready {
                ready -= 1;
            }
            old_alive -= 1;
            self.terminate(v as u32);
        }
        while new_alive < n && old_alive + new_alive < n + r.max_surge {
            let pod = self.new_pod(None, false);
            let at = self.now + ns(self.sc.pods.ready_after_s);
            self.at(at, Ev::PodReady { pod });
            new_alive += 1;
        }
    }

    // ---- the balancer's table -------------------------------------------------------------

    fn dest_cfg(&self, pod: u32, weight: u32) -> DestConfig {
        DestConfig::new(self.pods[pod as usize].ip, self.vport)
            .fwd(ForwardMethod::Masq)
            .weight(weight)
    }

    fn lb_add(&mut self, pod: u32, vs: usize, weight: u32) {
        let Some(key) = self.vs[vs] else { return };
        let cfg = self.dest_cfg(pod, weight);
        if self.lb.apply(self.now, Command::AddDest(key, cfg)).is_ok() {
            self.pods[pod as usize].lb[vs] = LbState {
                present: true,
                weight,
                graceful: false,
                drain: None,
            };
            if weight == 0 {
                self.drain_start(pod, vs);
            }
        }
    }

    fn lb_weight(&mut self, pod: u32, vs: usize, weight: u32) {
        let Some(key) = self.vs[vs] else { return };
        if !self.pods[pod as usize].lb[vs].present {
            return;
        }
        let cfg = self.dest_cfg(pod, weight);
        if self.lb.apply(self.now, Command::EditDest(key, cfg)).is_ok() {
            self.pods[pod as usize].lb[vs].weight = weight;
            if weight == 0 {
                self.drain_start(pod, vs);
            } else if let Some(d) = self.pods[pod as usize].lb[vs].drain.take() {
                // Back in service: the drain is abandoned, not finished.
                self.drains[d].end = Some(self.now);
            }
        }
    }

    fn lb_del(&mut self, pod: u32, vs: usize) {
        let Some(key) = self.vs[vs] else { return };
        if !self.pods[pod as usize].lb[vs].present {
            return;
        }
        let ip = self.pods[pod as usize].ip;
        if self
            .lb
            .apply(self.now, Command::DelDest(key, ip, self.vport))
            .is_ok()
        {
            self.synthesized += self.lb.drain_output();
            self.drain_start(pod, vs);
            let st = &mut self.pods[pod as usize].lb[vs];
            if let Some(d) = st.drain.take() {
                self.drains[d].end = Some(self.now);
            }
            *st = LbState::default();
        }
    }

    fn drain_start(&mut self, pod: u32, vs: usize) {
        if self.pods[pod as usize].lb[vs].drain.is_none() {
            self.drains.push(DrainRec {
                pod,
                vs,
                start: self.now,
                end: None,
            });
            self.pods[pod as usize].lb[vs].drain = Some(self.drains.len() - 1);
        }
    }

    // ---- the control plane ----------------------------------------------------------------

    fn observe(&mut self, pod: u32, state: u8) {
        let s = match state {
            x if x == EpState::Ready as u8 => EpState::Ready,
            x if x == EpState::TermServing as u8 => EpState::TermServing,
            x if x == EpState::TermNotServing as u8 => EpState::TermNotServing,
            x if x == EpState::Removed as u8 => EpState::Removed,
            _ => EpState::NotReady,
        };
        self.cp.view[pod as usize] = s;
        if !self.cp.sync_scheduled {
            self.cp.sync_scheduled = true;
            let at = match self.cp.last_sync {
                Some(l) => self.now.max(l + self.cp.min_sync),
                None => self.now,
            };
            self.at(at, Ev::Sync);
        }
    }

    /// One proxy sync: reconcile the table with the endpoints as last observed.
    fn sync(&mut self) {
        self.cp.sync_scheduled = false;
        self.cp.last_sync = Some(self.now);
        let any_ready = self.cp.view.contains(&EpState::Ready);
        // KEP-1669: with no ready endpoint, serving terminating ones are used.
        let desired = |s: EpState| s == EpState::Ready || (!any_ready && s == EpState::TermServing);
        for pod in 0..self.pods.len() as u32 {
            let state = self.cp.view[pod as usize];
            for vs in 0..2 {
                if self.vs[vs].is_none() {
                    continue;
                }
                let st = self.pods[pod as usize].lb[vs];
                match self.cp.model {
                    CpModel::KubeProxy => {
                        if desired(state) {
                            if !st.present {
                                self.lb_add(pod, vs, 1);
                            } else if st.graceful {
                                // MoveRSOutofGracefulDeleteList: delete, then add again.
                                self.lb_del(pod, vs);
                                self.lb_add(pod, vs, 1);
                            } else if st.weight != 1 {
                                self.lb_weight(pod, vs, 1);
                            }
                        } else if st.present && !st.graceful {
                            self.graceful_delete(pod, vs);
                        }
                    }
                    CpModel::Lifecycle => match state {
                        s if desired(s) => {
                            if !st.present {
                                self.lb_add(pod, vs, 1);
                            } else if st.weight != 1 {
                                self.lb_weight(pod, vs, 1);
                            }
                        }
                        EpState::TermServing | EpState::TermNotServing | EpState::NotReady => {
                            if st.present && st.weight != 0 {
                                self.lb_weight(pod, vs, 0);
                                let at = self.now + self.cp.deadline;
                                self.at(at, Ev::Deadline { pod, vs: vs as u8 });
                            }
                        }
                        EpState::Removed => self.lb_del(pod, vs),
                        EpState::Ready => {}
                    },
                    CpModel::None => {}
                }
            }
        }
    }

    /// kube-proxy's `GracefulDeleteRS`: UDP at once; TCP at once if ActiveConn + InActConn is
    /// 0, else weight 0 and into the list.
    fn graceful_delete(&mut self, pod: u32, vs: usize) {
        if vs == 1 || self.rs_idle(pod, vs) {
            self.lb_del(pod, vs);
        } else {
            self.lb_weight(pod, vs, 0);
            self.pods[pod as usize].lb[vs].graceful = true;
        }
    }

    fn rs_idle(&mut self, pod: u32, vs: usize) -> bool {
        let Some(key) = self.vs[vs] else { return true };
        let ip = self.pods[pod as usize].ip;
        match self.lb.counts(self.now, &key, ip, self.vport) {
            Some((a, i)) => a + i == 0,
            None => true,
        }
    }

    /// kube-proxy's periodic re-check of the graceful-termination list.
    fn check(&mut self) {
        for pod in 0..self.pods.len() as u32 {
            for vs in 0..2 {
                if self.pods[pod as usize].lb[vs].graceful && self.rs_idle(pod, vs) {
                    self.lb_del(pod, vs);
                }
            }
        }
        let at = self.now + self.cp.check_interval;
        self.at(at, Ev::Check);
    }

    fn deadline(&mut self, pod: u32, vs: usize) {
        let st = self.pods[pod as usize].lb[vs];
        if st.present && st.weight == 0 {
            self.lb_del(pod, vs);
        }
    }

    fn script(&mut self, idx: usize) {
        let e = self.sc.events[idx].clone();
        let pod = e.server - 1;
        match e.action {
            Action::Weight => {
                for vs in 0..2 {
                    self.lb_weight(pod, vs, e.weight.unwrap_or(0));
                }
            }
            Action::Delete => {
                for vs in 0..2 {
                    self.lb_del(pod, vs);
                }
            }
            Action::Add => {
                for vs in 0..2 {
                    if !self.pods[pod as usize].lb[vs].present {
                        self.lb_add(pod, vs, e.weight.unwrap_or(1));
                    }
                }
            }
            Action::Die => {
                let mode = self.gone_override.or(e.gone).unwrap_or(self.gone_default);
                self.pods[pod as usize].gone = mode;
                self.set_phase(pod, PodPhase::Gone);
            }
            Action::Terminate => self.terminate(pod),
        }
    }

    // ---- results --------------------------------------------------------------------------

    fn finish(mut self) -> RunResult {
        let end = self.end;
        let mut drains = Vec::new();
        for d in &self.drains {
            let pod = &self.pods[d.pod as usize];
            drains.push((d.pod, d.vs, pod.ip, d.start, d.end));
        }
        let mut out = Vec::new();
        for (pod, vs, ip, start, e) in drains {
            let counts = if e.is_none() {
                self.vs[vs].and_then(|k| self.lb.counts(end, &k, ip, self.vport))
            } else {
                None
            };
            let _ = pod;
            out.push(Drain {
                server: ip.to_string(),
                service: if vs == 0 { "tcp" } else { "udp" },
                start_s: start as f64 / 1e9,
                end_s: e.map(|x| x as f64 / 1e9),
                counts_at_end: counts,
            });
        }
        let longest = out
            .iter()
            .filter_map(|d| d.end_s.map(|e| e - d.start_s))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let unfinished: Vec<f64> = out
            .iter()
            .filter(|d| d.end_s.is_none())
            .map(|d| end as f64 / 1e9 - d.start_s)
            .collect();
        let longest_drain = DrainSummary {
            longest_finished_s: longest,
            unfinished: unfinished.len(),
            oldest_unfinished_s: unfinished.iter().copied().reduce(f64::max),
        };
        let engine = self
            .lb
            .counters()
            .map(|c| EngineFacts {
                conns_created: c.conns_created,
                reuse_rescheduled: c.reuse_rescheduled,
                nodest_rescheduled: c.nodest_rescheduled,
                drops: DropReason::ALL
                    .iter()
                    .filter(|r| c.drop_count(**r) > 0)
                    .map(|r| (r.as_str().to_string(), c.drop_count(*r)))
                    .collect(),
                synthesized: self.synthesized,
            })
            .unwrap_or_default();
        let has = |p: Proto| self.sc.clients.iter().any(|c| c.protocol == p);
        let ips: Vec<String> = self.pods.iter().map(|p| p.ip.to_string()).collect();
        let name = |p: u32| ips.get(p as usize).cloned().unwrap_or_default();
        RunResult {
            profile: self.prof_label.clone(),
            variant: self.variant_label.clone(),
            tcp: has(Proto::Tcp).then(|| self.stats[0].out(&self.phase_names, &name)),
            udp: has(Proto::Udp).then(|| self.stats[1].out(&self.phase_names, &name)),
            drains: out,
            longest_drain,
            engine,
            unfinished_attempts: self.pending.iter().filter(|p| p.live).count() as u64,
            events: self.events,
        }
    }
}
