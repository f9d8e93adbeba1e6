//! The packet path (kernel-semantics §2): replies first (the kernel's out hook runs before its in
//! hook), then the client-side lookup with the port-reuse and availability rules of the profile,
//! then scheduling of new connections, persistence, and ICMP errors.

use rvs_packet::{Fragment, L4, PacketMeta, sctp_chunk};

use super::conn_ops::{NewConn, rearm_entry, transition};
use super::{Core, Engine, Fam};
use crate::addr::{Addr, Netmask};
use crate::conn::{Conn, ConnTable, flags as cf};
use crate::conntrack;
use crate::decision::{Answer, Decision, DropReason, Forward, Synth, Xmit};
use crate::dest::DestId;
use crate::persist::{self, FTPPORT};
use crate::profile::Profile;
use crate::proto::Direction;
use crate::reuse::{self, Facts, Knobs, Verdict};
use crate::sched::{Dests, SchedInput};
use crate::service::{Protocol, ServiceFlags, ServiceId, ServiceKey};
use crate::time::Instant;

/// The kernel's FTP data port: packets *from* it are never scheduled (kernel-semantics §2.6.3).
const FTPDATA: u16 = 20;

pub(super) fn handle<A: Fam>(e: &mut Engine, now: Instant, p: &PacketMeta) -> Decision {
    let _ = now;
    match p.l4 {
        L4::IcmpError { .. } => return icmp::<A>(e, p),
        L4::IcmpOther { .. } | L4::Other => {
            e.core.counters.passed += 1;
            return Decision::Pass;
        }
        _ => {}
    }
    let Some(proto) = Protocol::from_ipproto(p.protocol) else {
        e.core.counters.passed += 1;
        return Decision::Pass;
    };
    if p.frag == Fragment::NonFirst {
        e.core.count_drop(DropReason::NonFirstFragment);
        return Decision::Drop(DropReason::NonFirstFragment);
    }
    let (Some(s), Some(d)) = (A::from_ip(p.src), A::from_ip(p.dst)) else {
        e.core.counters.passed += 1;
        return Decision::Pass;
    };
    let (core, tab) = A::split(e);
    // The kernel's out hook runs first. A packet addressed to a virtual service cannot be a
    // reply (unless a client's address and port equal a VIP and port), so skip that probe.
    let to_vip = p.fwmark == 0 && core.services.is_vip(proto, p.dst, p.dport);
    if !to_vip && let Some(i) = tab.find_out(p.protocol, s, p.sport, d, p.dport) {
        return core.reply(tab, i, p);
    }
    if let Some(i) = tab.find_in(p.protocol, s, p.sport, d, p.dport) {
        // `None`: rescheduled, fall through to scheduling.
        if let Some(decision) = core.existing(tab, i, p, proto) {
            return decision;
        }
    }
    core.schedule_new(tab, p, proto)
}

/// The kernel's `is_new_conn`: TCP SYN; SCTP whose first chunk is INIT; never UDP.
fn is_new_conn(p: &PacketMeta) -> bool {
    match p.l4 {
        L4::Tcp { flags, .. } => flags.syn(),
        L4::Sctp { first_chunk, .. } => first_chunk == sctp_chunk::INIT,
        _ => false,
    }
}

/// RFC 9293 §3.10.7.1: the reset answering a segment. With ACK: seq = SEG.ACK, no ACK;
/// without: seq = 0, ACK = SEG.SEQ + SEG.LEN (SYN and FIN count one each).
fn rst_for(p: &PacketMeta) -> Answer {
    match p.l4 {
        L4::Tcp {
            flags,
            seq,
            ack,
            payload_len,
        } if flags.ack() => {
            let _ = (seq, payload_len);
            Answer::TcpRst {
                seq: ack,
                ack: None,
            }
        }
        L4::Tcp {
            flags,
            seq,
            payload_len,
            ..
        } => {
            let len = payload_len
                .wrapping_add(flags.syn() as u32)
                .wrapping_add(flags.fin() as u32);
            Answer::TcpRst {
                seq: 0,
                ack: Some(seq.wrapping_add(len)),
            }
        }
        _ => Answer::TcpRst { seq: 0, ack: None },
    }
}

