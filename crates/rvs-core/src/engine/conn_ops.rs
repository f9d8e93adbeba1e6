//! Connection life cycle (kernel-semantics §2.10): creation and binding to a real server, state
//! transitions and the active/inactive counters (kernel-semantics §1.6, §3), timer refresh, expiry,
//! templates' "expire later" rule, and the DoS defences (kernel-semantics §2.12).

use rvs_packet::{L4, PacketMeta};

use super::{Core, Engine, Fam};
use crate::addr::Addr;
use crate::conn::{Conn, ConnTable, List, NONE, flags as cf};
use crate::decision::DropReason;
use crate::dest::{Dest, DestId};
use crate::profile::Profile;
use crate::proto::sctp::{self, SctpState};
use crate::proto::tcp::{self, TcpState};
use crate::proto::{self, Direction};
use crate::service::Protocol;
use crate::time::{Instant, Tick};

/// Ticks of the "expire later" re-arm (kernel-semantics §2.10).
const EXPIRE_LATER_SECS: u32 = 60;
/// Timeout of a brand-new entry before its first state transition (kernel-semantics §1.8).
pub(crate) const INITIAL_TIMEOUT_SECS: u32 = 3;

/// `safe` (rvs's own rule, not the kernel's): the table is under pressure from 7/8 of its bound.
const PRESSURE_NUM: usize = 7;
const PRESSURE_DEN: usize = 8;
/// `safe`, under pressure: the shortened timeout of half-open entries, in seconds (the normal
/// SYN_RECV timeout is 60 s).
pub(crate) const PRESSURE_EMBRYONIC_SECS: u32 = 5;
/// `safe`: a half-open entry is given up before the closed ones only once idle this long (a
/// handshake in progress is younger).
const EMBRYONIC_MIN_IDLE_SECS: u32 = 1;
/// `safe`: a UDP entry is given up only once idle this long.
const UDP_MIN_IDLE_SECS: u32 = 10;
/// Entries looked at per eviction, per list (bounds the packet path's work).
const EVICT_SCAN: usize = 8;
/// Half-open entries the shortened timeout expires per new connection while under pressure.
const PRESSURE_EXPIRE_PER_NEW: usize = 2;
/// Half-open entries the shortened timeout expires per second from the timer.
const PRESSURE_EXPIRE_PER_TICK: usize = 1 << 16;

/// Why `safe` gave an entry up to make room (counted in [`crate::EngineCounters::evicted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictReason {
    /// A half-open entry idle for at least a second (the first choice).
    HalfOpen = 0,
    /// A TCP TIME_WAIT or CLOSE entry, an SCTP CLOSED or REJECTED one.
    Closed = 1,
    /// A UDP entry idle for at least 10 s.
    UdpIdle = 2,
    /// A half-open entry younger than a second (only when nothing else could go).
    HalfOpenYoung = 3,
}

impl EvictReason {
    /// Every reason, in counter order.
    pub const ALL: [EvictReason; 4] = [
        EvictReason::HalfOpen,
        EvictReason::Closed,
        EvictReason::UdpIdle,
        EvictReason::HalfOpenYoung,
    ];
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            EvictReason::HalfOpen => "half_open",
            EvictReason::Closed => "closed",
            EvictReason::UdpIdle => "udp_idle",
            EvictReason::HalfOpenYoung => "half_open_young",
        }
    }
}

/// The eviction list an entry belongs on, from its protocol and state (rvs's own
/// classification): half-open, closed or UDP, or none (established and closing flows,
/// templates, one-packet entries).
#[inline]
pub(crate) fn list_for<A: Addr>(c: &Conn<A>) -> Option<List> {
    if c.has(cf::TEMPLATE | cf::ONE_PACKET) {
        return None;
    }
    match Protocol::from_ipproto(c.proto)? {
        Protocol::Tcp => match TcpState::from_u8(c.state)? {
            TcpState::None | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck => {
                Some(List::Embryonic)
            }
            TcpState::TimeWait | TcpState::Close => Some(List::Idle),
            _ => None,
        },
        Protocol::Sctp => match SctpState::from_u8(c.state)? {
            SctpState::None
            | SctpState::Init1
            | SctpState::Init
            | SctpState::CookieSent
            | SctpState::CookieReplied
            | SctpState::CookieWait
            | SctpState::Cookie
            | SctpState::CookieEchoed => Some(List::Embryonic),
            SctpState::Closed | SctpState::Rejected => Some(List::Idle),
            _ => None,
        },
        Protocol::Udp => Some(List::Idle),
    }
}

