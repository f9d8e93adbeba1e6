//! Layer-2 output (`output = "packet"`): the next hops the kernel has already resolved, so the
//! packet thread can hand finished Ethernet frames to the egress device.
//!
//! Why: a packet sent on a raw `IPPROTO_RAW` socket takes a whole IP output pass in the
//! director's kernel, and for a header-including raw socket that pass allocates and frees an
//! output route per packet. Measured at saturation (`bench/dataplane.sh`), that was about a
//! quarter of the packet thread's time. A frame written to an `AF_PACKET` socket goes
//! straight to the device's transmit path. No crate keeps a user-space view of the kernel's
//! neighbour table for this, so this module does, in two halves:
//!
//! - **The resolver** ([`run_resolver`], a task on the control runtime) is asked for
//!   destinations by the packet thread. For each it asks the kernel for the output route
//!   (`ip route get DST mark output_mark`: the same lookup the raw socket's packets get) and
//!   reads the egress link and the neighbour entry of the next hop. It listens to the
//!   kernel's link, neighbour, route and policy-rule notifications and publishes a fresh
//!   [`NextHops`] table to the packet thread after every change (changes 20 ms apart are
//!   taken together) and every second.
//! - **The packet thread** looks each output packet's destination up in its current table
//!   ([`Lookup`]) and sends a frame when the kernel has a usable next hop, and the packet on
//!   the raw socket otherwise. The raw socket stays the authority: unknown destinations, next
//!   hops that are not Ethernet, routes of any type but unicast, encapsulating routes, packets
//!   over the MTU, link-local and multicast destinations, and neighbours that are not
//!   resolved (`INCOMPLETE`, `FAILED`) all take it,
//!   so the kernel resolves, queues, fragments or answers with an ICMP error exactly as before.
//!
//! Neighbour states, as the kernel's `neigh_resolve_output` treats them: `REACHABLE`,
//! `PERMANENT` and `NOARP` are used as they are. `STALE`, `DELAY` and `PROBE` still carry a
//! usable address, but the kernel only moves such an entry on (to `DELAY`, then a unicast
//! probe, then `REACHABLE` or `FAILED`) when its own output uses it; frames sent around it
//! would leave it `STALE` for ever and a dead server's address in use. So for those states
//! the first packet to the destination after each table update goes through the raw socket
//! (a "kick"), and the kernel runs its state machine as it would for forwarded traffic. A
//! server that stops answering therefore turns `FAILED` on the kernel's schedule, and from
//! then on the raw socket carries its packets and the kernel's host-unreachable errors reach
//! the client as before.
//!
//! What the frames skip: everything between the socket and the device in the director's IP
//! output path — netfilter `OUTPUT` and `POSTROUTING` (and conntrack), IPsec (xfrm)
//! policies, cgroup egress BPF programs. What they keep: the egress device's queueing
//! discipline and tc filters (the `AF_PACKET` socket carries `SO_MARK` = `output_mark` like
//! the raw ones). Routes with a lightweight-tunnel encapsulation (MPLS, seg6, BPF) are left
//! to the raw socket. On a multipath route the frames follow the next hop the kernel picks
//! for the destination alone (it hashes a forwarded packet's source too). The IPv6 MTU is
//! taken from the link (not a lower `mtu6` set by a router advertisement). Use
//! `output = "raw"` where any of these matter.
//!
//! Keeping the table honest: a destination stays tracked while the packet thread uses its
//! entry (a flag per entry, read at each update) and is dropped after 60 s without use. The
//! resolver's netlink requests go on their own connection, each update is bounded to 2 s
//! (then the connection is replaced), and the packet thread stops trusting a table older than
//! 3 s (every packet takes the raw socket until a fresh one arrives). Destinations beyond the
//! 4096 tracked ones are asked about again at most once a minute.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteType, RouteVia,
};
use rtnetlink::{Handle, MulticastGroup, RouteMessageBuilder};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::tunloop::CtlHandle;

/// Most destinations the resolver tracks; further ones take the raw socket.
pub const MAX_TRACKED: usize = 4096;

