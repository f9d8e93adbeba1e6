//! The checks. Each check always yields its finding (with severity `ok` when the hazard is
//! absent), so a finding id is a stable key for scripts.

use crate::kernel::{FixStatus, KernelInfo, KernelJudgement, Verdict};
use crate::procfs::{ConnEntry, Dest, Service, VAddr};
use crate::report::{Finding, KernelSection, Report, Severity};
use crate::tree::{self, Input, Tree, display};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// IPVS TCP TIME_WAIT timeout: fixed at 120 s; `ipvsadm --set` changes only ESTABLISHED,
/// FIN_WAIT and UDP (`ipvs-spec.md` §3.1.1).
pub const IPVS_TIME_WAIT_S: f64 = 120.0;
/// Linux's own TCP TIME_WAIT (TCP_TIMEWAIT_LEN), 60 s.
pub const CLIENT_TIME_WAIT_S: f64 = 60.0;
/// The kernel's default `ip_local_port_range` (used when the file is missing).
pub const DEFAULT_PORT_RANGE: (u32, u32) = (32768, 60999);
/// HZ assumed to convert the jiffies of `persistent <timeout>` when `CONFIG_HZ` is not found
/// (Debian's and Ubuntu's amd64 kernels use 250; the 6.1 golden capture shows 75000 for 300 s).
pub const ASSUMED_HZ: u32 = 250;

/// Finding ids, stable across releases.
pub mod ids {
    /// The kernel and which relevant fixes it carries.
    pub const KERNEL_VERSION: &str = "kernel-version";
    /// `/proc/net/ip_vs` is absent.
    pub const IPVS_NOT_LOADED: &str = "ipvs-not-loaded";
    /// `conn_reuse_mode=0` (with `expire_nodest_conn=0` or without c95c07836fa4).
    pub const REUSE_STICKY: &str = "reuse-sticky-terminating";
    /// `conn_reuse_mode≠0` + `conntrack=1` without f0a5e4d7a594.
    pub const SYN_DROP: &str = "reuse-syn-drop-stall";
    /// `expire_nodest_conn=0`.
    pub const NODEST_BLACKHOLE: &str = "nodest-blackhole";
    /// Persistent services with `expire_quiescent_template=0`.
    pub const PERSISTENCE_QUIESCENT: &str = "persistence-quiescent-template";
    /// The port-reuse arithmetic.
    pub const PORT_REUSE_RATE: &str = "port-reuse-rate";
    /// Weight-0 real servers kept alive by their connection counts.
    pub const WEIGHT0_KEPT_ALIVE: &str = "weight0-kept-alive";
    /// DR/TUN real servers with `conn_reuse_mode` bit 2 clear.
    pub const REUSE_DR_FIN_WAIT: &str = "reuse-dr-fin-wait";
    /// kube-proxy's expected sysctls vs the node.
    pub const KUBE_PROXY_SYSCTLS: &str = "kube-proxy-sysctls";
    /// kube-proxy's mode, scheduler and timeouts.
    pub const KUBE_PROXY_CONFIG: &str = "kube-proxy-config";
}

struct Ctx<'a> {
    tree: &'a Tree,
    kernel: Option<KernelInfo>,
    j: KernelJudgement,
}

fn s(x: &str) -> String {
    x.to_string()
}

fn sysctl_path(name: &str) -> String {
    display(&format!("{}/{name}", tree::VS_SYSCTL_DIR))
}

fn input_ev<T: std::fmt::Display>(path: &str, v: &Input<T>) -> String {
    match v {
        Input::Present(x) => format!("{path}: {x}"),
        Input::Missing => format!("{path}: missing"),
        Input::Error(e) => format!("unreadable: {e}"),
    }
}

fn sysctl_ev(name: &str, v: &Input<i64>) -> String {
    input_ev(&sysctl_path(name), v)
}

fn fix_ev(label: &str, f: &FixStatus) -> String {
    let v = match f.verdict {
        Verdict::Yes => "yes",
        Verdict::No => "no",
        Verdict::Unknown => "cannot tell",
    };
    format!("kernel carries {label}: {v} ({})", f.reason)
}