/// What a new entry is made of.
pub(crate) struct NewConn<A: Addr> {
    pub proto: u8,
    pub caddr: A,
    pub cport: u16,
    pub vaddr: A,
    pub vport: u16,
    pub dport: u16,
    pub dest: DestId,
    /// TEMPLATE / ONE_PACKET.
    pub extra: u16,
    /// Initial timeout in seconds (templates: the persistence timeout).
    pub timeout_secs: u32,
}

impl Core {
    /// The kernel's `ip_vs_conn_new` + `ip_vs_bind_dest` (kernel-semantics §2.10): allocates, binds
    /// to the real server (counters, OVERLOAD), indexes, and files the entry in the wheel.
    pub(crate) fn conn_new<A: Fam>(
        &mut self,
        tab: &mut ConnTable<A>,
        n: NewConn<A>,
    ) -> Result<u32, DropReason> {
        if self.profile == Profile::Safe && self.under_pressure() {
            self.pressure_expire(tab, PRESSURE_EXPIRE_PER_NEW);
        }
        if self.conn_count >= self.conn_max as usize {
            self.counters.table_full += 1;
            // `safe` gives up the least valuable entry first (rvs's own rule; kernel profiles
            // refuse, as the kernel does when its allocation fails).
            if self.profile != Profile::Safe || !self.evict_one(tab) {
                return Err(DropReason::TableFull);
            }
        }
        let d = &self.dests[n.dest];
        let mut fwd = d.cfg.fwd;
        let Some(daddr) = A::from_ip(d.cfg.addr) else {
            // Mixed families are refused when real servers are added; keep the invariant.
            return Err(DropReason::TableFull);
        };
        // Hairpin (`safe`, rvs's own rule): a NAT connection whose client is the real server
        // itself (a pod reaching its own Service) would come back to it from its own address,
        // which its kernel drops; it gets full NAT when the engine has a local address of the
        // family, as kube-proxy masquerades it. The kernel profiles keep the kernel's NAT.
        if fwd == crate::dest::ForwardMethod::Masq
            && self.profile == Profile::Safe
            && n.caddr == daddr
            && n.extra & cf::TEMPLATE == 0
            && A::ports(self).addresses() > 0
        {
            fwd = crate::dest::ForwardMethod::FullNat;
            self.counters.hairpin_fullnat += 1;
        }
        let mut flags = fwd.conn_flags() | cf::INACTIVE | n.extra;
        if !fwd.sees_replies() {
            flags |= cf::NOOUTPUT;
        }
        if n.proto != proto_udp() {
            flags &= !cf::ONE_PACKET;
        }
        if self.sysctl.conntrack != 0 {
            flags |= cf::NFCT;
        }
        let template = flags & cf::TEMPLATE != 0;
        let (mut laddr, mut lport) = (0u8, 0u16);
        if fwd == crate::dest::ForwardMethod::FullNat && !template {
            let hint = (n.cport as usize) ^ (n.caddr_hash());
            match A::ports(self).alloc(hint) {
                Some((a, p)) => (laddr, lport) = (a, p),
                None => return Err(DropReason::FullNatPortsExhausted),
            }
        }
        let now = self.tick();
        let expires = now.add(Core::ticks(n.timeout_secs));
        let mut entry = Conn {
            caddr: n.caddr,
            vaddr: n.vaddr,
            daddr,
            cport: n.cport,
            vport: n.vport,
            dport: n.dport,
            lport,
            proto: n.proto,
            state: 0,
            flags,
            dest: n.dest,
            link: if template { 0 } else { NONE },
            expires,
            wheel: 0,
            in_pkts: 0,
            laddr,
            prev: NONE,
            next: NONE,
        };
        if template {
            entry.set_template_timeout(n.timeout_secs);
        }
        let i = tab.alloc(entry);
        // Bind: counters first, then the upper threshold (kernel-semantics §1.6, §4.15).
        let d = &mut self.dests[n.dest];
        d.refs += 1;
        if template {
            d.persistconns += 1;
        } else {
            d.inactconns += 1;
        }
        if d.cfg.u_threshold != 0 && d.activeconns + d.inactconns >= d.cfg.u_threshold {
            d.overload = true;
        }
        self.conn_count += 1;
        if flags & cf::ONE_PACKET == 0 {
            tab.hash(i, fwd.sees_replies());
            file(tab, i, expires);
            tab.set_list(i, list_for(&entry));
        }
        if template {
            self.counters.templates_created += 1;
        } else {
            self.counters.conns_created += 1;
        }
        Ok(i)
    }

