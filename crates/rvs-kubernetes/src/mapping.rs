//! From one Service and its EndpointSlices to virtual servers: kube-proxy's IPVS proxier
//! (`syncProxyRules`), per ServicePort and address family.
//!
//! | Address | Port | Endpoints | Forwarding |
//! |---|---|---|---|
//! | each `clusterIPs` entry | `port` | `internalTrafficPolicy` | NAT (the client's source is kept) |
//! | each `externalIPs` entry | `port` | `externalTrafficPolicy` | `Local`: NAT; `Cluster`: full NAT* |
//! | each `status.loadBalancer.ingress[].ip` (`ipMode` unset or `VIP`) | `port` | `externalTrafficPolicy` | as above |
//! | each node address (`node_port_addresses`) | `nodePort` | `externalTrafficPolicy` | as above |
//!
//! \* kube-proxy masquerades external traffic of `Cluster` services so that replies from an
//! endpoint on another node come back through this one; rvs's equivalent is full NAT with
//! the engine's `fullnat_addrs` as sources. Without a full-NAT address of the family the
//! virtual server uses NAT, which works when this node is on the endpoints' return path.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use rvs_control::config::{EndpointPolicy, VirtualServer, sched_flag};
use rvs_control::proto::SourceRanges;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::sched;
use rvs_core::service::{Protocol, ServiceConfig, ServiceFlags, ServiceKey};

use crate::endpoints::{Scope, endpoints_for, select};

/// The label that hands a Service to another proxy.
pub const LABEL_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";
/// The label the EndpointSlice controller puts on a headless Service's slices.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The label that ties a slice to its Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Annotation (rvs's own): the Service's scheduler, e.g. `mh`, `wlc`.
pub const ANN_SCHEDULER: &str = "rvs.io/scheduler";
/// Annotation (rvs's own): the scheduler's flags, comma separated (`mh-port,mh-fallback`).
pub const ANN_SCHED_FLAGS: &str = "rvs.io/scheduler-flags";
/// Most ports a Service may have before it is skipped as malformed.
pub const MAX_SERVICE_PORTS: usize = 1000;
/// The API's default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

/// What the mapping needs to know about this node and the proxy's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This node's name (endpoints with this `nodeName` are local).
    pub node_name: String,
    /// This node's `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
    /// Addresses NodePorts listen on (already filtered by `node_port_addresses`).
    pub node_port_addrs: Vec<IpAddr>,
    /// Node-wide scheduler.
    pub scheduler: String,
    /// Endpoint policy.
    pub policy: EndpointPolicy,
    /// Only Services with this proxy-name label (`None`: only those without the label).
    pub service_proxy_name: Option<String>,
    /// Whether the engine has a full-NAT source address of each family (IPv4, IPv6).
    pub fullnat: [bool; 2],
}

/// Why a Service gets no virtual server at all (not an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// `clusterIP: None` or empty, or the headless label.
    Headless,
    /// `type: ExternalName`.
    ExternalName,
    /// Its proxy-name label names another proxy (or none when rvs wants its own name).
    OtherProxy,
}

/// A problem in an object: a reason label (for the metric) and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Label of `rvs_kubernetes_invalid_total{reason}`.
    pub reason: &'static str,
    /// For the log.
    pub message: String,
}

/// The per-Service health-check node port (`type: LoadBalancer`, `externalTrafficPolicy:
/// Local`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// The port.
    pub port: u16,
    /// Distinct addresses of this node's ready endpoints.
    pub local_endpoints: usize,
}

/// One Service's virtual servers and what else was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    /// Virtual servers, each with every endpoint of its scope: weight 1 for those that take
    /// new connections, 0 for the others (draining or not ready: established flows continue).
    pub vss: Vec<VirtualServer>,
    /// Problems; the parts they concern were skipped.
    pub problems: Vec<Problem>,
    /// The health-check node port, if the Service has one.
    pub health: Option<HealthCheck>,
    /// Virtual servers with a `Local` policy and no local endpoint while others exist
    /// (internal, external), for `kubeproxy_sync_proxy_rules_no_local_endpoints_total`.
    pub no_local: [bool; 2],
    /// Endpoints that are terminating and still carry weight (compat's fallback).
    pub terminating_weighted: usize,
    /// `loadBalancerSourceRanges`: the prefixes each LoadBalancer-IP virtual server accepts
    /// new packets from (enforced by the data plane's source filter).
    pub source_ranges: SourceRanges,
}

fn problem(v: &mut Vec<Problem>, reason: &'static str, message: String) {
    v.push(Problem { reason, message });
}

/// Whether the proxy handles this Service at all.
pub fn ignored(svc: &Service, s: &Settings) -> Option<Ignored> {
    let labels = svc.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k));
    match (&s.service_proxy_name, label(LABEL_PROXY_NAME)) {
        (None, Some(_)) => return Some(Ignored::OtherProxy),
        (Some(want), got) if got != Some(want) => return Some(Ignored::OtherProxy),
        _ => {}
    }
    if label(LABEL_HEADLESS).is_some() {
        return Some(Ignored::Headless);
    }
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return Some(Ignored::ExternalName);
    }
    match spec.cluster_ip.as_deref() {
        None | Some("") | Some("None") => Some(Ignored::Headless),
        _ => None,
    }
}

