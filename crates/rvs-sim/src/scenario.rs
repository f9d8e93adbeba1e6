//! Scenarios: what is simulated, read from TOML (or built in).
//!
//! # Schema
//!
//! Every table and key below is optional unless marked *required*; unknown keys are errors.
//! Times are seconds (`*_s`), milliseconds (`*_ms`) or microseconds (`*_us`), as the key says,
//! and may be fractional. A complete example is `crates/rvs-sim/scenarios/incident.toml`, the
//! built-in `incident` scenario written out.
//!
//! ```toml
//! name = "incident"            # required
//! description = "..."
//! seed = 1                     # every random stream derives from it (default 1)
//! duration_s = 300             # required: virtual time simulated
//! profiles = ["safe", "linux-5.16"]   # default: the five built-in rows (see `profile`)
//! timeline_bin_s = 1           # width of the time series bins (default: 1 s, or duration/600)
//! clients_only_in_phases = false  # true: clients only run inside [[phases]] windows
//! report = "standard"          # "standard" | "vm" (the kernel-6.1 measurement's layout)
//!
//! [engine]
//! conn_max = 16777216          # the engine's table bound
//! sysctls = { expire_nodest_conn = 0 }   # applied on top of every profile's sysctls
//! netfilter_conntrack = true   # override the profile's
//!
//! [service]                    # required
//! vip = "10.96.0.10"           # the virtual address
//! port = 80                    # virtual and real-server port (one virtual service per
//!                              # protocol the clients use)
//! scheduler = "rr"             # any rvs-core scheduler name
//! replicas = 3                 # pods behind the service
//! pod_network = "10.244.0.0"   # pods get consecutive addresses after it
//! addresses = []               # or: explicit addresses of the initial pods
//!
//! [pods]                       # the pod (real server) model
//! ready_after_s = 5            # from creation to Ready
//! prestop_s = 5                # terminating: preStop hook duration (still serving)
//! grace_s = 30                 # terminationGracePeriodSeconds (SIGKILL at the end)
//! exit_after_sigterm_s = 1     # the app exits this long after SIGTERM (capped by grace)
//! accept_after_sigterm = false # false: the listener closes at SIGTERM (new SYNs get RST)
//! gone = "unreachable"         # a gone pod's address: "rst" (live host answers RST, ICMP
//!                              # port unreachable for UDP), "silence", "unreachable" (ICMP
//!                              # host unreachable when the director's ARP fails)
//! arp_fail_s = 3               # how long one neighbour resolution takes to fail
//!
//! [rollout]                    # a rolling restart of the Deployment
//! at_s = 30
//! max_surge = 1
//! max_unavailable = 0
//!
//! [control_plane]
//! model = "kube-proxy"         # "kube-proxy" (graceful termination by connection counts),
//!                              # "lifecycle" (weight 0 on terminating, delete when gone or
//!                              # at the deadline), "none" (only [[events]] touch the table)
//! sync_delay_ms = 1000         # endpoint change -> seen by the proxy
//! min_sync_period_ms = 0       # syncs are at least this far apart
//! check_interval_s = 60        # kube-proxy: the graceful-termination re-check period
//! deadline_s = 60              # lifecycle: longest drain before the real server is deleted
//!
//! [[clients]]                  # one table per client group (e.g. a client Deployment)
//! name = "api"
//! count = 2                    # client hosts, each with its own address
//! address = "10.1.0.1"         # first host's address; the next ones follow
//! protocol = "tcp"             # "tcp" | "udp"
//! rate = 500                   # open loop: connections (queries) per second per host ...
//! arrivals = "poisson"         # ... "poisson" or "fixed" spacing
//! # interval_ms = 50           # ... or a closed loop: start, finish, pause, repeat
//! # concurrency = 1            # closed loops per host
//! rtt_us = 1000                # client <-> pod round trip through the director
//! rtt_jitter_us = 200          # plus an exponential jitter of this mean
//! # TCP
//! port_range = [32768, 60999]  # ip_local_port_range
//! tcp_tw_reuse = 0             # 1: reuse a TIME_WAIT port after ~1 s (timestamps on)
//! time_wait_s = 60             # the client's TIME_WAIT
//! syn_retries = 6              # tcp_syn_retries (RTO 1 s, doubling)
//! connect_timeout_ms = 0       # the application's connect timeout (0 = the kernel's)
//! close = "client"             # who closes first: "client" (client TIME_WAIT) | "server"
//! hold_ms = 0                  # time a connection stays open after the handshake
//! # UDP
//! udp_ports = "fresh"          # "fresh" (a new socket per query) | "fixed" (long-lived)
//! sockets = 1                  # fixed: sockets per host, used in turn
//! udp_timeout_ms = 5000        # resolver-style timeout ...
//! udp_attempts = 2             # ... and tries per query (same socket)
//!
//! [[phases]]                   # reporting windows (and client windows, see above)
//! name = "main"
//! start_s = 7.5
//! end_s = 37.5
//!
//! [[events]]                   # scripted actions, in time order
//! at_s = 5
//! action = "weight"            # "weight" (ipvsadm -e), "delete" (ipvsadm -d), "add"
//!                              # (ipvsadm -a), "die" (the pod is gone at once, `gone`
//!                              # mode), "terminate" (the pod starts terminating)
//! server = 2                   # 1-based index of the initial pods (rs1, rs2, ...)
//! weight = 0                   # for "weight" and "add"
//! gone = "rst"                 # for "die": override [pods].gone
//!
//! [[variants]]                 # run everything once per variant (rows of a matrix)
//! label = "kill 0/0"
//! sysctls = { conn_reuse_mode = 0, expire_nodest_conn = 0 }
//! gone = "rst"
//!
//! [[custom_profiles]]          # profiles beyond the built-in rows
//! label = "5.16-nodest0"
//! kernel = "linux-5.16"        # "safe" | "linux-4.19" | "linux-5.9" | "linux-5.16"
//! sysctls = { expire_nodest_conn = 0 }
//! netfilter_conntrack = true
//! ```
//!
//! Errors name the file, the line and the field: a TOML or type error points where the parser
//! stopped; a semantic check (a reversed port range, an event for a pod that does not exist)
//! names the field path and finds its line.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One scenario. See the module documentation for the TOML schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, printed in reports.
    pub name: String,
    /// One line of description.
    #[serde(default)]
    pub description: String,
    /// The seed of every random stream.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Virtual seconds simulated.
    pub duration_s: f64,
    /// Profile rows to run (names of built-in or custom profiles; `linux-4.19` selects both
    /// 4.19 rows). Empty: the five built-in rows.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Width of the time-series bins.
    #[serde(default)]
    pub timeline_bin_s: Option<f64>,
    /// Clients only run inside the phases' windows.
    #[serde(default)]
    pub clients_only_in_phases: bool,
    /// Report layout.
    #[serde(default)]
    pub report: ReportStyle,
    /// Engine settings.
    #[serde(default)]
    pub engine: EngineSection,
    /// The service and its initial pods.
    pub service: Service,
    /// The pod model.
    #[serde(default)]
    pub pods: Pods,
    /// A rolling restart.
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// The control-plane model.
    #[serde(default)]
    pub control_plane: ControlPlane,
    /// Client groups.
    #[serde(default)]
    pub clients: Vec<ClientGroup>,
    /// Reporting windows.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Scripted actions.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Variants (rows of a matrix).
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Extra profiles.
    #[serde(default)]
    pub custom_profiles: Vec<CustomProfile>,
}

