//! # rvs-doctor: `rvs doctor`, an audit of a node running kernel IPVS
//!
//! `rvs doctor` looks at a Linux node that forwards service traffic with the kernel's own IPVS
//! (for example a kube-proxy node in IPVS mode) and reports the configurations that break
//! rolling updates. It needs no daemon, only reads files, and changes nothing.
//!
//! ## What it reads
//!
//! Under `/` (or `--root DIR`, a captured tree with the same layout):
//!
//! | File | Used for |
//! |---|---|
//! | `/proc/sys/kernel/osrelease`, `/proc/version`, `/proc/version_signature` | kernel version, distribution, build date, upstream stable patch level |
//! | `/proc/sys/net/ipv4/vs/{conn_reuse_mode,conntrack,expire_nodest_conn,expire_quiescent_template}` | the IPVS knobs |
//! | `/proc/sys/net/ipv4/ip_local_port_range`, `ip_local_reserved_ports`, `tcp_tw_reuse` | port-reuse arithmetic |
//! | `/proc/net/ip_vs` | services, schedulers, persistence, real-server weights and counters |
//! | `/proc/net/ip_vs_conn` | per-entry states: TIME_WAIT churn per client, entries of weight-0 servers |
//! | `/boot/config-<release>` (optional) | `CONFIG_HZ`, to turn the persistence timeout (printed in jiffies) into seconds |
//!
//! plus, optionally, kube-proxy's configuration (`--kube-proxy-config`, a
//! `KubeProxyConfiguration` or the kubeadm ConfigMap embedding one) and flags
//! (`--kube-proxy-flags`). Formats: `docs/kernel-semantics.md` §8.9. The persistence timeout in
//! `/proc/net/ip_vs` is `svc->timeout`, which `ip_vs_add_service` stores as seconds × HZ: it is
//! in **jiffies** (the 6.1 golden capture prints `persistent 75000` for 300 s at HZ=250). The
//! audit converts it with `CONFIG_HZ` from `/boot/config-<release>` when present, else assumes
//! HZ=250 and says so.
//!
//! ## What it checks (finding ids)
//!
//! | Id | Worst severity | Hazard |
//! |---|---|---|
//! | `kernel-version` | info | which of f0a5e4d7a594 (5.9) and c95c07836fa4 (5.16) the kernel carries, or "cannot tell" |
//! | `ipvs-not-loaded` | info (warning if kube-proxy is configured for IPVS) | no `/proc/net/ip_vs`: nothing to audit |
//! | `reuse-sticky-terminating` | critical | `conn_reuse_mode=0` with `expire_nodest_conn=0`, or on a kernel without c95c07836fa4: reused client ports go to terminating/deleted pods (kubernetes#81775, #99162) |
//! | `reuse-syn-drop-stall` | critical | `conn_reuse_mode≠0` + `conntrack=1` on a kernel with f719e3754ee2 but without f0a5e4d7a594: 1 s connect stalls (kubernetes#70747) |
//! | `nodest-blackhole` | warning | `expire_nodest_conn=0`: flows to removed servers are dropped until they time out |
//! | `persistence-quiescent-template` | critical | persistent services with `expire_quiescent_template=0` (kubernetes#71809); critical when a weight-0 server of such a service is still in use |
//! | `port-reuse-rate` | warning | the connection rate per client and VIP:port at which reuse begins (P ports / 120 s), and the busiest observed client |
//! | `weight0-kept-alive` | critical | weight-0 real servers whose connection counts keep them alive (the #81775 signature) |
//! | `reuse-dr-fin-wait` | info | DR/TUN servers with `conn_reuse_mode` bit 2 clear (kernel-semantics P5) |
//! | `kube-proxy-sysctls` | warning | the node's sysctls vs what kube-proxy sets in IPVS mode (with kube-proxy input) |
//! | `kube-proxy-config` | warning | mode, scheduler vs the table, timeouts (with kube-proxy input) |
//!
//! Every check emits its finding with severity `ok` when the hazard is absent, so ids are stable
//! keys for scripts. When a version-dependent fact cannot be established the finding says
//! "cannot tell", gives the reasoning, and is a `warning` if the hazard would matter.
//!
//! ## Exit codes
//!
//! | Code | Meaning |
//! |---|---|
//! | 0 | nothing worse than `info` |
//! | 1 | at least one `warning`, no `critical` |
//! | 2 | at least one `critical` |
//! | 3 | the audit is incomplete: `--root` is not a directory with `proc/` in it, a file in the tree exists but cannot be read or parsed, `--kube-proxy-config`/`--kube-proxy-flags` cannot be read or parsed, or the report cannot be written. Takes precedence over 0–2; the report is still printed when possible, and names every unreadable file |
//!
//! A file that is simply *missing* is evidence, not an error: no `/proc/net/ip_vs` means IPVS is
//! not loaded, no `conn_reuse_mode` means a kernel without it.
//!
//! ## References
//!
//! Each finding's `Refs:` line names what a user can read without rvs's sources: upstream
//! kernel commits (12-digit ids), the kernel's `Documentation/networking/ipvs-sysctl.rst`,
//! kernel source files and functions (`net/netfilter/ipvs/ip_vs_core.c: ip_vs_in_hook`),
//! Kubernetes issues (`kubernetes#81775`) and kube-proxy's sources, and, for the measurements
//! on a real 6.1 kernel, `docs/kernel-6.1-incident.md` in the rvs repository. For developers,
//! `docs/kernel-semantics.md` explains the kernel behaviour behind each check: §1.7 (sysctls),
//! §2.4 (port reuse and its version history), §2.5 (`expire_nodest_conn`), §5 (templates), §8.9
//! (/proc formats), §9 (pitfalls).
//!
//! ## Use
//!
//! ```no_run
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     doctor: rvs_doctor::DoctorArgs,
//! }
//! let cli = Cli::parse();
//! let code = rvs_doctor::run(&cli.doctor, &mut std::io::stdout());
//! std::process::exit(code);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod kernel;
pub mod kube_proxy;
pub mod procfs;
pub mod report;
pub mod tree;

