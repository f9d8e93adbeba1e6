//! `reuse-sticky-terminating` (worst `critical`): reused client ports sent back to
//! terminating or deleted pods.
//!
//! Looks for: `conn_reuse_mode=0` with `expire_nodest_conn=0` (critical); `conn_reuse_mode=0`
//! on a kernel without c95c07836fa4 (5.16; stable 5.4/5.10/5.15 2021-11-29), where the
//! `expire_nodest_conn=1` weight-0 reschedule sits under the same `conn_reuse_mode != 0` guard
//! (critical; "cannot tell" is a warning); a kernel without `conn_reuse_mode` at all (before
//! 4.1, d752c3645717), which behaves like mode 0 (critical). `conn_reuse_mode=0` with
//! `expire_nodest_conn=1` on a kernel with c95c07836fa4 is `info`; any other mode is `ok`.
//!
//! Why: with `conn_reuse_mode=0` a SYN whose client address and port still have an IPVS entry
//! (TIME_WAIT lasts 120 s) goes to that entry's real server even at weight 0 or deleted, and
//! refreshes the entry, so the server never drains: kubernetes#81775 and #99162 ("No route to
//! host" and timeouts during rolling updates); on 6.1, 461 of 554 connections were refused
//! with the server killed (`docs/kernel-6.1-incident.md`;
//! `Documentation/networking/ipvs-sysctl.rst`: `conn_reuse_mode`; `docs/kernel-semantics.md`
//! §2.4.3, P2/P3).
//!
//! Fix: `sysctl -w net.ipv4.vs.expire_nodest_conn=1` (persisted in `/etc/sysctl.d/`), or a
//! kernel with c95c07836fa4; `conn_reuse_mode=1` only on a kernel with f0a5e4d7a594 (5.9),
//! since with `conntrack=1` it otherwise brings back the 1 s SYN stalls
//! (`reuse-syn-drop-stall`).

use super::{Ctx, finding, fix_ev, ids, refs, reuse_mode, sysctl_ev};
use crate::kernel::Verdict;
use crate::report::{Finding, Severity};
use crate::tree::Input;

