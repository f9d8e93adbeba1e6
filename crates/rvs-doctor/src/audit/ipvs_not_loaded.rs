//! `ipvs-not-loaded` (`info`, or `warning` when kube-proxy is configured for IPVS mode):
//! emitted instead of the IPVS checks when `/proc/net/ip_vs` does not exist.
//!
//! Looks for: the absence of `/proc/net/ip_vs` (and so of `/proc/sys/net/ipv4/vs/`), which
//! the `ip_vs` module creates when it is loaded (`net/netfilter/ipvs/ip_vs_ctl.c:
//! ip_vs_control_net_init`).
//!
//! Why: without IPVS this node forwards no traffic through kernel IPVS and none of the
//! port-reuse hazards apply; but if kube-proxy is configured for IPVS mode, kube-proxy is not
//! running here, has not started, or fell back to another mode.
//!
//! Fix (warning only): check kube-proxy's logs and whether the `ip_vs` modules can be loaded
//! (`modprobe ip_vs`).

use super::{Ctx, finding, ids, refs};
use crate::report::{Finding, Severity};
use crate::tree::{self, display};

pub(super) fn ipvs_not_loaded(ctx: &Ctx) -> Finding {
    let mode = ctx.tree.kube_proxy.as_ref().and_then(|k| k.mode_name());
    let (sev, extra) = if mode.as_deref() == Some("ipvs") {
        (
            Severity::Warning,
            " kube-proxy is configured for IPVS mode, yet IPVS is not loaded here: kube-proxy \
             is not running on this node, has not started, or fell back to another mode.",
        )
    } else {
        (Severity::Info, "")
    };
    finding(
        ids::IPVS_NOT_LOADED,
        sev,
        "IPVS is not loaded: /proc/net/ip_vs does not exist, there is nothing to audit",
        vec![
            format!("{}: missing", display(tree::IP_VS)),
            format!("{}/: missing", display(tree::VS_SYSCTL_DIR)),
        ],
        format!(
            "The ip_vs module creates /proc/net/ip_vs and /proc/sys/net/ipv4/vs/ when it is \
             loaded; neither exists, so this node forwards no traffic through kernel IPVS and \
             none of the port-reuse hazards apply.{extra}"
        ),
        if sev == Severity::Warning {
            "Check kube-proxy's logs and whether the ip_vs modules can be loaded (modprobe ip_vs)."
        } else {
            ""
        },
        refs(&[
            "net/netfilter/ipvs/ip_vs_ctl.c: ip_vs_control_net_init",
            "Documentation/networking/ipvs-sysctl.rst",
        ]),
    )
}