fn protocol(p: Option<&str>) -> Option<Protocol> {
    match p.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// The scheduler and flags of a Service: its annotations if valid, else the node's default.
fn scheduling(svc: &Service, s: &Settings, problems: &mut Vec<Problem>) -> (String, u32) {
    let ann = svc.metadata.annotations.as_ref();
    let default_flags = |name: &str| {
        // kube-proxy sets the fallback flag with mh (its `FlagSourceHash`).
        if name == "mh" {
            ServiceFlags::SCHED1
        } else {
            0
        }
    };
    let mut name = s.scheduler.clone();
    if let Some(a) = ann.and_then(|a| a.get(ANN_SCHEDULER)) {
        let a = a.trim();
        if sched::NAMES.contains(&a) {
            name = a.to_string();
        } else {
            problem(
                problems,
                "bad_annotation",
                format!(
                    "annotation {ANN_SCHEDULER}={a:?} is not a scheduler (one of: {}); using {name}",
                    sched::NAMES.join(", ")
                ),
            );
        }
    }
    let mut flags = default_flags(&name);
    if let Some(a) = ann.and_then(|a| a.get(ANN_SCHED_FLAGS)) {
        let mut f = 0;
        let mut ok = true;
        for part in a.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match sched_flag(part) {
                Some(b) => f |= b,
                None => {
                    ok = false;
                    problem(
                        problems,
                        "bad_annotation",
                        format!(
                            "annotation {ANN_SCHED_FLAGS}: {part:?} is not a scheduler flag ({}); flags ignored",
                            rvs_control::config::SCHED_FLAGS
                        ),
                    );
                }
            }
        }
        if ok {
            flags = f;
        }
    }
    (name, flags)
}