    /// The timeout an entry is re-armed with, in ticks: a connection's state timeout from the
    /// engine's table (what the kernel stored at the last transition), a template's own.
    #[inline]
    pub(crate) fn timeout_ticks<A: Addr>(&self, c: &Conn<A>) -> u32 {
        if c.is_template() {
            return Core::ticks(c.template_timeout());
        }
        match Protocol::from_ipproto(c.proto) {
            Some(p) => self.timeouts.ticks(p, c.state),
            None => Core::ticks(2),
        }
    }

    /// Re-arms an entry's timer to now + its timeout (the kernel's `ip_vs_conn_put`).
    #[inline]
    pub(crate) fn refresh<A: Addr>(&self, tab: &mut ConnTable<A>, i: u32) {
        let now = self.tick();
        let Some(c) = tab.get(i) else { return };
        let timeout = self.timeout_ticks(c);
        if let Some((c, wheel)) = tab.entry_and_wheel(i) {
            rearm_entry(i, c, wheel, now, timeout);
        }
    }

    /// Arms a template to expire `secs` from now, with that timeout from then on.
    fn rearm<A: Addr>(&self, tab: &mut ConnTable<A>, i: u32, secs: u32) {
        if let Some(c) = tab.get_mut(i) {
            c.set_template_timeout(secs);
        }
        self.refresh(tab, i);
    }

    /// Runs the due slots of a table's wheel.
    pub(crate) fn run_wheel<A: Fam>(&mut self, tab: &mut ConnTable<A>, now: Instant) {
        let t = now.tick();
        while let Some((slot, items)) = tab.wheel.pop_due(t) {
            self.timer_tick = Some(slot);
            let slot_no = crate::conn::wheel::Wheel::slot_no(slot);
            for &i in &items {
                let Some(c) = tab.get_mut(i) else { continue };
                if !c.has(cf::FILED) || c.wheel != slot_no {
                    continue; // a stale filing: the entry moved to an earlier slot
                }
                c.flags &= !cf::FILED;
                let expires = c.expires;
                if expires.at_or_before(t) {
                    self.expire(tab, i, false);
                } else {
                    file(tab, i, expires);
                }
            }
            tab.wheel.recycle(slot, items);
        }
        self.timer_tick = None;
    }

    /// The kernel's `ip_vs_conn_expire` (kernel-semantics §2.10). `forced`: a defence drop, which
    /// also deletes the controlling template if it is left unused and not assured.
    pub(crate) fn expire<A: Fam>(&mut self, tab: &mut ConnTable<A>, i: u32, forced: bool) {
        let Some(c) = tab.get(i).copied() else { return };
        if c.n_control() > 0 {
            // Expire later: keep it, 60 s from now, with a 60 s timeout from then on (P9).
            self.rearm(tab, i, EXPIRE_LATER_SECS);
            return;
        }
        tab.unhash(i);
        if let Some(ct) = c.control() {
            let mut drop_tmpl = false;
            if let Some(t) = tab.get_mut(ct) {
                t.link = t.link.saturating_sub(1);
                drop_tmpl = forced && t.link == 0 && t.state & 1 == 0;
            }
            if drop_tmpl {
                self.expire(tab, ct, true);
            }
        }
        self.unbind(&c);
        if c.fwd() == cf::FWD_FULLNAT && !c.is_template() {
            A::ports(self).free(c.laddr, c.lport);
        }
        tab.free(i);
        self.conn_count -= 1;
        self.counters.expired += 1;
    }