impl Core {
    /// A packet that matched an existing entry: `Some(decision)`, or `None` when the packet
    /// must be scheduled afresh.
    fn existing<A: Fam>(
        &mut self,
        tab: &mut ConnTable<A>,
        i: u32,
        p: &PacketMeta,
        proto: Protocol,
    ) -> Option<Decision> {
        let c = *tab.get(i)?;
        let d = self.dests.get(c.dest)?;
        let new_conn = is_new_conn(p);
        if !new_conn && d.available {
            // Every profile continues such a packet on its entry (reuse.rs): the fast path.
            return Some(self.forward_in(tab, i, p, false));
        }
        let facts = Facts {
            proto,
            state: c.state,
            nooutput: c.has(cf::NOOUTPUT),
            nfct: c.has(cf::NFCT),
            controlled: c.control().is_some(),
            n_control: c.n_control(),
            weight0: d.cfg.weight == 0,
            available: d.available,
            new_conn,
            rst: p.tcp_flags().is_some_and(|f| f.rst()),
            ct: conntrack::for_new_conn(self.netfilter_conntrack, proto, c.state),
        };
        let knobs = Knobs {
            profile: self.profile,
            conn_reuse_mode: self.sysctl.conn_reuse_mode,
            expire_nodest_conn: self.sysctl.expire_nodest_conn != 0,
        };
        match reuse::decide(&knobs, &facts) {
            Verdict::Continue => Some(self.forward_in(tab, i, p, false)),
            Verdict::Reschedule {
                expire_old,
                clear_nfct,
            } => {
                if facts.available {
                    self.counters.reuse_rescheduled += 1;
                } else {
                    self.counters.nodest_rescheduled += 1;
                }
                if clear_nfct && let Some(c) = tab.get_mut(i) {
                    c.flags &= !cf::NFCT;
                }
                if expire_old {
                    self.expire(tab, i, false);
                } else {
                    // The kernel keeps a controlling entry and lets the new one shadow it.
                    tab.unhash(i);
                }
                None
            }
            Verdict::Drop { reason, expire_old } => {
                if expire_old {
                    self.expire(tab, i, false);
                }
                self.count_drop(reason);
                Some(Decision::Drop(reason))
            }
            Verdict::ResetAndRetire => {
                if let L4::Tcp { seq, .. } = p.l4 {
                    let to_server = match c.fwd() {
                        cf::FWD_MASQ => {
                            Some(((c.caddr.to_ip(), c.cport), (c.daddr.to_ip(), c.dport), None))
                        }
                        cf::FWD_FULLNAT => tab
                            .lpool
                            .get(c.laddr as usize)
                            .map(|l| ((l.to_ip(), c.lport), (c.daddr.to_ip(), c.dport), None)),
                        cf::FWD_TUNNEL => Some((
                            (c.caddr.to_ip(), c.cport),
                            (c.vaddr.to_ip(), c.vport),
                            Some(c.daddr.to_ip()),
                        )),
                        _ => None,
                    };
                    if let Some((src, dst, tunnel_to)) = to_server {
                        self.out.push_back(Synth::TcpRst {
                            src,
                            dst,
                            seq,
                            ack: None,
                            tunnel_to,
                        });
                    }
                }
                self.expire(tab, i, false);
                self.counters.removed_resets += 1;
                Some(Decision::Answer(rst_for(p)))
            }
        }
    }

    /// Inbound counters (kernel-semantics §2.7, §6.1): only while the real server is available.
    #[inline]
    fn in_stats(&mut self, dest: DestId, len: u32) {
        let Some(d) = self.dests.get_mut(dest) else {
            return;
        };
        if !d.available {
            return;
        }
        d.stats.live.inpkts += 1;
        d.stats.live.inbytes += len as u64;
        let svc = d.svc;
        if let Some(s) = self.services.get_mut(svc) {
            s.stats.live.inpkts += 1;
            s.stats.live.inbytes += len as u64;
        }
        self.totals.live.inpkts += 1;
        self.totals.live.inbytes += len as u64;
    }

    /// Outbound counters (NAT replies).
    #[inline]
    fn out_stats(&mut self, dest: DestId, len: u32) {
        let Some(d) = self.dests.get_mut(dest) else {
            return;
        };
        if !d.available {
            return;
        }
        d.stats.live.outpkts += 1;
        d.stats.live.outbytes += len as u64;
        let svc = d.svc;
        if let Some(s) = self.services.get_mut(svc) {
            s.stats.live.outpkts += 1;
            s.stats.live.outbytes += len as u64;
        }
        self.totals.live.outpkts += 1;
        self.totals.live.outbytes += len as u64;
    }