fn d_seed() -> u64 {
    1
}

/// Report layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportStyle {
    /// A row per profile (and variant), the issue's columns.
    #[default]
    Standard,
    /// The layout of `docs/kernel-6.1-incident.md`: per profile, a row per variant with the `main`
    /// and `removed` phases.
    Vm,
}

/// `[engine]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// The connection table bound.
    #[serde(default = "d_conn_max")]
    pub conn_max: u32,
    /// Sysctls applied after the profile's.
    #[serde(default)]
    pub sysctls: BTreeMap<String, SysctlValue>,
    /// Overrides the profile's `netfilter_conntrack`.
    #[serde(default)]
    pub netfilter_conntrack: Option<bool>,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            conn_max: d_conn_max(),
            sysctls: BTreeMap::new(),
            netfilter_conntrack: None,
        }
    }
}

fn d_conn_max() -> u32 {
    1 << 24
}

/// A sysctl value: a number or a string (`sync_threshold = "3 50"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SysctlValue {
    /// A number.
    Int(i64),
    /// Text.
    Text(String),
}

impl core::fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SysctlValue::Int(i) => write!(f, "{i}"),
            SysctlValue::Text(s) => f.write_str(s),
        }
    }
}

/// `[service]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Virtual address.
    #[serde(default = "d_vip")]
    pub vip: IpAddr,
    /// Virtual and real-server port.
    #[serde(default = "d_port")]
    pub port: u16,
    /// Scheduler.
    #[serde(default = "d_sched")]
    pub scheduler: String,
    /// Pods behind the service.
    #[serde(default = "d_replicas")]
    pub replicas: u32,
    /// Pods get consecutive addresses after this one.
    #[serde(default = "d_podnet")]
    pub pod_network: IpAddr,
    /// Explicit addresses of the initial pods (then `replicas` is their number).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

