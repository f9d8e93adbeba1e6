//! The `[kubernetes]` section: rvs as a node's service proxy (the `rvs-kubernetes` driver).
//!
//! ```toml
//! [kubernetes]
//! kubeconfig = "/etc/rvs/kubeconfig"   # default: in-cluster, else $KUBECONFIG or ~/.kube/config
//! node_name = "node0"                  # default: $NODE_NAME, else the host name
//! service_proxy_name = "rvs"           # only Services labelled service.kubernetes.io/
//!                                      # service-proxy-name=rvs (default: only those without it)
//! scheduler = "rr"                     # node-wide default (a Service may say otherwise with
//!                                      # the annotation rvs.io/scheduler)
//! endpoint_policy = "safe"             # safe | compat (kube-proxy's KEP-1669 fallback)
//! node_port_addresses = ["192.0.2.0/24"]   # NodePorts on the node addresses in these
//!                                      # prefixes (default: every node address; never loopback)
//! node_addresses = ["192.0.2.10"]      # default: the Node's InternalIP and ExternalIP
//! healthz_listen = "0.0.0.0:10256"     # /healthz and /livez ("" turns it off)
//! metrics_listen = "127.0.0.1:10249"   # /metrics and /proxyMode ("" turns it off)
//! sync_period = 30                     # seconds; /healthz fails after 2 × this with a
//!                                      # change not applied
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use rvs_core::sched;

use super::ConfigError;
use super::raw::{Ctx, ip, prefix};

/// Which endpoints may receive new connections (see `rvs-kubernetes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointPolicy {
    /// Never a terminating endpoint: it gets weight 0 (its established flows continue); a
    /// Service with only terminating endpoints refuses new connections.
    Safe,
    /// kube-proxy's: with no ready endpoint in scope, the serving terminating ones take new
    /// connections (KEP-1669).
    Compat,
}

impl EndpointPolicy {
    /// The name in the file.
    pub fn name(self) -> &'static str {
        match self {
            EndpointPolicy::Safe => "safe",
            EndpointPolicy::Compat => "compat",
        }
    }
}

/// `[kubernetes]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesSection {
    /// A kubeconfig file (`None`: in-cluster, else the usual places).
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (`None`: `$NODE_NAME`, else the host name).
    pub node_name: Option<String>,
    /// Handle only Services labelled `service.kubernetes.io/service-proxy-name` = this
    /// (`None`: only Services without that label, as kube-proxy).
    pub service_proxy_name: Option<String>,
    /// Node-wide scheduler.
    pub scheduler: String,
    /// Endpoint policy.
    pub endpoint_policy: EndpointPolicy,
    /// NodePorts listen on the node addresses inside these prefixes (empty: all of them).
    pub node_port_addresses: Vec<(IpAddr, u8)>,
    /// The node's addresses (empty: the Node object's InternalIP and ExternalIP).
    pub node_addresses: Vec<IpAddr>,
    /// `/healthz` and `/livez` (kube-proxy's 10256).
    pub healthz_listen: Option<SocketAddr>,
    /// `/metrics` and `/proxyMode` (kube-proxy's 10249).
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds; a change pending for twice this makes `/healthz` fail.
    pub sync_period: u32,
}

impl Default for KubernetesSection {
    fn default() -> Self {
        KubernetesSection {
            kubeconfig: None,
            node_name: None,
            service_proxy_name: None,
            scheduler: "rr".into(),
            endpoint_policy: EndpointPolicy::Safe,
            node_port_addresses: Vec::new(),
            node_addresses: Vec::new(),
            healthz_listen: Some(SocketAddr::from(([0, 0, 0, 0], 10256))),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 10249))),
            sync_period: 30,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKubernetes {
    kubeconfig: Option<String>,
    node_name: Option<Spanned<String>>,
    service_proxy_name: Option<Spanned<String>>,
    scheduler: Option<Spanned<String>>,
    endpoint_policy: Option<Spanned<String>>,
    node_port_addresses: Option<Vec<Spanned<String>>>,
    node_addresses: Option<Vec<Spanned<String>>>,
    healthz_listen: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    sync_period: Option<Spanned<u32>>,
}

fn listen(
    c: &Ctx,
    v: &Option<Spanned<String>>,
    field: &str,
    default: Option<SocketAddr>,
) -> Result<Option<SocketAddr>, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if s.get_ref().is_empty() => Ok(None),
        Some(s) => s
            .get_ref()
            .parse()
            .map(Some)
            .map_err(|_| c.err(s, field, format!("'{}' is not ADDRESS:PORT", s.get_ref()))),
    }
}

pub(super) fn section(c: &Ctx, r: &RawKubernetes) -> Result<KubernetesSection, ConfigError> {
    let d = KubernetesSection::default();
    let non_empty = |v: &Option<Spanned<String>>, field: &str| match v {
        Some(s) if s.get_ref().trim().is_empty() => Err(c.err(s, field, "must not be empty")),
        Some(s) => Ok(Some(s.get_ref().trim().to_string())),
        None => Ok(None),
    };
    let scheduler = match &r.scheduler {
        Some(s) if sched::NAMES.contains(&s.get_ref().as_str()) => s.get_ref().clone(),
        Some(s) => {
            return Err(c.err(
                s,
                "kubernetes.scheduler",
                format!(
                    "unknown scheduler '{}' (one of: {})",
                    s.get_ref(),
                    sched::NAMES.join(", ")
                ),
            ));
        }
        None => d.scheduler,
    };
    let endpoint_policy = match &r.endpoint_policy {
        None => d.endpoint_policy,
        Some(s) => match s.get_ref().as_str() {
            "safe" => EndpointPolicy::Safe,
            "compat" => EndpointPolicy::Compat,
            other => {
                return Err(c.err(
                    s,
                    "kubernetes.endpoint_policy",
                    format!("'{other}' is not safe or compat"),
                ));
            }
        },
    };
    let mut node_port_addresses = Vec::new();
    for (i, p) in r.node_port_addresses.iter().flatten().enumerate() {
        node_port_addresses.push(prefix(
            c,
            p,
            &format!("kubernetes.node_port_addresses[{i}]"),
        )?);
    }
    let mut node_addresses = Vec::new();
    for (i, a) in r.node_addresses.iter().flatten().enumerate() {
        let f = format!("kubernetes.node_addresses[{i}]");
        let a2 = ip(c, a, &f)?;
        if a2.is_loopback() || a2.is_unspecified() || a2.is_multicast() {
            return Err(c.err(a, f, "must be a unicast address, not loopback"));
        }
        node_addresses.push(a2);
    }
    let sync_period = match &r.sync_period {
        Some(s) if !(1..=3600).contains(s.get_ref()) => {
            return Err(c.err(s, "kubernetes.sync_period", "must be in 1..=3600 seconds"));
        }
        Some(s) => *s.get_ref(),
        None => d.sync_period,
    };
    Ok(KubernetesSection {
        kubeconfig: r.kubeconfig.as_ref().map(PathBuf::from),
        node_name: non_empty(&r.node_name, "kubernetes.node_name")?,
        service_proxy_name: non_empty(&r.service_proxy_name, "kubernetes.service_proxy_name")?,
        scheduler,
        endpoint_policy,
        node_port_addresses,
        node_addresses,
        healthz_listen: listen(
            c,
            &r.healthz_listen,
            "kubernetes.healthz_listen",
            d.healthz_listen,
        )?,
        metrics_listen: listen(
            c,
            &r.metrics_listen,
            "kubernetes.metrics_listen",
            d.metrics_listen,
        )?,
        sync_period,
    })
}
