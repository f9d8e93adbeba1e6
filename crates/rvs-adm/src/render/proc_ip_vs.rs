//! `/proc/net/ip_vs`: services in kernel (hash) order, real servers newest first, hex
//! addresses, the persistence timeout in jiffies.

use std::fmt::Write as _;

use rvs_core::addr::Netmask;
use rvs_core::service::{ServiceFlags, ServiceKey};
use rvs_core::snapshot::{InfoView, ServiceView};

use super::proc_conn::pi6;

/// The kernel HZ of the reference machine (Debian's 6.1 kernel: 250).
pub const HZ: u32 = 250;

/// The kernel's `ip_vs_info_seq_show`, for services in the order given (the kernel's own),
/// with the persistence timeout printed in jiffies at `hz`.
pub fn proc_ip_vs(info: &InfoView, services: &[ServiceView], hz: u32) -> String {
    let mut out = String::new();
    let (a, b, c) = info.version;
    let _ = writeln!(
        out,
        "IP Virtual Server version {a}.{b}.{c} (size={})",
        info.conn_tab_size as i32
    );
    out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    out.push_str("  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n");
    for svc in services {
        let ops = if svc.flags.has(ServiceFlags::ONEPACKET) {
            "ops "
        } else {
            ""
        };
        match svc.key {
            ServiceKey::Addr {
                proto,
                addr: core::net::IpAddr::V6(a),
                port,
            } => {
                let _ = write!(
                    out,
                    "{}  [{}]:{port:04X} {} ",
                    proto.name(),
                    pi6(&a),
                    svc.scheduler
                );
            }
            ServiceKey::Addr {
                proto,
                addr: core::net::IpAddr::V4(a),
                port,
            } => {
                let _ = write!(
                    out,
                    "{}  {:08X}:{port:04X} {} {ops} ",
                    proto.name(),
                    u32::from(a),
                    svc.scheduler
                );
            }
            ServiceKey::Fwmark { mark, .. } => {
                let _ = write!(out, "FWM  {mark:08X} {} {ops}", svc.scheduler);
            }
        }
        if svc.flags.has(ServiceFlags::PERSISTENT) {
            // The kernel keeps an IPv6 prefix length in the netmask field and prints it
            // through ntohl like an IPv4 mask.
            let mask = match svc.netmask {
                Netmask::V4(m) => m,
                Netmask::V6(p) => (p as u32).swap_bytes(),
            };
            let _ = writeln!(
                out,
                "persistent {} {mask:08X}",
                (svc.timeout as u64 * hz as u64) as i32
            );
        } else {
            out.push('\n');
        }
        for d in &svc.dests {
            let addr = match d.addr {
                core::net::IpAddr::V4(a) => format!("{:08X}", u32::from(a)),
                core::net::IpAddr::V6(a) => format!("[{}]", pi6(&a)),
            };
            let _ = writeln!(
                out,
                "  -> {addr}:{:04X}      {:<7} {:<6} {:<10} {:<10}",
                d.port,
                d.fwd.ipvsadm_name(),
                d.weight as i32,
                d.activeconns as i32,
                d.inactconns as i32
            );
        }
    }
    out
}
