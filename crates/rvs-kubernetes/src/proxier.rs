//! The proxier: the objects seen so far, which Services changed, and the engine commands
//! that bring the virtual servers in line with them. Sans-IO: it is fed watcher events and
//! the engine's listing, and returns `rvs-control` commands; it reads no clock and opens no
//! socket, so every rule here is tested without a cluster (`tests/proxier.rs`).
//!
//! * Nothing is programmed before the Service and EndpointSlice lists are complete
//!   ([`Proxier::ready`]).
//! * The first sync (and any after a failed command) diffs the whole desired state against
//!   the engine's listing, so state adopted from a previous daemon (takeover, crash) is kept
//!   where it is right: no flush, established flows survive.
//! * Every later sync recomputes only the Services whose objects changed (their own object,
//!   one of their slices, or the Node's zone and addresses) and diffs them against what was
//!   programmed for them: the cost grows with what changed, not with the cluster.
//! * A relist (after a 410 or a watch error) changes only what differs from the objects
//!   already known ([`crate::store`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use rvs_control::config::{EndpointPolicy, KubernetesSection, VirtualServer, diff_service};
use rvs_control::proto::SourceRanges;
use rvs_core::command::Command;
use rvs_core::service::ServiceKey;
use rvs_core::snapshot::ServiceView;

use crate::mapping::{self, HealthCheck, LABEL_SERVICE_NAME, Problem, Settings};
use crate::store::{Change, Event, ObjKey, Store};

/// The Node label with the zone.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// The taint of a node the cluster autoscaler is about to delete (KEP-3836).
pub const TAINT_TO_BE_DELETED: &str = "ToBeDeletedByClusterAutoscaler";

/// The EndpointSlice annotation with the time of the change that caused it (the start of
/// `kubeproxy_network_programming_duration_seconds`).
pub const ANN_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Trigger times kept between two syncs (beyond, they are not measured).
const MAX_TRIGGERS: usize = 4096;

/// What the proxier is set up with.
#[derive(Clone, Debug)]
pub struct ProxierConfig {
    /// This node's name.
    pub node_name: String,
    /// Node-wide scheduler.
    pub scheduler: String,
    /// Endpoint policy.
    pub policy: EndpointPolicy,
    /// See [`KubernetesSection::service_proxy_name`].
    pub service_proxy_name: Option<String>,
    /// See [`KubernetesSection::node_port_addresses`].
    pub node_port_addresses: Vec<(IpAddr, u8)>,
    /// See [`KubernetesSection::node_addresses`].
    pub node_addresses: Vec<IpAddr>,
    /// Whether the engine has full-NAT source addresses of each family (IPv4, IPv6).
    pub fullnat: [bool; 2],
}

impl ProxierConfig {
    /// From the `[kubernetes]` section, this node's name and the engine's full-NAT addresses.
    pub fn new(k: &KubernetesSection, node_name: String, fullnat_addrs: &[IpAddr]) -> Self {
        ProxierConfig {
            node_name,
            scheduler: k.scheduler.clone(),
            policy: k.endpoint_policy,
            service_proxy_name: k.service_proxy_name.clone(),
            node_port_addresses: k.node_port_addresses.clone(),
            node_addresses: k.node_addresses.clone(),
            fullnat: [
                fullnat_addrs.iter().any(IpAddr::is_ipv4),
                fullnat_addrs.iter().any(IpAddr::is_ipv6),
            ],
        }
    }
}

/// Counters since start (the driver exports them with kube-proxy's names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Service objects that changed.
    pub service_changes: u64,
    /// EndpointSlice objects that changed.
    pub endpoint_changes: u64,
    /// Syncs that produced commands or recomputed something.
    pub syncs: u64,
    /// Problems found in objects, by reason.
    pub invalid: BTreeMap<&'static str, u64>,
    /// Virtual servers another Service already had (the first one keeps it).
    pub conflicts: u64,
}