    /// `Conns` counts scheduling decisions (kernel-semantics §6.1).
    fn conn_stats(&mut self, dest: DestId, svc: ServiceId) {
        if let Some(d) = self.dests.get_mut(dest) {
            d.stats.live.conns += 1;
        }
        if let Some(s) = self.services.get_mut(svc) {
            s.stats.live.conns += 1;
        }
        self.totals.live.conns += 1;
    }

    /// How a client-to-server packet of entry `c` is sent on.
    #[inline]
    fn xmit_in<A: Addr>(&self, tab: &ConnTable<A>, c: &Conn<A>) -> Option<Xmit> {
        let daddr = c.daddr.to_ip();
        Some(match c.fwd() {
            cf::FWD_MASQ => Xmit::Nat {
                src: None,
                dst: Some((daddr, c.dport)),
            },
            cf::FWD_FULLNAT => {
                let l = tab.lpool.get(c.laddr as usize)?.to_ip();
                Xmit::Nat {
                    src: Some((l, c.lport)),
                    dst: Some((daddr, c.dport)),
                }
            }
            cf::FWD_TUNNEL => Xmit::Tunnel {
                dst: daddr,
                tunnel: self.dests.get(c.dest)?.cfg.tunnel,
            },
            cf::FWD_LOCAL => Xmit::Local,
            cf::FWD_BYPASS => Xmit::Bypass,
            _ => Xmit::DirectRoute { dst: daddr },
        })
    }

    /// Processes a client-to-server packet on entry `i` (kernel-semantics §2.7): counters, state
    /// transition, timer refresh, transmit. The hot path: the entry and its real server are
    /// looked up once.
    fn forward_in<A: Fam>(
        &mut self,
        tab: &mut ConnTable<A>,
        i: u32,
        p: &PacketMeta,
        new_conn: bool,
    ) -> Decision {
        let secure = self.secure_tcp();
        let now = self.tick();
        let Core {
            dests,
            services,
            totals,
            timeouts,
            ..
        } = self;
        let Some((c, wheel)) = tab.entry_and_wheel(i) else {
            return Decision::Pass;
        };
        let Some(d) = dests.get_mut(c.dest) else {
            return Decision::Pass;
        };
        if d.available {
            let len = p.len as u64;
            d.stats.live.inpkts += 1;
            d.stats.live.inbytes += len;
            if let Some(s) = services.get_mut(d.svc) {
                s.stats.live.inpkts += 1;
                s.stats.live.inbytes += len;
            }
            totals.live.inpkts += 1;
            totals.live.inbytes += len;
        }
        let old = c.state;
        let assure = transition(c, d, secure, Direction::Input, p);
        c.in_pkts = c.in_pkts.saturating_add(1);
        let timeout = match Protocol::from_ipproto(c.proto) {
            Some(proto) => timeouts.ticks(proto, c.state),
            None => Core::ticks(2),
        };
        rearm_entry(i, c, wheel, now, timeout);
        let c = *c;
        if c.state != old {
            tab.set_list(i, super::conn_ops::list_for(&c));
        }
        if assure {
            super::conn_ops::assure(tab, c.link);
        }
        let xmit = self.xmit_in(tab, &c);
        if c.has(cf::ONE_PACKET) {
            self.expire(tab, i, false);
        }
        match xmit {
            Some(xmit) => Decision::Forward(Forward {
                xmit,
                dest: Some(c.dest),
                new_conn,
            }),
            None => Decision::Pass,
        }
    }

    /// A reply from a real server (kernel-semantics §2.8): counters, OUTPUT transition, refresh,
    /// reverse translation.
    fn reply<A: Fam>(&mut self, tab: &mut ConnTable<A>, i: u32, p: &PacketMeta) -> Decision {
        let Some(c) = tab.get(i).copied() else {
            return Decision::Pass;
        };
        self.out_stats(c.dest, p.len);
        self.set_state(tab, i, Direction::Output, p);
        self.refresh(tab, i);
        let dst = (c.fwd() == cf::FWD_FULLNAT).then(|| (c.caddr.to_ip(), c.cport));
        Decision::Forward(Forward {
            xmit: Xmit::Nat {
                src: Some((c.vaddr.to_ip(), c.vport)),
                dst,
            },
            dest: Some(c.dest),
            new_conn: false,
        })
    }

