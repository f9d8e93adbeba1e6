//! From the running state to the file's: the fewest ipvsadm operations, so that services and
//! real servers that did not change are not touched (their connections survive).

use core::net::IpAddr;

use rvs_core::command::{Command, Timeouts};
use rvs_core::dest::DestConfig;
use rvs_core::service::ServiceConfig;
use rvs_core::snapshot::{DestView, ServiceView};
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
}

fn same_service(v: &ServiceView, c: &ServiceConfig) -> bool {
    v.scheduler == c.scheduler
        && v.flags == c.flags
        && v.timeout == c.timeout
        && v.netmask == c.netmask
        && v.pe_name == c.pe_name
}

fn same_dest(v: &DestView, c: &DestConfig) -> bool {
    v.fwd == c.fwd
        && v.weight == c.weight
        && v.u_threshold == c.u_threshold
        && v.l_threshold == c.l_threshold
        && v.tunnel == c.tunnel
}

/// The commands that turn `running` into `desired`, in the order to apply them:
///
/// 1. sysctls that differ (first, so that e.g. a new `expire_nodest_conn` governs the
///    removals below);
/// 2. the timeouts, if any differs (`--set` with 0 for those that stay);
/// 3. `DelService` for services the file no longer lists (their connections drain as the
///    profile says);
/// 4. per service of the file, in file order: `AddService` and its `AddDest`s if it is new;
///    otherwise `EditService` (a complete object) only if a setting changed, then `DelDest`
///    for real servers no longer listed, `EditDest` for changed ones, `AddDest` for new ones.
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
        if !desired.services.iter().any(|s| s.cfg.key == v.key) {
            out.push(Command::DelService(v.key));
        }
    }
    for s in &desired.services {
        let key = s.cfg.key;
        let Some(v) = running.services.iter().find(|v| v.key == key) else {
            out.push(Command::AddService(s.cfg.clone()));
            out.extend(s.dests.iter().map(|d| Command::AddDest(key, *d)));
            continue;
        };
        if !same_service(v, &s.cfg) {
            out.push(Command::EditService(s.cfg.clone()));
        }
        let wanted = |a: IpAddr, p: u16| s.dests.iter().find(|d| d.addr == a && d.port == p);
        for d in &v.dests {
            if wanted(d.addr, d.port).is_none() {
                out.push(Command::DelDest(key, d.addr, d.port));
            }
        }
        for d in &s.dests {
            match v
                .dests
                .iter()
                .find(|x| x.addr == d.addr && x.port == d.port)
            {
                Some(x) if same_dest(x, d) => {}
                Some(_) => out.push(Command::EditDest(key, *d)),
                None => out.push(Command::AddDest(key, *d)),
            }
        }
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