/// The result of one sync.
#[derive(Clone, Debug, Default)]
pub struct SyncResult {
    /// Commands to apply, in order.
    pub commands: Vec<Command>,
    /// Services recomputed.
    pub recomputed: usize,
    /// Problems found, each with its Service (log them).
    pub problems: Vec<(ObjKey, Problem)>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Proxier {
    cfg: ProxierConfig,
    settings: Settings,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    slices_of: HashMap<ObjKey, BTreeSet<ObjKey>>,
    programmed: HashMap<ObjKey, Vec<VirtualServer>>,
    owner: HashMap<ServiceKey, ObjKey>,
    conflicted: BTreeSet<ObjKey>,
    dirty: BTreeSet<ObjKey>,
    all_dirty: bool,
    against_running: bool,
    health: BTreeMap<ObjKey, HealthCheck>,
    terminating_weighted: BTreeMap<ObjKey, usize>,
    no_local: BTreeMap<ObjKey, [bool; 2]>,
    source_ranges: BTreeMap<ObjKey, SourceRanges>,
    ranges_changed: bool,
    triggers: Vec<String>,
    counters: Counters,
}

fn service_of(s: &EndpointSlice) -> Option<ObjKey> {
    let name = s.metadata.labels.as_ref()?.get(LABEL_SERVICE_NAME)?;
    let ns = s.metadata.namespace.as_deref().filter(|n| !n.is_empty())?;
    (!name.is_empty()).then(|| ObjKey::new(ns, name))
}

impl Proxier {
    /// A proxier that has seen nothing yet.
    pub fn new(cfg: ProxierConfig) -> Proxier {
        let mut p = Proxier {
            settings: Settings {
                node_name: cfg.node_name.clone(),
                zone: None,
                node_port_addrs: Vec::new(),
                scheduler: cfg.scheduler.clone(),
                policy: cfg.policy,
                service_proxy_name: cfg.service_proxy_name.clone(),
                fullnat: cfg.fullnat,
            },
            cfg,
            services: Store::default(),
            slices: Store::default(),
            nodes: Store::default(),
            slices_of: HashMap::new(),
            programmed: HashMap::new(),
            owner: HashMap::new(),
            conflicted: BTreeSet::new(),
            dirty: BTreeSet::new(),
            all_dirty: true,
            against_running: true,
            health: BTreeMap::new(),
            terminating_weighted: BTreeMap::new(),
            no_local: BTreeMap::new(),
            source_ranges: BTreeMap::new(),
            ranges_changed: true,
            triggers: Vec::new(),
            counters: Counters::default(),
        };
        p.settings = p.derive_settings();
        p
    }

    fn derive_settings(&self) -> Settings {
        let node = self.node();
        let zone = node
            .and_then(|n| n.metadata.labels.as_ref())
            .and_then(|l| l.get(LABEL_ZONE))
            .cloned();
        let mut addrs: Vec<IpAddr> = if self.cfg.node_addresses.is_empty() {
            node.and_then(|n| n.status.as_ref())
                .and_then(|s| s.addresses.as_ref())
                .into_iter()
                .flatten()
                .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
                .filter_map(|a| a.address.parse().ok())
                .collect()
        } else {
            self.cfg.node_addresses.clone()
        };
        addrs.retain(|a: &IpAddr| {
            let link_local = match a {
                IpAddr::V4(v) => v.is_link_local(),
                IpAddr::V6(v) => v.is_unicast_link_local(),
            };
            !a.is_loopback()
                && !a.is_unspecified()
                && !link_local
                && (self.cfg.node_port_addresses.is_empty()
                    || self
                        .cfg
                        .node_port_addresses
                        .iter()
                        .any(|(n, l)| rvs_core::addr::in_prefix(*a, *n, *l)))
        });
        addrs.dedup();
        Settings {
            zone,
            node_port_addrs: addrs,
            ..self.settings.clone()
        }
    }

    /// This node's object, once seen.
    pub fn node(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|(k, _)| k.name == self.cfg.node_name)
            .map(|(_, n)| n)
    }

    /// Whether the Service and EndpointSlice lists have completed (nothing is programmed
    /// before).
    pub fn ready(&self) -> bool {
        self.services.listed() && self.slices.listed()
    }

    /// Whether a change waits for a sync.
    pub fn pending(&self) -> bool {
        self.all_dirty || !self.dirty.is_empty()
    }

    /// Changes waiting (Services to recompute; all of them counts as the number known).
    pub fn pending_services(&self) -> usize {
        if self.all_dirty {
            self.services.len()
        } else {
            self.dirty.len()
        }
    }

    /// Counters since start.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Services known, and EndpointSlices.
    pub fn object_counts(&self) -> (usize, usize) {
        (self.services.len(), self.slices.len())
    }

    /// The node-wide settings now (zone and NodePort addresses from the Node).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A Service event.
    pub fn on_service(&mut self, ev: Event<Service>) {
        for (k, _, _) in self.services.apply(ev) {
            self.counters.service_changes += 1;
            self.dirty.insert(k);
        }
    }

