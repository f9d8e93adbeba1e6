//! The packet path: bytes in, engine decision, bytes out.
//!
//! [`Driver`] owns the engine. For each packet it parses ([`PacketMeta::parse`]; failures are
//! counted by `Malformed` reason and dropped), asks [`Engine::handle_packet`], applies the
//! decision in place with `rvs-packet` (NAT and ICMP error translation with
//! `rewrite::nat`, tunnels with `rewrite::encap` into a scratch buffer, answers with
//! `synth`), hands the result to a [`Sink`], then drains [`Engine::poll_output`]. It does no
//! I/O itself, so tests drive it with a `Vec` sink; the TUN loop is in [`crate::tunloop`].

use std::collections::HashMap;
use std::net::IpAddr;

use rvs_control::proto::{DataplaneStats, Request, Response, StateView};
use rvs_core::command::Command;
use rvs_core::decision::{Answer, Decision, DropReason, Synth, Xmit};
use rvs_core::{Engine, Instant};
use rvs_packet::{Malformed, PacketMeta, rewrite, synth};

/// Where the driver's output packets go.
pub trait Sink {
    /// Sends one IP packet; `false` if it could not be sent.
    fn send(&mut self, pkt: &[u8]) -> bool;
}

impl Sink for Vec<Vec<u8>> {
    fn send(&mut self, pkt: &[u8]) -> bool {
        self.push(pkt.to_vec());
        true
    }
}

/// Why the data plane (not the engine) dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpDrop {
    /// `Xmit::DirectRoute`: a TUN has no layer 2 to rewrite a MAC address on.
    DirectRouteOnTun,
    /// `Xmit::Local`: no local stack behind the VIP on a TUN.
    LocalOnTun,
    /// `Xmit::Bypass`: the original destination routes back into the TUN.
    BypassOnTun,
    /// `Decision::Pass`: the packet matches no service.
    NotForAService,
    /// The rewrite refused the packet.
    RewriteFailed,
    /// An answer or engine output could not be built.
    SynthFailed,
    /// A tunnelled packet would exceed `tunnel_mtu` (answered with ICMP too-big when allowed).
    TunnelTooBig,
    /// The device refused the write.
    WriteFailed,
    /// No tunnel source address of the real server's family is configured.
    NoTunnelSource,
    /// The source is outside the service's allowed ranges ([`Request::SetSourceRanges`]).
    SourceRange,
}

impl DpDrop {
    /// Every reason, in counter order.
    pub const ALL: [DpDrop; 10] = [
        DpDrop::DirectRouteOnTun,
        DpDrop::LocalOnTun,
        DpDrop::BypassOnTun,
        DpDrop::NotForAService,
        DpDrop::RewriteFailed,
        DpDrop::SynthFailed,
        DpDrop::TunnelTooBig,
        DpDrop::WriteFailed,
        DpDrop::NoTunnelSource,
        DpDrop::SourceRange,
    ];
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DpDrop::DirectRouteOnTun => "direct_route_on_tun",
            DpDrop::LocalOnTun => "local_on_tun",
            DpDrop::BypassOnTun => "bypass_on_tun",
            DpDrop::NotForAService => "not_for_a_service",
            DpDrop::RewriteFailed => "rewrite_failed",
            DpDrop::SynthFailed => "synth_failed",
            DpDrop::TunnelTooBig => "tunnel_too_big",
            DpDrop::WriteFailed => "write_failed",
            DpDrop::NoTunnelSource => "no_tunnel_source",
            DpDrop::SourceRange => "source_range",
        }
    }
}