    /// The kernel's `ip_vs_unbind_dest`: counters down, OVERLOAD re-evaluated
    /// (kernel-semantics §4.15).
    fn unbind<A: Addr>(&mut self, c: &Conn<A>) {
        let Some(d) = self.dests.get_mut(c.dest) else {
            return;
        };
        if c.is_template() {
            d.persistconns = d.persistconns.saturating_sub(1);
        } else if c.has(cf::INACTIVE) {
            d.inactconns = d.inactconns.saturating_sub(1);
        } else {
            d.activeconns = d.activeconns.saturating_sub(1);
        }
        let total = d.activeconns + d.inactconns;
        if d.cfg.l_threshold != 0 {
            if total < d.cfg.l_threshold {
                d.overload = false;
            }
        } else if d.cfg.u_threshold != 0 {
            if (total as u64) * 4 < (d.cfg.u_threshold as u64) * 3 {
                d.overload = false;
            }
        } else {
            d.overload = false;
        }
        d.refs = d.refs.saturating_sub(1);
    }

    /// Whether the secure TCP table is in effect (kernel-semantics §2.12).
    #[inline]
    pub(crate) fn secure_tcp(&self) -> bool {
        self.sysctl.secure_tcp == 3 || self.defence.secure
    }

    /// The protocol state transition for a packet seen in `dir` (kernel-semantics §3): the new
    /// state, the active/inactive move, and the template's ASSURED bit.
    pub(crate) fn set_state<A: Addr>(
        &mut self,
        tab: &mut ConnTable<A>,
        i: u32,
        dir: Direction,
        p: &PacketMeta,
    ) {
        let secure = self.secure_tcp();
        let Some(c) = tab.get_mut(i) else { return };
        let Some(d) = self.dests.get_mut(c.dest) else {
            return;
        };
        let old = c.state;
        let assured = transition(c, d, secure, dir, p);
        let (ct, moved, list) = (c.link, c.state != old, list_for(c));
        if moved {
            tab.set_list(i, list);
        }
        if assured {
            assure(tab, ct);
        }
    }

    /// `safe`: whether the table is under pressure (at least 7/8 of its bound in use).
    #[inline]
    pub(crate) fn under_pressure(&self) -> bool {
        self.conn_count * PRESSURE_DEN >= self.conn_max as usize * PRESSURE_NUM
    }

    /// Ticks since an entry last had its timer re-armed (every packet re-arms it with its state's
    /// timeout, so this is its idle time).
    #[inline]
    fn idle_ticks<A: Addr>(&self, c: &Conn<A>, now: Tick) -> u32 {
        self.timeout_ticks(c).saturating_sub(c.expires.since(now))
    }

