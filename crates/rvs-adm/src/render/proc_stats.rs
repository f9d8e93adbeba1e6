//! `/proc/net/ip_vs_stats`: the totals in hexadecimal.

use std::fmt::Write as _;

use rvs_core::snapshot::TotalsView;

/// The kernel's `ip_vs_stats_show`.
pub fn proc_ip_vs_stats(t: &TotalsView) -> String {
    let s = &t.stats;
    let r = &t.rates;
    let mut out = String::new();
    out.push_str("   Total Incoming Outgoing         Incoming         Outgoing\n");
    out.push_str("   Conns  Packets  Packets            Bytes            Bytes\n");
    let _ = write!(
        out,
        "{:8X} {:8X} {:8X} {:16X} {:16X}\n\n",
        s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes
    );
    out.push_str(" Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n");
    let _ = writeln!(
        out,
        "{:8X} {:8X} {:8X} {:16X} {:16X}",
        r.cps, r.inpps, r.outpps, r.inbps, r.outbps
    );
    out
}