fn d_vip() -> IpAddr {
    IpAddr::from([10, 96, 0, 10])
}
fn d_port() -> u16 {
    80
}
fn d_sched() -> String {
    "rr".into()
}
fn d_replicas() -> u32 {
    3
}
fn d_podnet() -> IpAddr {
    IpAddr::from([10, 244, 0, 0])
}

/// What a gone pod's address does to packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gone {
    /// A live host answers: TCP RST (the VM's `kill`), ICMP port unreachable for UDP.
    Rst,
    /// Nothing comes back (the VM's `drop`).
    Silence,
    /// The director's neighbour resolution fails and it answers ICMP host unreachable (the
    /// VM's `linkdown`; "No route to host").
    #[default]
    Unreachable,
}

impl Gone {
    /// The VM scenario's name for it.
    pub fn vm_name(self) -> &'static str {
        match self {
            Gone::Rst => "kill",
            Gone::Silence => "drop",
            Gone::Unreachable => "linkdown",
        }
    }
}

/// `[pods]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pods {
    /// Creation to Ready.
    #[serde(default = "d_ready")]
    pub ready_after_s: f64,
    /// preStop hook.
    #[serde(default = "d_prestop")]
    pub prestop_s: f64,
    /// terminationGracePeriodSeconds.
    #[serde(default = "d_grace")]
    pub grace_s: f64,
    /// SIGTERM to exit.
    #[serde(default = "d_exit")]
    pub exit_after_sigterm_s: f64,
    /// Whether the app keeps accepting after SIGTERM.
    #[serde(default)]
    pub accept_after_sigterm: bool,
    /// What a gone pod's address does.
    #[serde(default)]
    pub gone: Gone,
    /// One failed neighbour resolution.
    #[serde(default = "d_arp")]
    pub arp_fail_s: f64,
}

impl Default for Pods {
    fn default() -> Self {
        Pods {
            ready_after_s: d_ready(),
            prestop_s: d_prestop(),
            grace_s: d_grace(),
            exit_after_sigterm_s: d_exit(),
            accept_after_sigterm: false,
            gone: Gone::default(),
            arp_fail_s: d_arp(),
        }
    }
}

fn d_ready() -> f64 {
    5.0
}
fn d_prestop() -> f64 {
    5.0
}
fn d_grace() -> f64 {
    30.0
}
fn d_exit() -> f64 {
    1.0
}
fn d_arp() -> f64 {
    3.0
}

