//! `kernel-version` (always `info`): which kernel this is and whether it carries the fixes
//! the version-dependent checks hinge on.
//!
//! Looks for: the release in `/proc/sys/kernel/osrelease`, plus `/proc/version` and
//! `/proc/version_signature` when present, and reports yes / no / "cannot tell" for
//! f0a5e4d7a594 (5.9, stable 5.4.y/5.7.y Aug 2020: no more 1 s SYN drop with
//! `conn_reuse_mode=1` + `conntrack=1`), c95c07836fa4 (5.16, stable 5.4/5.10/5.15 2021-11-29:
//! `expire_nodest_conn=1` reschedules SYNs that hit a weight-0 server even with
//! `conn_reuse_mode=0`) and 04231e52d355 (5.9 `expire_nodest_conn` rework).
//!
//! Why: these decide how IPVS treats a new connection that reuses a client port still in its
//! table (`net/netfilter/ipvs/ip_vs_core.c: ip_vs_in_hook`; history in `docs/kernel-semantics.md`
//! §2.4.4). The judgement uses the mainline release, the build date and
//! the upstream stable patch level; vendor kernels (RHEL and others) carry backports the
//! version string cannot show.
//!
//! Fix: none; this finding is the evidence behind the other findings.

use super::{Ctx, finding, fix_ev, ids, input_ev, refs, s};
use crate::kernel::{FixStatus, Verdict};
use crate::report::{Finding, Severity};
use crate::tree::{self, Input, display};

pub(super) fn kernel_finding(ctx: &Ctx) -> Finding {
    let t = ctx.tree;
    let mut ev = vec![input_ev(&display(tree::OSRELEASE), &t.osrelease)];
    if let Input::Present(v) = &t.proc_version {
        ev.push(format!("{}: {v}", display(tree::PROC_VERSION)));
    }
    if let Input::Present(v) = &t.version_signature {
        ev.push(format!("{}: {v}", display(tree::VERSION_SIGNATURE)));
    }
    ev.push(fix_ev(
        "the 5.9 conntrack reuse fix",
        &ctx.j.conntrack_reuse_fix,
    ));
    ev.push(fix_ev("the 5.16 weight-0 fix", &ctx.j.weight0_fix));
    ev.push(fix_ev(
        "the 5.9 expire_nodest_conn rework",
        &ctx.j.nodest_flush,
    ));
    let title = match &ctx.kernel {
        Some(k) => {
            let v = |f: &FixStatus| match f.verdict {
                Verdict::Yes => "yes",
                Verdict::No => "no",
                Verdict::Unknown => "cannot tell",
            };
            format!(
                "Kernel {}: 5.9 conntrack-reuse fix: {}; 5.16 weight-0 fix: {}",
                k.release,
                v(&ctx.j.conntrack_reuse_fix),
                v(&ctx.j.weight0_fix)
            )
        }
        None => s("Kernel version unknown: the version-dependent checks say \"cannot tell\""),
    };
    finding(
        ids::KERNEL_VERSION,
        Severity::Info,
        title,
        ev,
        "Two kernel changes decide how IPVS treats a new connection that reuses a client port \
         still in its table: f0a5e4d7a594 (5.9, stable 5.4.y/5.7.y Aug 2020) ended the 1 s SYN \
         drop of conn_reuse_mode=1 with conntrack=1, and c95c07836fa4 (5.16, stable \
         5.4/5.10/5.15 2021-11-29) made expire_nodest_conn=1 reschedule SYNs that hit a weight-0 \
         server even with conn_reuse_mode=0. Versions are judged from the mainline release, the \
         build date and the upstream stable patch level where /proc/version or \
         /proc/version_signature give it; vendor kernels (RHEL and others) carry backports \
         that the version string cannot show.",
        "",
        refs(&[
            "net/netfilter/ipvs/ip_vs_core.c: ip_vs_in_hook",
            "f0a5e4d7a594",
            "c95c07836fa4",
            "04231e52d355",
        ]),
    )
}
