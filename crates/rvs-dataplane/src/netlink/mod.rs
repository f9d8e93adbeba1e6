//! What the daemon sets up in the kernel, through rtnetlink, and removes again.
//!
//! Every object is tracked: [`Net::teardown`] removes exactly what [`Net::setup`] and
//! [`Net::reconcile`] added, in reverse order. The list is also written to a state file
//! (`<admin socket>.netlink.json`), so a daemon restarted after a crash first removes what
//! its predecessor left (the TUN device itself, and with it its addresses and routes, goes
//! away with the process that held it; the policy rules do not). Routes and rules carry the
//! routing protocol number [`RTPROT_RVS`] (`ip route show proto 73`, `ip rule show`), so an
//! operator can tell them apart.
//!
//! | object | why |
//! |---|---|
//! | the TUN device's addresses (`tun_addrs`), link up | a connected route into the TUN for its subnet (the default tunnel sources live there) |
//! | `VIP/32` or `VIP/128 dev TUN proto 73` in `main`, one per service address | clients' packets to a VIP reach the daemon |
//! | `ADDR/32 dev TUN proto 73` in `main`, one per full-NAT local address (and per tunnel source outside the TUN's subnets) | real servers' replies to full-NAT flows (and ICMP errors about tunnelled packets) reach the daemon |
//! | `default dev TUN proto 73` in table `reply_table` (IPv4 and IPv6) | where the rules below send NAT replies |
//! | rule `from RS ipproto P sport PORT lookup reply_table priority rule_priority proto 73`, one per masquerading real server (no `ipproto`/`sport` for fwmark services or port 0) | replies from real servers of NAT services go into the TUN to be translated back to the VIP, instead of straight to the client |
//! | rule `from RS ipproto icmp` (`ipv6-icmp`) `lookup reply_table`, one per masquerading real-server address | ICMP errors a real server sends about a NAT flow are translated back too; its other ICMP messages pass through the daemon unchanged |
//! | rule `iif TUN lookup main priority rule_priority-1` (IPv4 and IPv6) | what the daemon writes back into the kernel is routed by the main table, never steered into the TUN again |
//! | rule `fwmark output_mark lookup main priority rule_priority-1` (packet or raw output; IPv4 and IPv6) | the same for what the daemon sends on its raw sockets, which carry `SO_MARK` = `output_mark` |
//! | rule `iif lo to 169.254.0.0/16` (`fe80::/10`) `lookup main priority rule_priority-1` (packet or raw output) | the director's link-local ICMP stays out of the rule below |
//! | rule `to ADDR ipproto P dport PORT lookup reply_table priority 90`, one per virtual service on one of the host's own addresses (a Kubernetes NodePort); the `local` table's rule moved from priority 0 to 100 while any exists | the host's kernel would deliver them locally |
//! | with `rule_priority` below 100 (a Kubernetes node's default, 60): the `local` table moved to 100, and rules `iif lo`, `iif TUN`, `fwmark output_mark` `lookup local priority rule_priority-2` | replies to a host-network client of a ClusterIP are steered into the TUN before local delivery; the host's own traffic and what the daemon hands back to a local address are still delivered locally |
//! | rule `iif lo ipproto icmp` (`ipv6-icmp`) `lookup reply_table priority rule_priority` (packet or raw output) | ICMP errors the director's own kernel raises about packets the daemon forwarded (host unreachable when a real server's neighbour does not resolve) are translated back to the virtual service, as the kernel IPVS does on its LOCAL_OUT hook; the director's other ICMP to non-local destinations passes through the daemon unchanged |
//!
//! Besides netlink, two files under `/proc/sys` are written: `net.ipv4.conf.TUN.rp_filter` = 0, or 2 when
//! `net.ipv4.conf.all.rp_filter` is not 0 (loose: the translated packets re-enter through the TUN with the client's source address,
//! which strict reverse-path filtering would drop), and, if they are off,
//! `net.ipv4.ip_forward` and `net.ipv6.conf.all.forwarding`, which are turned back off on exit.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::route::{RouteAttribute, RouteProtocol};
use rtnetlink::packet_route::rule::{RuleAttribute, RuleMessage};