    /// No entry: the per-protocol gate, then the kernel's `ip_vs_schedule` (kernel-semantics §2.6).
    fn schedule_new<A: Fam>(
        &mut self,
        tab: &mut ConnTable<A>,
        p: &PacketMeta,
        proto: Protocol,
    ) -> Decision {
        let Some(svc_id) = self.services.lookup(proto, p.dst, p.dport, p.fwmark) else {
            self.counters.passed += 1;
            return Decision::Pass;
        };
        // The per-protocol gate (kernel-semantics §2.6.2). A packet that may not create a
        // connection goes to a Linux director's local stack, which has no socket there: TCP answers
        // with a reset, the others are dropped.
        match p.l4 {
            L4::Tcp { flags, .. } => {
                if flags.rst() {
                    self.count_drop(DropReason::NoConnection);
                    return Decision::Drop(DropReason::NoConnection);
                }
                if !flags.syn() && self.sysctl.sloppy_tcp == 0 {
                    self.counters.unknown_flow_resets += 1;
                    return Decision::Answer(rst_for(p));
                }
            }
            L4::Sctp {
                first_chunk,
                cookie_then_abort,
                ..
            } => {
                let abort = first_chunk == sctp_chunk::ABORT || cookie_then_abort;
                if abort || (first_chunk != sctp_chunk::INIT && self.sysctl.sloppy_sctp == 0) {
                    self.count_drop(DropReason::NoConnection);
                    return Decision::Drop(DropReason::NoConnection);
                }
            }
            _ => {}
        }
        if self.todrop() {
            self.count_drop(DropReason::DefenceDropPacket);
            return Decision::Drop(DropReason::DefenceDropPacket);
        }
        if p.sport == FTPDATA {
            self.counters.passed += 1;
            return Decision::Pass;
        }
        let Some(svc) = self.services.get(svc_id) else {
            return Decision::Pass;
        };
        let key = svc.cfg.key;
        let persistent = svc.cfg.is_persistent();
        let onepacket = svc.cfg.flags.has(ServiceFlags::ONEPACKET) && proto == Protocol::Udp;
        let extra = if onepacket { cf::ONE_PACKET } else { 0 };
        let result = if persistent {
            self.sched_persist(tab, svc_id, p, extra)
        } else {
            if let ServiceKey::Addr { port, .. } = key
                && p.dport != port
            {
                // A non-persistent port-0 service cannot schedule (kernel-semantics §2.6.3 step 4).
                return self.leave(svc_id, p);
            }
            let Some(dest) = self.pick(svc_id, p) else {
                return self.leave(svc_id, p);
            };
            let dport = match self.dests[dest].cfg.port {
                0 => p.dport,
                port => port,
            };
            self.new_flow(tab, p, dest, dport, extra, None)
        };
        match result {
            Ok(Some((i, dest))) => {
                self.conn_stats(dest, svc_id);
                self.forward_in(tab, i, p, true)
            }
            Ok(None) => self.leave(svc_id, p),
            Err(r) => {
                self.count_drop(r);
                Decision::Drop(r)
            }
        }
    }

    /// Runs the service's scheduler.
    fn pick(&mut self, svc_id: ServiceId, p: &PacketMeta) -> Option<DestId> {
        let Core {
            services,
            dests,
            rng,
            sysctl,
            now,
            ..
        } = self;
        let svc = services.get_mut(svc_id)?;
        let input = SchedInput {
            now: *now,
            protocol: p.protocol,
            saddr: p.src,
            sport: p.sport,
            daddr: p.dst,
            dport: p.dport,
            flags: svc.cfg.flags,
            lblc_expiration: sysctl.lblc_expiration as u32,
            lblcr_expiration: sysctl.lblcr_expiration as u32,
        };
        let sched = svc.sched.as_mut()?;
        sched.schedule(
            &input,
            Dests {
                order: &svc.dests,
                arena: dests,
            },
            rng.as_mut(),
        )
    }