    /// `safe`, table full: gives up one entry to make room (rvs's own rule, no kernel
    /// counterpart). In order: the oldest half-open entry idle for a second; the oldest closed
    /// entry or idle UDP entry; the oldest half-open entry of any age. Never an established
    /// entry, never a template. At most [`EVICT_SCAN`] entries are looked at per list.
    pub(crate) fn evict_one<A: Fam>(&mut self, tab: &mut ConnTable<A>) -> bool {
        let now = self.tick();
        let min_embryonic = Core::ticks(EMBRYONIC_MIN_IDLE_SECS);
        // 1. Half-open, idle for a second. The list is in the order entries joined it; a SYN
        //    retransmission re-arms an entry without moving it, so look a few entries in.
        let mut at = tab.list_head(List::Embryonic);
        for _ in 0..EVICT_SCAN {
            let Some(i) = at else { break };
            at = tab.list_next(i);
            let Some(c) = tab.get(i) else { break };
            if self.idle_ticks(c, now) >= min_embryonic {
                return self.evict(tab, i, EvictReason::HalfOpen);
            }
        }
        // 2. Closed entries, and UDP entries once idle (an active one goes to the back).
        let min_udp = Core::ticks(UDP_MIN_IDLE_SECS);
        for _ in 0..EVICT_SCAN {
            let Some(i) = tab.list_head(List::Idle) else {
                break;
            };
            let Some(c) = tab.get(i) else { break };
            if c.proto != proto_udp() {
                return self.evict(tab, i, EvictReason::Closed);
            }
            if self.idle_ticks(c, now) >= min_udp {
                return self.evict(tab, i, EvictReason::UdpIdle);
            }
            tab.requeue(i);
        }
        // 3. The oldest half-open entry, whatever its age.
        if let Some(i) = tab.list_head(List::Embryonic) {
            return self.evict(tab, i, EvictReason::HalfOpenYoung);
        }
        false
    }

    fn evict<A: Fam>(&mut self, tab: &mut ConnTable<A>, i: u32, why: EvictReason) -> bool {
        let before = self.conn_count;
        // Not `forced`: a template the caller is about to use must stay.
        self.expire(tab, i, false);
        if self.conn_count < before {
            self.counters.evicted[why as usize] += 1;
            true
        } else {
            false
        }
    }

    /// `safe`, under pressure: the shortened half-open timeout ([`PRESSURE_EMBRYONIC_SECS`],
    /// the idea of the kernel's `secure_tcp` without an operator switching it on). Expires up to
    /// `budget` half-open entries idle that long, oldest first.
    pub(crate) fn pressure_expire<A: Fam>(&mut self, tab: &mut ConnTable<A>, budget: usize) {
        let now = self.tick();
        let limit = Core::ticks(PRESSURE_EMBRYONIC_SECS);
        for _ in 0..budget {
            let Some(i) = tab.list_head(List::Embryonic) else {
                return;
            };
            let Some(c) = tab.get(i) else { return };
            if self.idle_ticks(c, now) < limit {
                // The oldest to join is not idle that long: the others joined later. (One that a
                // retransmission re-armed holds the rest back for at most the limit.)
                return;
            }
            let before = self.conn_count;
            self.expire(tab, i, false);
            if self.conn_count < before {
                self.counters.pressure_expired += 1;
            } else {
                return;
            }
        }
    }
}

/// Re-arms entry `i` in place: deadline `now + timeout`; files it in the wheel only if the
/// slot it sits in comes after the new deadline (or it is not filed at all).
#[inline]
pub(crate) fn rearm_entry<A: Addr>(
    i: u32,
    c: &mut Conn<A>,
    wheel: &mut crate::conn::wheel::Wheel,
    now: Tick,
    timeout: u32,
) {
    if c.has(cf::ONE_PACKET) {
        return;
    }
    let expires = now.add(timeout);
    c.expires = expires;
    if c.has(cf::FILED) && !wheel.slot_tick(c.wheel).after(expires) {
        return;
    }
    let at = wheel.slot_for(expires);
    c.wheel = crate::conn::wheel::Wheel::slot_no(at);
    c.flags |= cf::FILED;
    wheel.file(i, at);
}

