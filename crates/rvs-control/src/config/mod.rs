//! The daemon's TOML config file: schema, whole-file validation with errors that name the
//! file, line and field, and [`diff`] against a running engine.
//!
//! ```toml
//! [engine]
//! profile = "safe"              # safe | linux-4.19 | linux-5.9 | linux-5.16
//! conn_max = 1048576            # bound of the connection table (default: from memory)
//! seed = 1                      # hash / random seed
//! netfilter_conntrack = false   # kernel profiles only: model conntrack on the node
//! fullnat_addrs = ["10.255.1.1", "fd00:255:1::1"]   # local addresses of full NAT
//!
//! [sysctl]                      # kernel names, with or without "net.ipv4.vs."
//! conn_reuse_mode = 1
//! "net.ipv4.vs.expire_nodest_conn" = 1
//!
//! [timeouts]                    # ipvsadm --set tcp tcpfin udp
//! tcp = 900
//! tcpfin = 120
//! udp = 300
//!
//! [dataplane]
//! tun_name = "rvs0"
//! tun_addrs = ["10.255.255.1/24", "fd72:7673::1/64"]
//! tunnel_src = ["10.255.255.2", "fd72:7673::2"]   # outer source of IPIP / IP6IP6
//! admin_socket = "/run/rvs/rvs.sock"
//! http_listen = "127.0.0.1:9180"                  # "" disables the HTTP endpoint
//! output = "raw"                # raw (raw sockets, the default) | packet (frames to resolved
//!                               # next hops, raw sockets for the rest) | tun (write back to the TUN)
//! output_mark = 0x7373          # SO_MARK of the raw output sockets (not 0)
//! snapshot_ms = 200             # engine state written next to the admin socket this often,
//!                               # for crash recovery (0: off, and the TUN is not kept)
//!
//! [[service]]
//! proto = "tcp"                 # tcp | udp | sctp   (or fwmark = N, ipv6 = false)
//! vip = "10.0.0.100"
//! port = 80
//! scheduler = "rr"
//! # persistent = 300            # seconds; netmask = "255.255.255.0" (IPv6: 64)
//! # sched_flags = ["sh-port"]   # flag-1..3, sh-fallback, sh-port, mh-fallback, mh-port
//!
//! [[service.real_server]]
//! addr = "10.2.1.2"
//! port = 80
//! weight = 1
//! forward = "masq"              # masq | route | tunnel | fullnat (default masq)
//! # u_threshold = 0, l_threshold = 0
//! ```
//!
//! Sysctls and timeouts are declarative: a knob not in the file takes its kernel default on
//! load and on every reload (a value set at run time with `rvs sysctl` is reset by a reload).
//! Services and real servers are declarative too: a reload removes what the file no longer
//! lists, including what `rvs adm` added at run time, but not the services an attached driver
//! owns (the `[kubernetes]` section's, [`KubernetesSection`]).

mod diff;
mod kubernetes;
mod raw;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rvs_core::command::{Command, Timeouts};
use rvs_core::dest::DestConfig;
use rvs_core::profile::Profile;
use rvs_core::service::ServiceConfig;
use rvs_core::sysctl::Sysctls;
use rvs_core::{Engine, EngineConfig, Instant};

pub use diff::{Running, VirtualServer, describe, diff, diff_service};
pub use kubernetes::{EndpointPolicy, KubernetesSection};
pub use raw::{KUBERNETES_RULE_PRIORITY, SCHED_FLAGS, default_conn_max, sched_flag};

/// An error in a config file: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// Line, from 1 (0 when the error is not tied to a place, e.g. the file cannot be read).
    pub line: usize,
    /// Column, from 1 (0 when unknown).
    pub column: usize,
    /// The field, as a path (`service[1].real_server[0].weight`), or the key found on the line.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where a value came from in the file (for error messages).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// Field path.
    pub field: String,
}

/// The `[engine]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSection {
    /// Behaviour profile.
    pub profile: Profile,
    /// Bound of the connection table.
    pub conn_max: u32,
    /// `conn_tab_bits` (only reported, as `size=` in listings).
    pub conn_tab_bits: u8,
    /// Seed of the table hash and the random source.
    pub seed: u64,
    /// Kernel profiles: whether netfilter conntrack tracks the flows.
    pub netfilter_conntrack: bool,
    /// Local addresses of full NAT.
    pub fullnat_addrs: Vec<IpAddr>,
    /// The `mh` scheduler's table (our extension): a prime size and a hash seed, so every
    /// balancer with the same seed and servers picks the same server. `None`: the kernel's
    /// 4093 slots and keys.
    pub maglev: Option<rvs_core::sched::MaglevConfig>,
}

