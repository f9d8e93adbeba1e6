//! From EndpointSlices to the endpoints of one ServicePort, and which of them may take new
//! connections: kube-proxy's `endpointslicecache.go` and `topology.go`
//! (`CategorizeEndpoints`), with the `safe` policy where rvs departs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use rvs_control::config::EndpointPolicy;

/// Most endpoints and ports in one slice (the API server's own limits); a slice above them
/// is skipped as malformed.
pub const MAX_SLICE_ENDPOINTS: usize = 1000;
/// See [`MAX_SLICE_ENDPOINTS`].
pub const MAX_SLICE_PORTS: usize = 100;

/// One endpoint of a ServicePort, as kube-proxy reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `addresses[0]` (the only one kube-proxy uses).
    pub addr: IpAddr,
    /// The slice port's number (the resolved targetPort).
    pub port: u16,
    /// `conditions.ready`, true when unset.
    pub ready: bool,
    /// `conditions.serving`, true when unset.
    pub serving: bool,
    /// `conditions.terminating`, false when unset.
    pub terminating: bool,
    /// `nodeName` is this node.
    pub local: bool,
    /// `hints.forZones`, `None` without hints.
    pub zones: Option<Vec<String>>,
}

/// Which endpoints a virtual server draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every endpoint (traffic policy `Cluster`).
    Cluster,
    /// This node's endpoints only (traffic policy `Local`).
    Local,
}

/// The endpoints of the ServicePort named `port_name` with protocol `proto`, of one address
/// family, from the slices of its Service; sorted by address and port. Malformed entries are
/// skipped and described in `problems`.
pub fn endpoints_for(
    slices: &[&EndpointSlice],
    v6: bool,
    port_name: &str,
    proto: &str,
    node: &str,
    problems: &mut Vec<String>,
) -> Vec<Endpoint> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let mut by_addr: BTreeMap<(IpAddr, u16), Endpoint> = BTreeMap::new();
    for s in slices {
        if s.address_type != family {
            continue;
        }
        let name = s.metadata.name.as_deref().unwrap_or("");
        let ports = s.ports.as_deref().unwrap_or(&[]);
        if s.endpoints.len() > MAX_SLICE_ENDPOINTS || ports.len() > MAX_SLICE_PORTS {
            problems.push(format!(
                "EndpointSlice {name}: {} endpoints and {} ports is above the limits ({MAX_SLICE_ENDPOINTS}, {MAX_SLICE_PORTS}); skipped",
                s.endpoints.len(),
                ports.len()
            ));
            continue;
        }
        for p in ports {
            // A port without a name is not matched (kube-proxy's `addEndpoints`); a
            // single-port Service's port is named "".
            let Some(pname) = p.name.as_deref() else {
                continue;
            };
            if pname != port_name || p.protocol.as_deref().unwrap_or("TCP") != proto {
                continue;
            }
            let port = match p.port {
                Some(n) if (1..=65535).contains(&n) => n as u16,
                Some(n) => {
                    problems.push(format!(
                        "EndpointSlice {name}: port {port_name:?} has number {n}; skipped"
                    ));
                    continue;
                }
                None => continue,
            };
            for ep in &s.endpoints {
                let Some(a) = ep.addresses.first() else {
                    continue;
                };
                let addr = match a.parse::<IpAddr>() {
                    Ok(x) if x.is_ipv6() == v6 && !x.is_unspecified() && !x.is_multicast() => x,
                    _ => {
                        problems.push(format!(
                            "EndpointSlice {name}: endpoint address {a:?} is not a unicast {family} address; skipped"
                        ));
                        continue;
                    }
                };
                let c = ep.conditions.as_ref();
                let e = Endpoint {
                    addr,
                    port,
                    ready: c.and_then(|c| c.ready).unwrap_or(true),
                    serving: c.and_then(|c| c.serving).unwrap_or(true),
                    terminating: c.and_then(|c| c.terminating).unwrap_or(false),
                    local: ep.node_name.as_deref() == Some(node),
                    zones: ep.hints.as_ref().and_then(|h| {
                        h.for_zones
                            .as_ref()
                            .map(|z| z.iter().map(|z| z.name.clone()).collect())
                    }),
                };
                // The same address and port in two slices: the copy that is not
                // terminating wins (kube-proxy's `endpointsMapFromEndpointInfo`).
                match by_addr.get(&(addr, port)) {
                    Some(old) if !old.terminating || e.terminating => {}
                    _ => {
                        by_addr.insert((addr, port), e);
                    }
                }
            }
        }
    }
    by_addr.into_values().collect()
}

/// Whether each endpoint takes new connections, for a virtual server drawing from `scope`:
///
/// * `Cluster`: ready endpoints, narrowed to this node's zone when every ready endpoint has
///   zone hints and one names the zone (`trafficDistribution: PreferClose`);
/// * `Local`: ready endpoints on this node (topology does not apply);
/// * with none, `compat` falls back to the serving terminating endpoints of the scope
///   (KEP-1669, kube-proxy's behaviour); `safe` does not: a terminating endpoint never takes
///   a new connection, and the virtual server refuses them until an endpoint is ready.
///
/// Endpoints outside the scope are `false`.
pub fn select(
    eps: &[Endpoint],
    scope: Scope,
    zone: Option<&str>,
    policy: EndpointPolicy,
) -> Vec<bool> {
    let in_scope = |e: &Endpoint| scope == Scope::Cluster || e.local;
    let ready = |e: &Endpoint| in_scope(e) && e.ready;
    let by_zone = scope == Scope::Cluster
        && zone.is_some_and(|z| {
            let mut readies = eps.iter().filter(|e| ready(e)).peekable();
            readies.peek().is_some()
                && eps.iter().filter(|e| ready(e)).all(|e| e.zones.is_some())
                && eps
                    .iter()
                    .filter(|e| ready(e))
                    .any(|e| e.zones.iter().flatten().any(|n| n == z))
        });
    let mut out: Vec<bool> = eps
        .iter()
        .map(|e| {
            ready(e) && (!by_zone || e.zones.iter().flatten().any(|n| Some(n.as_str()) == zone))
        })
        .collect();
    if policy == EndpointPolicy::Compat && !out.contains(&true) {
        for (o, e) in out.iter_mut().zip(eps) {
            *o = in_scope(e) && e.serving && e.terminating;
        }
    }
    out
}
