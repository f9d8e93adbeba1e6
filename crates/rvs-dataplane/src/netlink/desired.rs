//! Which objects the services need: VIP routes, reply-steering rules, rules for services on
//! the host's own addresses; and what a batch of commands will need before it applies.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rvs_control::Config;
use rvs_core::dest::ForwardMethod;
use rvs_core::service::ServiceKey;
use rvs_core::snapshot::ServiceView;

use super::objects::{NetObject, host_prefix};
use rvs_core::addr::in_prefix;

/// Where the `local` table's rule goes while virtual services listen on the node's own
/// addresses (it is at 0 by default, before every other rule).
pub const LOCAL_TABLE_PRIORITY: u32 = 100;
/// The priority of [`NetObject::LocalRule`]s.
pub const LOCAL_RULE_PRIORITY: u32 = 90;

/// The objects that follow the services: VIP routes and reply rules (plus the fixed ones of
/// the config: full-NAT and tunnel-source routes). A service on one of the node's own
/// addresses (`local`) gets a rule before the `local` table instead of a route, and the
/// `local` table's rule moves after it.
pub fn desired(
    cfg: &Config,
    services: &[ServiceView],
    local: &BTreeSet<IpAddr>,
) -> BTreeSet<NetObject> {
    let dp = &cfg.dataplane;
    let mut s = BTreeSet::new();
    let route = |a: IpAddr| NetObject::Route {
        dst: a,
        prefix: host_prefix(a),
        table: 254,
    };
    for a in &cfg.engine.fullnat_addrs {
        s.insert(route(*a));
    }
    for a in &dp.tunnel_src {
        if !dp.tun_addrs.iter().any(|(n, l)| in_prefix(*a, *n, *l)) {
            s.insert(route(*a));
        }
    }
    if dp.rule_priority < LOCAL_TABLE_PRIORITY {
        for v6 in [false, true] {
            if dp.tun_addrs.iter().any(|(a, _)| a.is_ipv6() == v6) {
                s.insert(NetObject::LocalTable {
                    v6,
                    priority: LOCAL_TABLE_PRIORITY,
                });
            }
        }
    }
    for svc in services {
        s.extend(service_objects(cfg, &svc.key, local));
        for d in &svc.dests {
            s.extend(dest_objects(cfg, &svc.key, d.addr, d.port, d.fwd));
        }
    }
    s
}

/// What a service's address needs: a route into the TUN, or, for one of the node's own
/// addresses, a rule before the `local` table (and the `local` table moved after it).
fn service_objects(cfg: &Config, key: &ServiceKey, local: &BTreeSet<IpAddr>) -> Vec<NetObject> {
    match *key {
        ServiceKey::Addr { proto, addr, port } if local.contains(&addr) => vec![
            NetObject::LocalRule {
                dst: addr,
                proto: proto.ipproto(),
                dport: port,
                table: cfg.dataplane.reply_table,
                priority: LOCAL_RULE_PRIORITY,
            },
            NetObject::LocalTable {
                v6: addr.is_ipv6(),
                priority: LOCAL_TABLE_PRIORITY,
            },
        ],
        ServiceKey::Addr { addr, .. } => vec![NetObject::Route {
            dst: addr,
            prefix: host_prefix(addr),
            table: 254,
        }],
        ServiceKey::Fwmark { .. } => Vec::new(),
    }
}

/// What a masquerading real server needs: its replies (and the ICMP errors it sends about
/// a flow) steered into the TUN to be translated back.
fn dest_objects(
    cfg: &Config,
    key: &ServiceKey,
    addr: IpAddr,
    port: u16,
    fwd: ForwardMethod,
) -> Vec<NetObject> {
    let dp = &cfg.dataplane;
    if fwd != ForwardMethod::Masq
        || dp
            .reply_prefixes
            .iter()
            .any(|(n, l)| in_prefix(addr, *n, *l))
    {
        return Vec::new();
    }
    let proto = match key {
        ServiceKey::Addr { proto, .. } => proto.ipproto(),
        ServiceKey::Fwmark { .. } => 0,
    };
    vec![
        NetObject::Rule {
            src: addr,
            proto,
            sport: if proto == 0 { 0 } else { port },
            table: dp.reply_table,
            priority: dp.rule_priority,
        },
        NetObject::Rule {
            src: addr,
            proto: if addr.is_ipv4() { 1 } else { 58 },
            sport: 0,
            table: dp.reply_table,
            priority: dp.rule_priority,
        },
    ]
}

/// What `cmds` will need once applied: the objects of the services and real servers they
/// add or change. Added before the engine applies them, so that no packet of a new real
/// server's first flow (its SYN-ACK) goes around the TUN.
pub fn ahead(
    cfg: &Config,
    cmds: &[rvs_core::command::Command],
    local: &BTreeSet<IpAddr>,
) -> BTreeSet<NetObject> {
    use rvs_core::command::Command;
    let mut s = BTreeSet::new();
    for c in cmds {
        match c {
            Command::AddService(c) | Command::EditService(c) => {
                s.extend(service_objects(cfg, &c.key, local));
            }
            Command::AddDest(k, d) | Command::EditDest(k, d) => {
                s.extend(dest_objects(cfg, k, d.addr, d.port, d.fwd));
            }
            _ => {}
        }
    }
    s
}

/// Whether applying `cmds` may leave an object no service needs (so that a reconcile should
/// follow): a service removed, or a real server removed or changed whose replies have a rule
/// of their own. Weight changes of real servers inside `reply_prefixes` (a rollout on a
/// Kubernetes node) need none.
pub fn may_leave_stale(cfg: &Config, cmds: &[rvs_core::command::Command]) -> bool {
    use rvs_core::command::Command;
    let own_rule = |a: &IpAddr| {
        !cfg.dataplane
            .reply_prefixes
            .iter()
            .any(|(n, l)| in_prefix(*a, *n, *l))
    };
    cmds.iter().any(|c| match c {
        Command::DelService(_) | Command::Flush => true,
        Command::DelDest(_, a, _) => own_rule(a),
        Command::EditDest(_, d) => own_rule(&d.addr),
        _ => false,
    })
}