/// A tracked destination whose entry the packet thread has not used for this long is dropped
/// (the packet thread asks again on its next packet to it).
const TRACK_FOR: Duration = Duration::from_secs(60);

/// The packet thread stops trusting a table this old (the resolver publishes every second).
const STALE_TABLE: Duration = Duration::from_secs(3);

/// Destinations asked about but never tracked (beyond [`MAX_TRACKED`]) are asked about again
/// after this long.
const ASK_AGAIN: Duration = Duration::from_secs(60);

/// Longest a table update may take before the resolver gives up on its netlink connection.
const UPDATE_LIMIT: Duration = Duration::from_secs(2);

/// How to send to one destination as an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Egress interface.
    pub ifindex: u32,
    /// The frame header: next hop's MAC, egress MAC, EtherType of the destination's family.
    pub header: [u8; 14],
    /// Largest IP packet the egress route takes.
    pub mtu: u32,
    /// The kernel's entry is `STALE`, `DELAY` or `PROBE`: send the first packet after each
    /// table update through the raw socket, so that the kernel confirms the neighbour.
    pub kick: bool,
}

/// One destination of a published table.
#[derive(Debug)]
pub struct Entry {
    /// Its next hop (`None`: resolved, and the raw socket must carry it).
    pub hop: Option<NextHop>,
    /// Set by the packet thread when it uses the entry; read by the resolver at the next
    /// update to keep the destination tracked.
    used: AtomicBool,
}

impl Entry {
    /// An unused entry.
    pub fn new(hop: Option<NextHop>) -> Entry {
        Entry {
            hop,
            used: AtomicBool::new(false),
        }
    }
}

/// Destination → next hop.
pub type NextHops = HashMap<IpAddr, Entry>;

/// The output route of one destination, as `RTM_GETROUTE` answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteFacts {
    /// Unicast (anything else, e.g. local, blackhole or unreachable: no frames).
    pub unicast: bool,
    /// Egress interface.
    pub oif: u32,
    /// Gateway, when not on link.
    pub gateway: Option<IpAddr>,
    /// Several next hops.
    pub multipath: bool,
    /// Route MTU (a learned path MTU or an `mtu` metric).
    pub mtu: Option<u32>,
    /// A lightweight-tunnel encapsulation (MPLS, seg6, BPF, …) the kernel would apply.
    pub encap: bool,
}

/// One link, from `RTM_GETLINK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    /// ARPHRD_ETHER.
    pub ether: bool,
    /// Administratively and operationally up.
    pub up: bool,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u32,
}

/// One neighbour entry, from `RTM_GETNEIGH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighFacts {
    /// NUD state.
    pub state: NeighbourState,
    /// Link-layer address, when it has one.
    pub mac: Option<[u8; 6]>,
}

