//! The default `ipvsadm -L` format: `Forward Weight ActiveConn InActConn`.

use std::fmt::Write as _;

use rvs_core::addr::Netmask;
use rvs_core::service::ServiceFlags;
use rvs_core::snapshot::{DestView, ServiceView};

use super::{any_sched_flag, dotted, fwd_name, sched_flags};

/// The two title lines.
pub const TITLE: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

/// A service line as the default, `--thresholds`, `--persistent-conn` and `--tun-info`
/// listings print it: name, scheduler, `(flags)`, `persistent T [mask M] [pe P]`, `ops`.
pub(crate) fn service_line(out: &mut String, name: &str, svc: &ServiceView) {
    let _ = write!(out, "{name} {}", svc.scheduler);
    if any_sched_flag(svc) {
        let _ = write!(out, " ({})", sched_flags(svc));
    }
    if svc.flags.has(ServiceFlags::PERSISTENT) {
        let _ = write!(out, " persistent {}", svc.timeout);
        match svc.netmask {
            Netmask::V4(m) if !svc.key.is_v6() && m != u32::MAX => {
                let _ = write!(out, " mask {}", dotted(m));
            }
            Netmask::V6(p) if svc.key.is_v6() && p != 128 => {
                let _ = write!(out, " mask {p}");
            }
            _ => {}
        }
        if let Some(pe) = svc.pe_name.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(out, " pe {pe}");
        }
    }
    if svc.flags.has(ServiceFlags::ONEPACKET) {
        out.push_str(" ops");
    }
    out.push('\n');
}

/// `  -> %-28s %-7s %-6d %-10u %-10u`.
pub(crate) fn dest_line(out: &mut String, name: &str, d: &DestView) {
    let _ = writeln!(
        out,
        "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
        fwd_name(d),
        d.weight as i32,
        d.activeconns,
        d.inactconns
    );
}
