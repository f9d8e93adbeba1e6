//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rvs_core::profile::Profile;

/// rvs: a user-space IPVS (layer-4 load balancer).
#[derive(Parser, Debug)]
#[command(name = "rvs", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the load balancer: a TUN data plane configured by a TOML file.
    Daemon(DaemonArgs),
    /// ipvsadm 1.31's command line against the running daemon (also as `rvsadm`).
    Adm(AdmArgs),
    /// Read or set the net.ipv4.vs.* knobs and the profile of the running daemon.
    Sysctl(SysctlArgs),
    /// Audit a node running kernel IPVS for rolling-update hazards.
    Doctor(rvs_doctor::DoctorArgs),
    /// Replay rolling-update incidents with the real engine in virtual time; compare profiles.
    Sim(rvs_sim::cli::SimArgs),
    /// The rolling-update incident and its fix, with real packets (as root).
    Demo(rvs_demo::DemoArgs),
    /// Helpers for tests, the benchmark and the demo (servers and load generators).
    #[command(hide = true)]
    Lab(LabArgs),
    /// Write the manual pages (rvs.1, one page per subcommand, rvsadm.8) into a folder.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Signals: SIGHUP reloads the config file (as `rvs adm` can ask over \
the socket); SIGTERM and SIGINT stop the daemon and remove every address, route and rule it \
added. The admin socket (default /run/rvs/rvs.sock, mode 0600) is set in [dataplane]."
)]
pub struct DaemonArgs {
    /// The config file (TOML: [engine], [sysctl], [timeouts], [dataplane], [[service]]).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Behaviour profile; overrides the file's engine.profile (at start and on every reload).
    #[arg(long, value_name = "safe|linux-4.19|linux-5.9|linux-5.16")]
    pub profile: Option<Profile>,
    /// Take over from the daemon running with the same config (a planned restart or an
    /// upgrade): receive its TUN descriptor and its whole engine state over
    /// `<admin socket>.takeover`, then it exits leaving the routes and rules in place.
    /// If this binary cannot read the running daemon's state, it refuses and the running
    /// daemon carries on. `--takeover=auto`: take over if a daemon answers there, start as
    /// usual otherwise (a DaemonSet's container: first roll-out, reboot, update).
    #[arg(
        long,
        value_name = "auto",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "always"
    )]
    pub takeover: Option<TakeoverMode>,
    /// Once this daemon has handed over to a new one, stay running, idle, until SIGTERM or
    /// SIGINT, then exit without touching the set-up (a container that exits would be
    /// restarted and take the node back).
    #[arg(long)]
    pub stay: bool,
    /// With --takeover (for systemd's ExecReload=): return once the hand-over is done, exit
    /// status 0, or 1 if it was refused (the running daemon carries on); the new daemon runs
    /// on in the background. Under systemd (Type=notify, NotifyAccess=all) the new daemon
    /// becomes the unit's main process (MAINPID=).
    #[arg(long, requires = "takeover")]
    pub background: bool,
    /// Be this Kubernetes node's service proxy (as a `[kubernetes]` section with its
    /// defaults does, when the file has none): watch Services and EndpointSlices, program
    /// kube-proxy's IPVS mapping.
    #[arg(long)]
    pub kubernetes: bool,
    /// Handle only the Services labelled `service.kubernetes.io/service-proxy-name=NAME`
    /// (implies --kubernetes; overrides `kubernetes.service_proxy_name`).
    #[arg(long, value_name = "NAME")]
    pub service_proxy_name: Option<String>,
}

/// `--takeover` and `--takeover=auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TakeoverMode {
    /// Take over, or fail (`--takeover`).
    Always,
    /// Take over if a daemon answers, start as usual otherwise.
    Auto,
}

#[derive(Args, Debug)]
#[command(
    disable_help_flag = true,
    after_help = "Every argument is passed to the ipvsadm front end: `rvs adm -h` prints \
ipvsadm's help. `rvs adm --reload` asks the daemon to reload its config file (as SIGHUP \
does); `rvs adm --table` prints the connection table's bound, fill and evictions. Beyond ipvsadm: `--fullnat` (with -a/-e) selects full NAT, like -m/-g/-i select NAT, \
direct routing and tunnelling. The daemon's socket is /run/rvs/rvs.sock, or $RVS_SOCKET."
)]
pub struct AdmArgs {
    /// ipvsadm arguments (e.g. -L -n, -A -t 10.0.0.1:80 -s rr, -S, -R).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  rvs sysctl -a\n  rvs sysctl net.ipv4.vs.conn_reuse_mode\n  \
rvs sysctl net.ipv4.vs.conn_reuse_mode=0 expire_nodest_conn=1\n  rvs sysctl --profile linux-5.16\n\
All 29 net.ipv4.vs.* knobs are listed and can be set, with the kernel's names, defaults and \
validation. These are stored but have no effect in rvs (setting one prints why): amemthresh, \
backup_only, ignore_tunneled, pmtu_disc, snat_reroute and the sync_* knobs.\n\
The daemon's socket is /run/rvs/rvs.sock, or $RVS_SOCKET."
)]
pub struct SysctlArgs {
    /// List every knob with its value.
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Print values only, without names.
    #[arg(short = 'n', long = "values")]
    pub values_only: bool,
    /// Switch the daemon's behaviour profile (existing connections stay).
    #[arg(long, value_name = "safe|linux-4.19|linux-5.9|linux-5.16")]
    pub profile: Option<Profile>,
    /// NAME to read, NAME=VALUE to set (with or without the net.ipv4.vs. prefix).
    pub items: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LabArgs {
    #[command(subcommand)]
    pub cmd: LabCmd,
}

#[derive(Subcommand, Debug)]
pub enum LabCmd {
    /// A small real server: answers each TCP connection (HTTP/1.0 or line echo) and each UDP
    /// datagram with its name.
    Serve(rvs_dataplane::lab::serve::ServeOptions),
    /// Send small UDP datagrams as fast as possible (sendmmsg), over several flows.
    Udpflood(rvs_dataplane::lab::flood::FloodOptions),
    /// A spoofed TCP SYN flood (IPv4 sources from a prefix, paced, bounded in time). Lab
    /// namespaces only: route the prefix to a blackhole there.
    Synflood(rvs_dataplane::lab::synflood::SynFloodOptions),
    /// A real server's IP-in-IP decapsulation in user space (kernels without ipip).
    Decap(rvs_dataplane::lab::decap::DecapOptions),
    /// The demo's load generator: workers making short TCP connections, one JSON line per
    /// attempt (outcome, connect latency, local port, the server that answered).
    Client(rvs_demo::client::ClientOptions),
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The folder to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Logs to standard error; `RUST_LOG` filters (default `info`). Colours only on a terminal:
/// under systemd, standard error is the journal, where escape codes are noise.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
