//! `ipvsadm -L --tun-info`: the `TunnelInfo` column (`ipip`, `gue:PORT:CSUM`, `gre:CSUM`).

use std::fmt::Write as _;

use rvs_core::dest::{ForwardMethod, TunnelCsum, TunnelType};
use rvs_core::snapshot::DestView;

use super::fwd_name;

/// The two title lines.
pub const TITLE: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";

/// The checksum mark of the tunnel column: `-c`, `+c`, `r+c`.
pub(crate) fn csum_mark(c: TunnelCsum) -> &'static str {
    match c {
        TunnelCsum::NoCsum => "-c",
        TunnelCsum::Csum => "+c",
        TunnelCsum::RemCsum => "r+c",
    }
}

/// ipvsadm's `fwd_tun_info` (`n/a` for non-tunnel real servers), cut at 15 bytes.
pub(crate) fn tun_info(d: &DestView) -> String {
    if d.fwd != ForwardMethod::Tunnel {
        return "n/a".into();
    }
    let s = match d.tunnel.kind {
        TunnelType::Ipip => "ipip".to_string(),
        TunnelType::Gue => format!("gue:{}:{}", d.tunnel.port, csum_mark(d.tunnel.csum)),
        TunnelType::Gre => format!("gre:{}", csum_mark(d.tunnel.csum)),
    };
    super::cut(s, 15)
}

/// `  -> %-28s %-7s %-13s %-6d %-10u %-10u`.
pub(crate) fn dest_line(out: &mut String, name: &str, d: &DestView) {
    let _ = writeln!(
        out,
        "  -> {name:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
        fwd_name(d),
        tun_info(d),
        d.weight as i32,
        d.activeconns,
        d.inactconns
    );
}
