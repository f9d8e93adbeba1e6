//! kube-proxy's HTTP faces, so that load balancers, probes and dashboards written for it
//! work unchanged:
//!
//! * `/healthz` and `/livez` (default `0.0.0.0:10256`): 200 when no change has waited for a
//!   sync longer than twice the sync period; `/healthz` also needs the node to be eligible
//!   (not being deleted, no `ToBeDeletedByClusterAutoscaler` taint). kube-proxy's JSON, plus
//!   an `apiServer` object (rvs's own) that tells how long the watches have been failing:
//!   an unreachable API server leaves the last programmed state in place and is reported
//!   there, without failing the probe (every node would fail at once).
//! * `/metrics` and `/proxyMode` (default `127.0.0.1:10249`): kube-proxy's metric names,
//!   followed by the daemon's own `rvs_*` metrics; `/proxyMode` answers `ipvs`.
//! * One listener per Service health-check node port (`type: LoadBalancer`,
//!   `externalTrafficPolicy: Local`): any path, 200 when this node has a ready endpoint of
//!   the Service and the proxy is healthy, else 503, with kube-proxy's headers and
//!   tab-indented body.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::mapping::HealthCheck;
use crate::store::ObjKey;

/// `{code}` of the probe counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// HTTP status.
    pub code: String,
}

/// `{traffic_policy}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    /// `internal` or `external`.
    pub traffic_policy: String,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: String,
}

/// `{kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `Service`, `EndpointSlice` or `Node`.
    pub kind: String,
}

/// The metrics, under kube-proxy's names where it has one.
#[derive(Default)]
pub struct Metrics {
    /// `kubeproxy_sync_proxy_rules_duration_seconds`: one sync, from the recomputation to
    /// the engine's answer.
    pub sync_duration: Option<Histogram>,
    /// `kubeproxy_network_programming_duration_seconds`: from an EndpointSlice's
    /// `last-change-trigger-time` to the end of the sync that programmed it.
    pub programming_duration: Option<Histogram>,
    /// `kubeproxy_sync_proxy_rules_last_timestamp_seconds`.
    pub last_sync: Gauge<f64, AtomicU64>,
    /// `kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds`.
    pub last_queued: Gauge<f64, AtomicU64>,
    /// `kubeproxy_sync_proxy_rules_service_changes_total`.
    pub service_changes: Counter,
    /// `kubeproxy_sync_proxy_rules_service_changes_pending`.
    pub service_pending: Gauge,
    /// `kubeproxy_sync_proxy_rules_endpoint_changes_total`.
    pub endpoint_changes: Counter,
    /// `kubeproxy_sync_proxy_rules_endpoint_changes_pending`.
    pub endpoint_pending: Gauge,
    /// `kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy}` (a gauge, as
    /// kube-proxy's).
    pub no_local: Family<PolicyLabel, Gauge>,
    /// `kubeproxy_proxy_healthz_total{code}`.
    pub healthz: Family<CodeLabel, Counter>,
    /// `kubeproxy_proxy_livez_total{code}`.
    pub livez: Family<CodeLabel, Counter>,
    /// `rvs_kubernetes_invalid_total{reason}`: problems in objects (the part concerned is
    /// skipped, the rest programmed).
    pub invalid: Family<ReasonLabel, Counter>,
    /// `rvs_kubernetes_commands_failed_total`: engine commands refused (a full resync
    /// follows).
    pub commands_failed: Counter,
    /// `rvs_kubernetes_watch_errors_total{kind}`.
    pub watch_errors: Family<KindLabel, Counter>,
    /// `rvs_kubernetes_virtual_servers`.
    pub virtual_servers: Gauge,
    /// `rvs_kubernetes_objects{kind}`.
    pub objects: Family<KindLabel, Gauge>,
    /// `rvs_kubernetes_terminating_endpoints_weighted`: terminating endpoints taking new
    /// connections (only under `compat`; 0 under `safe`).
    pub terminating_weighted: Gauge,
}

