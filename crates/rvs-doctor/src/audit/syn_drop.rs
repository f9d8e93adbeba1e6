//! `reuse-syn-drop-stall` (worst `critical`): 1 s connect stalls on client-port reuse.
//!
//! Looks for: `conn_reuse_mode != 0` with `conntrack=1` on a kernel that has f719e3754ee2
//! (4.6-4.8, "drop first packet") but not f0a5e4d7a594 (5.9, stable 5.4.y Aug 2020):
//! critical. Before f719e3754ee2 it is `info`; when the kernel cannot be judged or a sysctl
//! cannot be read it is a `warning`; with the fix, `conn_reuse_mode=0`, no `conn_reuse_mode`,
//! or `conntrack=0` it is `ok`.
//!
//! Why: when `conn_reuse_mode != 0` reschedules a SYN that reuses a client port whose entry is
//! in TIME_WAIT, those kernels drop the SYN if the entry uses conntrack (as kube-proxy sets),
//! so the client retransmits after its 1 s initial RTO: kubernetes#70747 measured a median
//! connect time of 999 ms (see also kubernetes#71114, #93297, #102122;
//! `net/netfilter/ipvs/ip_vs_core.c: ip_vs_conn_uses_old_conntrack`; `docs/kernel-semantics.md`
//! §2.4.4, P1).
//!
//! Fix: a kernel with f0a5e4d7a594 (5.9+, or 5.4.y from Aug 2020). kube-proxy's workaround,
//! `conn_reuse_mode=0` on 4.1 <= kernel < 5.9, trades the stalls for
//! `reuse-sticky-terminating`; `conntrack=1` cannot be turned off on a kube-proxy node.

use super::{Ctx, finding, fix_ev, ids, refs, reuse_mode, s, sysctl_ev};
use crate::kernel::Verdict;
use crate::report::{Finding, Severity};
use crate::tree::Input;

pub(super) fn syn_drop(ctx: &Ctx) -> Finding {
    let vs = &ctx.tree.vs;
    let fix = &ctx.j.conntrack_reuse_fix;
    let introduced = &ctx.j.syn_drop_on_reuse;
    let mut ev = vec![
        sysctl_ev("conn_reuse_mode", &vs.conn_reuse_mode),
        sysctl_ev("conntrack", &vs.conntrack),
        fix_ev("f0a5e4d7a594 (5.9 conntrack reuse fix)", fix),
    ];
    let r = refs(&[
        "kubernetes#70747",
        "kubernetes#71114",
        "kubernetes#93297",
        "kubernetes#102122",
        "f719e3754ee2",
        "f0a5e4d7a594",
        "net/netfilter/ipvs/ip_vs_core.c: ip_vs_in_hook, ip_vs_conn_uses_old_conntrack",
    ]);
    let mechanism = "When conn_reuse_mode!=0 reschedules a SYN that reuses a client port whose \
        entry is in TIME_WAIT, kernels from f719e3754ee2 (4.6-4.8) to f0a5e4d7a594 (5.9) drop \
        that SYN if the entry uses conntrack (conntrack=1, as kube-proxy sets), so the client \
        retransmits after its 1 s initial RTO: kubernetes#70747 measured a median connect time \
        of 999 ms and 3009 ms max under load.";
    let ok = |title: String, ev: Vec<String>| {
        finding(
            ids::SYN_DROP,
            Severity::Ok,
            title,
            ev,
            mechanism,
            "",
            r.clone(),
        )
    };
    if fix.verdict == Verdict::Yes {
        return ok(
            s("This kernel has f0a5e4d7a594: no 1 s SYN drop on port reuse"),
            ev,
        );
    }
    match (reuse_mode(ctx), &vs.conn_reuse_mode) {
        (Some(0), _) => {
            return ok(
                s(
                    "conn_reuse_mode=0: no reschedule, so no SYN drop (the cost is \
                   reuse-sticky-terminating)",
                ),
                ev,
            );
        }
        (None, Input::Missing) if ctx.j.has_conn_reuse_mode.verdict == Verdict::No => {
            return ok(
                s("No conn_reuse_mode on this kernel: no reschedule, so no SYN drop"),
                ev,
            );
        }
        (Some(_), _) => {}
        _ => {
            return finding(
                ids::SYN_DROP,
                Severity::Warning,
                "conn_reuse_mode could not be read: cannot tell whether reused ports stall 1 s",
                ev,
                mechanism,
                "Read it on the node: sysctl net.ipv4.vs.conn_reuse_mode net.ipv4.vs.conntrack.",
                r,
            );
        }
    }
    let mode = reuse_mode(ctx).unwrap_or(1);
    match vs.conntrack.value() {
        Some(0) => ok(
            format!(
                "conn_reuse_mode={mode} with conntrack=0: a rescheduled SYN is not dropped on this \
                 kernel"
            ),
            ev,
        ),
        Some(_) => {
            ev.push(fix_ev(
                "f719e3754ee2 (drop first packet, 4.6-4.8)",
                introduced,
            ));
            match (fix.verdict, introduced.verdict) {
                (Verdict::No, Verdict::Yes) => finding(
                    ids::SYN_DROP,
                    Severity::Critical,
                    format!(
                        "conn_reuse_mode={mode} with conntrack=1 on a kernel without the 5.9 fix: \
                         reused client ports cost a 1 s connect stall"
                    ),
                    ev,
                    format!("{mechanism} For this kernel: {}.", fix.reason),
                    "Upgrade to a kernel with f0a5e4d7a594 (5.9+, or 5.4.y from Aug 2020). \
                     Until then kube-proxy's workaround is conn_reuse_mode=0 (it sets it on \
                     4.1 <= kernel < 5.9), which trades the stalls for reuse-sticky-terminating: \
                     combine it with expire_nodest_conn=1 on a kernel with c95c07836fa4. \
                     conntrack=1 cannot be turned off on a kube-proxy node (iptables MASQUERADE \
                     needs it).",
                    r,
                ),
                (Verdict::No, Verdict::No) => finding(
                    ids::SYN_DROP,
                    Severity::Info,
                    format!(
                        "conn_reuse_mode={mode} with conntrack=1 on a kernel before f719e3754ee2: \
                         no SYN drop expected"
                    ),
                    ev,
                    format!(
                        "{mechanism} This kernel predates the drop: {}.",
                        introduced.reason
                    ),
                    "",
                    r,
                ),
                _ => finding(
                    ids::SYN_DROP,
                    Severity::Warning,
                    format!(
                        "conn_reuse_mode={mode} with conntrack=1: cannot tell whether this kernel \
                         stalls reused client ports for 1 s"
                    ),
                    ev,
                    format!(
                        "{mechanism} The evidence above says why this kernel cannot be judged."
                    ),
                    "Check the kernel changelog for \"ipvs: allow connection reuse for \
                     unconfirmed conntrack\", or measure: connect repeatedly from one client \
                     with a fixed source port (curl --local-port) and look for ~1 s connects.",
                    r,
                ),
            }
        }
        None => finding(
            ids::SYN_DROP,
            Severity::Warning,
            format!(
                "conn_reuse_mode={mode} and conntrack could not be read: cannot tell whether \
                 reused ports stall 1 s"
            ),
            ev,
            format!("{mechanism} For this kernel: {}.", fix.reason),
            "Read it on the node: sysctl net.ipv4.vs.conntrack.",
            r,
        ),
    }
}