/// The kernel's `set_tcp_state` / `set_sctp_state` / `udp_state_transition` (kernel-semantics §3)
/// on entry `c` for packet `p` seen in `dir`: the new state and the move between the real server's
/// active and inactive counters. Returns whether the controlling template must become ASSURED.
#[inline]
pub(crate) fn transition<A: Addr>(
    c: &mut Conn<A>,
    d: &mut Dest,
    secure: bool,
    dir: Direction,
    p: &PacketMeta,
) -> bool {
    let Some(proto) = Protocol::from_ipproto(c.proto) else {
        return false;
    };
    let mut dir = dir;
    if proto != Protocol::Udp && c.has(cf::NOOUTPUT) {
        if dir == Direction::Output {
            c.flags &= !cf::NOOUTPUT;
        } else {
            dir = Direction::InputOnly;
        }
    }
    let (new, established) = match (proto, p.l4) {
        (Protocol::Tcp, L4::Tcp { flags, .. }) => {
            let cur = TcpState::from_u8(c.state).unwrap_or(TcpState::None);
            let n = tcp::transition(secure, dir, cur, flags);
            (n as u8, n == TcpState::Established)
        }
        (
            Protocol::Sctp,
            L4::Sctp {
                first_chunk,
                cookie_then_abort,
                ..
            },
        ) => {
            let cur = SctpState::from_u8(c.state).unwrap_or(SctpState::None);
            let n = sctp::transition(dir, cur, sctp::event(first_chunk, cookie_then_abort));
            (n as u8, n == SctpState::Established)
        }
        // UDP: one state; a reply assures the template.
        (Protocol::Udp, _) => return dir == Direction::Output && c.control().is_some(),
        // ICMP errors and mismatched summaries do not move the state.
        _ => return false,
    };
    if new == c.state {
        return false;
    }
    let active = proto::is_active(proto, new);
    let inactive = c.has(cf::INACTIVE);
    if !inactive && !active {
        c.flags |= cf::INACTIVE;
        d.activeconns = d.activeconns.saturating_sub(1);
        d.inactconns += 1;
    } else if inactive && active {
        c.flags &= !cf::INACTIVE;
        d.activeconns += 1;
        d.inactconns = d.inactconns.saturating_sub(1);
    }
    c.state = new;
    established && c.control().is_some()
}

/// Files entry `i` in the wheel for deadline `expires`.
#[inline]
pub(crate) fn file<A: Addr>(tab: &mut ConnTable<A>, i: u32, expires: Tick) {
    let at = tab.wheel.slot_for(expires);
    if let Some(c) = tab.get_mut(i) {
        c.wheel = crate::conn::wheel::Wheel::slot_no(at);
        c.flags |= cf::FILED;
    }
    tab.wheel.file(i, at);
}

/// Sets the ASSURED bit of template `t` (the kernel's `ip_vs_control_assure_ct`).
#[inline]
pub(crate) fn assure<A: Addr>(tab: &mut ConnTable<A>, t: u32) {
    if let Some(t) = tab.get_mut(t)
        && t.is_template()
    {
        t.state |= 1;
    }
}

#[inline]
fn proto_udp() -> u8 {
    rvs_packet::ipproto::UDP
}

impl<A: Addr> NewConn<A> {
    /// A cheap spread of the client address for picking a full-NAT local address.
    fn caddr_hash(&self) -> usize {
        use core::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(1).hash_one(self.caddr) as usize
    }
}

impl Engine {
    /// The 1-second defence update and the drop_entry sweep (kernel-semantics §2.12). "Memory" is
    /// the table's free room: the kernel compares available memory with `amemthresh`; rvs says
    /// memory is short when fewer than 1/16 of `conn_max` entries are free.
    pub(crate) fn defence_tick(&mut self, _now: Instant) {
        let c = &mut self.core;
        let max = c.conn_max as i64;
        let amem = (max / 16).max(1);
        let avail = max - c.conn_count as i64;
        let nomem = avail < amem;
        let s = &mut c.sysctl;
        // drop_entry
        c.defence.drop_entry = match s.drop_entry {
            1 if nomem => {
                s.drop_entry = 2;
                true
            }
            2 if !nomem => {
                s.drop_entry = 1;
                false
            }
            2 => true,
            3 => true,
            _ => false,
        };
        // drop_packet
        let rate = if nomem {
            (amem / (amem - avail).max(1)).max(1) as i32
        } else {
            0
        };
        c.defence.drop_rate = match s.drop_packet {
            1 if nomem => {
                s.drop_packet = 2;
                rate
            }
            2 if nomem => rate,
            2 => {
                s.drop_packet = 1;
                0
            }
            3 => s.am_droprate,
            _ => 0,
        };
        // secure_tcp
        c.defence.secure = match s.secure_tcp {
            1 if nomem => {
                s.secure_tcp = 2;
                true
            }
            2 if nomem => true,
            2 => {
                s.secure_tcp = 1;
                false
            }
            3 => true,
            _ => false,
        };
        if c.profile == Profile::Safe && c.under_pressure() {
            let (core, tab) = <crate::addr::V4 as Fam>::split(self);
            core.pressure_expire(tab, PRESSURE_EXPIRE_PER_TICK);
            let (core, tab) = <crate::addr::V6 as Fam>::split(self);
            core.pressure_expire(tab, PRESSURE_EXPIRE_PER_TICK);
        }
        let c = &mut self.core;
        if c.defence.drop_entry {
            let (core, tab) = <crate::addr::V4 as Fam>::split(self);
            core.random_dropentry(tab);
            let (core, tab) = <crate::addr::V6 as Fam>::split(self);
            core.random_dropentry(tab);
        }
    }
}