/// Counters of the data plane, plain integers owned by the packet thread.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Packets in.
    pub rx_packets: u64,
    /// Bytes in.
    pub rx_bytes: u64,
    /// Packets out.
    pub tx_packets: u64,
    /// Bytes out.
    pub tx_bytes: u64,
    /// Read batches.
    pub rx_batches: u64,
    /// Packets of `tx_packets` sent as Ethernet frames to a resolved next hop
    /// (`output = "packet"`); the others went through a raw socket or the TUN.
    pub frames_sent: u64,
    /// Parse failures by `Malformed::index`.
    pub malformed: [u64; Malformed::COUNT],
    /// Data-plane drops by `DpDrop` order.
    pub dropped: [u64; DpDrop::ALL.len()],
    /// Resets sent.
    pub resets_sent: u64,
    /// ICMP errors sent.
    pub icmp_sent: u64,
    /// Packets of no service written back unchanged (a real server's own traffic caught by
    /// a reply-steering rule).
    pub passed_through: u64,
    /// Crash-recovery snapshots ([`crate::recovery`]).
    pub snapshot: crate::recovery::SnapshotStats,
}

/// What the driver needs besides the engine.
#[derive(Clone, Debug, Default)]
pub struct DriverConfig {
    /// Prefixes routed into the TUN (VIPs, full-NAT and tunnel-source addresses, the TUN's
    /// subnets). A packet the engine passes (`Decision::Pass`) is written back unchanged
    /// unless its destination is one of these (it arrived through a reply-steering rule: a
    /// real server's own traffic); otherwise it is dropped, as it would loop.
    pub routed: Vec<(IpAddr, u8)>,
    /// Outer source of tunnelled packets, per family.
    pub tunnel_src: Vec<IpAddr>,
    /// Largest encapsulated packet.
    pub tunnel_mtu: u32,
}

/// Size of the scratch buffer: the largest IP packet plus an outer IPv6 header.
const SCRATCH: usize = 65535 + 40;

/// The engine and everything the packet path needs around it.
pub struct Driver {
    /// The engine (owned: nothing else touches it).
    pub engine: Engine,
    cfg: DriverConfig,
    scratch: Box<[u8]>,
    /// Counters.
    pub counters: Counters,
    epoch: std::time::Instant,
    dr_logged: bool,
    full_logged: bool,
    /// Allowed source prefixes per (protocol, address, port) of a service; empty: no
    /// filter (the packet path then pays one `is_empty` test).
    source_ranges: HashMap<(u8, IpAddr, u16), Vec<(IpAddr, u8)>>,
}

impl Driver {
    /// A driver around `engine`; engine time counts from now.
    pub fn new(engine: Engine, cfg: DriverConfig) -> Driver {
        Driver {
            engine,
            cfg,
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
            counters: Counters::default(),
            epoch: std::time::Instant::now(),
            dr_logged: false,
            full_logged: false,
            source_ranges: HashMap::new(),
        }
    }

    /// Whether `meta` may pass the source filter.
    fn source_allowed(&self, meta: &PacketMeta) -> bool {
        match self
            .source_ranges
            .get(&(meta.protocol, meta.dst, meta.dport))
        {
            None => true,
            Some(r) => r
                .iter()
                .any(|(net, len)| crate::netlink::in_prefix(meta.src, *net, *len)),
        }
    }

    /// A driver around `engine` whose time counts from `epoch` (an engine imported from
    /// another process was given its clock from `epoch`).
    pub fn with_epoch(engine: Engine, cfg: DriverConfig, epoch: std::time::Instant) -> Driver {
        let mut d = Driver::new(engine, cfg);
        d.epoch = epoch;
        d
    }

    /// Engine time: the monotonic clock's time since the driver started. The engine itself
    /// reads no clock.
    #[inline]
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    #[inline]
    fn drop(&mut self, r: DpDrop) {
        self.counters.dropped[r as usize] += 1;
    }

    #[inline]
    fn out(&mut self, sink: &mut dyn Sink, len: usize, from_scratch: bool, pkt: &[u8]) {
        let ok = if from_scratch {
            sink.send(&self.scratch[..len])
        } else {
            sink.send(&pkt[..len])
        };
        if ok {
            self.counters.tx_packets += 1;
            self.counters.tx_bytes += len as u64;
        } else {
            self.drop(DpDrop::WriteFailed);
        }
    }