fn buckets_programming() -> Vec<f64> {
    let mut b = vec![0.25, 0.5];
    b.extend((1..=59).map(f64::from));
    b.extend((12..=23).map(|i| f64::from(i) * 5.0));
    b.extend((4..=10).map(|i| f64::from(i) * 30.0));
    b
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            sync_duration: Some(Histogram::new(exponential_buckets(0.001, 2.0, 15))),
            programming_duration: Some(Histogram::new(buckets_programming())),
            ..Metrics::default()
        }
    }

    fn registry(&self) -> Registry {
        let mut r = Registry::default();
        if let Some(h) = &self.sync_duration {
            r.register(
                "kubeproxy_sync_proxy_rules_duration_seconds",
                "SyncProxyRules latency in seconds",
                h.clone(),
            );
        }
        if let Some(h) = &self.programming_duration {
            r.register(
                "kubeproxy_network_programming_duration_seconds",
                "In Cluster Network Programming Latency in seconds",
                h.clone(),
            );
        }
        r.register(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            self.last_sync.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
            "The last time a sync of proxy rules was queued",
            self.last_queued.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_service_changes",
            "Cumulative proxy rules Service changes",
            self.service_changes.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_service_changes_pending",
            "Pending proxy rules Service changes",
            self.service_pending.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_endpoint_changes",
            "Cumulative proxy rules Endpoint changes",
            self.endpoint_changes.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
            "Pending proxy rules Endpoint changes",
            self.endpoint_pending.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
            "Number of services with a Local traffic policy and no endpoints",
            self.no_local.clone(),
        );
        r.register(
            "kubeproxy_proxy_healthz",
            "Cumulative proxy healthz HTTP status",
            self.healthz.clone(),
        );
        r.register(
            "kubeproxy_proxy_livez",
            "Cumulative proxy livez HTTP status",
            self.livez.clone(),
        );
        r.register(
            "rvs_kubernetes_invalid",
            "Problems found in Kubernetes objects (the part concerned was skipped)",
            self.invalid.clone(),
        );
        r.register(
            "rvs_kubernetes_commands_failed",
            "Engine commands of a sync that were refused (a full resync follows)",
            self.commands_failed.clone(),
        );
        r.register(
            "rvs_kubernetes_watch_errors",
            "Errors of the watches on the API server",
            self.watch_errors.clone(),
        );
        r.register(
            "rvs_kubernetes_virtual_servers",
            "Virtual servers programmed from Kubernetes objects",
            self.virtual_servers.clone(),
        );
        r.register(
            "rvs_kubernetes_objects",
            "Kubernetes objects known",
            self.objects.clone(),
        );
        r.register(
            "rvs_kubernetes_terminating_endpoints_weighted",
            "Terminating endpoints that take new connections (compat policy only)",
            self.terminating_weighted.clone(),
        );
        r
    }
}

/// Where the watches stand.
#[derive(Clone, Debug, Default)]
struct Api {
    last_ok: Option<SystemTime>,
    failing_since: Option<SystemTime>,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    last_updated: SystemTime,
    oldest_queued: Option<(Instant, SystemTime)>,
    node_eligible: bool,
    api: Api,
    checks: BTreeMap<ObjKey, HealthCheck>,
}

/// The proxy's health, shared by the sync loop and the HTTP servers.
pub struct Health {
    inner: Mutex<Inner>,
    /// The metrics.
    pub metrics: Metrics,
    registry: Registry,
    timeout: Duration,
}