fn refs(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

fn finding(
    id: &'static str,
    severity: Severity,
    title: impl Into<String>,
    evidence: Vec<String>,
    why: impl Into<String>,
    fix: impl Into<String>,
    references: Vec<String>,
) -> Finding {
    Finding {
        id,
        severity,
        title: title.into(),
        evidence,
        why: why.into(),
        fix: fix.into(),
        references,
    }
}

/// Audits a tree. Pure: reads nothing but `tree`.
pub fn audit(tree: &Tree) -> Report {
    let kernel = tree.osrelease.value().and_then(|r| {
        KernelInfo::parse(
            r,
            tree.proc_version.value().map(String::as_str),
            tree.version_signature.value().map(String::as_str),
        )
    });
    let j = match (&kernel, &tree.osrelease) {
        (Some(k), _) => KernelJudgement::for_kernel(k),
        (None, Input::Present(r)) => {
            KernelJudgement::unknown(&format!("release {r:?} does not start with MAJOR.MINOR"))
        }
        (None, Input::Missing) => KernelJudgement::unknown("/proc/sys/kernel/osrelease is missing"),
        (None, Input::Error(e)) => KernelJudgement::unknown(e),
    };
    let ctx = Ctx { tree, kernel, j };

    let mut findings = vec![kernel_finding(&ctx)];
    if !tree.ipvs_present() {
        findings.push(ipvs_not_loaded(&ctx));
    } else {
        let sticky = reuse_sticky(&ctx);
        let drop = syn_drop(&ctx);
        let unsafe_reuse = sticky.severity.max(drop.severity);
        findings.push(weight0_kept_alive(&ctx, sticky.severity));
        findings.push(port_reuse_rate(&ctx, unsafe_reuse));
        findings.push(sticky);
        findings.push(drop);
        findings.push(nodest_blackhole(&ctx));
        findings.push(persistence_quiescent(&ctx));
        findings.push(reuse_dr_fin_wait(&ctx));
    }
    if let Some(kp) = &tree.kube_proxy {
        if tree.ipvs_present() {
            findings.push(kube_proxy_sysctls(&ctx, kp));
        }
        findings.push(kube_proxy_config(&ctx, kp));
    }
    Report::new(
        tree.root.display().to_string(),
        KernelSection {
            info: ctx.kernel.clone(),
            judgement: ctx.j.clone(),
        },
        findings,
        tree.input_errors.clone(),
    )
}

fn kernel_finding(ctx: &Ctx) -> Finding {
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
            "ipvs-spec.md §2.4.4",
            "f0a5e4d7a594",
            "c95c07836fa4",
            "04231e52d355",
        ]),
    )
}

fn ipvs_not_loaded(ctx: &Ctx) -> Finding {
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
        refs(&["ipvs-spec.md §8.9"]),
    )
}

fn reuse_mode(ctx: &Ctx) -> Option<i64> {
    ctx.tree.vs.conn_reuse_mode.value().copied()
}

fn reuse_sticky(ctx: &Ctx) -> Finding {
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
        "ipvs-spec.md §2.4.3, §9.1 P2/P3",
        "kernel-6.1-incident.md",
    ]);
    let mechanism = "With conn_reuse_mode=0 a SYN whose client address and port still have an \
        IPVS entry (TIME_WAIT lasts 120 s) is sent to that entry's real server, even when its \
        weight is 0 (terminating pod) or it was deleted, and each such SYN refreshes the entry, \
        so the server never drains: kubernetes#81775 and #99162 (\"No route to host\" and \
        timeouts during rolling updates). On 6.1 with the server killed, 461 of 554 \
        connections were refused (kernel-6.1-incident.md).";
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