/// The `[dataplane]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataplaneSection {
    /// TUN device name.
    pub tun_name: String,
    /// Addresses of the TUN device (with prefix length).
    pub tun_addrs: Vec<(IpAddr, u8)>,
    /// Outer source of tunnelled packets, per family (the address after the TUN address when
    /// not given). It is routed into the TUN, never assigned to the host: the kernel drops a
    /// received packet whose source is one of its own addresses.
    pub tunnel_src: Vec<IpAddr>,
    /// MTU of the TUN device.
    pub tun_mtu: u32,
    /// Transmit queue length of the TUN device (the kernel's queue towards the daemon).
    pub txqueuelen: u32,
    /// MTU of the path to tunnel real servers: an encapsulated packet above it is answered
    /// with "fragmentation needed" / "packet too big".
    pub tunnel_mtu: u32,
    /// Admin socket path.
    pub admin_socket: PathBuf,
    /// HTTP admin endpoint (`None`: disabled).
    pub http_listen: Option<SocketAddr>,
    /// Routing table of the reply-steering rules.
    pub reply_table: u32,
    /// Real servers inside these prefixes have their replies steered by one rule per
    /// prefix (`from PREFIX`) instead of one per address, protocol and port: what a
    /// Kubernetes node needs with thousands of endpoints (the pod network). Their other
    /// traffic then crosses the daemon too, which writes it back unchanged.
    pub reply_prefixes: Vec<(IpAddr, u8)>,
    /// Priority of the reply-steering rules.
    pub rule_priority: u32,
    /// Packets read per batch.
    pub batch: usize,
    /// How processed packets go back to the kernel.
    pub output: Output,
    /// Firewall mark (`SO_MARK`) on the raw output sockets. A rule `fwmark MARK lookup main`
    /// keeps the daemon's own packets out of the TUN, so that the director's locally
    /// generated ICMP errors (about packets the daemon forwarded) can be steered into it.
    pub output_mark: u32,
    /// Milliseconds between two snapshots of the engine state for crash recovery (written
    /// by a forked child, next to the admin socket); 0 turns crash recovery off.
    pub snapshot_ms: u32,
}

/// How the data plane hands processed packets back to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The fastest (opt-in): Ethernet frames on an `AF_PACKET` socket for
    /// destinations whose next hop the kernel has resolved (a sendmmsg(2) per batch, no IP
    /// output pass in the director's kernel), and `Raw` for every other packet. The frames
    /// bypass the director's IP output path (netfilter `OUTPUT`/`POSTROUTING`, IPsec
    /// policies, cgroup egress BPF).
    Packet,
    /// The default: raw `IPPROTO_RAW` sockets, a sendmmsg(2) per batch: sent as locally
    /// generated packets, through the director's output routing, netfilter and neighbour
    /// code.
    Raw,
    /// One write(2) per packet to the TUN: the kernel receives them as from the TUN and
    /// forwards them.
    Tun,
}

/// One `[[service]]` with its real servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service.
    pub cfg: ServiceConfig,
    /// Its real servers, in file order.
    pub dests: Vec<DestConfig>,
    /// Where the service was declared.
    pub origin: Origin,
    /// Where each real server was declared.
    pub dest_origins: Vec<Origin>,
}

/// A validated config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// `[engine]`.
    pub engine: EngineSection,
    /// Every sysctl (kernel defaults overlaid with `[sysctl]`).
    pub sysctls: Sysctls,
    /// Timeouts (kernel defaults overlaid with `[timeouts]`).
    pub timeouts: Timeouts,
    /// `[dataplane]`.
    pub dataplane: DataplaneSection,
    /// `[[service]]`s in file order.
    pub services: Vec<ServiceEntry>,
    /// `[kubernetes]`: the node's service proxy is on.
    pub kubernetes: Option<KubernetesSection>,
    /// What the command line overrides ([`Config::with_overrides`]), kept for reloads.
    pub overrides: Overrides,
    /// Whether the file sets `dataplane.rule_priority`.
    rule_priority_given: bool,
    /// Lines of the sections and fields that need a restart to change (for reload errors).
    restart_origins: Vec<(&'static str, Origin)>,
}

/// Settings given on the command line (`rvs daemon --kubernetes`,
/// `--service-proxy-name`) that override the file's, at start and on every reload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Turn the Kubernetes service proxy on (a `[kubernetes]` section with its defaults
    /// when the file has none).
    pub kubernetes: bool,
    /// `kubernetes.service_proxy_name` (implies `kubernetes`).
    pub service_proxy_name: Option<String>,
}

