//! `ipvsadm -S` / `ipvsadm -S -n`: the rules as ipvsadm commands, one per line, sorted like
//! the listing. Thresholds, timeouts and daemons are not saved (as in ipvsadm).

use std::fmt::Write as _;

use rvs_core::addr::Netmask;
use rvs_core::dest::{ForwardMethod, TunnelCsum, TunnelType};
use rvs_core::service::{Protocol, ServiceFlags, ServiceKey};
use rvs_core::snapshot::{DestView, ServiceView};

use super::{
    addrport, any_sched_flag, cmp_dests, dotted, glibc_msort, name_proto, ordered, sched_flags,
};
use crate::resolve::Resolver;

/// The service selector of a rule: `-t 10.0.0.1:80`, `--sctp-service ...`, `-f 1 -6`.
pub(crate) fn selector(key: &ServiceKey, numeric: bool, names: &dyn Resolver) -> String {
    match *key {
        ServiceKey::Fwmark { v6, mark } => {
            format!("-f {mark}{}", if v6 { " -6" } else { "" })
        }
        ServiceKey::Addr { proto, addr, port } => {
            let opt = match proto {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!(
                "{opt} {}",
                addrport(addr, port, Some(proto), numeric, names)
            )
        }
    }
}

/// ipvsadm's `fwd_switch`: LOCALNODE is saved as `-g`; rvs's full NAT (no ipvsadm switch) as
/// rvs's own `--fullnat`, so `-S` output restores.
pub(crate) fn fwd_switch(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "-m",
        ForwardMethod::Tunnel => "-i",
        ForwardMethod::Local | ForwardMethod::Route => "-g",
        ForwardMethod::FullNat => "--fullnat",
    }
}

fn csum_opt(c: TunnelCsum) -> &'static str {
    match c {
        TunnelCsum::NoCsum => "--tun-nocsum",
        TunnelCsum::Csum => "--tun-csum",
        TunnelCsum::RemCsum => "--tun-remcsum",
    }
}

fn service_rule(out: &mut String, sel: &str, svc: &ServiceView) {
    let _ = write!(out, "-A {sel} -s {}", svc.scheduler);
    if svc.flags.has(ServiceFlags::PERSISTENT) {
        let _ = write!(out, " -p {}", svc.timeout);
        match svc.netmask {
            Netmask::V4(m) if !svc.key.is_v6() && m != u32::MAX => {
                let _ = write!(out, " -M {}", dotted(m));
            }
            Netmask::V6(p) if svc.key.is_v6() && p != 128 => {
                let _ = write!(out, " -M {p}");
            }
            _ => {}
        }
    }
    if let Some(pe) = svc.pe_name.as_deref().filter(|p| !p.is_empty()) {
        let _ = write!(out, " --pe {pe}");
    }
    if svc.flags.has(ServiceFlags::ONEPACKET) {
        out.push_str(" -o");
    }
    if any_sched_flag(svc) {
        let _ = write!(out, " -b {}", sched_flags(svc));
    }
    out.push('\n');
}

fn dest_rule(out: &mut String, sel: &str, dname: &str, d: &DestView) {
    let w = d.weight as i32;
    let sw = fwd_switch(d.fwd);
    if d.fwd == ForwardMethod::Tunnel {
        match d.tunnel.kind {
            TunnelType::Gre => {
                let _ = writeln!(
                    out,
                    "-a {sel} -r {dname} {sw} -w {w} --tun-type gre {}",
                    csum_opt(d.tunnel.csum)
                );
            }
            TunnelType::Gue => {
                let _ = writeln!(
                    out,
                    "-a {sel} -r {dname} {sw} -w {w} --tun-type gue --tun-port {} {}",
                    d.tunnel.port,
                    csum_opt(d.tunnel.csum)
                );
            }
            TunnelType::Ipip => {
                let _ = writeln!(out, "-a {sel} -r {dname} {sw} -w {w} --tun-type ipip");
            }
        }
    } else {
        let _ = writeln!(out, "-a {sel} -r {dname} {sw} -w {w}");
    }
}

/// `ipvsadm -S [-n]`: services and real servers in listing order (ipvsadm sorts its save too).
pub fn save(services: &[ServiceView], numeric: bool, names: &dyn Resolver) -> String {
    let mut out = String::new();
    for svc in ordered(services, false) {
        let sel = selector(&svc.key, numeric, names);
        service_rule(&mut out, &sel, &svc);
        let mut dests = svc.dests.clone();
        glibc_msort(&mut dests, &cmp_dests);
        for d in &dests {
            let dname = addrport(d.addr, d.port, name_proto(&svc.key), numeric, names);
            dest_rule(&mut out, &sel, &dname, d);
        }
    }
    out
}