fn syn_drop(ctx: &Ctx) -> Finding {
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
        "ipvs-spec.md §2.4.4, §9.1 P1",
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

fn nodest_blackhole(ctx: &Ctx) -> Finding {
    let vs = &ctx.tree.vs;
    let mut ev = vec![sysctl_ev("expire_nodest_conn", &vs.expire_nodest_conn)];
    let r = refs(&[
        "ipvs-spec.md §2.5, §9.1 P4",
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

/// `persistent 75000` → "75000 jiffies = 300 s at HZ=250 (…)".
fn persistence_text(ctx: &Ctx, jiffies: u64) -> String {
    let (hz, how) = match &ctx.tree.config_hz {
        Some((hz, src)) => (*hz, format!("CONFIG_HZ={hz} from {src}")),
        None => (
            ASSUMED_HZ,
            format!("HZ={ASSUMED_HZ} (assumed: no /boot/config-<release> with CONFIG_HZ)"),
        ),
    };
    let secs = jiffies as f64 / f64::from(hz.max(1));
    format!("{jiffies} jiffies = {secs:.0} s at {how}")
}

fn service_label(svc: &Service) -> String {
    format!("{} {} {}", svc.protocol, svc.vaddr, svc.scheduler)
}

fn dest_is_zero(d: &Dest) -> bool {
    d.weight <= 0
}

/// Connection entries that belong to `svc` and `d`.
fn entries_for<'a>(
    conns: &'a [ConnEntry],
    svc: &Service,
    d: &Dest,
) -> impl Iterator<Item = &'a ConnEntry> {
    let vaddr = svc.vaddr;
    let proto = svc.protocol.clone();
    let (daddr, dport) = (d.addr, d.port);
    conns.iter().filter(move |c| {
        if c.daddr != daddr || c.dport != dport {
            return false;
        }
        match vaddr {
            VAddr::Addr(a, p) => c.protocol == proto && c.vaddr == a && c.vport == p,
            // fwmark services: entries carry the packet's VIP, not the mark; match on the dest.
            VAddr::Fwmark(_) => true,
        }
    })
}

fn persistence_quiescent(ctx: &Ctx) -> Finding {
    let t = ctx.tree;
    let eqt = &t.vs.expire_quiescent_template;
    let mut ev = vec![sysctl_ev("expire_quiescent_template", eqt)];
    let r = refs(&[
        "kubernetes#71809",
        "kubernetes#71834",
        "ipvs-spec.md §5.3, §5.6, §9.1 P8",
        "k8s-rollouts.md §1.8",
    ]);
    let why = "Persistence templates stay valid for a weight-0 real server unless \
        expire_quiescent_template=1, and each new connection through a template refreshes it, so \
        a client with session affinity keeps being sent to a draining pod for up to the \
        persistence timeout (Kubernetes sessionAffinity ClientIP defaults to 10800 s) and the \
        server never drains; after the pod is gone its connections fail. kubernetes#71809 (\"all \
        communications to the service stopped working\") was fixed in kube-proxy by setting it \
        to 1 (PR #71834). conn_reuse_mode never reschedules connections controlled by a template.";
    let persistent: Vec<&Service> = match &t.ip_vs {
        Input::Present(tab) => tab
            .services
            .iter()
            .filter(|s| s.persistent.is_some())
            .collect(),
        _ => Vec::new(),
    };
    for svc in &persistent {
        if let Some(p) = svc.persistent {
            ev.push(format!(
                "{}: {} persistent {} {:08X}: {}",
                display(tree::IP_VS),
                service_label(svc),
                p.timeout_jiffies,
                p.netmask,
                persistence_text(ctx, p.timeout_jiffies)
            ));
        }
    }
    // weight-0 servers of persistent services that still hold connections or templates
    let conns: &[ConnEntry] = t.ip_vs_conn.value().map(Vec::as_slice).unwrap_or(&[]);
    let mut stuck = Vec::new();
    for svc in &persistent {
        for d in svc.dests.iter().filter(|d| dest_is_zero(d)) {
            let templates = entries_for(conns, svc, d)
                .filter(|c| c.is_template())
                .count();
            if d.active + d.inactive > 0 || templates > 0 {
                stuck.push(format!(
                    "{}: {} -> {} weight {}, ActiveConn {}, InActConn {}; {}: {templates} \
                     persistence template(s) point at it",
                    display(tree::IP_VS),
                    service_label(svc),
                    d.endpoint(),
                    d.weight,
                    d.active,
                    d.inactive,
                    display(tree::IP_VS_CONN)
                ));
            }
        }
    }
    let fix = "sysctl -w net.ipv4.vs.expire_quiescent_template=1 and persist it in \
               /etc/sysctl.d/ (kube-proxy in IPVS mode sets it).";
    match eqt.value() {
        Some(v) if *v != 0 => finding(
            ids::PERSISTENCE_QUIESCENT,
            Severity::Ok,
            format!("expire_quiescent_template={v}: templates of weight-0 servers are invalidated"),
            ev,
            why,
            "",
            r,
        ),
        Some(_) => {
            if t.ip_vs.value().is_none() {
                ev.push(input_ev(&display(tree::IP_VS), &t.ip_vs.as_ref_display()));
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Info,
                    "expire_quiescent_template=0; the services could not be read to see whether \
                     any is persistent",
                    ev,
                    why,
                    fix,
                    r,
                )
            } else if persistent.is_empty() {
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Ok,
                    "expire_quiescent_template=0, but no service is persistent",
                    ev,
                    why,
                    "Harmless today; set it to 1 before adding persistent services (session \
                     affinity).",
                    r,
                )
            } else if !stuck.is_empty() {
                ev.extend(stuck);
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Critical,
                    "Persistent services with expire_quiescent_template=0 and a weight-0 real \
                     server still in use: clients with affinity keep going to the draining pod",
                    ev,
                    why,
                    fix,
                    r,
                )
            } else {
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Warning,
                    format!(
                        "{} persistent service(s) with expire_quiescent_template=0: clients with \
                         affinity will follow a draining pod",
                        persistent.len()
                    ),
                    ev,
                    why,
                    fix,
                    r,
                )
            }
        }
        None => finding(
            ids::PERSISTENCE_QUIESCENT,
            if persistent.is_empty() {
                Severity::Info
            } else {
                Severity::Warning
            },
            "expire_quiescent_template could not be read: cannot tell whether affinity clients \
             follow draining pods",
            ev,
            why,
            "Read it on the node: sysctl net.ipv4.vs.expire_quiescent_template.",
            r,
        ),
    }
}

