//! The kernel objects the daemon adds (routes, policy rules, addresses, knobs), how each is
//! written and told apart, and the rtnetlink messages that add and delete them.

use std::io;
use std::net::IpAddr;

use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::packet_route::rule::{RuleAttribute, RuleMessage, RulePortRange};
use rtnetlink::packet_route::{AddressFamily, IpProtocol};
use serde::{Deserialize, Serialize};

use rvs_control::Config;

/// Routing protocol number on rvs's routes and rules.
pub const RTPROT_RVS: u8 = 73;

/// One kernel object the daemon adds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NetObject {
    /// An address on the TUN device.
    Addr {
        /// Address.
        addr: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// A route into the TUN device.
    Route {
        /// Destination (`0.0.0.0`/`::` with prefix 0 for a default route).
        dst: IpAddr,
        /// Prefix length.
        prefix: u8,
        /// Routing table.
        table: u32,
    },
    /// A policy rule steering replies of a real server into `table`.
    Rule {
        /// Real-server address.
        src: IpAddr,
        /// IP protocol (0: any).
        proto: u8,
        /// Source port (0: any).
        sport: u16,
        /// Table.
        table: u32,
        /// Priority.
        priority: u32,
    },
    /// `iif TUN lookup main`: packets the daemon writes back into the kernel use the main
    /// table, never the reply-steering rules (which would send them into the TUN again).
    TunRule {
        /// IPv6 family.
        v6: bool,
        /// The TUN device.
        iif: String,
        /// Priority (one below the steering rules').
        priority: u32,
    },
    /// A fixed rule of the raw output mode (see the module table): `fwmark` / `iif` /
    /// `ipproto` / `to` selectors, `lookup table`.
    FixedRule {
        /// IPv6 family.
        v6: bool,
        /// Source prefix to match (`reply_prefixes`).
        #[serde(default)]
        from: Option<(IpAddr, u8)>,
        /// Firewall mark to match (0: any).
        fwmark: u32,
        /// Input interface to match (`lo`: locally generated packets).
        iif: Option<String>,
        /// IP protocol (0: any).
        proto: u8,
        /// Destination prefix to match.
        to: Option<(IpAddr, u8)>,
        /// Table.
        table: u32,
        /// Priority.
        priority: u32,
    },
    /// `to DST ipproto P dport PORT lookup table` before the `local` table: a virtual
    /// service on one of the node's own addresses (a Kubernetes NodePort), which the kernel
    /// would otherwise deliver locally.
    LocalRule {
        /// The local address.
        dst: IpAddr,
        /// IP protocol.
        proto: u8,
        /// Destination port.
        dport: u16,
        /// Table (the reply table: a default route into the TUN).
        table: u32,
        /// Priority (below [`LOCAL_TABLE_PRIORITY`]).
        priority: u32,
    },
    /// The `local` table's rule moved from priority 0 to `priority`, so that
    /// [`NetObject::LocalRule`]s come first; put back at 0 on exit.
    LocalTable {
        /// IPv6 family.
        v6: bool,
        /// Its priority while moved.
        priority: u32,
    },
    /// A `/proc/sys` knob set to `value`, restored to `old` on exit.
    Sysctl {
        /// Path under `/proc/sys`.
        path: String,
        /// Value written.
        value: String,
        /// Value before.
        old: String,
    },
}