/// Destinations that never take a frame: the raw socket handles them as the kernel would.
fn frames_allowed(dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => {
            !(a.is_multicast() || a.is_broadcast() || a.is_unspecified() || a.is_link_local())
        }
        IpAddr::V6(a) => {
            !(a.is_multicast() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The next hop of `dst` from the kernel's answers, or `None` where the raw socket must
/// carry its packets. Pure: the resolver feeds it what netlink said.
pub fn next_hop(
    dst: IpAddr,
    route: Option<&RouteFacts>,
    links: &HashMap<u32, LinkFacts>,
    neigh: &HashMap<(u32, IpAddr), NeighFacts>,
) -> Option<NextHop> {
    if !frames_allowed(dst) {
        return None;
    }
    let r = route?;
    if !r.unicast || r.multipath || r.encap || r.oif == 0 {
        return None;
    }
    let link = links.get(&r.oif)?;
    if !link.ether || !link.up {
        return None;
    }
    let via = r.gateway.unwrap_or(dst);
    if via.is_ipv4() != dst.is_ipv4() {
        // An IPv4 route via an IPv6 next hop (RFC 5549): leave it to the kernel.
        return None;
    }
    let n = neigh.get(&(r.oif, via))?;
    let kick = match n.state {
        NeighbourState::Reachable | NeighbourState::Permanent | NeighbourState::Noarp => false,
        NeighbourState::Stale | NeighbourState::Delay | NeighbourState::Probe => true,
        _ => return None,
    };
    let mac = n.mac?;
    let mut header = [0u8; 14];
    header[0..6].copy_from_slice(&mac);
    header[6..12].copy_from_slice(&link.mac);
    let ethertype: u16 = if dst.is_ipv4() { 0x0800 } else { 0x86dd };
    header[12..14].copy_from_slice(&ethertype.to_be_bytes());
    let mtu = r.mtu.map_or(link.mtu, |m| m.min(link.mtu));
    Some(NextHop {
        ifindex: r.oif,
        header,
        mtu,
        kick,
    })
}

/// The packet thread's side: the current table, what it asked for, what it kicked.
pub struct Lookup {
    table: Arc<NextHops>,
    published: std::time::Instant,
    asked: HashSet<IpAddr>,
    asked_since: std::time::Instant,
    kicked: HashSet<IpAddr>,
    want: UnboundedSender<IpAddr>,
}

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// As a frame.
    Frame(NextHop),
    /// Through the raw socket.
    Raw,
}

impl Lookup {
    /// An empty table; misses are asked of the resolver through `want`.
    pub fn new(want: UnboundedSender<IpAddr>) -> Lookup {
        let now = std::time::Instant::now();
        Lookup {
            table: Arc::new(NextHops::new()),
            published: now,
            asked: HashSet::new(),
            asked_since: now,
            kicked: HashSet::new(),
            want,
        }
    }

    /// Takes a table the resolver published at `now`.
    pub fn set(&mut self, t: Arc<NextHops>, now: std::time::Instant) {
        self.asked.retain(|d| !t.contains_key(d));
        self.table = t;
        self.published = now;
        self.kicked.clear();
    }

    /// Once per batch: drops a table the resolver has not refreshed for [`STALE_TABLE`]
    /// (every packet takes the raw socket until a fresh one comes), and forgets, every
    /// [`ASK_AGAIN`], what was asked and never answered.
    pub fn check(&mut self, now: std::time::Instant) {
        if now.duration_since(self.published) > STALE_TABLE && !self.table.is_empty() {
            tracing::warn!("next hops: no table update for 3 s; sending through the raw sockets");
            self.table = Arc::new(NextHops::new());
        }
        if now.duration_since(self.asked_since) > ASK_AGAIN {
            self.asked.clear();
            self.asked_since = now;
        }
    }

    /// How to send `len` bytes to `dst`.
    #[inline]
    pub fn route(&mut self, dst: IpAddr, len: usize) -> Route {
        let Some(e) = self.table.get(&dst) else {
            if self.asked.len() < MAX_TRACKED && self.asked.insert(dst) {
                let _ = self.want.send(dst);
            }
            return Route::Raw;
        };
        if !e.used.load(Ordering::Relaxed) {
            e.used.store(true, Ordering::Relaxed);
        }
        match e.hop {
            Some(nh) if len <= nh.mtu as usize => {
                if nh.kick && self.kicked.insert(dst) {
                    Route::Raw
                } else {
                    Route::Frame(nh)
                }
            }
            _ => Route::Raw,
        }
    }
}

async fn route_facts(h: &Handle, dst: IpAddr, mark: u32) -> Option<RouteFacts> {
    let msg: RouteMessage = match dst {
        IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .destination_prefix(a, 32)
            .mark(mark)
            .build(),
        IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .destination_prefix(a, 128)
            .mark(mark)
            .build(),
    };
    let r = h.route().get(msg).execute().try_next().await.ok()??;
    let mut f = RouteFacts {
        unicast: r.header.kind == RouteType::Unicast,
        ..RouteFacts::default()
    };
    for a in &r.attributes {
        match a {
            RouteAttribute::Oif(i) => f.oif = *i,
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => f.gateway = Some(IpAddr::V4(*g)),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => f.gateway = Some(IpAddr::V6(*g)),
            RouteAttribute::Via(RouteVia::Inet(g)) => f.gateway = Some(IpAddr::V4(*g)),
            RouteAttribute::Via(RouteVia::Inet6(g)) => f.gateway = Some(IpAddr::V6(*g)),
            RouteAttribute::MultiPath(_) => f.multipath = true,
            RouteAttribute::EncapType(_) | RouteAttribute::Encap(_) => f.encap = true,
            RouteAttribute::Metrics(ms) => {
                for m in ms {
                    if let RouteMetric::Mtu(v) = m {
                        if *v > 0 {
                            f.mtu = Some(*v);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(f)
}

async fn links(h: &Handle) -> HashMap<u32, LinkFacts> {
    let mut out = HashMap::new();
    let mut s = h.link().get().execute();
    while let Ok(Some(l)) = s.try_next().await {
        let mut mac = None;
        let mut mtu = 1500;
        for a in &l.attributes {
            match a {
                LinkAttribute::Address(b) if b.len() == 6 => {
                    mac = Some([b[0], b[1], b[2], b[3], b[4], b[5]]);
                }
                LinkAttribute::Mtu(m) => mtu = *m,
                _ => {}
            }
        }
        let Some(mac) = mac else { continue };
        let flags = l.header.flags;
        out.insert(
            l.header.index,
            LinkFacts {
                ether: l.header.link_layer_type == LinkLayerType::Ether,
                up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
                mac,
                mtu,
            },
        );
    }
    out
}

async fn neighbours(h: &Handle) -> HashMap<(u32, IpAddr), NeighFacts> {
    let mut out = HashMap::new();
    let mut s = h.neighbours().get().execute();
    while let Ok(Some(n)) = s.try_next().await {
        let mut ip = None;
        let mut mac = None;
        for a in &n.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    ip = Some(IpAddr::V4(*a));
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    ip = Some(IpAddr::V6(*a));
                }
                NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
                    mac = Some([b[0], b[1], b[2], b[3], b[4], b[5]]);
                }
                _ => {}
            }
        }
        if let Some(ip) = ip {
            out.insert(
                (n.header.ifindex, ip),
                NeighFacts {
                    state: n.header.state,
                    mac,
                },
            );
        }
    }
    out
}

/// Route answers are reused until a link, route or rule notification, or this long.
const ROUTE_REFRESH: Duration = Duration::from_secs(10);

/// Questions and notifications that arrive this close together are answered together.
const GATHER: Duration = Duration::from_millis(20);

/// Starts (or renews) tracking `ip`, within [`MAX_TRACKED`].
fn track(tracked: &mut HashMap<IpAddr, tokio::time::Instant>, ip: IpAddr) {
    if tracked.len() < MAX_TRACKED || tracked.contains_key(&ip) {
        tracked.insert(ip, tokio::time::Instant::now());
    }
}

/// Whether a notification is about neighbours only (routes stay valid).
fn about_neighbours(m: &NetlinkMessage<RouteNetlinkMessage>) -> bool {
    matches!(
        &m.payload,
        NetlinkPayload::InnerMessage(
            RouteNetlinkMessage::NewNeighbour(_) | RouteNetlinkMessage::DelNeighbour(_)
        )
    )
}

/// A netlink connection for requests (notifications come on their own).
fn request_handle() -> std::io::Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The resolver: answers the packet thread's questions (`want`) and republishes its table
/// through `ctl` after the kernel's notifications about links, neighbours, routes or policy
/// rules, and every second. Each update reads the links and the neighbour table (one dump
/// each); routes are asked per destination, and asked again only after a link, route or rule
/// notification, or every 10 s. `mark` is the raw sockets' `SO_MARK`, so that route lookups
/// see the same policy rules as the raw socket's packets. Runs until `ctl`'s packet thread is
/// gone.
pub async fn run_resolver(mut want: UnboundedReceiver<IpAddr>, ctl: CtlHandle, mark: u32) {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Neigh,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
        MulticastGroup::Ipv4Rule,
        MulticastGroup::Ipv6Rule,
    ];
    let mut events = match rtnetlink::new_multicast_connection(&groups) {
        Ok((conn, _, events)) => {
            tokio::spawn(conn);
            Some(events)
        }
        Err(e) => {
            tracing::warn!("next hops: no netlink notifications ({e}); refreshing every second");
            None
        }
    };
    let mut handle = match request_handle() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("next hops: netlink: {e}; every packet takes the raw socket");
            return;
        }
    };
    let mut tracked: HashMap<IpAddr, tokio::time::Instant> = HashMap::new();
    let mut routes: HashMap<IpAddr, Option<RouteFacts>> = HashMap::new();
    let mut routes_at = tokio::time::Instant::now();
    let mut published: Arc<NextHops> = Arc::new(NextHops::new());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let mut reroute = events.is_none();
        tokio::select! {
            w = want.recv() => {
                let Some(ip) = w else { return };
                track(&mut tracked, ip);
            }
            ev = async {
                match events.as_mut() {
                    Some(e) => e.next().await,
                    None => std::future::pending().await,
                }
            } => match ev {
                Some((m, _)) => reroute |= !about_neighbours(&m),
                None => {
                    tracing::warn!("next hops: netlink notifications ended; refreshing every second");
                    events = None;
                }
            },
            _ = tick.tick() => {}
        }
        tokio::time::sleep(GATHER).await;
        while let Ok(ip) = want.try_recv() {
            track(&mut tracked, ip);
        }
        if let Some(e) = events.as_mut() {
            while let Some(Some((m, _))) = e.next().now_or_never() {
                reroute |= !about_neighbours(&m);
            }
        }
        // Renew what the packet thread used since the last update; drop the long unused.
        let now = tokio::time::Instant::now();
        for (d, e) in published.iter() {
            if e.used.load(Ordering::Relaxed) {
                if let Some(t) = tracked.get_mut(d) {
                    *t = now;
                }
            }
        }
        tracked.retain(|_, t| now.duration_since(*t) < TRACK_FOR);
        if reroute || routes_at.elapsed() >= ROUTE_REFRESH {
            routes.clear();
            routes_at = now;
        }
        routes.retain(|d, _| tracked.contains_key(d));
        let update = build(&handle, &tracked, &mut routes, mark);
        let table = match tokio::time::timeout(UPDATE_LIMIT, update).await {
            Ok(t) => Arc::new(t),
            Err(_) => {
                tracing::warn!("next hops: netlink did not answer within 2 s; reconnecting");
                routes.clear();
                match request_handle() {
                    Ok(h) => handle = h,
                    Err(e) => tracing::error!("next hops: netlink: {e}"),
                }
                continue;
            }
        };
        if !ctl.set_next_hops(table.clone()) {
            return;
        }
        published = table;
    }
}