fn ips(
    list: impl IntoIterator<Item = String>,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for a in list {
        match a.trim().parse::<IpAddr>() {
            Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() && !ip.is_loopback() => {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
            _ => problem(
                problems,
                "bad_address",
                format!("{what} {a:?} is not a unicast IP address; skipped"),
            ),
        }
    }
    out
}

/// The virtual servers of one Service (which [`ignored`] does not skip).
pub fn map_service(svc: &Service, slices: &[&EndpointSlice], s: &Settings) -> Mapped {
    let mut m = Mapped::default();
    let Some(spec) = svc.spec.as_ref() else {
        return m;
    };
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    if ports.len() > MAX_SERVICE_PORTS {
        problem(
            &mut m.problems,
            "too_large",
            format!(
                "{} ports is above the limit of {MAX_SERVICE_PORTS}; skipped",
                ports.len()
            ),
        );
        return m;
    }
    let (scheduler, flags) = scheduling(svc, s, &mut m.problems);
    let affinity = match spec.session_affinity.as_deref() {
        Some("ClientIP") => {
            let t = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            Some(match t {
                None => DEFAULT_AFFINITY_TIMEOUT,
                Some(t) if (1..=86400).contains(&t) => t as u32,
                Some(t) => {
                    problem(
                        &mut m.problems,
                        "bad_field",
                        format!(
                            "sessionAffinityConfig.clientIP.timeoutSeconds {t} is not in 1..=86400; using {DEFAULT_AFFINITY_TIMEOUT}"
                        ),
                    );
                    DEFAULT_AFFINITY_TIMEOUT
                }
            })
        }
        _ => None,
    };
    let cluster_ips = match spec.cluster_ips.as_ref().filter(|v| !v.is_empty()) {
        Some(v) => ips(v.iter().cloned(), "clusterIP", &mut m.problems),
        None => ips(
            spec.cluster_ip.iter().cloned(),
            "clusterIP",
            &mut m.problems,
        ),
    };
    let external_ips = ips(
        spec.external_ips.iter().flatten().cloned(),
        "externalIP",
        &mut m.problems,
    );
    let lb_ips = ips(
        svc.status
            .iter()
            .filter_map(|st| st.load_balancer.as_ref())
            .flat_map(|lb| lb.ingress.iter().flatten())
            // `ipMode: Proxy` means the load balancer delivers to the node itself.
            .filter(|i| matches!(i.ip_mode.as_deref(), None | Some("VIP")))
            .filter_map(|i| i.ip.clone()),
        "load balancer ingress IP",
        &mut m.problems,
    );
    let local_itp = spec.internal_traffic_policy.as_deref() == Some("Local");
    let local_etp = spec.external_traffic_policy.as_deref() == Some("Local");
    let zone = s.zone.as_deref();
    let mut local_ready: BTreeSet<IpAddr> = BTreeSet::new();
    let mut seen: HashSet<ServiceKey> = HashSet::new();
    for v6 in [false, true] {
        let Some(&cip) = cluster_ips.iter().find(|a| a.is_ipv6() == v6) else {
            continue;
        };
        let fam = |a: &&IpAddr| a.is_ipv6() == v6;
        for p in ports {
            let pname = p.name.as_deref().unwrap_or("");
            let Some(proto) = protocol(p.protocol.as_deref()) else {
                problem(
                    &mut m.problems,
                    "bad_protocol",
                    format!(
                        "port {pname:?}: protocol {:?} is not TCP, UDP or SCTP; skipped",
                        p.protocol.as_deref().unwrap_or("")
                    ),
                );
                continue;
            };
            if !(1..=65535).contains(&p.port) {
                problem(
                    &mut m.problems,
                    "bad_port",
                    format!("port {pname:?}: {} is not in 1..=65535; skipped", p.port),
                );
                continue;
            }
            let node_port = match p.node_port {
                None | Some(0) => None,
                Some(n) if (1..=65535).contains(&n) => Some(n as u16),
                Some(n) => {
                    problem(
                        &mut m.problems,
                        "bad_port",
                        format!("port {pname:?}: nodePort {n} is not in 1..=65535; ignored"),
                    );
                    None
                }
            };
            let eps = endpoints_for(
                slices,
                v6,
                pname,
                proto.name(),
                &s.node_name,
                &mut Vec::new(),
            );
            for e in eps.iter().filter(|e| e.local && e.ready) {
                local_ready.insert(e.addr);
            }
            let mut vs =
                |addr: IpAddr, port: u16, scope: Scope, fwd: ForwardMethod, external: bool| {
                    let key = ServiceKey::Addr { proto, addr, port };
                    if !seen.insert(key) {
                        return;
                    }
                    let mut cfg = ServiceConfig::new(key).scheduler(&scheduler).flags(flags);
                    if let Some(t) = affinity {
                        cfg = cfg.persistent(t);
                    }
                    let sel = select(&eps, scope, zone, s.policy);
                    let mut dests = Vec::new();
                    for (e, on) in eps.iter().zip(&sel) {
                        if scope == Scope::Local && !e.local {
                            continue;
                        }
                        if *on && e.terminating {
                            m.terminating_weighted += 1;
                        }
                        dests.push(
                            DestConfig::new(e.addr, e.port)
                                .fwd(fwd)
                                .weight(u32::from(*on)),
                        );
                    }
                    if scope == Scope::Local && dests.is_empty() && !eps.is_empty() {
                        m.no_local[usize::from(external)] = true;
                    }
                    m.vss.push(VirtualServer { cfg, dests });
                };
            let port = p.port as u16;
            vs(
                cip,
                port,
                if local_itp {
                    Scope::Local
                } else {
                    Scope::Cluster
                },
                ForwardMethod::Masq,
                false,
            );
            let (scope, fwd) = if local_etp {
                (Scope::Local, ForwardMethod::Masq)
            } else if s.fullnat[usize::from(v6)] {
                (Scope::Cluster, ForwardMethod::FullNat)
            } else {
                (Scope::Cluster, ForwardMethod::Masq)
            };
            for a in external_ips.iter().filter(fam) {
                vs(*a, port, scope, fwd, true);
            }
            for a in lb_ips.iter().filter(fam) {
                vs(*a, port, scope, fwd, true);
            }
            if let Some(np) = node_port {
                for a in s.node_port_addrs.iter().filter(fam) {
                    vs(*a, np, scope, fwd, true);
                }
            }
        }
    }
    // Problems of the slices, once per Service.
    let mut slice_problems = Vec::new();
    for v6 in [false, true] {
        for p in ports {
            if let Some(proto) = protocol(p.protocol.as_deref()) {
                endpoints_for(
                    slices,
                    v6,
                    p.name.as_deref().unwrap_or(""),
                    proto.name(),
                    &s.node_name,
                    &mut slice_problems,
                );
            }
        }
    }
    slice_problems.sort();
    slice_problems.dedup();
    for message in slice_problems {
        problem(&mut m.problems, "bad_endpoint", message);
    }
    if spec.type_.as_deref() == Some("LoadBalancer") && local_etp {
        if let Some(port) = spec
            .health_check_node_port
            .filter(|p| (1..=65535).contains(p))
        {
            m.health = Some(HealthCheck {
                port: port as u16,
                local_endpoints: local_ready.len(),
            });
        }
    }
    let ranges = spec.load_balancer_source_ranges.as_deref().unwrap_or(&[]);
    if !ranges.is_empty() && !lb_ips.is_empty() {
        let mut allowed = Vec::new();
        for r in ranges {
            match cidr(r) {
                Some(p) => allowed.push(p),
                None => problem(
                    &mut m.problems,
                    "bad_field",
                    format!("loadBalancerSourceRanges entry {r:?} is not ADDRESS/PREFIX; skipped"),
                ),
            }
        }
        // With no valid range left, nothing is allowed (never every source).
        for vs in &m.vss {
            if let ServiceKey::Addr { addr, .. } = vs.cfg.key {
                if lb_ips.contains(&addr) {
                    m.source_ranges.push((vs.cfg.key, allowed.clone()));
                }
            }
        }
    }
    m
}

/// `ADDRESS/PREFIX` (a plain address is a host prefix).
fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a: IpAddr = s.parse().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    (l <= if a.is_ipv4() { 32 } else { 128 }).then_some((a, l))
}
