//! `ipvsadm -L --persistent-conn`: `Weight PersistConn ActiveConn InActConn`.

use std::fmt::Write as _;

use rvs_core::snapshot::DestView;

/// The two title lines (`%-33s %-9s %-11s %-10s %-10s`).
pub const TITLE: &str = "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\n";

/// `  -> %-28s %-9u %-11u %-10u %-10u`.
pub(crate) fn dest_line(out: &mut String, name: &str, d: &DestView) {
    let _ = writeln!(
        out,
        "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
        d.weight, d.persistconns, d.activeconns, d.inactconns
    );
}