/// `[rollout]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// When the rollout starts.
    pub at_s: f64,
    /// maxSurge (pods above `replicas`).
    #[serde(default = "d_one")]
    pub max_surge: u32,
    /// maxUnavailable (ready pods below `replicas`).
    #[serde(default)]
    pub max_unavailable: u32,
}

fn d_one() -> u32 {
    1
}

/// The control-plane model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpModel {
    /// kube-proxy's graceful termination (`pkg/proxy/ipvs/graceful_termination.go`): weight 0,
    /// delete when ActiveConn + InActConn == 0, checked every `check_interval_s`; UDP deleted at
    /// once.
    #[default]
    KubeProxy,
    /// Lifecycle draining: weight 0 on terminating, delete when the pod is gone or at the
    /// deadline.
    Lifecycle,
    /// Nothing: only scripted events change the table.
    None,
}

/// `[control_plane]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlane {
    /// The model.
    #[serde(default)]
    pub model: CpModel,
    /// Endpoint change to proxy.
    #[serde(default = "d_sync")]
    pub sync_delay_ms: f64,
    /// Minimum time between syncs.
    #[serde(default)]
    pub min_sync_period_ms: f64,
    /// kube-proxy's graceful re-check period.
    #[serde(default = "d_check")]
    pub check_interval_s: f64,
    /// Lifecycle: drain deadline.
    #[serde(default = "d_deadline")]
    pub deadline_s: f64,
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane {
            model: CpModel::default(),
            sync_delay_ms: d_sync(),
            min_sync_period_ms: 0.0,
            check_interval_s: d_check(),
            deadline_s: d_deadline(),
        }
    }
}

fn d_sync() -> f64 {
    1000.0
}
fn d_check() -> f64 {
    60.0
}
fn d_deadline() -> f64 {
    60.0
}

/// Client transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    /// TCP connections.
    #[default]
    Tcp,
    /// UDP request/response.
    Udp,
}

/// Arrival spacing of an open-loop client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arrivals {
    /// Exponential gaps.
    #[default]
    Poisson,
    /// Equal gaps (each host starts at a random offset).
    Fixed,
}

/// Which side closes a TCP connection first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseSide {
    /// The client: its port sits in TIME_WAIT.
    #[default]
    Client,
    /// The server: the client's port is free as soon as the close completes.
    Server,
}

/// UDP source ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UdpPorts {
    /// A new socket (random ephemeral port) per query.
    #[default]
    Fresh,
    /// Long-lived sockets with fixed ports.
    Fixed,
}

/// `[[clients]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientGroup {
    /// Name.
    #[serde(default = "d_cname")]
    pub name: String,
    /// Client hosts.
    #[serde(default = "d_one")]
    pub count: u32,
    /// First host's address.
    #[serde(default = "d_caddr")]
    pub address: IpAddr,
    /// Transport.
    #[serde(default)]
    pub protocol: Proto,
    /// Open loop: per host per second.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open loop spacing.
    #[serde(default)]
    pub arrivals: Arrivals,
    /// Closed loop: pause between one connection's end and the next's start.
    #[serde(default)]
    pub interval_ms: Option<f64>,
    /// Closed loops per host.
    #[serde(default = "d_one")]
    pub concurrency: u32,
    /// Round trip.
    #[serde(default = "d_rtt")]
    pub rtt_us: f64,
    /// Mean exponential jitter added to each round trip.
    #[serde(default = "d_jitter")]
    pub rtt_jitter_us: f64,
    /// ip_local_port_range.
    #[serde(default = "d_range")]
    pub port_range: [u16; 2],
    /// tcp_tw_reuse.
    #[serde(default)]
    pub tcp_tw_reuse: u8,
    /// Client TIME_WAIT.
    #[serde(default = "d_tw")]
    pub time_wait_s: f64,
    /// tcp_syn_retries.
    #[serde(default = "d_syn_retries")]
    pub syn_retries: u8,
    /// Application connect timeout (0: none).
    #[serde(default)]
    pub connect_timeout_ms: f64,
    /// Who closes first.
    #[serde(default)]
    pub close: CloseSide,
    /// Connection lifetime after the handshake.
    #[serde(default)]
    pub hold_ms: f64,
    /// UDP source ports.
    #[serde(default)]
    pub udp_ports: UdpPorts,
    /// Fixed UDP sockets per host.
    #[serde(default = "d_one")]
    pub sockets: u32,
    /// Resolver timeout.
    #[serde(default = "d_udp_timeout")]
    pub udp_timeout_ms: f64,
    /// Resolver tries.
    #[serde(default = "d_udp_attempts")]
    pub udp_attempts: u8,
}