impl Core {
    /// The kernel's `ip_vs_random_dropentry`: 1/32 of the table per run, from a random point.
    fn random_dropentry<A: Fam>(&mut self, tab: &mut ConnTable<A>) {
        let slots = tab.capacity_slots();
        if slots == 0 {
            return;
        }
        let span = slots.div_ceil(32);
        let start = self.rng.below(slots);
        let now = self.tick();
        for k in 0..span {
            let i = (start + k) % slots;
            let Some(c) = tab.get(i).copied() else {
                continue;
            };
            if c.n_control() > 0 {
                continue;
            }
            let drop = if c.is_template() {
                // Templates of one-packet services are dropped like connections; other
                // templates only while not assured.
                let ops = self
                    .dests
                    .get(c.dest)
                    .and_then(|d| self.services.get(d.svc))
                    .is_some_and(|s| s.cfg.flags.has(crate::service::ServiceFlags::ONEPACKET));
                if ops {
                    self.todrop_entry(&c, now)
                } else {
                    c.state & 1 == 0
                }
            } else {
                match Protocol::from_ipproto(c.proto) {
                    Some(Protocol::Tcp) => match TcpState::from_u8(c.state) {
                        Some(TcpState::SynRecv | TcpState::SynAck) => true,
                        Some(TcpState::Established) => self.todrop_entry(&c, now),
                        _ => false,
                    },
                    Some(Protocol::Sctp) => match SctpState::from_u8(c.state) {
                        Some(SctpState::Init1 | SctpState::Init) => true,
                        Some(SctpState::Established) => self.todrop_entry(&c, now),
                        _ => false,
                    },
                    _ => self.todrop_entry(&c, now),
                }
            };
            if drop {
                self.counters.defence_dropped_entries += 1;
                self.expire(tab, i, true);
            }
        }
    }

    /// The kernel's `todrop_entry`: spare entries refreshed in the last 60 s and entries with
    /// 0 or more than 8 packets; otherwise drop every i-th entry with i packets.
    fn todrop_entry<A: Addr>(&mut self, c: &Conn<A>, now: Tick) -> bool {
        // now + timeout < expires + 60 s  <=>  refreshed less than 60 s ago: spare it.
        if c.expires
            .add(Core::ticks(60))
            .after(now.add(self.timeout_ticks(c)))
        {
            return false;
        }
        let i = c.in_pkts as usize;
        if i == 0 || i > 8 {
            return false;
        }
        let ctr = &mut self.defence.todrop_counter[i];
        *ctr -= 1;
        if *ctr > 0 {
            return false;
        }
        *ctr = i as i8;
        true
    }

    /// The drop_packet defence countdown (the kernel's `ip_vs_todrop`).
    pub(crate) fn todrop(&mut self) -> bool {
        if self.defence.drop_rate == 0 {
            return false;
        }
        self.defence.drop_counter -= 1;
        if self.defence.drop_counter > 0 {
            return false;
        }
        self.defence.drop_counter = self.defence.drop_rate;
        true
    }
}