fn rfc3339(t: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Health {
    /// A proxy that is starting (healthy: nothing is queued yet).
    pub fn new(sync_period: Duration) -> Arc<Health> {
        let metrics = Metrics::new();
        let registry = metrics.registry();
        Arc::new(Health {
            inner: Mutex::new(Inner {
                last_updated: SystemTime::now(),
                oldest_queued: None,
                node_eligible: true,
                api: Api::default(),
                checks: BTreeMap::new(),
            }),
            metrics,
            registry,
            timeout: sync_period * 2,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A change arrived and waits for a sync (kube-proxy's `QueuedUpdate`).
    pub fn queued(&self) {
        let mut i = self.lock();
        if i.oldest_queued.is_none() {
            let now = SystemTime::now();
            i.oldest_queued = Some((Instant::now(), now));
            self.metrics.last_queued.set(unix_secs(now));
        }
    }

    /// A sync completed (kube-proxy's `Updated`).
    pub fn updated(&self) {
        let mut i = self.lock();
        i.oldest_queued = None;
        i.last_updated = SystemTime::now();
        self.metrics.last_sync.set(unix_secs(i.last_updated));
    }

    /// The node's eligibility and the health-check node ports after a sync.
    pub fn set(&self, node_eligible: bool, checks: &BTreeMap<ObjKey, HealthCheck>) {
        let mut i = self.lock();
        i.node_eligible = node_eligible;
        if i.checks != *checks {
            i.checks = checks.clone();
        }
    }

    /// A watch delivered something.
    pub fn api_ok(&self) {
        let mut i = self.lock();
        i.api.last_ok = Some(SystemTime::now());
        i.api.failing_since = None;
    }

    /// A watch failed.
    pub fn api_error(&self, kind: &str, e: String) {
        self.metrics
            .watch_errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
        let mut i = self.lock();
        i.api.failing_since.get_or_insert_with(SystemTime::now);
        i.api.last_error = Some(format!("{kind}: {e}"));
    }

    /// Whether no change has waited longer than twice the sync period.
    pub fn healthy(&self) -> bool {
        let i = self.lock();
        i.oldest_queued
            .is_none_or(|(t, _)| t.elapsed() < self.timeout)
    }

    fn body(&self, with_node: bool) -> (bool, bool, String) {
        let healthy = self.healthy();
        let i = self.lock();
        let now = SystemTime::now();
        let eligible = i.node_eligible;
        let ok = healthy && (!with_node || eligible);
        // kube-proxy rewrites lastUpdated to now on success (for old probes).
        let last = if ok { now } else { i.last_updated };
        let fam = serde_json::json!({"lastUpdated": rfc3339(last), "healthy": healthy});
        let mut v = serde_json::json!({
            "lastUpdated": rfc3339(last),
            "currentTime": rfc3339(now),
            "healthy": healthy,
            "status": {"IPv4": fam.clone(), "IPv6": fam},
            "apiServer": {
                "lastContact": i.api.last_ok.map(rfc3339),
                "failingSince": i.api.failing_since.map(rfc3339),
                "stale": i.api.failing_since.is_some(),
                "lastError": i.api.last_error,
            },
        });
        if with_node {
            v["nodeEligible"] = serde_json::Value::Bool(eligible);
        }
        (ok, eligible, v.to_string())
    }

    fn check(&self, k: &ObjKey) -> Option<usize> {
        self.lock().checks.get(k).map(|c| c.local_endpoints)
    }

    /// The text of `/metrics` on the metrics port: kube-proxy's names, then `extra`.
    pub fn render_metrics(&self, extra: &str) -> String {
        let mut s = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s.push_str(extra.strip_suffix("# EOF\n").unwrap_or(extra));
        s.push_str("# EOF\n");
        s
    }
}

fn json(code: StatusCode, body: String) -> Response {
    (
        code,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `/healthz` (`with_node`: the node's eligibility counts) or `/livez`.
fn probe(h: &Health, with_node: bool) -> Response {
    let (ok, _, body) = h.body(with_node);
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let counter = if with_node {
        &h.metrics.healthz
    } else {
        &h.metrics.livez
    };
    counter
        .get_or_create(&CodeLabel {
            code: code.as_u16().to_string(),
        })
        .inc();
    json(code, body)
}

async fn healthz(State(h): State<Arc<Health>>) -> Response {
    probe(&h, true)
}

async fn livez(State(h): State<Arc<Health>>) -> Response {
    probe(&h, false)
}

/// `/healthz` and `/livez`.
pub fn health_router(h: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .with_state(h)
}

/// Something that renders the daemon's own metrics (appended to kube-proxy's).
pub type ExtraMetrics = Arc<dyn Fn() -> futures::future::BoxFuture<'static, String> + Send + Sync>;

/// `/metrics`, `/proxyMode` and `/healthz` (`ok`) of the metrics port.
pub fn metrics_router(h: Arc<Health>, extra: ExtraMetrics) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let (h, extra) = (h.clone(), extra.clone());
                async move {
                    let text = extra().await;
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        h.render_metrics(&text),
                    )
                }
            }),
        )
        .route("/proxyMode", get(|| async { "ipvs" }))
        .route("/healthz", get(|| async { "ok" }))
}

/// The body kube-proxy's health-check node port answers (tab-indented, no final newline).
pub fn health_check_body(k: &ObjKey, local_endpoints: usize, healthy: bool) -> String {
    format!(
        "{{\n\t\"service\": {{\n\t\t\"namespace\": {},\n\t\t\"name\": {}\n\t}},\n\t\"localEndpoints\": {local_endpoints},\n\t\"serviceProxyHealthy\": {healthy}\n}}",
        serde_json::Value::String(k.ns.clone()),
        serde_json::Value::String(k.name.clone()),
    )
}

async fn health_check(h: Arc<Health>, k: ObjKey) -> Response {
    let n = h.check(&k).unwrap_or(0);
    let healthy = h.healthy();
    let code = if n > 0 && healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut r = json(code, health_check_body(&k, n, healthy));
    if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
        r.headers_mut().insert(
            header::HeaderName::from_static("x-load-balancing-endpoint-weight"),
            v,
        );
    }
    r
}

/// The health-check node port listeners, opened and closed as Services come and go.
pub struct HealthCheckServers {
    health: Arc<Health>,
    running: HashMap<u16, (ObjKey, Vec<tokio::task::JoinHandle<()>>)>,
}

impl HealthCheckServers {
    /// None yet.
    pub fn new(health: Arc<Health>) -> Self {
        HealthCheckServers {
            health,
            running: HashMap::new(),
        }
    }

    /// Ports listened on now.
    pub fn ports(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.running.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Listens on the ports of `checks` (on `addrs`, or on every address when empty) and
    /// closes the others. A port that cannot be bound is logged and tried again next time.
    pub fn sync(&mut self, checks: &BTreeMap<ObjKey, HealthCheck>, addrs: &[IpAddr]) {
        let want: HashMap<u16, &ObjKey> = checks.iter().map(|(k, c)| (c.port, k)).collect();
        self.running.retain(|port, (k, tasks)| {
            let keep = want.get(port) == Some(&&*k);
            if !keep {
                for t in tasks {
                    t.abort();
                }
            }
            keep
        });
        for (port, k) in want {
            if self.running.contains_key(&port) {
                continue;
            }
            let binds: Vec<SocketAddr> = if addrs.is_empty() {
                vec![SocketAddr::from(([0u16; 8], port))]
            } else {
                addrs.iter().map(|a| SocketAddr::new(*a, port)).collect()
            };
            let mut tasks = Vec::new();
            for b in binds {
                match std::net::TcpListener::bind(b).and_then(|l| {
                    l.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(l)
                }) {
                    Ok(l) => {
                        let (h, key) = (self.health.clone(), k.clone());
                        let app = Router::new().fallback(move || {
                            let (h, key) = (h.clone(), key.clone());
                            async move { health_check(h, key).await }
                        });
                        tasks.push(tokio::spawn(async move {
                            let _ = axum::serve(l, app).await;
                        }));
                    }
                    Err(e) => {
                        tracing::warn!("health-check node port {b} of Service {k}: {e}");
                    }
                }
            }
            if !tasks.is_empty() {
                tracing::info!("health-check node port {port} of Service {k} listening");
                self.running.insert(port, (k.clone(), tasks));
            }
        }
    }
}

impl Drop for HealthCheckServers {
    fn drop(&mut self) {
        for (_, (_, tasks)) in self.running.drain() {
            for t in tasks {
                t.abort();
            }
        }
    }
}
