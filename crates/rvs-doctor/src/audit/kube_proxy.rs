//! The two checks that need kube-proxy input (`--kube-proxy-config`, `--kube-proxy-flags`).
//!
//! `kube-proxy-sysctls` (worst `warning`, only when IPVS is loaded): compares the node's
//! `conntrack`, `expire_nodest_conn`, `expire_quiescent_template` (kube-proxy sets 1) and
//! `conn_reuse_mode` (kube-proxy sets 0 on 4.1 <= kernel < 5.9, judging by the version string
//! only) with what kube-proxy sets in IPVS mode; `info` when kube-proxy is not in IPVS mode.
//! Why: values that differ mean kube-proxy is not running, not yet started, or something else
//! resets them (kubernetes `pkg/proxy/ipvs/proxier.go`, `NewProxier`; kubernetes#71114, #102122,
//! #71834). Fix: check that
//! kube-proxy runs on this node in IPVS mode and that nothing (sysctl.d, tuning daemons)
//! resets these values after it starts.
//!
//! `kube-proxy-config` (worst `warning`): the mode, the effective scheduler (default `rr`)
//! against the schedulers in `/proc/net/ip_vs`, and the timeouts. Why: kube-proxy applies one
//! scheduler to every service, so others come from something else; `tcpFinTimeout` sets only
//! the IPVS FIN_WAIT timeout, not the 120 s TIME_WAIT, so it does not shorten the port-reuse
//! window of NAT connections; `tcpTimeout` (default 900 s) is how long an idle connection keeps
//! a weight-0 server alive (kubernetes `pkg/proxy/ipvs/proxier.go`; `KubeProxyIPVSConfiguration`;
//! `net/netfilter/ipvs/ip_vs_proto_tcp.c: tcp_timeouts`).
//! It is a `warning` when kube-proxy is configured for IPVS mode but IPVS is not loaded. Fix:
//! the finding gives none itself (its notes explain each value); for IPVS not loaded, see
//! `ipvs-not-loaded` (check kube-proxy's logs, `modprobe ip_vs`).

use super::{Ctx, finding, ids, refs, s, sysctl_ev};
use crate::report::{Finding, Severity};
use crate::tree::{self, Input, display};
use std::collections::BTreeSet;

pub(super) fn kube_proxy_sysctls(ctx: &Ctx, kp: &crate::kube_proxy::KubeProxy) -> Finding {
    let t = ctx.tree;
    let r = refs(&[
        "kubernetes pkg/proxy/ipvs/proxier.go: NewProxier",
        "kubernetes#71114",
        "kubernetes#102122",
        "kubernetes#71834",
    ]);
    let why = "In IPVS mode kube-proxy sets net.ipv4.vs.conntrack=1, expire_nodest_conn=1, \
        expire_quiescent_template=1, and conn_reuse_mode=0 on 4.1 <= kernel < 5.9 (it leaves \
        conn_reuse_mode alone on >= 5.9 and on < 4.1), judging the kernel only by the version \
        string. A node whose values differ has kube-proxy not running, not yet started, or \
        something else resetting them.";
    let mode = kp.mode_name();
    let mut ev: Vec<String> = vec![match &kp.mode {
        Some(m) => format!("{}: {:?}", m.source, m.value),
        None => s("kube-proxy mode: not set (the default on Linux is iptables)"),
    }];
    if mode.as_deref() != Some("ipvs") {
        return finding(
            ids::KUBE_PROXY_SYSCTLS,
            Severity::Info,
            format!(
                "kube-proxy is in {} mode: it does not manage IPVS on this node",
                mode.as_deref().unwrap_or("iptables (default)")
            ),
            ev,
            format!(
                "{why} The IPVS state audited here comes from something else (another proxy, \
                 keepalived, manual ipvsadm), or from an earlier kube-proxy run in IPVS mode."
            ),
            "",
            r,
        );
    }
    let mut mismatches = Vec::new();
    let mut check = |name: &str, v: &Input<i64>, want: i64| {
        ev.push(format!("{} (kube-proxy sets {want})", sysctl_ev(name, v)));
        if let Some(x) = v.value()
            && *x != want
        {
            mismatches.push(format!("{name}={x} (kube-proxy sets {want})"));
        }
    };
    check("conntrack", &t.vs.conntrack, 1);
    check("expire_nodest_conn", &t.vs.expire_nodest_conn, 1);
    check(
        "expire_quiescent_template",
        &t.vs.expire_quiescent_template,
        1,
    );
    match &ctx.kernel {
        Some(k) if k.series() >= (4, 1) && k.series() < (5, 9) => {
            check("conn_reuse_mode", &t.vs.conn_reuse_mode, 0);
        }
        Some(k) => ev.push(format!(
            "{} (kube-proxy leaves it alone on {}.{})",
            sysctl_ev("conn_reuse_mode", &t.vs.conn_reuse_mode),
            k.major,
            k.minor
        )),
        None => ev.push(format!(
            "{} (kube-proxy's choice depends on the kernel version, unknown here)",
            sysctl_ev("conn_reuse_mode", &t.vs.conn_reuse_mode)
        )),
    }
    if mismatches.is_empty() {
        finding(
            ids::KUBE_PROXY_SYSCTLS,
            Severity::Ok,
            "The IPVS sysctls match what kube-proxy sets in IPVS mode",
            ev,
            why,
            "",
            r,
        )
    } else {
        finding(
            ids::KUBE_PROXY_SYSCTLS,
            Severity::Warning,
            format!(
                "The node's IPVS sysctls differ from what kube-proxy (IPVS mode) sets: {}",
                mismatches.join(", ")
            ),
            ev,
            why,
            "Check that kube-proxy runs on this node in IPVS mode and that nothing (sysctl.d, \
             tuning daemons) resets these values after it starts.",
            r,
        )
    }
}