trait DisplayInput {
    fn as_ref_display(&self) -> Input<String>;
}

impl<T> DisplayInput for Input<T> {
    fn as_ref_display(&self) -> Input<String> {
        match self {
            Input::Present(_) => Input::Present(s("present")),
            Input::Missing => Input::Missing,
            Input::Error(e) => Input::Error(e.clone()),
        }
    }
}

/// A rate for humans: no false "0 conn/s" for small ranges.
fn rate(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else if x >= 0.01 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn port_reuse_rate(ctx: &Ctx, reuse_handling: Severity) -> Finding {
    let t = ctx.tree;
    let mut ev = Vec::new();
    let (low, high, assumed) = match &t.port_range {
        Input::Present(r) => (r.low, r.high, false),
        _ => (DEFAULT_PORT_RANGE.0, DEFAULT_PORT_RANGE.1, true),
    };
    if assumed {
        ev.push(format!(
            "{} (kernel default {low}-{high} assumed)",
            input_ev(&display(tree::PORT_RANGE), &t.port_range.as_ref_display())
        ));
    } else {
        ev.push(format!(
            "{}: {low} {high} ({} ports)",
            display(tree::PORT_RANGE),
            high - low + 1
        ));
    }
    let mut ports = high - low + 1;
    if let Input::Present(res) = &t.reserved_ports {
        let reserved: u32 = res
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (a.max(low), b.min(high));
                if a <= b { b - a + 1 } else { 0 }
            })
            .sum();
        if reserved > 0 {
            ports = ports.saturating_sub(reserved).max(1);
            ev.push(format!(
                "{}: {reserved} reserved port(s) inside the range",
                display(tree::RESERVED_PORTS)
            ));
        }
    }
    let tw = t.tcp_tw_reuse.value().copied();
    ev.push(input_ev(&display(tree::TCP_TW_REUSE), &t.tcp_tw_reuse));
    let p = f64::from(ports);
    let threshold = p / IPVS_TIME_WAIT_S;
    let parity = p / (2.0 * IPVS_TIME_WAIT_S);
    let client_cap = p / CLIENT_TIME_WAIT_S;
    let (th_s, par_s, cap_s) = (rate(threshold), rate(parity), rate(client_cap));

    // Observed: closing TCP entries per (client, VIP:port), over their 120 s lifetime.
    let mut observed: Option<(f64, String)> = None;
    match &t.ip_vs_conn {
        Input::Present(conns) => {
            let mut per: BTreeMap<(IpAddr, IpAddr, u16), usize> = BTreeMap::new();
            for c in conns.iter().filter(|c| c.is_tcp_closing()) {
                *per.entry((c.caddr, c.vaddr, c.vport)).or_default() += 1;
            }
            let mut top: Vec<_> = per.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            if top.is_empty() {
                ev.push(format!(
                    "{}: no TCP entries in TIME_WAIT/FIN_WAIT/CLOSE: no observed connection \
                     churn",
                    display(tree::IP_VS_CONN)
                ));
            }
            for ((ca, va, vp), n) in top.iter().take(3) {
                let r = *n as f64 / IPVS_TIME_WAIT_S;
                let pct = 100.0 * r / threshold;
                let pct = if pct < 1.0 {
                    s("<1%")
                } else {
                    format!("{pct:.0}%")
                };
                ev.push(format!(
                    "{}: client {ca} -> {}: {n} closing entries ~ {} conn/s ({pct} of the \
                     reuse threshold)",
                    display(tree::IP_VS_CONN),
                    VAddr::Addr(*va, *vp),
                    rate(r),
                ));
            }
            if let Some(((ca, va, vp), n)) = top.first() {
                observed = Some((
                    *n as f64 / IPVS_TIME_WAIT_S,
                    format!("{ca} -> {}", VAddr::Addr(*va, *vp)),
                ));
            }
        }
        other => ev.push(input_ev(
            &display(tree::IP_VS_CONN),
            &other.as_ref_display(),
        )),
    }

    let tw_text = match tw {
        Some(1) => format!(
            "tcp_tw_reuse=1 lets a client reuse its own TIME_WAIT ports after about 1 s, so a \
             client on this node can go far past that rate (up to ~{} conn/s) and collide \
             with IPVS entries.",
            rate(p)
        ),
        Some(2) => format!(
            "tcp_tw_reuse=2 allows early reuse for loopback only; a client on this node is \
             otherwise held by its own 60 s TIME_WAIT to about {cap_s} conn/s per VIP:port, \
             which is still above {th_s}: between the two rates the client reuses ports \
             that IPVS still holds."
        ),
        _ => format!(
            "Without tcp_tw_reuse a client is held by its own 60 s TIME_WAIT to about \
             {cap_s} conn/s per VIP:port (P/60 s), which is still above {th_s} \
             (P/120 s): between the two rates the client reuses ports that IPVS still holds."
        ),
    };
    let why = format!(
        "IPVS keeps a closed NAT connection in TIME_WAIT for a fixed 120 s (ipvsadm --set and \
         kube-proxy's tcpFinTimeout change FIN_WAIT, not TIME_WAIT). A client that opens more \
         than P / 120 s connections per second to one VIP:port, with P = {ports} usable source \
         ports, must pick a port whose previous entry is still in the table: from about \
         {th_s} conn/s every new connection is a port reuse, handled per conn_reuse_mode \
         (reuse-sticky-terminating, reuse-syn-drop-stall). Clients that prefer one port parity in \
         connect() (e.g. Linux 6.1, kernel-6.1-incident.md) can start reusing at about half that, \
         {par_s} conn/s. {tw_text} The range and tcp_tw_reuse read here are this node's: \
         pods have their own network namespace and sysctls, remote clients their own range, and \
         clients behind one SNAT address count as one client. The observed rate is estimated \
         from closing entries, which live about 120 s."
    );
    let (sev, title) = match &observed {
        Some((r, who)) if *r >= parity => (
            if reuse_handling >= Severity::Warning {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!(
                "Client port reuse is likely now: {who} runs at ~{} conn/s, the threshold \
                 is ~{th_s} conn/s ({ports} ports / 120 s)",
                rate(*r)
            ),
        ),
        Some((r, who)) => (
            Severity::Info,
            format!(
                "Port reuse begins at ~{th_s} conn/s per client and VIP:port ({ports} \
                 ports / 120 s); busiest observed: {who} at ~{} conn/s",
                rate(*r)
            ),
        ),
        None => (
            Severity::Info,
            format!(
                "Port reuse begins at ~{th_s} conn/s per client and VIP:port ({ports} \
                 ports / 120 s)"
            ),
        ),
    };
    finding(
        ids::PORT_REUSE_RATE,
        sev,
        title,
        ev,
        why,
        if sev == Severity::Warning {
            "Make port reuse harmless before the next rollout (see the reuse findings above), \
             and reduce churn: keep-alive or connection pooling in the client, or a wider \
             ip_local_port_range on the clients."
        } else {
            ""
        },
        refs(&[
            "ipvs-spec.md §2.4, §3.1.1",
            "k8s-rollouts.md §5.1",
            "kubernetes#81775",
        ]),
    )
}

