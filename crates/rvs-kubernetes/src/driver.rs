//! The Kubernetes driver: three kube-rs watches (Services, EndpointSlices, this Node), the
//! [`Proxier`] they feed, and a sync loop that applies its commands to a [`Target`] (the
//! running daemon, through the admin protocol's `Batch` request).
//!
//! A sync runs as soon as the watches have nothing more to deliver (changes that arrive
//! together are applied together); kube-proxy's `minSyncPeriod` is in effect 0. After a
//! refused command, and every `sync_period`, a sync compares everything with the engine's
//! listing (kube-proxy's periodic full sync), which repairs what changed behind its back.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::time::{Duration, Instant, SystemTime};

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use rvs_control::config::KubernetesSection;
use rvs_control::proto::SourceRanges;
use rvs_core::command::{AdmError, Command};
use rvs_core::service::ServiceKey;
use rvs_core::snapshot::ServiceView;

use crate::health::{ExtraMetrics, Health, HealthCheckServers, KindLabel, ReasonLabel};
use crate::mapping::{LABEL_HEADLESS, LABEL_PROXY_NAME};
use crate::proxier::{Proxier, ProxierConfig};
use crate::store::Event;

/// Commands per `Batch` request: the packet thread applies one batch between two packet
/// batches, so a cold start of 50,000 Services never holds packets for long.
pub const BATCH: usize = 2048;

/// Every API request the driver makes: (API group, resource, verbs). kube-rs' watcher
/// lists (paged) and watches; nothing is read one object at a time or written. The
/// ClusterRole of `deploy/kubernetes/rbac.yaml` grants exactly these (tested).
pub const API_ACCESS: &[(&str, &str, &[&str])] = &[
    ("", "services", &["list", "watch"]),
    ("", "nodes", &["list", "watch"]),
    ("discovery.k8s.io", "endpointslices", &["list", "watch"]),
];

/// What the driver programs: the running daemon.
pub trait Target: Clone + Send + Sync + 'static {
    /// The engine's services (`Request::Services`).
    fn services(&self) -> impl Future<Output = Result<Vec<ServiceView>, String>> + Send;
    /// Applies commands in order, each on its own (`Request::Batch`): per command, `None`
    /// or the refusal.
    fn apply(
        &self,
        cmds: Vec<Command>,
    ) -> impl Future<Output = Result<Vec<Option<AdmError>>, String>> + Send;
    /// The services this driver owns, which a config reload leaves alone.
    fn set_owned(&self, keys: HashSet<ServiceKey>);
    /// Replaces the data plane's source filter (`Request::SetSourceRanges`).
    fn set_source_ranges(
        &self,
        ranges: SourceRanges,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The daemon's own metrics (text format, without `# EOF`), appended to kube-proxy's on
    /// the metrics port.
    fn metrics(&self) -> impl Future<Output = String> + Send;
}

/// How the driver is started.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// `[kubernetes]`.
    pub section: KubernetesSection,
    /// The config file's own services (never the driver's to change).
    pub file_services: HashSet<ServiceKey>,
    /// The engine's full-NAT source addresses.
    pub fullnat_addrs: Vec<IpAddr>,
}