fn d_cname() -> String {
    "client".into()
}
fn d_caddr() -> IpAddr {
    IpAddr::from([10, 1, 0, 1])
}
fn d_rtt() -> f64 {
    1000.0
}
fn d_jitter() -> f64 {
    200.0
}
fn d_range() -> [u16; 2] {
    [32768, 60999]
}
fn d_tw() -> f64 {
    60.0
}
fn d_syn_retries() -> u8 {
    6
}
fn d_udp_timeout() -> f64 {
    5000.0
}
fn d_udp_attempts() -> u8 {
    2
}

impl Default for ClientGroup {
    fn default() -> Self {
        ClientGroup {
            name: d_cname(),
            count: 1,
            address: d_caddr(),
            protocol: Proto::Tcp,
            rate: None,
            arrivals: Arrivals::Poisson,
            interval_ms: None,
            concurrency: 1,
            rtt_us: d_rtt(),
            rtt_jitter_us: d_jitter(),
            port_range: d_range(),
            tcp_tw_reuse: 0,
            time_wait_s: d_tw(),
            syn_retries: d_syn_retries(),
            connect_timeout_ms: 0.0,
            close: CloseSide::Client,
            hold_ms: 0.0,
            udp_ports: UdpPorts::Fresh,
            sockets: 1,
            udp_timeout_ms: d_udp_timeout(),
            udp_attempts: d_udp_attempts(),
        }
    }
}

/// `[[phases]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Name.
    pub name: String,
    /// Start.
    pub start_s: f64,
    /// End.
    pub end_s: f64,
}

/// A scripted action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `ipvsadm -e -w WEIGHT`.
    Weight,
    /// `ipvsadm -d`.
    Delete,
    /// `ipvsadm -a -w WEIGHT`.
    Add,
    /// The pod is gone at once.
    Die,
    /// The pod starts terminating (its lifecycle and the control plane follow).
    Terminate,
}

/// `[[events]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// When.
    pub at_s: f64,
    /// What.
    pub action: Action,
    /// Which initial pod (1-based).
    pub server: u32,
    /// Weight for `weight` and `add`.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Gone mode for `die`.
    #[serde(default)]
    pub gone: Option<Gone>,
}

/// `[[variants]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Row label.
    pub label: String,
    /// Sysctls on top of the profile's and `[engine]`'s.
    #[serde(default)]
    pub sysctls: BTreeMap<String, SysctlValue>,
    /// Overrides `[pods].gone` and every `die` event's mode.
    #[serde(default)]
    pub gone: Option<Gone>,
}

/// `[[custom_profiles]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProfile {
    /// Row label.
    pub label: String,
    /// `safe`, `linux-4.19`, `linux-5.9` or `linux-5.16`.
    pub kernel: String,
    /// Sysctls (on top of kube-proxy's).
    #[serde(default)]
    pub sysctls: BTreeMap<String, SysctlValue>,
    /// Whether netfilter conntrack tracks the director's flows (default true).
    #[serde(default)]
    pub netfilter_conntrack: Option<bool>,
}