impl std::fmt::Display for NetObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetObject::Addr { addr, prefix } => write!(f, "address {addr}/{prefix}"),
            NetObject::Route { dst, prefix, table } => {
                write!(f, "route {dst}/{prefix} table {table}")
            }
            NetObject::Rule {
                src,
                proto,
                sport,
                table,
                priority,
            } => {
                write!(f, "rule from {src}")?;
                if *proto != 0 {
                    write!(f, " ipproto {proto}")?;
                }
                if *sport != 0 {
                    write!(f, " sport {sport}")?;
                }
                write!(f, " lookup {table} priority {priority}")
            }
            NetObject::TunRule { v6, iif, priority } => write!(
                f,
                "rule {}iif {iif} lookup main priority {priority}",
                if *v6 { "(IPv6) " } else { "" }
            ),
            NetObject::FixedRule {
                v6,
                from,
                fwmark,
                iif,
                proto,
                to,
                table,
                priority,
            } => {
                write!(f, "rule {}", if *v6 { "(IPv6) " } else { "" })?;
                if let Some((a, l)) = from {
                    write!(f, "from {a}/{l} ")?;
                }
                if *fwmark != 0 {
                    write!(f, "fwmark {fwmark:#x} ")?;
                }
                if let Some(i) = iif {
                    write!(f, "iif {i} ")?;
                }
                if *proto != 0 {
                    write!(f, "ipproto {proto} ")?;
                }
                if let Some((a, l)) = to {
                    write!(f, "to {a}/{l} ")?;
                }
                write!(f, "lookup {table} priority {priority}")
            }
            NetObject::LocalRule {
                dst,
                proto,
                dport,
                table,
                priority,
            } => write!(
                f,
                "rule to {dst} ipproto {proto} dport {dport} lookup {table} priority {priority}"
            ),
            NetObject::LocalTable { v6, priority } => write!(
                f,
                "rule {}lookup local moved from priority 0 to {priority}",
                if *v6 { "(IPv6) " } else { "" }
            ),
            NetObject::Sysctl { path, value, .. } => write!(f, "sysctl {path}={value}"),
        }
    }
}

pub(super) fn host_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

/// The fixed rules of the raw output mode, per family in use:
///
/// * `fwmark MARK lookup main` (one below the steering rules): the daemon's own packets,
///   sent on raw sockets marked `MARK`, are routed by `main`, never steered into the TUN;
/// * `iif lo to LINK-LOCAL lookup main` (same priority): the director's link-local ICMP
///   stays out of the TUN (the daemon would not write it back);
/// * `iif lo ipproto icmp lookup reply_table` (the steering rules' priority): ICMP the
///   director's own kernel generates, above all the errors about packets the daemon
///   forwarded (host unreachable when a real server's neighbour does not resolve, fragmentation
///   needed), goes through the engine, which translates the ones that quote a flow back to
///   the virtual service as the kernel's IPVS does on its LOCAL_OUT hook, and writes the rest
///   back unchanged. Local destinations never get here: the `local` table comes first.
pub fn local_icmp_rules(v6: bool, mark: u32, table: u32, priority: u32) -> Vec<NetObject> {
    let lo = Some("lo".to_string());
    let link_local: (IpAddr, u8) = if v6 {
        (IpAddr::from([0xfe80u16, 0, 0, 0, 0, 0, 0, 0]), 10)
    } else {
        (IpAddr::from([169, 254, 0, 0]), 16)
    };
    vec![
        NetObject::FixedRule {
            v6,
            from: None,
            fwmark: mark,
            iif: None,
            proto: 0,
            to: None,
            table: 254,
            priority: priority.saturating_sub(1),
        },
        NetObject::FixedRule {
            v6,
            from: None,
            fwmark: 0,
            iif: lo.clone(),
            proto: 0,
            to: Some(link_local),
            table: 254,
            priority: priority.saturating_sub(1),
        },
        NetObject::FixedRule {
            v6,
            from: None,
            fwmark: 0,
            iif: lo,
            proto: if v6 { 58 } else { 1 },
            to: None,
            table,
            priority,
        },
    ]
}

/// When the reply rules come before the `local` table (`rule_priority` below
/// [`LOCAL_TABLE_PRIORITY`], a Kubernetes node's default), `lookup local` first for what must
/// still be delivered locally: the host's own traffic (`iif lo`), and what the daemon
/// writes back (`iif TUN`) or sends (`fwmark`) to one of the host's addresses, such as a
/// reply translated back to a host-network client of a ClusterIP.
pub fn local_first_rules(v6: bool, cfg: &Config) -> Vec<NetObject> {
    let dp = &cfg.dataplane;
    let p = dp.rule_priority.saturating_sub(2);
    let rule = |fwmark: u32, iif: Option<String>| NetObject::FixedRule {
        v6,
        from: None,
        fwmark,
        iif,
        proto: 0,
        to: None,
        table: 255,
        priority: p,
    };
    let mut v = vec![
        rule(0, Some("lo".into())),
        rule(0, Some(dp.tun_name.clone())),
    ];
    if dp.output != rvs_control::config::Output::Tun {
        v.push(rule(dp.output_mark, None));
    }
    v
}