    /// An EndpointSlice event.
    pub fn on_slice(&mut self, ev: Event<EndpointSlice>) {
        let changes: Vec<Change<EndpointSlice>> = self.slices.apply(ev);
        for (k, old, new) in changes {
            self.counters.endpoint_changes += 1;
            for s in old.iter().chain(new.iter()) {
                if let Some(svc) = service_of(s) {
                    self.dirty.insert(svc.clone());
                    let set = self.slices_of.entry(svc).or_default();
                    set.remove(&k);
                }
            }
            if let Some(svc) = new.as_ref().and_then(service_of) {
                self.slices_of.entry(svc).or_default().insert(k.clone());
            }
            if let Some(t) = new
                .as_ref()
                .and_then(|s| s.metadata.annotations.as_ref())
                .and_then(|a| a.get(ANN_TRIGGER_TIME))
            {
                if self.triggers.len() < MAX_TRIGGERS {
                    self.triggers.push(t.clone());
                }
            }
        }
    }

    /// A Node event (only this node's object matters).
    pub fn on_node(&mut self, ev: Event<Node>) {
        if self.nodes.apply(ev).is_empty() {
            return;
        }
        let s = self.derive_settings();
        if s.zone != self.settings.zone || s.node_port_addrs != self.settings.node_port_addrs {
            self.all_dirty = true;
        }
        self.settings = s;
    }