/// An error in a scenario, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or `<built-in NAME>`).
    pub file: String,
    /// 1-based line and column, when known.
    pub line: Option<(usize, usize)>,
    /// The field path (`clients[0].port_range`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl core::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((l, c)) = self.line {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Parses and checks a scenario; `file` names it in errors.
    pub fn from_toml(src: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let sc: Scenario = toml::from_str(src).map_err(|e| {
            let (line, field) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(src, span.start);
                    (Some((l, c)), field_at(src, span.start))
                }
                None => (None, None),
            };
            ScenarioError {
                file: file.to_string(),
                line,
                field,
                message: e.message().trim().to_string(),
            }
        })?;
        sc.validate().map_err(|(field, message)| ScenarioError {
            file: file.to_string(),
            line: locate(src, &field),
            field: Some(field),
            message,
        })?;
        Ok(sc)
    }

    /// Reads a scenario file.
    pub fn from_file(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: name.clone(),
            line: None,
            field: None,
            message: format!("cannot read: {e}"),
        })?;
        Scenario::from_toml(&src, &name)
    }

    /// The semantic checks: `Err((field path, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        if !(self.duration_s > 0.0 && self.duration_s <= 30.0 * 86400.0) {
            return err(
                "duration_s",
                format!("must be in (0, 2592000], got {}", self.duration_s),
            );
        }
        if let Some(b) = self.timeline_bin_s
            && !positive(b)
        {
            return err("timeline_bin_s", format!("must be positive, got {b}"));
        }
        if self.service.replicas == 0 && self.service.addresses.is_empty() {
            return err("service.replicas", "must be at least 1".into());
        }
        if !self.service.addresses.is_empty()
            && self.service.replicas != d_replicas()
            && self.service.replicas as usize != self.service.addresses.len()
        {
            return err(
                "service.replicas",
                format!(
                    "{} replicas but {} addresses",
                    self.service.replicas,
                    self.service.addresses.len()
                ),
            );
        }
        if rvs_core::sched::by_name(
            &self.service.scheduler,
            &rvs_core::sched::SchedOptions::default(),
        )
        .is_none()
        {
            return err(
                "service.scheduler",
                format!("unknown scheduler '{}'", self.service.scheduler),
            );
        }
        if self.service.vip.is_ipv4() != self.service.pod_network.is_ipv4() {
            return err(
                "service.pod_network",
                "must be of the same address family as service.vip".into(),
            );
        }
        let p = &self.pods;
        for (k, v) in [
            ("pods.ready_after_s", p.ready_after_s),
            ("pods.prestop_s", p.prestop_s),
            ("pods.grace_s", p.grace_s),
            ("pods.exit_after_sigterm_s", p.exit_after_sigterm_s),
            ("pods.arp_fail_s", p.arp_fail_s),
            (
                "control_plane.sync_delay_ms",
                self.control_plane.sync_delay_ms,
            ),
            (
                "control_plane.min_sync_period_ms",
                self.control_plane.min_sync_period_ms,
            ),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return err(k, format!("must be a non-negative number, got {v}"));
            }
        }
        if !positive(self.control_plane.check_interval_s) {
            return err(
                "control_plane.check_interval_s",
                "must be positive".to_string(),
            );
        }
        if !positive(self.control_plane.deadline_s) {
            return err("control_plane.deadline_s", "must be positive".to_string());
        }
        if let Some(r) = &self.rollout {
            if !non_negative(r.at_s) {
                return err("rollout.at_s", "must be non-negative".into());
            }
            if r.max_surge == 0 && r.max_unavailable == 0 {
                return err(
                    "rollout.max_surge",
                    "max_surge and max_unavailable cannot both be 0".into(),
                );
            }
        }
        if self.clients.is_empty() {
            return err("clients", "at least one [[clients]] group is needed".into());
        }
        for (i, c) in self.clients.iter().enumerate() {
            let f = |k: &str| format!("clients[{i}].{k}");
            if c.count == 0 {
                return err(&f("count"), "must be at least 1".into());
            }
            if c.address.is_ipv4() != self.service.vip.is_ipv4() {
                return err(
                    &f("address"),
                    "must be of the same address family as service.vip".into(),
                );
            }
            match (c.rate, c.interval_ms) {
                (Some(_), Some(_)) => {
                    return err(
                        &f("interval_ms"),
                        "give either `rate` (open loop) or `interval_ms` (closed loop), not both"
                            .into(),
                    );
                }
                (None, None) => {
                    return err(
                        &f("rate"),
                        "give `rate` (open loop) or `interval_ms` (closed loop)".into(),
                    );
                }
                (Some(r), None) if !(r > 0.0 && r.is_finite()) => {
                    return err(&f("rate"), format!("must be positive, got {r}"));
                }
                (None, Some(iv)) if !(iv >= 0.0 && iv.is_finite()) => {
                    return err(&f("interval_ms"), format!("must be non-negative, got {iv}"));
                }
                _ => {}
            }
            if c.concurrency == 0 {
                return err(&f("concurrency"), "must be at least 1".into());
            }
            let [lo, hi] = c.port_range;
            if lo == 0 || lo > hi {
                return err(
                    &f("port_range"),
                    format!("expected [low, high] with 0 < low <= high, got [{lo}, {hi}]"),
                );
            }
            if c.tcp_tw_reuse > 2 {
                return err(&f("tcp_tw_reuse"), "must be 0, 1 or 2".into());
            }
            if c.syn_retries == 0 || c.syn_retries > 12 {
                return err(&f("syn_retries"), "must be in 1..=12".into());
            }
            for (k, v) in [
                ("rtt_us", c.rtt_us),
                ("rtt_jitter_us", c.rtt_jitter_us),
                ("time_wait_s", c.time_wait_s),
                ("connect_timeout_ms", c.connect_timeout_ms),
                ("hold_ms", c.hold_ms),
            ] {
                if !(v >= 0.0 && v.is_finite()) {
                    return err(&f(k), format!("must be a non-negative number, got {v}"));
                }
            }
            if !positive(c.udp_timeout_ms) {
                return err(&f("udp_timeout_ms"), "must be positive".into());
            }
            if c.udp_attempts == 0 {
                return err(&f("udp_attempts"), "must be at least 1".into());
            }
            if c.sockets == 0 || c.sockets as u64 > (hi - lo) as u64 + 1 {
                return err(
                    &f("sockets"),
                    "must be between 1 and the size of the port range".into(),
                );
            }
        }
        for (i, ph) in self.phases.iter().enumerate() {
            if !(ph.start_s >= 0.0 && ph.end_s > ph.start_s) {
                return err(
                    &format!("phases[{i}].end_s"),
                    format!(
                        "a phase needs 0 <= start_s < end_s, got {}..{}",
                        ph.start_s, ph.end_s
                    ),
                );
            }
        }
        let initial = self.initial_pods();
        for (i, ev) in self.events.iter().enumerate() {
            if !non_negative(ev.at_s) {
                return err(&format!("events[{i}].at_s"), "must be non-negative".into());
            }
            if ev.server == 0 || ev.server > initial {
                return err(
                    &format!("events[{i}].server"),
                    format!("no initial pod {} (there are {initial})", ev.server),
                );
            }
            if matches!(ev.action, Action::Weight | Action::Add) && ev.weight.is_none() {
                return err(
                    &format!("events[{i}].weight"),
                    format!("`{:?}` needs a weight", ev.action).to_lowercase(),
                );
            }
        }
        let mut probe = rvs_core::sysctl::Sysctls::default();
        for (k, v) in &self.engine.sysctls {
            probe
                .set(k, &v.to_string())
                .map_err(|m| (format!("engine.sysctls.{k}"), m))?;
        }
        for (i, v) in self.variants.iter().enumerate() {
            for (k, val) in &v.sysctls {
                probe
                    .set(k, &val.to_string())
                    .map_err(|m| (format!("variants[{i}].sysctls.{k}"), m))?;
            }
        }
        for (i, cp) in self.custom_profiles.iter().enumerate() {
            if cp.kernel.parse::<rvs_core::Profile>().is_err() {
                return err(
                    &format!("custom_profiles[{i}].kernel"),
                    format!(
                        "unknown kernel '{}' (expected safe, linux-4.19, linux-5.9 or linux-5.16)",
                        cp.kernel
                    ),
                );
            }
            for (k, val) in &cp.sysctls {
                probe
                    .set(k, &val.to_string())
                    .map_err(|m| (format!("custom_profiles[{i}].sysctls.{k}"), m))?;
            }
        }
        if let Err(m) = crate::profile::select(self, &[]) {
            return err("profiles", m);
        }
        Ok(())
    }

    /// Number of pods at the start.
    pub fn initial_pods(&self) -> u32 {
        if self.service.addresses.is_empty() {
            self.service.replicas
        } else {
            self.service.addresses.len() as u32
        }
    }

    /// The built-in `incident` scenario (see [`crate::builtin`]).
    pub fn incident() -> Scenario {
        Scenario::from_toml(crate::builtin::INCIDENT, "<built-in incident>")
            .expect("the built-in incident scenario parses")
    }

    /// The built-in `vm-incident` scenario (see [`crate::builtin`]).
    pub fn vm_incident() -> Scenario {
        Scenario::from_toml(crate::builtin::VM_INCIDENT, "<built-in vm-incident>")
            .expect("the built-in vm-incident scenario parses")
    }
}