pub(super) fn kube_proxy_config(ctx: &Ctx, kp: &crate::kube_proxy::KubeProxy) -> Finding {
    let t = ctx.tree;
    let mut ev = Vec::new();
    let mut notes = Vec::new();
    let mut sev = Severity::Info;
    let mode = kp.mode_name();
    if let Some(m) = &kp.mode {
        ev.push(format!("{}: {:?}", m.source, m.value));
    }
    let sched = kp
        .scheduler
        .as_ref()
        .map(|s| s.value.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| s("rr"));
    match &kp.scheduler {
        Some(sc) => ev.push(format!(
            "{}: {:?} (effective: {sched})",
            sc.source, sc.value
        )),
        None => ev.push(s("kube-proxy scheduler: not set (effective: rr)")),
    }
    if mode.as_deref() == Some("ipvs")
        && let Input::Present(tab) = &t.ip_vs
    {
        let used: BTreeSet<&str> = tab.services.iter().map(|s| s.scheduler.as_str()).collect();
        if !used.is_empty() {
            ev.push(format!(
                "{}: schedulers in use: {}",
                display(tree::IP_VS),
                used.iter().copied().collect::<Vec<_>>().join(", ")
            ));
            if !used.contains(sched.as_str()) {
                notes.push(format!(
                    "No IPVS service uses kube-proxy's scheduler {sched}: the services on this \
                     node were not created by this kube-proxy configuration."
                ));
            } else if used.len() > 1 {
                notes.push(format!(
                    "kube-proxy applies {sched} to every service; the other schedulers come \
                     from something else."
                ));
            }
        }
    }
    if let Some(x) = &kp.tcp_fin_timeout {
        ev.push(format!("{}: {} s", x.source, x.value));
        if x.value > 0.0 {
            notes.push(s(
                "tcpFinTimeout sets the IPVS FIN_WAIT timeout only: TIME_WAIT stays \
                 120 s, so it does not shorten the port-reuse window of NAT connections (it does \
                 for DR/TUN connections, which end in FIN_WAIT).",
            ));
        }
    }
    if let Some(x) = &kp.tcp_timeout {
        ev.push(format!("{}: {} s", x.source, x.value));
        let v = if x.value > 0.0 { x.value } else { 900.0 };
        notes.push(format!(
            "The IPVS ESTABLISHED timeout is {v:.0} s: an idle connection whose peer vanished \
             keeps a weight-0 server from being deleted that long."
        ));
    }
    if let Some(x) = &kp.udp_timeout {
        ev.push(format!("{}: {} s", x.source, x.value));
    }
    if let Some(x) = &kp.strict_arp {
        ev.push(format!("{}: {}", x.source, x.value));
    }
    if mode.as_deref() == Some("ipvs") && !t.ipvs_present() {
        sev = Severity::Warning;
        notes.push(s(
            "kube-proxy is configured for IPVS mode but IPVS is not loaded on this \
             node.",
        ));
    }
    finding(
        ids::KUBE_PROXY_CONFIG,
        sev,
        format!(
            "kube-proxy: mode {}, scheduler {sched}",
            mode.as_deref().unwrap_or("not set (iptables)")
        ),
        ev,
        if notes.is_empty() {
            s(
                "kube-proxy applies one scheduler to every IPVS service and sets timeouts only \
               when they are > 0.",
            )
        } else {
            notes.join(" ")
        },
        "",
        refs(&[
            "kubernetes pkg/proxy/ipvs/proxier.go",
            "k8s.io/kube-proxy/config/v1alpha1: KubeProxyIPVSConfiguration",
            "net/netfilter/ipvs/ip_vs_proto_tcp.c: tcp_timeouts",
        ]),
    )
}