fn weight0_kept_alive(ctx: &Ctx, sticky: Severity) -> Finding {
    let t = ctx.tree;
    let r = refs(&[
        "kubernetes#81775",
        "kubernetes#99162",
        "k8s-rollouts.md §3.1",
        "kernel-6.1-incident.md",
    ]);
    let why_base = "kube-proxy's graceful termination sets a removed endpoint's real server to \
        weight 0 and deletes it only once ActiveConn + InActConn reach 0 (re-checked every 60 s, \
        no deadline). Without port reuse that takes about 2 minutes for closed connections \
        (TIME_WAIT 120 s) and up to the ESTABLISHED timeout (900 s) for idle open ones. With \
        conn_reuse_mode=0 and no effective weight-0 reschedule, every SYN that reuses a client \
        port of an old entry goes to the weight-0 server and refreshes the entry, so the counts \
        never reach 0 and the traffic follows the pod after it is gone: the #81775 signature \
        (10 ActiveConn / 14048 InActConn on a weight-0 server).";
    let tab = match &t.ip_vs {
        Input::Present(tab) => tab,
        other => {
            return finding(
                ids::WEIGHT0_KEPT_ALIVE,
                Severity::Info,
                "Cannot look for weight-0 real servers: /proc/net/ip_vs was not readable",
                vec![input_ev(&display(tree::IP_VS), &other.as_ref_display())],
                why_base,
                "",
                r,
            );
        }
    };
    let conns = t.ip_vs_conn.value();
    let mut ev = Vec::new();
    let mut any = false;
    let mut signature = false;
    let mut zero_total = 0usize;
    for svc in &tab.services {
        for d in svc.dests.iter().filter(|d| dest_is_zero(d)) {
            zero_total += 1;
            if d.active + d.inactive == 0 {
                continue;
            }
            any = true;
            if ev.len() < 10 {
                ev.push(format!(
                    "{}: {} -> {} weight {}, ActiveConn {}, InActConn {}",
                    display(tree::IP_VS),
                    service_label(svc),
                    d.endpoint(),
                    d.weight,
                    d.active,
                    d.inactive
                ));
            }
            if let Some(conns) = conns {
                let mine: Vec<&ConnEntry> = entries_for(conns, svc, d)
                    .filter(|c| !c.is_template())
                    .collect();
                let clients: BTreeSet<IpAddr> = mine.iter().map(|c| c.caddr).collect();
                let mut states: BTreeMap<&str, usize> = BTreeMap::new();
                for c in &mine {
                    *states.entry(c.state.as_str()).or_default() += 1;
                }
                let new_conns = mine
                    .iter()
                    .filter(|c| matches!(c.state.as_str(), "SYN_RECV" | "SYNACK" | "SYN_SENT"))
                    .count();
                let few_clients_many_ports = mine.len() >= 10 && clients.len() <= 3;
                let here = few_clients_many_ports || (new_conns > 0 && svc.persistent.is_none());
                signature |= here;
                if ev.len() < 10 {
                    let st: Vec<String> = states.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    ev.push(format!(
                        "{}: {} entries to {} from {} client address(es) ({}){}",
                        display(tree::IP_VS_CONN),
                        mine.len(),
                        d.endpoint(),
                        clients.len(),
                        if st.is_empty() {
                            s("none")
                        } else {
                            st.join(", ")
                        },
                        if here {
                            " - port-reuse signature: few clients, many ports, or new \
                             connections arriving at weight 0"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
    }
    if conns.is_none() {
        ev.push(input_ev(
            &display(tree::IP_VS_CONN),
            &t.ip_vs_conn.as_ref_display(),
        ));
    }
    ev.push(sysctl_ev("conn_reuse_mode", &t.vs.conn_reuse_mode));
    ev.push(sysctl_ev("expire_nodest_conn", &t.vs.expire_nodest_conn));
    if !any {
        return finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Ok,
            if zero_total == 0 {
                s("No real server is at weight 0")
            } else {
                format!("{zero_total} weight-0 real server(s), none with connections left")
            },
            vec![format!(
                "{}: {} service(s), {zero_total} weight-0 real server(s) with no connections",
                display(tree::IP_VS),
                tab.services.len()
            )],
            why_base,
            "",
            r,
        );
    }
    let fix_sticky = "Make reuse safe first (reuse-sticky-terminating): expire_nodest_conn=1 \
        on a kernel with c95c07836fa4, or conn_reuse_mode=1 on 5.9+. To unblock a stuck \
        rollout now, delete the weight-0 real server by hand (ipvsadm -d -t VIP:PORT -r RS:PORT); \
        with expire_nodest_conn=1 its entries are expired and reused ports are rescheduled, at \
        the price of resetting its remaining connections.";
    if sticky >= Severity::Critical {
        finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Critical,
            "Weight-0 real servers still hold connections and this node's reuse settings keep \
             sending reused ports to them: they will not drain",
            ev,
            why_base,
            fix_sticky,
            r,
        )
    } else if signature {
        finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Warning,
            "Weight-0 real servers still hold connections with the port-reuse signature (few \
             clients, many entries, or new connections at weight 0)",
            ev,
            format!(
                "{why_base} Here the entries come from few client addresses or include new \
                 connections, which fits port reuse (or persistence) rather than a normal drain; \
                 a later snapshot that still shows them confirms it."
            ),
            fix_sticky,
            r,
        )
    } else {
        finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Info,
            "Weight-0 real servers still hold connections: a drain in progress",
            ev,
            format!(
                "{why_base} Nothing here looks like port reuse; if the counts have not fallen \
                 after a few minutes, look again."
            ),
            "",
            r,
        )
    }
}

fn reuse_dr_fin_wait(ctx: &Ctx) -> Finding {
    let t = ctx.tree;
    let r = refs(&["ipvs-spec.md §2.4.3, §9.1 P5"]);
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

fn kube_proxy_sysctls(ctx: &Ctx, kp: &crate::kube_proxy::KubeProxy) -> Finding {
    let t = ctx.tree;
    let r = refs(&[
        "k8s-rollouts.md §2",
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

fn kube_proxy_config(ctx: &Ctx, kp: &crate::kube_proxy::KubeProxy) -> Finding {
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
            "k8s-rollouts.md §1.7, §2, Appendix A",
            "ipvs-spec.md §3.1.1",
        ]),
    )
}