pub use audit::{audit, ids};
pub use report::{
    EXIT_CRITICAL, EXIT_INPUT_ERROR, EXIT_OK, EXIT_WARNING, Finding, Report, Severity,
};
pub use tree::{Input, InputError, Tree, TreeError};

use std::io::Write;
use std::path::PathBuf;

/// The exit-code table, as printed at the end of `rvs doctor --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  nothing worse than info
  1  at least one warning, no critical finding
  2  at least one critical finding
  3  incomplete audit: --root is not a directory with proc/ in it, a file in the tree exists
     but cannot be read or parsed, --kube-proxy-config/--kube-proxy-flags cannot be read or
     parsed, or the report cannot be written (takes precedence over 0-2)

Missing files are evidence, not errors: no /proc/net/ip_vs means \"IPVS is not loaded\".";

/// Arguments of `rvs doctor`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(
    about = "Audit a node running kernel IPVS (e.g. kube-proxy IPVS mode) for rolling-update hazards",
    long_about = "Audit a node running kernel IPVS (e.g. kube-proxy in IPVS mode) for the \
hazards that break rolling updates: client-port reuse sent to terminating pods \
(conn_reuse_mode=0, kubernetes#81775), 1 s connect stalls (conn_reuse_mode=1 + conntrack=1 \
before 5.9, kubernetes#70747), black-holed flows (expire_nodest_conn=0), persistence without \
expire_quiescent_template, the port-reuse rate, and weight-0 servers that never drain. Reads \
/proc (or a captured tree with --root); needs no daemon and changes nothing.",
    after_help = EXIT_CODES_HELP
)]
pub struct DoctorArgs {
    /// Read a captured tree under DIR (with DIR/proc/...) instead of the live node's /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// kube-proxy's configuration file (KubeProxyConfiguration YAML, or the kubeadm kube-proxy
    /// ConfigMap); a host path, not relative to --root.
    #[arg(long, value_name = "FILE")]
    pub kube_proxy_config: Option<PathBuf>,
    /// kube-proxy's command-line flags as one string, e.g. "--proxy-mode=ipvs
    /// --ipvs-scheduler=rr"; applied over --kube-proxy-config.
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub kube_proxy_flags: Option<String>,
}

impl DoctorArgs {
    /// Arguments for auditing `root`, with no kube-proxy input and human output.
    pub fn for_root(root: impl Into<PathBuf>) -> DoctorArgs {
        DoctorArgs {
            root: root.into(),
            ..DoctorArgs::default()
        }
    }
}

/// Reads the tree and the kube-proxy inputs named by `args`. Errors in the kube-proxy inputs
/// are recorded in [`Tree::input_errors`]; only an unusable root is an `Err`.
pub fn load(args: &DoctorArgs) -> Result<Tree, TreeError> {
    let mut tree = Tree::load(&args.root)?;
    let mut kp: Option<kube_proxy::KubeProxy> = None;
    if let Some(path) = &args.kube_proxy_config {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => match kube_proxy::parse_config(&text) {
                Ok(c) => kp = Some(c),
                Err(e) => tree.input_errors.push(InputError {
                    path: shown,
                    error: format!("cannot parse: {e}"),
                }),
            },
            Err(e) => tree.input_errors.push(InputError {
                path: shown,
                error: format!("cannot read: {e}"),
            }),
        }
    }
    if let Some(flags) = &args.kube_proxy_flags {
        match kube_proxy::parse_flags(flags) {
            Ok(f) => kp = Some(kp.unwrap_or_default().overlay(f)),
            Err(e) => tree.input_errors.push(InputError {
                path: "--kube-proxy-flags".into(),
                error: e,
            }),
        }
    }
    tree.kube_proxy = kp;
    Ok(tree)
}

/// Runs `rvs doctor`: reads, audits, writes the report (human or `--json`) to `out`, and
/// returns the exit code (see [`EXIT_CODES_HELP`]). Never panics on bad input.
pub fn run(args: &DoctorArgs, out: &mut dyn Write) -> i32 {
    let tree = match load(args) {
        Ok(t) => t,
        Err(e) => {
            let written = if args.json {
                let v = serde_json::json!({
                    "root": args.root.display().to_string(),
                    "error": e.to_string(),
                    "exit_code": EXIT_INPUT_ERROR,
                });
                serde_json::to_writer_pretty(&mut *out, &v)
                    .map_err(std::io::Error::other)
                    .and_then(|_| writeln!(out))
            } else {
                writeln!(out, "rvs doctor: error: {e}")
            };
            let _ = written.and_then(|_| out.flush());
            return EXIT_INPUT_ERROR;
        }
    };
    let report = audit(&tree);
    let written = if args.json {
        report.write_json(out)
    } else {
        report.write_human(out)
    };
    match written.and_then(|_| out.flush()) {
        Ok(()) => report.exit_code,
        Err(_) => EXIT_INPUT_ERROR,
    }
}