    /// Creates the entry for a new flow of packet `p` to `dest`.
    fn new_flow<A: Fam>(
        &mut self,
        tab: &mut ConnTable<A>,
        p: &PacketMeta,
        dest: DestId,
        dport: u16,
        extra: u16,
        control: Option<u32>,
    ) -> Result<Option<(u32, DestId)>, DropReason> {
        let (Some(caddr), Some(vaddr)) = (A::from_ip(p.src), A::from_ip(p.dst)) else {
            return Ok(None);
        };
        let i = self.conn_new(
            tab,
            NewConn {
                proto: p.protocol,
                caddr,
                cport: p.sport,
                vaddr,
                vport: p.dport,
                dport,
                dest,
                extra,
                timeout_secs: super::conn_ops::INITIAL_TIMEOUT_SECS,
            },
        )?;
        if let Some(ct) = control {
            if let Some(c) = tab.get_mut(i) {
                c.link = ct;
            }
            if let Some(t) = tab.get_mut(ct) {
                t.link += 1;
            }
            // A new controlled connection re-arms the template (kernel-semantics §5.4 step 5).
            self.refresh(tab, ct);
        }
        Ok(Some((i, dest)))
    }

    /// The kernel's `check_template` (kernel-semantics §5.3); `safe` also refuses weight-0 servers
    /// (rule d).
    fn template_valid<A: Addr>(&self, tab: &ConnTable<A>, t: u32) -> bool {
        let Some(c) = tab.get(t) else { return false };
        let Some(d) = self.dests.get(c.dest) else {
            return false;
        };
        let quiescent = self.sysctl.expire_quiescent_template != 0 || self.profile == Profile::Safe;
        d.available && !(quiescent && d.cfg.weight == 0)
    }

    /// The kernel's `ip_vs_sched_persist` (kernel-semantics §5.4).
    fn sched_persist<A: Fam>(
        &mut self,
        tab: &mut ConnTable<A>,
        svc_id: ServiceId,
        p: &PacketMeta,
        extra: u16,
    ) -> Result<Option<(u32, DestId)>, DropReason> {
        let Some(svc) = self.services.get(svc_id) else {
            return Ok(None);
        };
        let (key, netmask, timeout) = (svc.cfg.key, svc.cfg.netmask, svc.cfg.timeout);
        let netmask = if matches!(netmask, Netmask::V4(_)) == p.src.is_ipv4() {
            netmask
        } else {
            Netmask::full(p.src.is_ipv6())
        };
        let k = persist::template_key(&key, netmask, p.protocol, p.src, p.dst, p.dport, p.fwmark);
        let (Some(tc), Some(tv)) = (
            A::from_ip(k.caddr),
            match k.vaddr {
                Some(v) => A::from_ip(v),
                None => Some(A::from_mark(k.mark)),
            },
        ) else {
            return Ok(None);
        };
        let found = tab.find_template(k.proto, tc, tv, k.vport);
        let tmpl = match found {
            Some(t) if self.template_valid(tab, t) => t,
            other => {
                if let Some(t) = other {
                    // Invalidate: out of the index, ports 0xffff, left to die
                    // (kernel-semantics §5.3).
                    tab.unhash(t);
                    if let Some(c) = tab.get_mut(t) {
                        c.vport = 0xffff;
                        c.dport = 0xffff;
                        c.cport = 0;
                        c.flags |= cf::INVALIDATED;
                    }
                }
                let Some(dest) = self.pick(svc_id, p) else {
                    return Ok(None);
                };
                let dport = if k.use_dest_port {
                    self.dests[dest].cfg.port
                } else {
                    0
                };
                self.conn_new(
                    tab,
                    NewConn {
                        proto: k.proto,
                        caddr: tc,
                        cport: 0,
                        vaddr: tv,
                        vport: k.vport,
                        dport,
                        dest,
                        extra: cf::TEMPLATE,
                        timeout_secs: timeout,
                    },
                )?
            }
        };
        let Some(dest) = tab.get(tmpl).map(|t| t.dest) else {
            return Ok(None);
        };
        let dest_port = self.dests[dest].cfg.port;
        let dport = if p.dport == key.port() && dest_port != 0 {
            dest_port
        } else {
            p.dport
        };
        let _ = FTPPORT;
        self.new_flow(tab, p, dest, dport, extra, Some(tmpl))
    }

