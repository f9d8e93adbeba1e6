//! `reuse-dr-fin-wait` (worst `info`): direct-routing and tunnel servers whose reused ports
//! are not rescheduled.
//!
//! Looks for: TCP (or fwmark) services with `Route` or `Tunnel` real servers while
//! `conn_reuse_mode` is non-zero with bit 2 clear: `info`; `ok` otherwise.
//!
//! Why: DR/TUN connections never reach TIME_WAIT in IPVS (the director does not see the
//! replies, so they end in FIN_WAIT), and `conn_reuse_mode=1` only reschedules TIME_WAIT/CLOSE
//! entries, so a reused client port goes back to its previous server
//! (`Documentation/networking/ipvs-sysctl.rst`: `conn_reuse_mode`;
//! `net/netfilter/ipvs/ip_vs_core.c: is_new_conn_expected`; `docs/kernel-semantics.md` §2.4.3,
//! P5).
//!
//! Fix: if clients reuse ports towards these services, consider `conn_reuse_mode=2`, which also
//! reschedules FIN_WAIT entries of DR/TUN connections.

use super::{Ctx, finding, ids, refs, reuse_mode, service_label, sysctl_ev};
use crate::report::{Finding, Severity};
use crate::tree::{self, Input, display};

pub(super) fn reuse_dr_fin_wait(ctx: &Ctx) -> Finding {
    let t = ctx.tree;
    let r = refs(&[
        "Documentation/networking/ipvs-sysctl.rst: conn_reuse_mode",
        "net/netfilter/ipvs/ip_vs_core.c: is_new_conn_expected",
        "net/netfilter/ipvs/ip_vs_proto_tcp.c: tcp_states",
    ]);
    let why = "Direct-routing and tunnel connections never reach TIME_WAIT in IPVS (the director \
        does not see the replies, so they end in FIN_WAIT), and conn_reuse_mode=1 only \
        reschedules TIME_WAIT/CLOSE entries: a reused client port goes back to its previous \
        server. Bit 2 (conn_reuse_mode=2) also reschedules FIN_WAIT entries of DR/TUN \
        connections. With expire_nodest_conn=1 on 5.16+, weight-0 servers are still handled.";
    let mut dr = Vec::new();
    if let Input::Present(tab) = &t.ip_vs {
        for svc in tab
            .services
            .iter()
            .filter(|s| s.protocol == "TCP" || s.protocol == "FWM")
        {
            for d in svc
                .dests
                .iter()
                .filter(|d| d.forward == "Route" || d.forward == "Tunnel")
            {
                dr.push(format!(
                    "{}: {} -> {} {}",
                    display(tree::IP_VS),
                    service_label(svc),
                    d.endpoint(),
                    d.forward
                ));
            }
        }
    }
    let mut ev = vec![sysctl_ev("conn_reuse_mode", &t.vs.conn_reuse_mode)];
    if dr.is_empty() {
        return finding(
            ids::REUSE_DR_FIN_WAIT,
            Severity::Ok,
            "No TCP direct-routing or tunnel real servers",
            ev,
            why,
            "",
            r,
        );
    }
    let n = dr.len();
    ev.extend(dr.into_iter().take(5));
    match reuse_mode(ctx) {
        Some(m) if m != 0 && m & 2 == 0 => finding(
            ids::REUSE_DR_FIN_WAIT,
            Severity::Info,
            format!(
                "{n} DR/TUN real server(s) with conn_reuse_mode={m}: reused ports of their \
                 connections are not rescheduled"
            ),
            ev,
            why,
            "If clients reuse ports towards these services, consider conn_reuse_mode=2.",
            r,
        ),
        Some(m) if m & 2 != 0 => finding(
            ids::REUSE_DR_FIN_WAIT,
            Severity::Ok,
            format!("conn_reuse_mode={m} also reschedules DR/TUN FIN_WAIT entries"),
            ev,
            why,
            "",
            r,
        ),
        _ => finding(
            ids::REUSE_DR_FIN_WAIT,
            Severity::Ok,
            "DR/TUN real servers present; conn_reuse_mode is 0 or unreadable (see \
             reuse-sticky-terminating)",
            ev,
            why,
            "",
            r,
        ),
    }
}
