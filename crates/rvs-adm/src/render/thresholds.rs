//! `ipvsadm -L --thresholds`: `Uthreshold Lthreshold ActiveConn InActConn`.

use std::fmt::Write as _;

use rvs_core::snapshot::DestView;

/// The two title lines (`%-33s %-10s %-10s %-10s %-10s`).
pub const TITLE: &str = "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n";

/// `  -> %-28s %-10u %-10u %-10u %-10u`.
pub(crate) fn dest_line(out: &mut String, name: &str, d: &DestView) {
    let _ = writeln!(
        out,
        "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
        d.u_threshold, d.l_threshold, d.activeconns, d.inactconns
    );
}