/// The timeouts of a fresh engine (the kernel's: TCP 900 s, FIN 120 s, UDP 300 s).
pub fn default_timeouts() -> Timeouts {
    Engine::new(EngineConfig::default()).timeouts()
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.into(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// The config with the command line's overrides applied.
    pub fn with_overrides(mut self, o: Overrides) -> Config {
        if (o.kubernetes || o.service_proxy_name.is_some()) && self.kubernetes.is_none() {
            self.kubernetes = Some(KubernetesSection::default());
            if !self.rule_priority_given {
                self.dataplane.rule_priority = KUBERNETES_RULE_PRIORITY;
            }
        }
        if let (Some(n), Some(k)) = (&o.service_proxy_name, &mut self.kubernetes) {
            k.service_proxy_name = Some(n.clone());
        }
        self.overrides = o;
        self
    }

    /// Validates the text of a file; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg = raw::parse(path, text)?;
        cfg.check_with_engine()?;
        Ok(cfg)
    }

    /// One line per `[sysctl]` knob that the file sets away from its default but that has no
    /// effect in rvs (`rvs_core::sysctl::inert_reason`); the daemon logs them on load and on
    /// every reload, so a setting that does nothing never goes unnoticed.
    pub fn inert_sysctls(&self) -> Vec<String> {
        let defaults = Sysctls::default();
        self.sysctls
            .list()
            .into_iter()
            .zip(defaults.list())
            .filter(|((_, v), (_, d))| v != d)
            .filter_map(|((n, v), _)| {
                let why = rvs_core::sysctl::inert_reason(&n)?;
                Some(format!(
                    "[sysctl] {n} = {v} is stored, but has no effect: {why}"
                ))
            })
            .collect()
    }

    /// The engine configuration (a `--profile` given on the command line overrides the file).
    pub fn engine_config(&self, profile: Option<Profile>) -> EngineConfig {
        EngineConfig {
            profile: profile.unwrap_or(self.engine.profile),
            sysctls: self.sysctls.clone(),
            conn_max: self.engine.conn_max,
            conn_tab_bits: self.engine.conn_tab_bits,
            seed: self.engine.seed,
            start: Instant::ZERO,
            netfilter_conntrack: self.engine.netfilter_conntrack,
            fullnat_addrs: self.engine.fullnat_addrs.clone(),
            sched: rvs_core::sched::SchedOptions {
                maglev: self.engine.maglev,
            },
            ..EngineConfig::default()
        }
    }

    /// The commands that build the file's services on an empty engine, with their origins.
    pub fn commands(&self) -> Vec<(Command, Origin)> {
        let mut v = Vec::new();
        for s in &self.services {
            v.push((Command::AddService(s.cfg.clone()), s.origin.clone()));
            for (d, o) in s.dests.iter().zip(&s.dest_origins) {
                v.push((Command::AddDest(s.cfg.key, *d), o.clone()));
            }
        }
        v
    }

    /// Applies the whole file to a scratch engine: every refusal the running engine could
    /// give (duplicate services or real servers, mixed families, thresholds, Maglev limits)
    /// is found here, before anything touches the running state.
    fn check_with_engine(&self) -> Result<(), ConfigError> {
        let mut e = Engine::new(self.engine_config(None));
        for (cmd, origin) in self.commands() {
            if let Err(err) = e.apply(Instant::ZERO, cmd) {
                return Err(self.error_at(&origin, err.to_string()));
            }
        }
        Ok(())
    }

    /// An error at an origin of this file.
    pub fn error_at(&self, o: &Origin, message: String) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            line: o.line,
            column: o.column,
            field: o.field.clone(),
            message,
        }
    }

    /// The first setting that differs from `running` and cannot change without a restart
    /// (the table bound and seed, full-NAT addresses, the whole `[dataplane]` section), as an
    /// error naming this file's line and field.
    pub fn restart_needed(&self, running: &Config) -> Option<ConfigError> {
        let e = (&self.engine, &running.engine);
        let d = (&self.dataplane, &running.dataplane);
        let changed: [(&str, bool); 6] = [
            ("engine.conn_max", e.0.conn_max != e.1.conn_max),
            (
                "engine.conn_tab_bits",
                e.0.conn_tab_bits != e.1.conn_tab_bits,
            ),
            ("engine.seed", e.0.seed != e.1.seed),
            (
                "engine.fullnat_addrs",
                e.0.fullnat_addrs != e.1.fullnat_addrs,
            ),
            ("dataplane", d.0 != d.1),
            ("kubernetes", self.kubernetes != running.kubernetes),
        ];
        let (name, _) = changed.into_iter().find(|(_, c)| *c)?;
        let origin = self
            .restart_origins
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, o)| o.clone())
            .unwrap_or(Origin {
                line: 0,
                column: 0,
                field: name.into(),
            });
        Some(self.error_at(
            &origin,
            format!("`{name}` differs from the running daemon's and cannot change on reload; restart the daemon to change it"),
        ))
    }
}

#[cfg(test)]
mod tests;