/// This node's name: the section's, else `$NODE_NAME` (a DaemonSet sets it from
/// `spec.nodeName`), else the host name.
pub fn node_name(k: &KubernetesSection) -> String {
    if let Some(n) = &k.node_name {
        return n.clone();
    }
    if let Ok(n) = std::env::var("NODE_NAME") {
        if !n.trim().is_empty() {
            return n.trim().to_string();
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The label selector of the Service and EndpointSlice watches (kube-proxy's, or only the
/// Services labelled for this proxy).
pub fn label_selector(k: &KubernetesSection) -> String {
    match &k.service_proxy_name {
        None => format!("!{LABEL_PROXY_NAME},!{LABEL_HEADLESS}"),
        Some(n) => format!("{LABEL_PROXY_NAME}={n},!{LABEL_HEADLESS}"),
    }
}

async fn client(k: &KubernetesSection) -> Result<kube::Client, String> {
    let config = match &k.kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p)
                .map_err(|e| format!("kubeconfig {}: {e}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", p.display()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no in-cluster config and no kubeconfig: {e}"))?,
    };
    kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

fn convert<K>(e: watcher::Event<K>) -> Event<K> {
    match e {
        watcher::Event::Init => Event::Init,
        watcher::Event::InitApply(o) => Event::InitApply(o),
        watcher::Event::InitDone => Event::InitDone,
        watcher::Event::Apply(o) => Event::Apply(o),
        watcher::Event::Delete(o) => Event::Delete(o),
    }
}

/// Binds an HTTP port, trying for a few seconds: during a takeover the previous daemon
/// lets go of it just after this one starts.
async fn serve(addr: SocketAddr, app: axum::Router, what: &'static str) {
    for i in 0..50 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!("{what} on http://{addr}");
                let _ = axum::serve(l, app).await;
                return;
            }
            Err(e) if i == 49 => {
                tracing::error!("{what} on {addr}: {e}");
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// One watch's item.
enum Item {
    Service(Box<Event<Service>>),
    Slice(Box<Event<EndpointSlice>>),
    Node(Box<Event<Node>>),
}

fn watch<K, F>(
    api: Api<K>,
    cfg: watcher::Config,
    wrap: F,
    kind: &'static str,
) -> impl Stream<Item = Result<Item, (&'static str, String)>> + Send
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    F: Fn(Event<K>) -> Item + Send + 'static,
{
    watcher(api, cfg).default_backoff().map(move |r| {
        r.map(|e| wrap(convert(e)))
            .map_err(|e| (kind, e.to_string()))
    })
}

/// Runs the driver until the task is dropped; an error if it cannot start (no client).
pub async fn run<T: Target>(
    opts: DriverOptions,
    target: T,
    extra: ExtraMetrics,
) -> Result<(), String> {
    let k = &opts.section;
    let node = node_name(k);
    if node.is_empty() {
        return Err("this node's name is unknown: set kubernetes.node_name or NODE_NAME".into());
    }
    let client = client(k).await?;
    let health = Health::new(Duration::from_secs(u64::from(k.sync_period)));
    let mut servers = Vec::new();
    if let Some(a) = k.healthz_listen {
        servers.push(tokio::spawn(serve(
            a,
            crate::health::health_router(health.clone()),
            "kube-proxy health (/healthz, /livez)",
        )));
    }
    if let Some(a) = k.metrics_listen {
        servers.push(tokio::spawn(serve(
            a,
            crate::health::metrics_router(health.clone(), extra),
            "kube-proxy metrics (/metrics, /proxyMode)",
        )));
    }
    struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            for t in &self.0 {
                t.abort();
            }
        }
    }
    let _servers = AbortOnDrop(servers);
    let mut hc = HealthCheckServers::new(health.clone());
    let mut proxier = Proxier::new(ProxierConfig::new(k, node.clone(), &opts.fullnat_addrs));
    tracing::info!(
        node = %node,
        policy = k.endpoint_policy.name(),
        "Kubernetes service proxy: watching Services and EndpointSlices ({})",
        label_selector(k)
    );

    let sel = label_selector(k);
    let wcfg = watcher::Config::default().labels(&sel);
    let items = futures::stream::select_all([
        watch(
            Api::<Service>::all(client.clone()),
            wcfg.clone(),
            |e| Item::Service(Box::new(e)),
            "Service",
        )
        .boxed(),
        watch(
            Api::<EndpointSlice>::all(client.clone()),
            wcfg,
            |e| Item::Slice(Box::new(e)),
            "EndpointSlice",
        )
        .boxed(),
        watch(
            Api::<Node>::all(client),
            watcher::Config::default().fields(&format!("metadata.name={node}")),
            |e| Item::Node(Box::new(e)),
            "Node",
        )
        .boxed(),
    ]);
    let mut items = pin!(items);
    let mut owned: HashSet<ServiceKey> = HashSet::new();
    let mut first = true;
    let mut seen = proxier.counters().clone();
    // kube-proxy's periodic full sync: every `sync_period` everything is compared with the
    // engine's listing again, which repairs what was changed behind the driver's back.
    let period = Duration::from_secs(u64::from(k.sync_period));
    let mut full = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first_item = tokio::select! {
            i = items.next() => match i {
                Some(i) => Some(i),
                None => return Err("the watches ended".into()),
            },
            _ = full.tick() => None,
        };
        if first_item.is_none() && proxier.ready() {
            proxier.resync();
        }
        // Everything already delivered goes into the same sync (bounded).
        let mut batch: Vec<_> = first_item.into_iter().collect();
        while batch.len() < 100_000 {
            match items.next().now_or_never() {
                Some(Some(i)) => batch.push(i),
                _ => break,
            }
        }
        for it in batch {
            match it {
                Ok(i) => {
                    health.api_ok();
                    match i {
                        Item::Service(e) => proxier.on_service(*e),
                        Item::Slice(e) => proxier.on_slice(*e),
                        Item::Node(e) => proxier.on_node(*e),
                    }
                }
                Err((kind, e)) => {
                    tracing::warn!("watch of {kind}s: {e} (the programmed state stays)");
                    health.api_error(kind, e);
                }
            }
        }
        let c = proxier.counters().clone();
        let m = &health.metrics;
        m.service_changes
            .inc_by(c.service_changes - seen.service_changes);
        m.endpoint_changes
            .inc_by(c.endpoint_changes - seen.endpoint_changes);
        if !proxier.ready() || !proxier.pending() {
            // A Node change alone (a taint) still changes /healthz.
            health.set(proxier.node_eligible(), proxier.health_checks());
            seen = c;
            continue;
        }
        health.queued();
        m.service_pending.set(proxier.pending_services() as i64);
        m.endpoint_pending
            .set((c.endpoint_changes - seen.endpoint_changes) as i64);
        let t0 = Instant::now();
        let running = if proxier.needs_running() {
            match target.services().await {
                Ok(v) => Some(
                    v.into_iter()
                        .filter(|s| !opts.file_services.contains(&s.key))
                        .collect::<Vec<_>>(),
                ),
                Err(e) => {
                    tracing::error!("cannot list the engine's services: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        } else {
            None
        };
        let r = proxier.sync(running.as_deref());
        for (key, p) in &r.problems {
            tracing::warn!(service = %key, reason = p.reason, "{}", p.message);
        }
        if let Some(ranges) = proxier.take_source_ranges() {
            if let Err(e) = target.set_source_ranges(ranges).await {
                tracing::error!("source ranges: {e}");
                proxier.resync();
            }
        }
        let now_owned = proxier.owned_keys();
        // Until the commands are in, a reload must leave the old and the new ones alone.
        target.set_owned(owned.union(&now_owned).copied().collect());
        let n = r.commands.len();
        let mut failed = 0;
        let mut cmds = r.commands.into_iter().peekable();
        while cmds.peek().is_some() {
            let chunk: Vec<Command> = cmds.by_ref().take(BATCH).collect();
            match target.apply(chunk.clone()).await {
                Ok(res) => {
                    for (cmd, e) in chunk.iter().zip(res) {
                        if let Some(e) = e {
                            failed += 1;
                            tracing::warn!("{}: {e}", rvs_control::config::describe(cmd));
                        }
                    }
                }
                Err(e) => {
                    failed += chunk.len();
                    tracing::error!("applying {} commands: {e}", chunk.len());
                }
            }
        }
        target.set_owned(now_owned.clone());
        owned = now_owned;
        if failed > 0 {
            m.commands_failed.inc_by(failed as u64);
            proxier.resync();
        }
        let took = t0.elapsed();
        if let Some(h) = &m.sync_duration {
            h.observe(took.as_secs_f64());
        }
        let now = SystemTime::now();
        for t in proxier.take_triggers() {
            if let (Some(h), Ok(t)) = (
                &m.programming_duration,
                t.parse::<k8s_openapi::jiff::Timestamp>(),
            ) {
                if let Ok(d) = now.duration_since(SystemTime::from(t)) {
                    h.observe(d.as_secs_f64());
                }
            }
        }
        let after = proxier.counters().clone();
        for (reason, n) in &after.invalid {
            let before = seen.invalid.get(reason).copied().unwrap_or(0);
            if *n > before {
                m.invalid
                    .get_or_create(&ReasonLabel {
                        reason: (*reason).into(),
                    })
                    .inc_by(n - before);
            }
        }
        seen = after;
        m.service_pending.set(0);
        m.endpoint_pending.set(0);
        m.virtual_servers.set(proxier.virtual_servers() as i64);
        let (ns, nsl) = proxier.object_counts();
        for (kind, v) in [("Service", ns), ("EndpointSlice", nsl)] {
            m.objects
                .get_or_create(&KindLabel { kind: kind.into() })
                .set(v as i64);
        }
        let nl = proxier.no_local_endpoints();
        for (p, v) in [("internal", nl[0]), ("external", nl[1])] {
            m.no_local
                .get_or_create(&crate::health::PolicyLabel {
                    traffic_policy: p.into(),
                })
                .set(v as i64);
        }
        m.terminating_weighted
            .set(proxier.terminating_weighted() as i64);
        health.updated();
        health.set(proxier.node_eligible(), proxier.health_checks());
        let hc_addrs = if k.node_port_addresses.is_empty() {
            Vec::new()
        } else {
            proxier.settings().node_port_addrs.clone()
        };
        hc.sync(proxier.health_checks(), &hc_addrs);
        if first || n > 0 || failed > 0 {
            tracing::info!(
                "sync: {} Services recomputed, {n} commands ({failed} refused) in {:.1} ms; {} virtual servers",
                r.recomputed,
                took.as_secs_f64() * 1e3,
                proxier.virtual_servers()
            );
        }
        first = false;
    }
}
