//! `ipvsadm -Lc` / `-Lnc`: the connection table, reformatted from `/proc/net/ip_vs_conn`.

use std::fmt::Write as _;

use rvs_core::service::Protocol;
use rvs_core::snapshot::ConnView;

use super::addrport;
use crate::resolve::Resolver;

/// Seconds left as `/proc/net/ip_vs_conn` prints them: `floor(ms / 1000)`.
pub fn expires_secs(c: &ConnView) -> u64 {
    c.expires_ms / 1000
}

/// ipvsadm's `mm:ss`: minutes are not folded into hours (`120:00`).
pub fn mmss(secs: u64) -> String {
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

fn proto_of(name: &str) -> Option<Protocol> {
    match name {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// `ipvsadm -Lc [-n] [--persistent-conn]`.
///
/// With `--persistent-conn` the title gains `pe name` and `pe_data` columns; entries with
/// persistence-engine data would print them, but [`ConnView`] carries none, so lines are the
/// plain ones (as the kernel's own lines are for every entry without a PE).
pub fn conns(
    conns: &[ConnView],
    numeric: bool,
    persistent_conn: bool,
    names: &dyn Resolver,
) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if persistent_conn {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} ",
            "state", "source", "virtual", "destination", "pe name"
        ));
        out.push_str("pe_data\n");
    } else {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} ",
            "state", "source", "virtual"
        ));
        out.push_str("destination\n");
    }
    for c in conns {
        let p = proto_of(&c.proto);
        let cname = addrport(c.caddr, c.cport, p, numeric, names);
        let vname = addrport(c.vaddr, c.vport, p, numeric, names);
        let dname = addrport(c.daddr, c.dport, p, numeric, names);
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            c.proto,
            mmss(expires_secs(c)),
            c.state,
            cname,
            vname,
            dname
        );
    }
    out
}