/// A rule of rvs (routing protocol [`RTPROT_RVS`]) that looks up `table` at `priority`; the
/// selectors are added by [`rule_message`].
pub(super) fn rule_base(v6: bool, table: u32, priority: u32) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.action = rtnetlink::packet_route::rule::RuleAction::ToTable;
    if table < 256 {
        m.header.table = table as u8;
    }
    m.attributes.push(RuleAttribute::Table(table));
    m.attributes.push(RuleAttribute::Priority(priority));
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(RTPROT_RVS)));
    m
}

pub(super) fn one_port(p: u16) -> RulePortRange {
    RulePortRange { start: p, end: p }
}

/// The netlink message of a rule object (`None` for the other objects).
pub(super) fn rule_message(o: &NetObject) -> Option<RuleMessage> {
    let ipproto = |p: u8| RuleAttribute::IpProtocol(IpProtocol::from(p as i32));
    let m = match o {
        NetObject::Rule {
            src,
            proto,
            sport,
            table,
            priority,
        } => {
            let mut m = rule_base(src.is_ipv6(), *table, *priority);
            m.header.src_len = host_prefix(*src);
            m.attributes.push(RuleAttribute::Source(*src));
            if *proto != 0 {
                m.attributes.push(ipproto(*proto));
            }
            if *sport != 0 {
                m.attributes
                    .push(RuleAttribute::SourcePortRange(one_port(*sport)));
            }
            m
        }
        NetObject::LocalRule {
            dst,
            proto,
            dport,
            table,
            priority,
        } => {
            let mut m = rule_base(dst.is_ipv6(), *table, *priority);
            m.header.dst_len = host_prefix(*dst);
            m.attributes.push(RuleAttribute::Destination(*dst));
            m.attributes.push(ipproto(*proto));
            m.attributes
                .push(RuleAttribute::DestinationPortRange(one_port(*dport)));
            m
        }
        NetObject::LocalTable { v6, priority } => rule_base(*v6, 255, *priority),
        NetObject::TunRule { v6, iif, priority } => {
            let mut m = rule_base(*v6, 254, *priority);
            m.attributes.push(RuleAttribute::Iifname(iif.clone()));
            m
        }
        NetObject::FixedRule {
            v6,
            from,
            fwmark,
            iif,
            proto,
            to,
            table,
            priority,
        } => {
            let mut m = rule_base(*v6, *table, *priority);
            if let Some((a, l)) = from {
                m.header.src_len = *l;
                m.attributes.push(RuleAttribute::Source(*a));
            }
            if *fwmark != 0 {
                m.attributes.push(RuleAttribute::FwMark(*fwmark));
                m.attributes.push(RuleAttribute::FwMask(u32::MAX));
            }
            if let Some(i) = iif {
                m.attributes.push(RuleAttribute::Iifname(i.clone()));
            }
            if *proto != 0 {
                m.attributes.push(ipproto(*proto));
            }
            if let Some((a, l)) = to {
                m.header.dst_len = *l;
                m.attributes.push(RuleAttribute::Destination(*a));
            }
            m
        }
        _ => return None,
    };
    Some(m)
}

/// The kernel's own `0: from all lookup local` rule.
pub(super) fn default_local_rule(v6: bool) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.action = rtnetlink::packet_route::rule::RuleAction::ToTable;
    m.header.table = 255;
    m.attributes.push(RuleAttribute::Table(255));
    m.attributes.push(RuleAttribute::Priority(0));
    m
}

pub(super) fn route_message(
    dst: IpAddr,
    prefix: u8,
    table: u32,
    ifindex: u32,
) -> io::Result<RouteMessage> {
    let b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dst, prefix)
        .map_err(|e| io::Error::other(e.to_string()))?
        .output_interface(ifindex)
        .table_id(table)
        .protocol(RouteProtocol::from(RTPROT_RVS));
    Ok(b.build())
}