    /// Whether this node may receive new traffic from load balancers: its Node exists, is
    /// not being deleted and has no `ToBeDeletedByClusterAutoscaler` taint (kube-proxy's
    /// `NodeEligible`). Before the Node is seen: eligible.
    pub fn node_eligible(&self) -> bool {
        if !self.nodes.listed() {
            return true;
        }
        let Some(n) = self.node() else {
            return false;
        };
        n.metadata.deletion_timestamp.is_none()
            && !n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| t.iter().any(|t| t.key == TAINT_TO_BE_DELETED))
    }

    /// The health-check node ports of the Services that have one.
    pub fn health_checks(&self) -> &BTreeMap<ObjKey, HealthCheck> {
        &self.health
    }

    /// Endpoints now taking new connections while terminating (only `compat` does that).
    pub fn terminating_weighted(&self) -> usize {
        self.terminating_weighted.values().sum()
    }

    /// Services with a `Local` traffic policy whose virtual servers have no local endpoint
    /// while the Service has endpoints elsewhere (internal, external).
    pub fn no_local_endpoints(&self) -> [usize; 2] {
        let mut n = [0; 2];
        for v in self.no_local.values() {
            n[0] += usize::from(v[0]);
            n[1] += usize::from(v[1]);
        }
        n
    }

    /// Every virtual server this proxier programs.
    pub fn owned_keys(&self) -> HashSet<ServiceKey> {
        self.owner.keys().copied().collect()
    }

    /// Virtual servers programmed, counted.
    pub fn virtual_servers(&self) -> usize {
        self.owner.len()
    }

    /// The whole source filter (`loadBalancerSourceRanges` of every Service) when it changed
    /// since the last call (and at the first): send it before the sync's commands, so that a
    /// new LoadBalancer IP never accepts every source.
    pub fn take_source_ranges(&mut self) -> Option<SourceRanges> {
        if !std::mem::take(&mut self.ranges_changed) {
            return None;
        }
        Some(self.source_ranges.values().flatten().cloned().collect())
    }

    /// The trigger times ([`ANN_TRIGGER_TIME`]) of the slices changed since the last call, as
    /// written (RFC 3339); take them after the sync that programmed them.
    pub fn take_triggers(&mut self) -> Vec<String> {
        std::mem::take(&mut self.triggers)
    }

    /// After a command failed: the next sync compares everything with the engine's listing
    /// again.
    pub fn resync(&mut self) {
        self.all_dirty = true;
        self.against_running = true;
        self.ranges_changed = true;
    }

    /// Whether the next sync needs the engine's listing ([`Proxier::sync`]'s `running`).
    pub fn needs_running(&self) -> bool {
        self.against_running
    }

    fn desired(&mut self, k: &ObjKey) -> (Vec<VirtualServer>, Vec<Problem>) {
        self.health.remove(k);
        self.terminating_weighted.remove(k);
        self.no_local.remove(k);
        let ranges = self.source_ranges.remove(k);
        let Some(svc) = self.services.get(k) else {
            self.ranges_changed |= ranges.is_some();
            return (Vec::new(), Vec::new());
        };
        if mapping::ignored(svc, &self.settings).is_some() {
            self.ranges_changed |= ranges.is_some();
            return (Vec::new(), Vec::new());
        }
        let slices: Vec<&EndpointSlice> = self
            .slices_of
            .get(k)
            .into_iter()
            .flatten()
            .filter_map(|s| self.slices.get(s))
            .collect();
        let m = mapping::map_service(svc, &slices, &self.settings);
        if let Some(h) = m.health.clone() {
            self.health.insert(k.clone(), h);
        }
        if m.terminating_weighted > 0 {
            self.terminating_weighted
                .insert(k.clone(), m.terminating_weighted);
        }
        if m.no_local != [false; 2] {
            self.no_local.insert(k.clone(), m.no_local);
        }
        let new_ranges = (!m.source_ranges.is_empty()).then(|| m.source_ranges.clone());
        self.ranges_changed |= new_ranges != ranges;
        if let Some(r) = new_ranges {
            self.source_ranges.insert(k.clone(), r);
        }
        (m.vss, m.problems)
    }

    /// Recomputes what changed and returns the commands. `running` is the engine's listing
    /// without the config file's services; it is needed when [`Proxier::needs_running`] (the
    /// first sync, and after [`Proxier::resync`]) and ignored otherwise.
    pub fn sync(&mut self, running: Option<&[ServiceView]>) -> SyncResult {
        let mut out = SyncResult::default();
        if !self.ready() {
            return out;
        }
        let full = self.all_dirty || (self.against_running && running.is_some());
        let mut todo: Vec<ObjKey> = if full {
            let mut v: BTreeSet<ObjKey> = self.services.iter().map(|(k, _)| k.clone()).collect();
            v.extend(self.programmed.keys().cloned());
            v.into_iter().collect()
        } else {
            std::mem::take(&mut self.dirty).into_iter().collect()
        };
        // The API server's own Service first (a node's components reach the API through it).
        if let Some(i) = todo
            .iter()
            .position(|k| k.ns == "default" && k.name == "kubernetes")
        {
            let k = todo.remove(i);
            todo.insert(0, k);
        }
        self.dirty.clear();
        self.all_dirty = false;
        let use_running = self.against_running && running.is_some();
        let running: HashMap<ServiceKey, VirtualServer> = match (use_running, running) {
            (true, Some(r)) => r
                .iter()
                .map(|v| (v.key, VirtualServer::from_view(v)))
                .collect(),
            _ => HashMap::new(),
        };
        if use_running {
            self.against_running = false;
        }
        out.recomputed = todo.len();
        let mut released = false;
        for k in &todo {
            let (want, problems) = self.desired(k);
            for p in problems {
                *self.counters.invalid.entry(p.reason).or_default() += 1;
                out.problems.push((k.clone(), p));
            }
            // Virtual servers another Service owns stay with it.
            let mut kept = Vec::with_capacity(want.len());
            for vs in want {
                match self.owner.get(&vs.cfg.key) {
                    Some(o) if o != k => {
                        self.counters.conflicts += 1;
                        self.conflicted.insert(k.clone());
                        *self.counters.invalid.entry("conflict").or_default() += 1;
                        out.problems.push((
                            k.clone(),
                            Problem {
                                reason: "conflict",
                                message: format!(
                                    "virtual server {} belongs to Service {o}; skipped",
                                    vs.cfg.key
                                ),
                            },
                        ));
                    }
                    _ => kept.push(vs),
                }
            }
            let have = self.programmed.remove(k).unwrap_or_default();
            for h in &have {
                if !kept.iter().any(|w| w.cfg.key == h.cfg.key) {
                    if !use_running {
                        diff_service(Some(h), None, &mut out.commands);
                    }
                    self.owner.remove(&h.cfg.key);
                    released = true;
                }
            }
            for w in &kept {
                let h = if use_running {
                    running.get(&w.cfg.key)
                } else {
                    have.iter().find(|h| h.cfg.key == w.cfg.key)
                };
                diff_service(h, Some(w), &mut out.commands);
                self.owner.insert(w.cfg.key, k.clone());
            }
            if !kept.is_empty() {
                self.programmed.insert(k.clone(), kept);
            }
        }
        if use_running {
            // What the engine has and no Service wants (left by a previous daemon).
            for (key, h) in &running {
                if !self.owner.contains_key(key) {
                    diff_service(Some(h), None, &mut out.commands);
                }
            }
        }
        if released && !self.conflicted.is_empty() {
            // A virtual server was given up: the Services that wanted it try again.
            let c = std::mem::take(&mut self.conflicted);
            self.dirty.extend(c);
        }
        if out.recomputed > 0 {
            self.counters.syncs += 1;
        }
        out
    }
}
