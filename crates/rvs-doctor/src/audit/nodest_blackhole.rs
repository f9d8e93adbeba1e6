//! `nodest-blackhole` (worst `warning`): flows to removed real servers black-holed.
//!
//! Looks for: `expire_nodest_conn=0` (the kernel default): `warning`. With
//! `expire_nodest_conn != 0` it is `ok` on a kernel with 04231e52d355 (5.9) and `info`
//! otherwise (each flow to a deleted server then loses one packet before it is rescheduled).
//!
//! Why: with `expire_nodest_conn=0` packets of connections whose real server was deleted are
//! silently dropped until the entry times out (ESTABLISHED 900 s, TIME_WAIT 120 s, UDP 300 s).
//! kube-proxy deletes UDP/SCTP real servers at once and relies on `expire_nodest_conn=1`
//! (CoreDNS rollouts failed queries for 5 minutes in kubernetes#71514; kubernetes#71834;
//! `Documentation/networking/ipvs-sysctl.rst`: `expire_nodest_conn`; `docs/kernel-semantics.md`
//! §2.5, P4).
//!
//! Fix: `sysctl -w net.ipv4.vs.expire_nodest_conn=1`, persisted in `/etc/sysctl.d/`
//! (kube-proxy in IPVS mode sets it at startup).

use super::{Ctx, finding, fix_ev, ids, refs, sysctl_ev};
use crate::kernel::Verdict;
use crate::report::{Finding, Severity};

pub(super) fn nodest_blackhole(ctx: &Ctx) -> Finding {
    let vs = &ctx.tree.vs;
    let mut ev = vec![sysctl_ev("expire_nodest_conn", &vs.expire_nodest_conn)];
    let r = refs(&[
        "Documentation/networking/ipvs-sysctl.rst: expire_nodest_conn",
        "net/netfilter/ipvs/ip_vs_conn.c: ip_vs_expire_nodest_conn_flush",
        "kubernetes#71514",
        "kubernetes#71834",
        "04231e52d355",
    ]);
    let why = "With expire_nodest_conn=0 (the kernel default) packets of connections whose real \
        server was deleted are silently dropped, and the entry is kept until it times out \
        (ESTABLISHED 900 s, TIME_WAIT 120 s, UDP 300 s): clients hang instead of reaching a \
        live server. kube-proxy deletes UDP/SCTP real servers at once and relies on \
        expire_nodest_conn=1 (CoreDNS rollouts failed queries for 5 minutes in \
        kubernetes#71514). Since 5.9 (04231e52d355) expire_nodest_conn=1 expires all entries \
        of a deleted server at once; before, each flow lost one packet first.";
    match vs.expire_nodest_conn.value() {
        Some(0) => finding(
            ids::NODEST_BLACKHOLE,
            Severity::Warning,
            "expire_nodest_conn=0: flows to removed real servers are black-holed until they time \
             out",
            ev,
            why,
            "sysctl -w net.ipv4.vs.expire_nodest_conn=1 and persist it in /etc/sysctl.d/ \
             (kube-proxy in IPVS mode sets it at startup).",
            r,
        ),
        Some(v) => {
            ev.push(fix_ev(
                "04231e52d355 (5.9 expire_nodest_conn rework)",
                &ctx.j.nodest_flush,
            ));
            if ctx.j.nodest_flush.verdict == Verdict::Yes {
                finding(
                    ids::NODEST_BLACKHOLE,
                    Severity::Ok,
                    format!(
                        "expire_nodest_conn={v}: entries of deleted servers are expired at once"
                    ),
                    ev,
                    why,
                    "",
                    r,
                )
            } else {
                finding(
                    ids::NODEST_BLACKHOLE,
                    Severity::Info,
                    format!(
                        "expire_nodest_conn={v}, but this kernel may lack the 5.9 rework: each \
                         flow to a deleted server loses one packet before it is rescheduled"
                    ),
                    ev,
                    why,
                    "",
                    r,
                )
            }
        }
        None => finding(
            ids::NODEST_BLACKHOLE,
            Severity::Warning,
            "expire_nodest_conn could not be read: cannot tell whether flows to removed servers \
             are black-holed",
            ev,
            why,
            "Read it on the node: sysctl net.ipv4.vs.expire_nodest_conn.",
            r,
        ),
    }
}
