//! `/proc/net/ip_vs_conn` and `/proc/net/ip_vs_conn_sync`.

use core::net::IpAddr;
use std::fmt::Write as _;

use rvs_core::snapshot::ConnView;

use super::conns::expires_secs;

/// The kernel's `%pI6`: eight groups of four lowercase hex digits.
pub(crate) fn pi6(a: &core::net::Ipv6Addr) -> String {
    let s = a.segments();
    s.iter()
        .map(|g| format!("{g:04x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn hex_or_pi6(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => format!("{:08X}", u32::from(a)),
        IpAddr::V6(a) => pi6(&a),
    }
}

fn line_prefix(out: &mut String, c: &ConnView) {
    let _ = write!(
        out,
        "{:<3} {} {:04X} {} {:04X} {} {:04X} {:<11} ",
        c.proto,
        hex_or_pi6(c.caddr),
        c.cport,
        hex_or_pi6(c.vaddr),
        c.vport,
        hex_or_pi6(c.daddr),
        c.dport,
        c.state
    );
}

/// `/proc/net/ip_vs_conn` (entries carry no persistence-engine data in rvs).
pub fn proc_ip_vs_conn(conns: &[ConnView]) -> String {
    let mut out = String::from(
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
    );
    for c in conns {
        line_prefix(&mut out, c);
        let _ = writeln!(out, "{:>7}", expires_secs(c) as u32);
    }
    out
}

/// `/proc/net/ip_vs_conn_sync` (every rvs entry is `LOCAL`: there is no sync daemon).
pub fn proc_ip_vs_conn_sync(conns: &[ConnView]) -> String {
    let mut out =
        String::from("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n");
    for c in conns {
        line_prefix(&mut out, c);
        let _ = writeln!(out, "{:<6} {:>7}", "LOCAL", expires_secs(c) as u32);
    }
    out
}