use rvs_control::Config;

mod desired;
mod objects;

pub use desired::*;
pub use objects::*;
pub use rvs_core::addr::in_prefix;

use objects::{default_local_rule, route_message, rule_base, rule_message};

/// The netlink side of the daemon: a handle and what was added.
pub struct Net {
    handle: Handle,
    ifindex: u32,
    table: u32,
    /// Objects added, in order.
    added: Vec<NetObject>,
    state_file: PathBuf,
}

fn nl_err(what: &str, e: rtnetlink::Error) -> io::Error {
    io::Error::other(format!("netlink: {what}: {e}"))
}

/// Whether a netlink error means "already gone" (ENOENT, ESRCH, EADDRNOTAVAIL, ENODEV).
fn is_gone(e: &rtnetlink::Error) -> bool {
    if let rtnetlink::Error::NetlinkError(m) = e {
        let code = m.raw_code().abs();
        return [libc::ENOENT, libc::ESRCH, libc::EADDRNOTAVAIL, libc::ENODEV].contains(&code);
    }
    false
}

fn is_exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == libc::EEXIST)
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/proc/sys").join(path))
        .ok()
        .map(|s| s.trim().to_string())
}

fn write_sysctl(path: &str, v: &str) -> io::Result<()> {
    std::fs::write(Path::new("/proc/sys").join(path), v)
        .map_err(|e| io::Error::new(e.kind(), format!("writing /proc/sys/{path}: {e}")))
}

