//! The checks. Each check always yields its finding (with severity `ok` when the hazard is
//! absent), so a finding id is a stable key for scripts.
//!
//! `audit` runs them; this module holds what they share (the `Ctx` they read, the finding
//! and evidence helpers). Each check lives in the file named after the finding id it
//! produces, whose doc comment says what it looks for, why, and the fix.

mod ipvs_not_loaded;
mod kernel_version;
mod kube_proxy;
mod nodest_blackhole;
mod persistence_quiescent;
mod port_reuse_rate;
mod reuse_dr_fin_wait;
mod reuse_sticky;
mod syn_drop;
mod weight0_kept_alive;

use crate::kernel::{FixStatus, KernelInfo, KernelJudgement, Verdict};
use crate::procfs::{ConnEntry, Dest, Service, VAddr};
use crate::report::{Finding, KernelSection, Report, Severity};
use crate::tree::{self, Input, Tree, display};
use ipvs_not_loaded::ipvs_not_loaded;
use kernel_version::kernel_finding;
use kube_proxy::{kube_proxy_config, kube_proxy_sysctls};
use nodest_blackhole::nodest_blackhole;
use persistence_quiescent::persistence_quiescent;
use port_reuse_rate::port_reuse_rate;
use reuse_dr_fin_wait::reuse_dr_fin_wait;
use reuse_sticky::reuse_sticky;
use syn_drop::syn_drop;
use weight0_kept_alive::weight0_kept_alive;

/// IPVS TCP TIME_WAIT timeout: fixed at 120 s; `ipvsadm --set` changes only ESTABLISHED,
/// FIN_WAIT and UDP (`net/netfilter/ipvs/ip_vs_proto_tcp.c: tcp_timeouts`,
/// `docs/kernel-semantics.md` §3.1.1).
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

fn reuse_mode(ctx: &Ctx) -> Option<i64> {
    ctx.tree.vs.conn_reuse_mode.value().copied()
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