/// One table from the kernel's links, neighbours and (cached) routes.
async fn build(
    h: &Handle,
    tracked: &HashMap<IpAddr, tokio::time::Instant>,
    routes: &mut HashMap<IpAddr, Option<RouteFacts>>,
    mark: u32,
) -> NextHops {
    let links = links(h).await;
    let neigh = neighbours(h).await;
    let mut table = NextHops::with_capacity(tracked.len());
    for &dst in tracked.keys() {
        let r = match routes.get(&dst) {
            Some(r) => r.clone(),
            None => {
                let r = route_facts(h, dst, mark).await;
                routes.insert(dst, r.clone());
                r
            }
        };
        let nh = next_hop(dst, r.as_ref(), &links, &neigh);
        tracing::trace!("next hop of {dst}: {nh:?} (route {r:?})");
        table.insert(dst, Entry::new(nh));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_L: [u8; 6] = [2, 0, 0, 0, 0, 0x1];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn world(
        state: NeighbourState,
    ) -> (HashMap<u32, LinkFacts>, HashMap<(u32, IpAddr), NeighFacts>) {
        let links = HashMap::from([(
            3,
            LinkFacts {
                ether: true,
                up: true,
                mac: MAC_L,
                mtu: 1500,
            },
        )]);
        let neigh = HashMap::from([
            (
                (3, ip("10.2.1.2")),
                NeighFacts {
                    state,
                    mac: Some(MAC_A),
                },
            ),
            (
                (3, ip("fd00::2")),
                NeighFacts {
                    state,
                    mac: Some(MAC_A),
                },
            ),
        ]);
        (links, neigh)
    }

    fn on_link() -> RouteFacts {
        RouteFacts {
            unicast: true,
            oif: 3,
            ..RouteFacts::default()
        }
    }

    #[test]
    fn a_reachable_neighbour_gives_the_frame_header() {
        let (l, n) = world(NeighbourState::Reachable);
        let nh = next_hop(ip("10.2.1.2"), Some(&on_link()), &l, &n).unwrap();
        assert_eq!(nh.ifindex, 3);
        assert_eq!(&nh.header[0..6], &MAC_A);
        assert_eq!(&nh.header[6..12], &MAC_L);
        assert_eq!(&nh.header[12..14], &[0x08, 0x00]);
        assert_eq!(nh.mtu, 1500);
        assert!(!nh.kick);
        let nh6 = next_hop(ip("fd00::2"), Some(&on_link()), &l, &n).unwrap();
        assert_eq!(&nh6.header[12..14], &[0x86, 0xdd]);
    }

    #[test]
    fn permanent_and_noarp_need_no_kick_stale_delay_probe_do() {
        for (s, kick) in [
            (NeighbourState::Permanent, false),
            (NeighbourState::Noarp, false),
            (NeighbourState::Stale, true),
            (NeighbourState::Delay, true),
            (NeighbourState::Probe, true),
        ] {
            let (l, n) = world(s);
            let nh = next_hop(ip("10.2.1.2"), Some(&on_link()), &l, &n).unwrap();
            assert_eq!(nh.kick, kick, "{s:?}");
        }
    }

    #[test]
    fn unresolved_neighbours_leave_the_packet_to_the_kernel() {
        for s in [
            NeighbourState::Incomplete,
            NeighbourState::Failed,
            NeighbourState::None,
        ] {
            let (l, n) = world(s);
            assert_eq!(
                next_hop(ip("10.2.1.2"), Some(&on_link()), &l, &n),
                None,
                "{s:?}"
            );
        }
        let (l, n) = world(NeighbourState::Reachable);
        // No entry at all for this destination.
        assert_eq!(next_hop(ip("10.2.1.3"), Some(&on_link()), &l, &n), None);
        // No route.
        assert_eq!(next_hop(ip("10.2.1.2"), None, &l, &n), None);
    }

    #[test]
    fn a_gateway_route_uses_the_gateways_neighbour_entry() {
        let (l, n) = world(NeighbourState::Reachable);
        let r = RouteFacts {
            gateway: Some(ip("10.2.1.2")),
            ..on_link()
        };
        let nh = next_hop(ip("192.0.2.9"), Some(&r), &l, &n).unwrap();
        assert_eq!(&nh.header[0..6], &MAC_A);
        // An IPv4 route via an IPv6 gateway is the kernel's business.
        let r = RouteFacts {
            gateway: Some(ip("fd00::2")),
            ..on_link()
        };
        assert_eq!(next_hop(ip("192.0.2.9"), Some(&r), &l, &n), None);
    }

    #[test]
    fn other_routes_links_and_destinations_take_the_raw_socket() {
        let (l, n) = world(NeighbourState::Reachable);
        let d = ip("10.2.1.2");
        let not_unicast = RouteFacts {
            unicast: false,
            ..on_link()
        };
        let multipath = RouteFacts {
            multipath: true,
            ..on_link()
        };
        assert_eq!(next_hop(d, Some(&not_unicast), &l, &n), None);
        assert_eq!(next_hop(d, Some(&multipath), &l, &n), None);
        let mut down = l.clone();
        down.get_mut(&3).unwrap().up = false;
        assert_eq!(next_hop(d, Some(&on_link()), &down, &n), None);
        let mut tun = l.clone();
        tun.get_mut(&3).unwrap().ether = false;
        assert_eq!(next_hop(d, Some(&on_link()), &tun, &n), None);
        let encap = RouteFacts {
            encap: true,
            ..on_link()
        };
        assert_eq!(next_hop(d, Some(&encap), &l, &n), None);
        for m in [
            "224.0.0.1",
            "255.255.255.255",
            "169.254.1.1",
            "ff02::1",
            "fe80::1",
        ] {
            assert_eq!(next_hop(ip(m), Some(&on_link()), &l, &n), None, "{m}");
        }
    }

    #[test]
    fn the_route_mtu_bounds_the_link_mtu() {
        let (l, n) = world(NeighbourState::Reachable);
        let r = RouteFacts {
            mtu: Some(1400),
            ..on_link()
        };
        assert_eq!(
            next_hop(ip("10.2.1.2"), Some(&r), &l, &n).unwrap().mtu,
            1400
        );
    }

    fn table(d: IpAddr, hop: Option<NextHop>) -> Arc<NextHops> {
        Arc::new(NextHops::from([(d, Entry::new(hop))]))
    }

    #[test]
    fn lookup_asks_once_kicks_once_per_table_and_respects_the_mtu() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut lk = Lookup::new(tx);
        let now = std::time::Instant::now();
        let d = ip("10.2.1.2");
        assert_eq!(lk.route(d, 100), Route::Raw);
        assert_eq!(lk.route(d, 100), Route::Raw);
        assert_eq!(rx.try_recv().unwrap(), d);
        assert!(rx.try_recv().is_err(), "asked twice");
        let (l, n) = world(NeighbourState::Stale);
        let nh = next_hop(d, Some(&on_link()), &l, &n).unwrap();
        let t = table(d, Some(nh));
        lk.set(t.clone(), now);
        assert!(!t[&d].used.load(Ordering::Relaxed));
        assert_eq!(
            lk.route(d, 100),
            Route::Raw,
            "the first packet kicks the kernel"
        );
        assert!(t[&d].used.load(Ordering::Relaxed), "use is reported");
        assert_eq!(lk.route(d, 100), Route::Frame(nh));
        assert_eq!(lk.route(d, 1501), Route::Raw, "over the MTU");
        lk.set(table(d, Some(nh)), now);
        assert_eq!(lk.route(d, 100), Route::Raw, "kicked again after an update");
        lk.set(table(d, None), now);
        assert_eq!(lk.route(d, 100), Route::Raw);
        assert!(
            rx.try_recv().is_err(),
            "a resolved destination is not asked again"
        );
    }

    #[test]
    fn lookup_distrusts_an_old_table_and_asks_again_after_a_minute() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut lk = Lookup::new(tx);
        let t0 = std::time::Instant::now();
        let d = ip("10.2.1.2");
        let (l, n) = world(NeighbourState::Reachable);
        let nh = next_hop(d, Some(&on_link()), &l, &n).unwrap();
        lk.set(table(d, Some(nh)), t0);
        lk.check(t0 + Duration::from_secs(2));
        assert_eq!(lk.route(d, 100), Route::Frame(nh));
        lk.check(t0 + Duration::from_secs(4));
        assert_eq!(lk.route(d, 100), Route::Raw, "a 4 s old table is dropped");
        assert_eq!(
            rx.try_recv().unwrap(),
            d,
            "and the destination asked about again"
        );
        // Not answered (the resolver is full): not asked again until a minute has passed,
        // even across table updates.
        let other = ip("10.2.1.3");
        lk.set(table(d, Some(nh)), t0 + Duration::from_secs(5));
        assert_eq!(lk.route(other, 100), Route::Raw);
        assert_eq!(rx.try_recv().unwrap(), other);
        lk.set(table(d, Some(nh)), t0 + Duration::from_secs(6));
        assert_eq!(lk.route(other, 100), Route::Raw);
        assert!(rx.try_recv().is_err(), "asked again within the minute");
        lk.check(t0 + Duration::from_secs(62));
        lk.set(table(d, Some(nh)), t0 + Duration::from_secs(62));
        assert_eq!(lk.route(other, 100), Route::Raw);
        assert_eq!(
            rx.try_recv().unwrap(),
            other,
            "asked again after the minute"
        );
    }
}