impl Net {
    /// Opens a netlink connection (spawned on the current tokio runtime) for the TUN device
    /// `ifindex`, and removes what a crashed predecessor left (from the state file).
    pub async fn open(cfg: &Config, ifindex: u32) -> io::Result<Net> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let state_file = state_file_for(&cfg.dataplane.admin_socket);
        let mut net = Net {
            handle,
            ifindex,
            table: cfg.dataplane.reply_table,
            added: Vec::new(),
            state_file,
        };
        net.remove_leftovers().await;
        Ok(net)
    }

    /// Opens a netlink connection for a daemon taking over from a running one
    /// ([`crate::takeover`]): what the running daemon added (its state file) becomes ours,
    /// untouched.
    pub async fn adopt(cfg: &Config, ifindex: u32) -> io::Result<Net> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let state_file = state_file_for(&cfg.dataplane.admin_socket);
        let added = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<NetObject>>(&t).ok())
            .unwrap_or_default();
        tracing::info!(
            objects = added.len(),
            "netlink: adopted the running daemon's setup"
        );
        Ok(Net {
            handle,
            ifindex,
            table: cfg.dataplane.reply_table,
            added,
            state_file,
        })
    }

    /// Removes objects listed in a state file left by a daemon that did not exit cleanly.
    async fn remove_leftovers(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.state_file) else {
            return;
        };
        let list = match serde_json::from_str::<Vec<NetObject>>(&text) {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(
                    file = %self.state_file.display(),
                    "a previous daemon's state file is unreadable ({e}); ignoring it"
                );
                let _ = std::fs::remove_file(&self.state_file);
                return;
            }
        };
        tracing::warn!(
            file = %self.state_file.display(),
            objects = list.len(),
            "removing what a previous daemon left"
        );
        for o in list.iter().rev() {
            if let Err(e) = self.del(o).await {
                tracing::debug!("leftover {o}: {e}");
            }
        }
        let _ = std::fs::remove_file(&self.state_file);
    }

    /// Writes the state file whole or not at all (a temporary file renamed over it), so that a
    /// daemon killed in the middle of a write never leaves a truncated list behind.
    fn save(&self) {
        if let Ok(s) = serde_json::to_string_pretty(&self.added) {
            let mut tmp = self.state_file.clone().into_os_string();
            tmp.push(".tmp");
            if std::fs::write(&tmp, s).is_ok() {
                let _ = std::fs::rename(&tmp, &self.state_file);
            }
        }
    }

    /// Objects added so far, in order.
    pub fn added(&self) -> &[NetObject] {
        &self.added
    }

    /// The fixed setup: TUN addresses, link up, the reply table's default routes, and the
    /// kernel knobs.
    pub async fn setup(&mut self, cfg: &Config) -> io::Result<()> {
        let tun = &cfg.dataplane.tun_name;
        let mut fixed: Vec<NetObject> = Vec::new();
        // Reverse-path filtering uses max(all, TUN): 0 on the TUN when `all` is 0 (no
        // source validation at all, the cheapest), loose (2) otherwise.
        let rp = format!("net/ipv4/conf/{tun}/rp_filter");
        let all_rp = read_sysctl("net/ipv4/conf/all/rp_filter").unwrap_or_default();
        let mut knobs = vec![(rp, if all_rp == "0" { "0" } else { "2" })];
        knobs.push(("net/ipv4/ip_forward".into(), "1"));
        if cfg.dataplane.tun_addrs.iter().any(|(a, _)| a.is_ipv6()) {
            knobs.push((format!("net/ipv6/conf/{tun}/disable_ipv6"), "0"));
            knobs.push(("net/ipv6/conf/all/forwarding".into(), "1"));
        }
        for (path, value) in knobs {
            let old = read_sysctl(&path).unwrap_or_default();
            if old != value {
                write_sysctl(&path, value)?;
                self.push(NetObject::Sysctl {
                    path,
                    value: value.into(),
                    old,
                });
            }
        }
        let up = rtnetlink::LinkUnspec::new_with_index(self.ifindex)
            .up()
            .build();
        self.handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(|e| nl_err("link up", e))?;
        for (a, p) in &cfg.dataplane.tun_addrs {
            fixed.push(NetObject::Addr {
                addr: *a,
                prefix: *p,
            });
        }
        for v6 in [false, true] {
            if cfg
                .dataplane
                .tun_addrs
                .iter()
                .any(|(a, _)| a.is_ipv6() == v6)
            {
                let any: IpAddr = if v6 {
                    IpAddr::from([0u16; 8])
                } else {
                    IpAddr::from([0u8; 4])
                };
                fixed.push(NetObject::Route {
                    dst: any,
                    prefix: 0,
                    table: self.table,
                });
                fixed.push(NetObject::TunRule {
                    v6,
                    iif: tun.clone(),
                    priority: cfg.dataplane.rule_priority.saturating_sub(1),
                });
                if cfg.dataplane.output != rvs_control::config::Output::Tun {
                    fixed.extend(local_icmp_rules(
                        v6,
                        cfg.dataplane.output_mark,
                        self.table,
                        cfg.dataplane.rule_priority,
                    ));
                }
                if cfg.dataplane.rule_priority < LOCAL_TABLE_PRIORITY {
                    fixed.extend(local_first_rules(v6, cfg));
                }
                // Replies of the real servers inside `reply_prefixes`: one rule per prefix.
                for p in cfg
                    .dataplane
                    .reply_prefixes
                    .iter()
                    .filter(|(n, _)| n.is_ipv6() == v6)
                {
                    fixed.push(NetObject::FixedRule {
                        v6,
                        from: Some(*p),
                        fwmark: 0,
                        iif: None,
                        proto: 0,
                        to: None,
                        table: self.table,
                        priority: cfg.dataplane.rule_priority,
                    });
                }
            }
        }
        for o in fixed {
            self.add(&o).await?;
            self.push(o);
        }
        Ok(())
    }

    fn push(&mut self, o: NetObject) {
        tracing::info!("netlink: added {o}");
        self.added.push(o);
        self.save();
    }

    /// Adds the objects of `want` that are missing, removing nothing. The state file lists
    /// them before the kernel has them (a crash in between leaves a superset, which the next
    /// start removes harmlessly) and is written once, however many there are.
    pub async fn add_missing(&mut self, want: &BTreeSet<NetObject>) -> io::Result<()> {
        let have: std::collections::HashSet<&NetObject> = self.added.iter().collect();
        let new: Vec<NetObject> = want.iter().filter(|o| !have.contains(o)).cloned().collect();
        if new.is_empty() {
            return Ok(());
        }
        let base = self.added.len();
        self.added.extend(new.iter().cloned());
        self.save();
        let mut first_err = None;
        let mut failed = std::collections::HashSet::new();
        for o in &new {
            match self.add(o).await {
                Ok(()) => tracing::debug!("netlink: added {o}"),
                Err(e) => {
                    tracing::error!("netlink: adding {o}: {e}");
                    failed.insert(o.clone());
                    first_err.get_or_insert(e);
                }
            }
        }
        if new.len() <= 8 {
            for o in new.iter().filter(|o| !failed.contains(*o)) {
                tracing::info!("netlink: added {o}");
            }
        } else {
            tracing::info!("netlink: added {} objects", new.len() - failed.len());
        }
        if !failed.is_empty() {
            let mut i = 0;
            self.added.retain(|o| {
                i += 1;
                i <= base || !failed.contains(o)
            });
            self.save();
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Adds the objects of `want` that are missing and removes the dynamic ones (VIP routes
    /// in `main`, rules) that are no longer wanted.
    pub async fn reconcile(&mut self, want: &BTreeSet<NetObject>) -> io::Result<()> {
        let dynamic = |o: &NetObject| {
            matches!(
                o,
                NetObject::Rule { .. }
                    | NetObject::Route { table: 254, .. }
                    | NetObject::LocalRule { .. }
                    | NetObject::LocalTable { .. }
            )
        };
        let stale: std::collections::HashSet<NetObject> = self
            .added
            .iter()
            .filter(|o| dynamic(o) && !want.contains(o))
            .cloned()
            .collect();
        if !stale.is_empty() {
            // Newest first, as the teardown.
            for o in self.added.iter().rev().filter(|o| stale.contains(*o)) {
                if let Err(e) = self.del(o).await {
                    tracing::warn!("netlink: removing {o}: {e}");
                }
                if stale.len() <= 8 {
                    tracing::info!("netlink: removed {o}");
                }
            }
            if stale.len() > 8 {
                tracing::info!("netlink: removed {} objects", stale.len());
            }
            self.added.retain(|o| !stale.contains(o));
            self.save();
        }
        self.add_missing(want).await
    }

    async fn add_rule(&self, m: RuleMessage, o: &NetObject) -> io::Result<()> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = m;
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_exists(&e) => Ok(()),
            Err(e) => Err(nl_err(&o.to_string(), e)),
        }
    }

    /// The node's own addresses (every interface but the TUN device).
    pub async fn local_addresses(&self) -> io::Result<BTreeSet<IpAddr>> {
        let mut list = self.handle.address().get().execute();
        let mut out = BTreeSet::new();
        while let Some(m) = list
            .try_next()
            .await
            .map_err(|e| nl_err("list addresses", e))?
        {
            if m.header.index == self.ifindex {
                continue;
            }
            for a in &m.attributes {
                if let AddressAttribute::Local(x) | AddressAttribute::Address(x) = a {
                    out.insert(*x);
                }
            }
        }
        Ok(out)
    }

    async fn add(&self, o: &NetObject) -> io::Result<()> {
        let r = match o {
            NetObject::Addr { addr, prefix } => {
                self.handle
                    .address()
                    .add(self.ifindex, *addr, *prefix)
                    .execute()
                    .await
            }
            NetObject::Route { dst, prefix, table } => {
                let m = route_message(*dst, *prefix, *table, self.ifindex)?;
                self.handle.route().add(m).execute().await
            }
            NetObject::Rule { .. }
            | NetObject::TunRule { .. }
            | NetObject::FixedRule { .. }
            | NetObject::LocalRule { .. } => {
                let Some(m) = rule_message(o) else {
                    return Ok(());
                };
                let mut req = self.handle.rule().add();
                *req.message_mut() = m;
                req.execute().await
            }
            NetObject::LocalTable { v6, priority } => {
                // The new place first, then away from 0: `local` is never missing.
                self.add_rule(rule_base(*v6, 255, *priority), o).await?;
                self.handle
                    .rule()
                    .del(default_local_rule(*v6))
                    .execute()
                    .await
                    .or_else(|e| if is_gone(&e) { Ok(()) } else { Err(e) })
            }
            NetObject::Sysctl { path, value, .. } => return write_sysctl(path, value),
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) if is_exists(&e) => Ok(()),
            Err(e) => Err(nl_err(&o.to_string(), e)),
        }
    }

    async fn del(&self, o: &NetObject) -> io::Result<()> {
        let r = match o {
            NetObject::Addr { addr, prefix } => {
                let mut list = self
                    .handle
                    .address()
                    .get()
                    .set_link_index_filter(self.ifindex)
                    .execute();
                let mut found = None;
                while let Some(m) = list
                    .try_next()
                    .await
                    .map_err(|e| nl_err("list addresses", e))?
                {
                    let hit = m.header.prefix_len == *prefix
                        && m.attributes
                            .iter()
                            .any(|a| matches!(a, AddressAttribute::Address(x) if x == addr));
                    if hit {
                        found = Some(m);
                    }
                }
                match found {
                    Some(m) => self.handle.address().del(m).execute().await,
                    None => Ok(()),
                }
            }
            NetObject::Route { dst, prefix, table } => {
                let m = route_message(*dst, *prefix, *table, self.ifindex)?;
                let mut m = m;
                // Match on destination and table only: the device may be gone already.
                m.attributes
                    .retain(|a| !matches!(a, RouteAttribute::Oif(_)));
                self.handle.route().del(m).execute().await
            }
            NetObject::Rule { .. }
            | NetObject::TunRule { .. }
            | NetObject::FixedRule { .. }
            | NetObject::LocalRule { .. } => match rule_message(o) {
                Some(m) => self.handle.rule().del(m).execute().await,
                None => Ok(()),
            },
            NetObject::LocalTable { v6, priority } => {
                // Back at 0 first, then away from the moved place.
                let mut back = default_local_rule(*v6);
                back.attributes
                    .push(RuleAttribute::Protocol(RouteProtocol::Kernel));
                self.add_rule(back, o).await?;
                self.handle
                    .rule()
                    .del(rule_base(*v6, 255, *priority))
                    .execute()
                    .await
            }
            NetObject::Sysctl { path, old, .. } => {
                if old.is_empty() {
                    return Ok(());
                }
                return write_sysctl(path, old);
            }
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) => Ok(()),
            Err(e) => Err(nl_err(&o.to_string(), e)),
        }
    }

    /// Removes everything added, newest first, and the state file.
    pub async fn teardown(&mut self) {
        while let Some(o) = self.added.pop() {
            match self.del(&o).await {
                Ok(()) => tracing::info!("netlink: removed {o}"),
                Err(e) => tracing::warn!("netlink: removing {o}: {e}"),
            }
        }
        let _ = std::fs::remove_file(&self.state_file);
        let mut tmp = self.state_file.clone().into_os_string();
        tmp.push(".tmp");
        let _ = std::fs::remove_file(tmp);
    }
}