/// 1-based line and column of byte offset `at`.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The header of the table a line belongs to: (`name`, is an array of tables, index).
fn table_of(src: &str, line_start: usize) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut current = None;
    let mut off = 0;
    for l in src.split_inclusive('\n') {
        if off > line_start {
            break;
        }
        let t = l.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            current = Some(format!("{name}[{n}]"));
            *n += 1;
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            current = Some(name.trim().to_string());
        }
        off += l.len();
    }
    current
}

/// The field path of the key on the line containing byte offset `at`.
fn field_at(src: &str, at: usize) -> Option<String> {
    let at = at.min(src.len());
    let start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = src[start..].lines().next().unwrap_or("");
    let t = line.trim();
    if t.starts_with('[') {
        return t
            .trim_matches(|c| c == '[' || c == ']')
            .split(']')
            .next()
            .map(|s| s.trim().to_string());
    }
    let key = t.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() || t.find('=').is_none() {
        return table_of(src, start);
    }
    Some(match table_of(src, start) {
        Some(tab) => format!("{tab}.{key}"),
        None => key.to_string(),
    })
}

/// Finds the line of a field path like `clients[1].port_range` or `service.replicas`.
fn locate(src: &str, path: &str) -> Option<(usize, usize)> {
    let (table, key) = match path.rsplit_once('.') {
        Some((t, k)) => (Some(t), k),
        None => (None, path),
    };
    let key = key.split('[').next().unwrap_or(key);
    let mut off = 0;
    for l in src.split_inclusive('\n') {
        let t = l.trim_start();
        let k = t.split('=').next().unwrap_or("").trim();
        if t.contains('=') && k == key && table_of(src, off).as_deref() == table {
            return Some(line_col(src, off + (l.len() - t.len())));
        }
        // A sysctl inside an inline table: `sysctls = { name = v }`.
        if let Some(t) = table
            && let Some((outer, inner)) = t.rsplit_once('.')
            && k == inner
            && table_of(src, off).as_deref() == Some(outer)
            && let Some(pos) = l.find(key)
        {
            return Some(line_col(src, off + pos));
        }
        off += l.len();
    }
    table.and_then(|t| locate_table(src, t))
}

fn locate_table(src: &str, table: &str) -> Option<(usize, usize)> {
    let mut off = 0;
    for l in src.split_inclusive('\n') {
        let t = l.trim();
        if t.starts_with('[') && table_of(src, off).as_deref() == Some(table) {
            return Some(line_col(src, off));
        }
        off += l.len();
    }
    None
}

fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

fn non_negative(v: f64) -> bool {
    v >= 0.0 && v.is_finite()
}

/// Seconds to virtual nanoseconds.
pub fn ns(secs: f64) -> u64 {
    (secs * 1e9).round().max(0.0) as u64
}
