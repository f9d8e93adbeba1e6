//! From the running state to the file's: the fewest ipvsadm operations, so that services and
//! real servers that did not change are not touched (their connections survive).

use core::net::IpAddr;
use std::collections::HashSet;

use rvs_core::command::{Command, Timeouts};
use rvs_core::dest::DestConfig;
use rvs_core::service::{ServiceConfig, ServiceKey};
use rvs_core::snapshot::ServiceView;
use rvs_core::sysctl::Sysctls;

use super::Config;

/// What a running engine has, as its views give it.
#[derive(Clone, Copy, Debug)]
pub struct Running<'a> {
    /// `Engine::services()`.
    pub services: &'a [ServiceView],
    /// `Engine::timeouts()`.
    pub timeouts: Timeouts,
    /// `Engine::sysctls()`.
    pub sysctls: &'a Sysctls,
    /// Services another driver owns (the Kubernetes driver's): the file's diff neither
    /// removes nor edits them.
    pub owned_elsewhere: &'a HashSet<ServiceKey>,
}

/// A virtual service with its real servers: what a file or a driver wants, or what a running
/// engine has ([`VirtualServer::from_view`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    /// The service.
    pub cfg: ServiceConfig,
    /// Its real servers.
    pub dests: Vec<DestConfig>,
}

impl VirtualServer {
    /// What a running service is, without its counters.
    pub fn from_view(v: &ServiceView) -> VirtualServer {
        VirtualServer {
            cfg: ServiceConfig {
                key: v.key,
                scheduler: v.scheduler.clone(),
                flags: v.flags,
                timeout: v.timeout,
                netmask: v.netmask,
                pe_name: v.pe_name.clone(),
            },
            dests: v
                .dests
                .iter()
                .map(|d| DestConfig {
                    addr: d.addr,
                    port: d.port,
                    fwd: d.fwd,
                    weight: d.weight,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    tunnel: d.tunnel,
                })
                .collect(),
        }
    }
}

/// The commands that turn one service from `have` into `want` (both of the same key; `None`:
/// absent), appended to `out`: `DelService`; or `AddService` and its `AddDest`s; or an
/// `EditService` (a complete object) only if a setting changed, then `DelDest` for real
/// servers no longer wanted, `EditDest` for changed ones, `AddDest` for new ones. Nothing when
/// they are the same, so that the connections of what did not change are never touched.
pub fn diff_service(
    have: Option<&VirtualServer>,
    want: Option<&VirtualServer>,
    out: &mut Vec<Command>,
) {
    match (have, want) {
        (None, None) => {}
        (Some(h), None) => out.push(Command::DelService(h.cfg.key)),
        (None, Some(w)) => {
            out.push(Command::AddService(w.cfg.clone()));
            out.extend(w.dests.iter().map(|d| Command::AddDest(w.cfg.key, *d)));
        }
        (Some(h), Some(w)) => {
            let key = w.cfg.key;
            if h.cfg != w.cfg {
                out.push(Command::EditService(w.cfg.clone()));
            }
            let find = |v: &[DestConfig], a: IpAddr, p: u16| {
                v.iter().find(|d| d.addr == a && d.port == p).copied()
            };
            for d in &h.dests {
                if find(&w.dests, d.addr, d.port).is_none() {
                    out.push(Command::DelDest(key, d.addr, d.port));
                }
            }
            for d in &w.dests {
                match find(&h.dests, d.addr, d.port) {
                    Some(x) if x == *d => {}
                    Some(_) => out.push(Command::EditDest(key, *d)),
                    None => out.push(Command::AddDest(key, *d)),
                }
            }
        }
    }
}

/// The commands that turn `running` into `desired`, in the order to apply them:
///
/// 1. sysctls that differ (first, so that e.g. a new `expire_nodest_conn` governs the
///    removals below);
/// 2. the timeouts, if any differs (`--set` with 0 for those that stay);
/// 3. `DelService` for services the file no longer lists (their connections drain as the
///    profile says), except those [`Running::owned_elsewhere`];
/// 4. per service of the file, in file order, [`diff_service`].
///
/// Services and real servers that did not change produce no command.
pub fn diff(running: &Running<'_>, desired: &Config) -> Vec<Command> {
    let mut out = Vec::new();
    for ((name, have), (_, want)) in running
        .sysctls
        .list()
        .into_iter()
        .zip(desired.sysctls.list())
    {
        if have != want {
            out.push(Command::Sysctl(name, want));
        }
    }
    let (h, w) = (running.timeouts, desired.timeouts);
    if h != w {
        let pick = |a: u32, b: u32| if a == b { 0 } else { b };
        out.push(Command::SetTimeouts(Timeouts {
            tcp: pick(h.tcp, w.tcp),
            tcpfin: pick(h.tcpfin, w.tcpfin),
            udp: pick(h.udp, w.udp),
        }));
    }
    for v in running.services {
        if !running.owned_elsewhere.contains(&v.key)
            && !desired.services.iter().any(|s| s.cfg.key == v.key)
        {
            out.push(Command::DelService(v.key));
        }
    }
    for s in &desired.services {
        let have = running
            .services
            .iter()
            .find(|v| v.key == s.cfg.key)
            .map(VirtualServer::from_view);
        let want = VirtualServer {
            cfg: s.cfg.clone(),
            dests: s.dests.clone(),
        };
        diff_service(have.as_ref(), Some(&want), &mut out);
    }
    out
}

fn rs(a: IpAddr, p: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{p}"),
        IpAddr::V6(a) => format!("[{a}]:{p}"),
    }
}

/// One line for a person about a command (what a reload reports and logs).
pub fn describe(cmd: &Command) -> String {
    match cmd {
        Command::AddService(c) => format!("add service {} scheduler {}", c.key, c.scheduler),
        Command::EditService(c) => format!("edit service {} scheduler {}", c.key, c.scheduler),
        Command::DelService(k) => format!("delete service {k}"),
        Command::Flush => "flush".into(),
        Command::Zero(k) => match k {
            Some(k) => format!("zero {k}"),
            None => "zero all".into(),
        },
        Command::AddDest(k, d) => format!(
            "add real server {} to {k} ({}, weight {})",
            rs(d.addr, d.port),
            d.fwd.ipvsadm_name(),
            d.weight
        ),
        Command::EditDest(k, d) => format!(
            "edit real server {} of {k} ({}, weight {})",
            rs(d.addr, d.port),
            d.fwd.ipvsadm_name(),
            d.weight
        ),
        Command::DelDest(k, a, p) => format!("delete real server {} from {k}", rs(*a, *p)),
        Command::SetTimeouts(t) => format!(
            "set timeouts tcp {} tcpfin {} udp {}",
            t.tcp, t.tcpfin, t.udp
        ),
        Command::Sysctl(n, v) => format!("sysctl {n} = {v}"),
    }
}