/// The state file next to the admin socket.
pub fn state_file_for(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".netlink.json");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::AddressFamily;

    /// `desired` for a config's own services, as text.
    fn desired_of(cfg: &Config, local: &BTreeSet<IpAddr>) -> Vec<String> {
        let mut e = rvs_core::Engine::new(cfg.engine_config(None));
        for (c, _) in cfg.commands() {
            e.apply(rvs_core::Instant::ZERO, c).unwrap();
        }
        desired(cfg, &e.services(), local)
            .iter()
            .map(|o| o.to_string())
            .collect()
    }

    #[test]
    fn prefixes() {
        let a: IpAddr = "10.255.255.2".parse().unwrap();
        assert!(in_prefix(a, "10.255.255.1".parse().unwrap(), 24));
        assert!(!in_prefix(a, "10.255.254.1".parse().unwrap(), 24));
        assert!(in_prefix(a, "0.0.0.0".parse().unwrap(), 0));
        let b: IpAddr = "fd72:7673::2".parse().unwrap();
        assert!(in_prefix(b, "fd72:7673::1".parse().unwrap(), 64));
        assert!(!in_prefix(b, a, 0));
    }

    #[test]
    fn desired_objects_follow_the_services() {
        let text = r#"
[engine]
fullnat_addrs = ["10.255.1.1"]
[dataplane]
tun_addrs = ["10.255.255.1/24"]
tunnel_src = ["10.255.255.2", "fd00:9::2"]
reply_table = 100
rule_priority = 900
[[service]]
vip = "10.0.0.100"
port = 80
[[service.real_server]]
addr = "10.2.1.2"
[[service.real_server]]
addr = "10.2.2.2"
forward = "fullnat"
[[service]]
proto = "udp"
vip = "10.0.0.100"
port = 53
[[service.real_server]]
addr = "10.2.1.2"
port = 5353
"#;
        let cfg = Config::parse(Path::new("t.toml"), text).unwrap();
        let got = desired_of(&cfg, &BTreeSet::new());
        assert_eq!(
            got,
            vec![
                "route 10.0.0.100/32 table 254",
                "route 10.255.1.1/32 table 254",
                "route fd00:9::2/128 table 254",
                "rule from 10.2.1.2 ipproto 1 lookup 100 priority 900",
                "rule from 10.2.1.2 ipproto 6 sport 80 lookup 100 priority 900",
                "rule from 10.2.1.2 ipproto 17 sport 5353 lookup 100 priority 900",
            ]
        );
    }

    /// A Kubernetes node: the reply rules come before the `local` table, which moves to
    /// 100; a service on a node address gets a rule at 90 instead of a route.
    #[test]
    fn on_a_kubernetes_node_replies_and_node_ports_come_before_the_local_table() {
        let text = r#"
[dataplane]
tun_addrs = ["10.255.255.1/24"]
reply_table = 100
[kubernetes]
node_name = "n"
[[service]]
vip = "10.96.0.10"
port = 80
[[service]]
vip = "192.0.2.10"
port = 30080
"#;
        let cfg = Config::parse(Path::new("t.toml"), text).unwrap();
        assert_eq!(cfg.dataplane.rule_priority, 60);
        let got = desired_of(&cfg, &BTreeSet::from(["192.0.2.10".parse().unwrap()]));
        assert_eq!(
            got,
            vec![
                "route 10.96.0.10/32 table 254",
                "rule to 192.0.2.10 ipproto 6 dport 30080 lookup 100 priority 90",
                "rule lookup local moved from priority 0 to 100",
            ]
        );
        let first: Vec<String> = local_first_rules(false, &cfg)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(
            first,
            vec![
                "rule iif lo lookup 255 priority 58",
                "rule iif rvs0 lookup 255 priority 58",
                "rule fwmark 0x7373 lookup 255 priority 58",
            ]
        );
    }

    #[test]
    fn raw_output_rules_keep_the_daemon_out_and_steer_local_icmp() {
        let got: Vec<String> = local_icmp_rules(false, 0x7373, 100, 900)
            .into_iter()
            .chain(local_icmp_rules(true, 0x7373, 100, 900))
            .map(|o| o.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "rule fwmark 0x7373 lookup 254 priority 899",
                "rule iif lo to 169.254.0.0/16 lookup 254 priority 899",
                "rule iif lo ipproto 1 lookup 100 priority 900",
                "rule (IPv6) fwmark 0x7373 lookup 254 priority 899",
                "rule (IPv6) iif lo to fe80::/10 lookup 254 priority 899",
                "rule (IPv6) iif lo ipproto 58 lookup 100 priority 900",
            ]
        );
        for o in local_icmp_rules(true, 1, 100, 900) {
            let m = rule_message(&o).unwrap();
            assert_eq!(m.header.family, AddressFamily::Inet6);
        }
    }
}