    /// The kernel's `ip_vs_leave` (kernel-semantics §2.6.4): no real server.
    fn leave(&mut self, svc_id: ServiceId, p: &PacketMeta) -> Decision {
        let Some(svc) = self.services.get(svc_id) else {
            return Decision::Pass;
        };
        if self.sysctl.cache_bypass != 0 && matches!(svc.cfg.key, ServiceKey::Fwmark { .. }) {
            return Decision::Forward(Forward {
                xmit: Xmit::Bypass,
                dest: None,
                new_conn: false,
            });
        }
        if svc.cfg.key.port() == FTPPORT && p.dport != FTPPORT {
            self.counters.passed += 1;
            return Decision::Pass;
        }
        self.counters.no_dest_unreachable += 1;
        Decision::Answer(Answer::IcmpPortUnreachable)
    }
}

/// ICMP errors (kernel-semantics §2.9): from a real server about a packet it received (translated
/// back to the virtual address), or from a client about a reply it received (forwarded to the real
/// server). Neither refreshes the entry nor changes its state.
fn icmp<A: Fam>(e: &mut Engine, p: &PacketMeta) -> Decision {
    let L4::IcmpError {
        icmp_type, quoted, ..
    } = p.l4
    else {
        return Decision::Pass;
    };
    let related = if p.src.is_ipv4() {
        matches!(icmp_type, 3 | 4 | 11)
    } else {
        icmp_type < 128
    };
    let Some(proto) = Protocol::from_ipproto(quoted.protocol) else {
        e.core.counters.passed += 1;
        return Decision::Pass;
    };
    let (Some(qs), Some(qd)) = (A::from_ip(quoted.src), A::from_ip(quoted.dst)) else {
        return Decision::Pass;
    };
    if !related {
        e.core.counters.passed += 1;
        return Decision::Pass;
    }
    let (core, tab) = A::split(e);
    if let Some(i) = tab.find_out(quoted.protocol, qd, quoted.dport, qs, quoted.sport) {
        let Some(c) = tab.get(i).copied() else {
            return Decision::Pass;
        };
        core.out_stats(c.dest, p.len);
        let dst = (c.fwd() == cf::FWD_FULLNAT).then(|| (c.caddr.to_ip(), c.cport));
        return Decision::Forward(Forward {
            xmit: Xmit::Nat {
                src: Some((c.vaddr.to_ip(), c.vport)),
                dst,
            },
            dest: Some(c.dest),
            new_conn: false,
        });
    }
    let mut found = tab.find_in(quoted.protocol, qd, quoted.dport, qs, quoted.sport);
    if found.is_none() && core.sysctl.schedule_icmp != 0 {
        // Schedule the flow the error is about (client = the quoted destination), as if its
        // packet had arrived; TCP and SCTP only when sloppy creation is allowed.
        let inner = match proto {
            Protocol::Udp => Some(PacketMeta::udp(
                (quoted.dst, quoted.dport),
                (quoted.src, quoted.sport),
                0,
            )),
            Protocol::Tcp if core.sysctl.sloppy_tcp != 0 => Some(PacketMeta::tcp(
                (quoted.dst, quoted.dport),
                (quoted.src, quoted.sport),
                rvs_packet::TcpFlags::ACK,
                0,
                0,
            )),
            Protocol::Sctp if core.sysctl.sloppy_sctp != 0 => Some(PacketMeta::sctp(
                (quoted.dst, quoted.dport),
                (quoted.src, quoted.sport),
                sctp_chunk::DATA,
            )),
            _ => None,
        };
        if let Some(inner) = inner {
            let inner = PacketMeta {
                fwmark: p.fwmark,
                ..inner
            };
            if let Decision::Forward(_) = core.schedule_new(tab, &inner, proto) {
                found = tab.find_in(quoted.protocol, qd, quoted.dport, qs, quoted.sport);
            }
        }
    }
    if let Some(i) = found {
        let Some(c) = tab.get(i).copied() else {
            return Decision::Pass;
        };
        core.in_stats(c.dest, p.len);
        if let Some(xmit) = core.xmit_in(tab, &c) {
            return Decision::Forward(Forward {
                xmit,
                dest: Some(c.dest),
                new_conn: false,
            });
        }
    }
    core.counters.passed += 1;
    Decision::Pass
}