    fn tunnel_src(&self, dst: IpAddr) -> Option<IpAddr> {
        self.cfg
            .tunnel_src
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == dst.is_ipv4())
    }

    /// Processes one packet read from the device (`pkt` holds exactly the packet; it is
    /// rewritten in place).
    pub fn packet(&mut self, now: Instant, pkt: &mut [u8], sink: &mut dyn Sink) {
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += pkt.len() as u64;
        let meta = match PacketMeta::parse(pkt) {
            Ok(m) => m,
            Err(e) => {
                if let Some(c) = self.counters.malformed.get_mut(e.index()) {
                    *c += 1;
                }
                return;
            }
        };
        let len = (meta.len as usize).min(pkt.len());
        if !self.source_ranges.is_empty() && !self.source_allowed(&meta) {
            self.drop(DpDrop::SourceRange);
            return;
        }
        match self.engine.handle_packet(now, &meta) {
            Decision::Forward(f) => match f.xmit {
                Xmit::Nat { src, dst } => match rewrite::nat(&mut pkt[..len], src, dst) {
                    Ok(()) => self.out(sink, len, false, pkt),
                    Err(_) => self.drop(DpDrop::RewriteFailed),
                },
                Xmit::Tunnel { dst, .. } => self.tunnel(&meta, &pkt[..len], dst, sink),
                Xmit::DirectRoute { dst } => {
                    if !self.dr_logged {
                        self.dr_logged = true;
                        tracing::warn!(
                            real_server = %dst,
                            "direct routing needs layer 2 and the TUN data plane has none: \
                             packets for route (-g) real servers are dropped and counted \
                             (rvs_dataplane_dropped_packets_total{{reason=\"direct_route_on_tun\"}}); \
                             use masq, tunnel or fullnat"
                        );
                    }
                    self.drop(DpDrop::DirectRouteOnTun)
                }
                Xmit::Local => self.drop(DpDrop::LocalOnTun),
                Xmit::Bypass => self.drop(DpDrop::BypassOnTun),
            },
            Decision::Drop(_) => {} // counted by the engine
            Decision::Answer(Answer::TcpRst { seq, ack }) => {
                match synth::tcp_rst(
                    &mut self.scratch,
                    (meta.dst, meta.dport),
                    (meta.src, meta.sport),
                    seq,
                    ack,
                ) {
                    Ok(n) => {
                        self.counters.resets_sent += 1;
                        self.out(sink, n, true, pkt)
                    }
                    Err(_) => self.drop(DpDrop::SynthFailed),
                }
            }
            Decision::Answer(Answer::IcmpPortUnreachable) => {
                match synth::icmp_unreachable(&mut self.scratch, &pkt[..len], meta.dst, None) {
                    Ok(n) => {
                        self.counters.icmp_sent += 1;
                        self.out(sink, n, true, pkt)
                    }
                    Err(_) => self.drop(DpDrop::SynthFailed),
                }
            }
            Decision::Pass => {
                if self.routed_here(meta.dst) || !global_unicast(meta.dst) {
                    self.drop(DpDrop::NotForAService)
                } else {
                    tracing::debug!(packet = %rvs_packet::Pretty(&pkt[..len]), "no service: written back");
                    self.counters.passed_through += 1;
                    self.out(sink, len, false, pkt)
                }
            }
        }
        self.drain_output(sink);
    }

    fn routed_here(&self, a: IpAddr) -> bool {
        self.cfg
            .routed
            .iter()
            .any(|(n, l)| crate::netlink::in_prefix(a, *n, *l))
    }

    /// Replaces the prefixes routed into the TUN (after the control side changed routes).
    pub fn set_routed(&mut self, routed: Vec<(IpAddr, u8)>) {
        self.cfg.routed = routed;
    }

    fn tunnel(&mut self, meta: &PacketMeta, inner: &[u8], dst: IpAddr, sink: &mut dyn Sink) {
        let Some(src) = self.tunnel_src(dst) else {
            self.drop(DpDrop::NoTunnelSource);
            return;
        };
        let outer = if dst.is_ipv4() { 20 } else { 40 };
        if inner.len() + outer > self.cfg.tunnel_mtu as usize {
            let df = match inner.first().map(|b| b >> 4) {
                Some(4) => inner.get(6).is_some_and(|b| b & 0x40 != 0),
                _ => true,
            };
            if df {
                self.drop(DpDrop::TunnelTooBig);
                let mtu = self.cfg.tunnel_mtu - outer as u32;
                if let Ok(n) = synth::icmp_too_big(&mut self.scratch, inner, meta.dst, mtu) {
                    self.counters.icmp_sent += 1;
                    self.out(sink, n, true, inner);
                }
                return;
            }
        }
        match rewrite::encap(inner, src, dst, &mut self.scratch) {
            Ok(n) => self.out(sink, n, true, inner),
            Err(_) => self.drop(DpDrop::RewriteFailed),
        }
    }

    /// Sends what the engine queued (resets for flows of removed real servers).
    pub fn drain_output(&mut self, sink: &mut dyn Sink) {
        while let Some(Synth::TcpRst {
            src,
            dst,
            seq,
            ack,
            tunnel_to,
        }) = self.engine.poll_output()
        {
            let mut rst = [0u8; 60];
            let Ok(n) = synth::tcp_rst(&mut rst, src, dst, seq, ack) else {
                self.drop(DpDrop::SynthFailed);
                continue;
            };
            self.counters.resets_sent += 1;
            match tunnel_to {
                None => self.out(sink, n, false, &rst),
                Some(rs) => match self.tunnel_src(rs) {
                    Some(s) => match rewrite::encap(&rst[..n], s, rs, &mut self.scratch) {
                        Ok(m) => self.out(sink, m, true, &rst),
                        Err(_) => self.drop(DpDrop::SynthFailed),
                    },
                    None => self.drop(DpDrop::NoTunnelSource),
                },
            }
        }
    }

    /// Runs the engine's timers if one is due.
    pub fn timers(&mut self, now: Instant, sink: &mut dyn Sink) {
        if now >= self.engine.poll_timeout() {
            self.engine.handle_timeout(now);
            self.drain_output(sink);
            self.log_table_full();
        }
    }

    /// Logs, once, that the connection table reached its bound (the timers run at least once a
    /// second, so this is late by at most that).
    fn log_table_full(&mut self) {
        if self.full_logged || self.engine.counters().table_full == 0 {
            return;
        }
        self.full_logged = true;
        let safe = self.engine.profile() == rvs_core::Profile::Safe;
        tracing::warn!(
            conn_max = self.engine.conn_max(),
            "the connection table reached its bound (engine.conn_max); {} \
             (rvs_connection_table_full_total, rvs_evictions_total, rvs adm --table)",
            if safe {
                "half-open, closed and idle UDP entries are now given up for new connections"
            } else {
                "new connections are refused (rvs_drops_total{reason=\"table_full\"})"
            }
        );
    }

    /// The data-plane counters as the admin protocol carries them.
    pub fn stats(&self) -> DataplaneStats {
        let c = &self.counters;
        DataplaneStats {
            rx_packets: c.rx_packets,
            rx_bytes: c.rx_bytes,
            tx_packets: c.tx_packets,
            frames_sent: c.frames_sent,
            tx_bytes: c.tx_bytes,
            rx_batches: c.rx_batches,
            malformed: Malformed::ALL
                .iter()
                .map(|m| (m.as_str().to_string(), c.malformed[m.index()]))
                .collect(),
            dropped: DpDrop::ALL
                .iter()
                .map(|d| (d.as_str().to_string(), c.dropped[*d as usize]))
                .collect(),
            resets_sent: c.resets_sent,
            icmp_sent: c.icmp_sent,
            passed_through: c.passed_through,
            uptime_ms: self.epoch.elapsed().as_millis() as u64,
            snapshots_written: c.snapshot.written,
            snapshot_failures: c.snapshot.failed,
            snapshot_pause_last_ns: c.snapshot.pause_last_ns,
            snapshot_pause_max_ns: c.snapshot.pause_max_ns,
            recovered_entries: c.snapshot.recovered_entries,
            recovery_refused: c.snapshot.refused,
        }
    }

    /// Serves one admin request (everything but `Reload`, which the control side turns into
    /// commands first).
    pub fn request(&mut self, req: Request) -> Response {
        let now = self.now();
        let e = &mut self.engine;
        match req {
            Request::Apply(cmd) => match e.apply(now, cmd) {
                Ok(()) => Response::Done,
                Err(err) => Response::Adm(err),
            },
            Request::Batch(cmds) => Response::Batch(
                cmds.into_iter()
                    .map(|cmd| e.apply(now, cmd).err())
                    .collect(),
            ),
            Request::Info => Response::Info(e.info()),
            Request::Services => Response::Services(e.services()),
            Request::Conns => Response::Conns(e.conns()),
            Request::Timeouts => Response::Timeouts(e.timeouts()),
            Request::Totals => Response::Totals(e.totals()),
            Request::SysctlGet(name) => match e.sysctls().get(&name) {
                Some(v) => Response::Sysctl(full_name(&name), v),
                None => Response::Error(format!("unknown sysctl '{}'", full_name(&name))),
            },
            Request::SysctlList => Response::Sysctls(e.sysctls().list()),
            Request::SysctlSet(name, value) => {
                match e.apply(now, Command::Sysctl(name.clone(), value)) {
                    Ok(()) => Response::Sysctl(
                        full_name(&name),
                        e.sysctls().get(&name).unwrap_or_default(),
                    ),
                    Err(err) => Response::Error(err.to_string()),
                }
            }
            Request::SetProfile(p) => {
                e.set_profile(p);
                Response::Profile(p)
            }
            Request::State => Response::State(Box::new(self.state())),
            Request::Reload => Response::Error("reload is served by the control thread".into()),
            Request::SetSourceRanges(v) => {
                self.source_ranges = v
                    .into_iter()
                    .filter_map(|(k, r)| match k {
                        rvs_core::service::ServiceKey::Addr { proto, addr, port } => {
                            Some(((proto.ipproto(), addr, port), r))
                        }
                        rvs_core::service::ServiceKey::Fwmark { .. } => None,
                    })
                    .collect();
                Response::Done
            }
        }
    }

    /// The whole state.
    pub fn state(&self) -> StateView {
        let e = &self.engine;
        let mut conns = e.conns();
        let truncated = conns.len() > StateView::CONNS_SHOWN;
        conns.truncate(StateView::CONNS_SHOWN);
        let counters = e.counters().clone();
        StateView {
            profile: e.profile(),
            info: e.info(),
            services: e.services(),
            timeouts: e.timeouts(),
            totals: e.totals(),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), counters.drop_count(*r)))
                .collect(),
            counters,
            sysctls: e.sysctls().list(),
            dataplane: self.stats(),
            conns,
            conns_truncated: truncated,
        }
    }
}

/// Whether a packet to `a` may be written back: not multicast, broadcast, link-local or
/// unspecified (the kernel's own MLD and neighbour messages on the TUN end here).
fn global_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            !(v.is_multicast() || v.is_broadcast() || v.is_link_local() || v.is_unspecified())
        }
        IpAddr::V6(v) => !(v.is_multicast() || v.is_unicast_link_local() || v.is_unspecified()),
    }
}

fn full_name(n: &str) -> String {
    let p = rvs_core::sysctl::PREFIX;
    if n.starts_with(p) {
        n.to_string()
    } else {
        format!("{p}{n}")
    }
}

#[cfg(test)]
mod tests;