pub(super) fn reuse_sticky(ctx: &Ctx) -> Finding {
    let vs = &ctx.tree.vs;
    let mut ev = vec![
        sysctl_ev("conn_reuse_mode", &vs.conn_reuse_mode),
        sysctl_ev("expire_nodest_conn", &vs.expire_nodest_conn),
    ];
    let w0 = &ctx.j.weight0_fix;
    let ctfix = ctx.j.conntrack_reuse_fix.verdict;
    let r = refs(&[
        "kubernetes#81775",
        "kubernetes#99162",
        "c95c07836fa4",
        "d752c3645717",
        "Documentation/networking/ipvs-sysctl.rst: conn_reuse_mode",
        "net/netfilter/ipvs/ip_vs_core.c: ip_vs_in_hook",
        "docs/kernel-6.1-incident.md (rvs repository)",
    ]);
    let mechanism = "With conn_reuse_mode=0 a SYN whose client address and port still have an \
        IPVS entry (TIME_WAIT lasts 120 s) is sent to that entry's real server, even when its \
        weight is 0 (terminating pod) or it was deleted, and each such SYN refreshes the entry, \
        so the server never drains: kubernetes#81775 and #99162 (\"No route to host\" and \
        timeouts during rolling updates). On 6.1 with the server killed, 461 of 554 \
        connections were refused (rvs's measurement: docs/kernel-6.1-incident.md).";
    let mode1_advice = match ctfix {
        Verdict::Yes => {
            " This kernel has f0a5e4d7a594, so conn_reuse_mode=1 (the kernel default) is safe \
             and also restores balancing of reused ports: sysctl -w net.ipv4.vs.conn_reuse_mode=1."
        }
        _ => {
            " Do not switch to conn_reuse_mode=1 unless the kernel has f0a5e4d7a594 (5.9): with \
             conntrack=1 that brings back the 1 s SYN stalls (see reuse-syn-drop-stall)."
        }
    };
    match (reuse_mode(ctx), &vs.conn_reuse_mode) {
        (Some(0), _) => {
            ev.push(fix_ev("c95c07836fa4 (5.16 weight-0 fix)", w0));
            match vs.expire_nodest_conn.value() {
                Some(0) => finding(
                    ids::REUSE_STICKY,
                    Severity::Critical,
                    "conn_reuse_mode=0 with expire_nodest_conn=0: reused client ports stick to \
                     terminating and deleted pods",
                    ev,
                    format!(
                        "{mechanism} expire_nodest_conn=0 also leaves entries to deleted \
                         servers in place, silently dropping their packets. With \
                         expire_nodest_conn=1, a kernel carrying c95c07836fa4 reschedules a \
                         SYN that hits a weight-0 server whatever conn_reuse_mode is; for this \
                         kernel: {}.",
                        w0.reason
                    ),
                    format!(
                        "sysctl -w net.ipv4.vs.expire_nodest_conn=1 (kube-proxy sets it; persist \
                         it in /etc/sysctl.d/).{mode1_advice}"
                    ),
                    r,
                ),
                Some(_) => match w0.verdict {
                    Verdict::Yes => finding(
                        ids::REUSE_STICKY,
                        Severity::Info,
                        "conn_reuse_mode=0 is covered by expire_nodest_conn=1 on this kernel \
                         (c95c07836fa4): weight-0 servers are not sent reused ports",
                        ev,
                        format!(
                            "{mechanism} This kernel carries c95c07836fa4, so with \
                             expire_nodest_conn=1 a SYN that hits an entry of a weight-0 or \
                             deleted server is rescheduled (all expire_nodest_conn=1 rows were \
                             clean in the 6.1 measurement). Mode 0 still pins every reused port \
                             to its previous live server, so clients that reuse ports are not \
                             rebalanced."
                        ),
                        format!("Nothing urgent.{mode1_advice}"),
                        r,
                    ),
                    Verdict::No => finding(
                        ids::REUSE_STICKY,
                        Severity::Critical,
                        "conn_reuse_mode=0 disables the weight-0 reschedule on this kernel: \
                         reused client ports stick to terminating pods",
                        ev,
                        format!(
                            "{mechanism} Before c95c07836fa4 (5.16; stable 5.4/5.10/5.15 \
                             2021-11-29) the expire_nodest_conn=1 + weight-0 reschedule lived \
                             under the same conn_reuse_mode != 0 guard, so mode 0 switches it \
                             off; this kernel: {}. This is the exact configuration of \
                             kubernetes#81775 (kube-proxy sets mode 0 on 4.1 <= kernel < 5.9).",
                            w0.reason
                        ),
                        format!(
                            "Upgrade to a kernel with c95c07836fa4 (5.16+, or 5.4/5.10/5.15 \
                             stable from Dec 2021), or to 5.9+ and set conn_reuse_mode=1.{mode1_advice}"
                        ),
                        r,
                    ),
                    Verdict::Unknown => finding(
                        ids::REUSE_STICKY,
                        Severity::Warning,
                        "conn_reuse_mode=0: cannot tell whether this kernel still sends reused \
                         client ports to terminating pods",
                        ev,
                        format!(
                            "{mechanism} With expire_nodest_conn=1 that is avoided only on \
                             kernels carrying c95c07836fa4 (5.16; stable 5.4/5.10/5.15 \
                             2021-11-29); the evidence above says why this kernel cannot be \
                             judged."
                        ),
                        format!(
                            "Check the kernel changelog for \"ipvs: Fix reuse connection if RS \
                             weight is 0\" (e.g. zgrep -i 'reuse connection' \
                             /usr/share/doc/linux-image-$(uname -r)/changelog*.gz), or test it: \
                             set a real server to weight 0 and watch whether its InActConn \
                             stays up under a port-reusing client.{mode1_advice}"
                        ),
                        r,
                    ),
                },
                None => finding(
                    ids::REUSE_STICKY,
                    Severity::Warning,
                    "conn_reuse_mode=0 and expire_nodest_conn could not be read: reused ports \
                     may stick to terminating pods",
                    ev,
                    mechanism,
                    format!("sysctl -w net.ipv4.vs.expire_nodest_conn=1.{mode1_advice}"),
                    r,
                ),
            }
        }
        (Some(m), _) => finding(
            ids::REUSE_STICKY,
            Severity::Ok,
            format!(
                "conn_reuse_mode={m}: a reused client port whose entry is in TIME_WAIT/CLOSE is \
                 rescheduled"
            ),
            ev,
            "Only conn_reuse_mode=0 sends reused ports back to the old server regardless of its \
             weight (kubernetes#81775).",
            "",
            r,
        ),
        (None, Input::Missing) if ctx.j.has_conn_reuse_mode.verdict == Verdict::No => {
            ev.push(fix_ev("conn_reuse_mode", &ctx.j.has_conn_reuse_mode));
            finding(
                ids::REUSE_STICKY,
                Severity::Critical,
                "This kernel has no conn_reuse_mode: every reused client port goes back to its \
                 old server, terminating or not",
                ev,
                "Before 4.1 (d752c3645717) a SYN matching an existing entry is always handled on \
                 that entry, i.e. sent to the same real server whatever its weight, exactly like \
                 conn_reuse_mode=0 (kubernetes#81775), and the expire_nodest_conn weight-0 \
                 reschedule (dc7b3eb900aa, ~4.2) does not exist either.",
                "Upgrade the kernel (5.9+ for conn_reuse_mode=1 without SYN stalls); meanwhile \
                 set expire_nodest_conn=1 so that entries of deleted servers are at least \
                 expired.",
                r,
            )
        }
        _ => finding(
            ids::REUSE_STICKY,
            Severity::Warning,
            "conn_reuse_mode could not be read: cannot tell whether reused ports stick to \
             terminating pods",
            ev,
            mechanism,
            "Read it on the node: sysctl net.ipv4.vs.conn_reuse_mode.",
            r,
        ),
    }
}
