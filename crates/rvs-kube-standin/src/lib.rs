//! A stand-in Kubernetes API server for rvs's tests (never shipped).
//!
//! It serves, over plain HTTP/1.1, list and watch of the three kinds rvs's Kubernetes
//! driver reads — Services (`/api/v1/services`, `/api/v1/namespaces/{ns}/services`),
//! EndpointSlices (`/apis/discovery.k8s.io/v1/endpointslices` and the namespaced path)
//! and Nodes (`/api/v1/nodes`) — plus GET of one object by name, so that kube-rs's
//! client and `watcher` talk to it through a kubeconfig ([`StandIn::write_kubeconfig`])
//! exactly as they talk to a real cluster. Tests write objects through the synchronous
//! [`StandIn`] handle and can simulate the failures a controller must survive.
//!
//! ```no_run
//! let api = rvs_kube_standin::StandIn::start()?;
//! api.apply_yaml("
//! apiVersion: v1
//! kind: Service
//! metadata: {name: web, namespace: default}
//! spec: {ports: [{port: 80}]}
//! ").map_err(std::io::Error::other)?;
//! api.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Faithful to the real API server
//!
//! - One global resourceVersion counter (decimal strings) across all kinds; every
//!   create, replace and delete takes the next one. An empty server is at 1, as an
//!   empty etcd is at revision 1, so the first write gets 2. Creation sets
//!   `metadata.uid` and `metadata.creationTimestamp` when absent; a replacement keeps
//!   both; a deletion's event carries the object's last state at the deletion's
//!   resourceVersion.
//! - Lists: `labelSelector`, `fieldSelector`, `limit` and `continue` paging (the token
//!   resumes after the last key served), items ordered by namespace then name and
//!   without `kind`/`apiVersion` (as the real server serves typed lists), and
//!   `metadata.resourceVersion` of the list.
//! - Label selectors with the full `labels.Parse` grammar (`k`, `!k`, `k=v`, `k==v`,
//!   `k!=v`, `k in (..)`, `k notin (..)`, `k>n`, `k<n`); field selectors on
//!   `metadata.name` and `metadata.namespace`. Bad syntax is a 400 with a `Status` body.
//! - Watches: a chunked stream of JSON lines, one event per chunk, replaying the events
//!   after the requested resourceVersion and then the live ones. An object modified so
//!   that it stops (starts) matching the selectors is sent as DELETED (ADDED). With
//!   `allowWatchBookmarks=true`, BOOKMARK events carry the current resourceVersion.
//!   `timeoutSeconds` ends the stream cleanly. A resourceVersion older than the history
//!   kept gets the `410 Expired` ERROR event, which makes clients relist.
//! - `sendInitialEvents=true` (streaming lists) sends the current objects as ADDED
//!   events, then a bookmark annotated `k8s.io/initial-events-end`.
//! - Outages: [`StandIn::set_unavailable`] answers 503 as an overloaded or starting
//!   server does (kube-rs's client retries those by itself, for minutes);
//!   [`StandIn::set_unreachable`] drops connections as a server that is down does.
//! - Errors are `Status` objects with the real server's reasons and codes (404
//!   NotFound, 400 BadRequest, 405 MethodNotAllowed, 503 ServiceUnavailable).
//!
//! # Simplified
//!
//! - Read-only over HTTP (GET only): objects are written through the handle, and
//!   every write counts, even one that changes nothing (the real server skips no-op
//!   updates).
//! - Lists always serve the latest state: `resourceVersion` and
//!   `resourceVersionMatch` are ignored, later pages are read from the current state
//!   (not a snapshot at the first page's resourceVersion), continue tokens never expire,
//!   and `remainingItemCount` is not set.
//! - A watch with no resourceVersion or "0" starts from now; the real server first
//!   sends the current objects as synthetic ADDED events. kube-rs never does this (it
//!   watches from the list's resourceVersion), so the difference does not show.
//! - A watch from a resourceVersion newer than the current one waits for it instead of
//!   failing with "Too large resource version".
//! - Bookmarks come every [`StandIn::set_bookmark_interval`] (1 s by default) rather
//!   than about once a minute; watches without `timeoutSeconds` last the server-wide
//!   cap ([`StandIn::set_max_watch_duration`], 290 s by default) rather than a random
//!   time.
//! - [`StandIn::compact`] drops the whole history, and makes even the current
//!   resourceVersion too old to watch from (the next list moves the counter on): a
//!   client that re-watches afterwards relists, deterministically, whenever it does.
//! - No `metadata.generation`, no finalizers or graceful deletion, no validation of
//!   object contents beyond kind, apiVersion, name and namespace, no discovery
//!   endpoints, no authentication, no protobuf, no compression.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod net;
mod selector;
mod server;
mod store;

use std::future::IntoFuture;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use server::Shared;
use store::Kind;

/// A running stand-in API server.
///
/// Cheap to clone (an `Arc` inside). The server runs on its own thread with its own
/// tokio runtime, so the handle works from plain `#[test]` functions and from async
/// code alike; it stops on [`StandIn::shutdown`] or when the last clone is dropped.
#[derive(Clone)]
pub struct StandIn {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// The stop signal and the server thread, taken on shutdown.
    stop: Mutex<Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Inner {
    fn shutdown(&self) {
        let taken = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, thread)) = taken {
            self.shared.end_watches();
            let _ = stop.send(());
            // The thread only drops its runtime after the signal, which cancels every
            // connection task: this join is short.
            let _ = thread.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl StandIn {
    /// Serves on an already bound listener (e.g. one bound inside a network namespace),
    /// on a new thread with its own tokio runtime.
    pub fn serve(listener: TcpListener) -> std::io::Result<StandIn> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared::new());
        let listener = net::GatedListener {
            inner: listener,
            shared: shared.clone(),
        };
        let app = server::router(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("kube-standin {addr}"))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = axum::serve(listener, app).into_future() => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime cancels the connection tasks and closes their sockets.
                drop(runtime);
            })?;
        let stop = Mutex::new(Some((stop_tx, thread)));
        Ok(StandIn {
            inner: Arc::new(Inner { shared, addr, stop }),
        })
    }

    /// Binds 127.0.0.1 on an ephemeral port and serves there.
    pub fn start() -> std::io::Result<StandIn> {
        StandIn::serve(TcpListener::bind("127.0.0.1:0")?)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://ADDR` (IPv6 addresses in brackets).
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Writes a kubeconfig whose current context points at [`StandIn::url`] with no
    /// authentication (namespace `default`).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let kubeconfig = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: kube-standin
  cluster:
    server: {url}
users:
- name: kube-standin
  user: {{}}
contexts:
- name: kube-standin
  context:
    cluster: kube-standin
    user: kube-standin
    namespace: default
current-context: kube-standin
preferences: {{}}
",
            url = self.url()
        );
        std::fs::write(path, kubeconfig)
    }

    /// Creates or replaces an object (`kind` and `apiVersion` choose the collection;
    /// `apiVersion` is filled in if absent). `metadata.name` is required, and
    /// `metadata.namespace` for Services and EndpointSlices. Returns the object's new
    /// resourceVersion.
    pub fn apply(&self, obj: Value) -> Result<String, String> {
        let prepared = store::prepare(obj)?;
        Ok(self.inner.shared.write(|s| s.put(prepared)).to_string())
    }

    /// Applies every object of one or more YAML documents (separated by `---` lines, as
    /// kubectl splits them; empty documents are skipped, and a `kind: List` document
    /// contributes its `items`). Nothing is written unless every object is valid;
    /// returns the resourceVersions.
    pub fn apply_yaml(&self, yaml: &str) -> Result<Vec<String>, String> {
        let mut objects = Vec::new();
        for (i, doc) in yaml_documents(yaml).into_iter().enumerate() {
            let value: Value = serde_yaml_ng::from_str(&doc)
                .map_err(|e| format!("YAML document {}: {e}", i + 1))?;
            match value {
                Value::Null => {}
                Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                    let items = m
                        .get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    objects.extend(items);
                }
                other => objects.push(other),
            }
        }
        let prepared = objects
            .into_iter()
            .map(store::prepare)
            .collect::<Result<Vec<_>, _>>()?;
        let rvs = self
            .inner
            .shared
            .write(|s| prepared.into_iter().map(|p| s.put(p)).collect::<Vec<_>>());
        Ok(rvs.into_iter().map(|rv| rv.to_string()).collect())
    }

    /// Deletes an object (`ns` is ignored for Nodes); returns the deletion's
    /// resourceVersion, or an error if the kind is unknown or the object absent.
    pub fn delete(&self, kind: &str, ns: &str, name: &str) -> Result<String, String> {
        let kind = Kind::from_name(kind).ok_or_else(|| format!("unsupported kind {kind:?}"))?;
        let key = store_key(kind, ns, name);
        match self.inner.shared.write(|s| s.delete(kind, &key)) {
            Some(rv) => Ok(rv.to_string()),
            None => Err(format!("{} {ns}/{name} not found", kind.name())),
        }
    }

    /// The stored object (`ns` is ignored for Nodes), as the API server serves it.
    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = Kind::from_name(kind)?;
        let key = store_key(kind, ns, name);
        self.inner
            .shared
            .store()
            .objects(kind)
            .get(&key)
            .map(|o| (**o).clone())
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.shared.store().rv
    }

    /// Drops the whole event history: the next watch from any resourceVersion handed
    /// out so far gets the `410 Expired` ERROR event (forcing a relist). Open watches
    /// are not affected; combine with [`StandIn::end_watches`] to make them re-watch.
    pub fn compact(&self) {
        self.inner.shared.store().compact();
    }

    /// Caps the event history (default 100,000 events; at least 1). The oldest events
    /// are dropped beyond it, which expires watches that still need them.
    pub fn set_history_limit(&self, events: usize) {
        self.inner.shared.store().set_history_limit(events);
    }

    /// Ends every open watch stream cleanly, as a server-side timeout does: clients
    /// re-watch from their last resourceVersion without relisting.
    pub fn end_watches(&self) {
        self.inner.shared.end_watches();
    }

    /// While on, every request is answered 503 with a `Status` body; turning it on
    /// also ends the open watches.
    ///
    /// Note that kube-rs's client retries 503 answers by itself (`Config::default_retry`,
    /// on by default: 15 attempts backing off from 5 ms, minutes in all), so a watcher
    /// on a default client reports no error for a short outage; see
    /// [`StandIn::set_unreachable`] for one it reports at once.
    pub fn set_unavailable(&self, on: bool) {
        self.inner.shared.set_unavailable(on);
    }

    /// While on, the server is as if down: it closes every connection it accepts, and
    /// open connections (watches included) fail on their next read or write. Clients
    /// get connection errors at once (kube-rs does not retry those itself). Such
    /// requests never reach the request log.
    pub fn set_unreachable(&self, on: bool) {
        self.inner.shared.set_unreachable(on);
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 1 s;
    /// between 10 ms and a year). Open watches take it up after their next bookmark.
    pub fn set_bookmark_interval(&self, d: Duration) {
        self.inner.shared.set_bookmark_interval(d);
    }

    /// The longest a watch lasts, whatever its `timeoutSeconds` (default 290 s, at most
    /// a year). Applies to watches opened afterwards.
    pub fn set_max_watch_duration(&self, d: Duration) {
        self.inner.shared.set_max_watch(d);
    }

    /// Path and query of every request received, in order (the last 100,000).
    pub fn requests(&self) -> Vec<String> {
        self.inner.shared.requests()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        self.inner.shared.clear_requests();
    }

    /// How many watch streams are open. A stream counts until the server has ended it
    /// or noticed that its client went away.
    pub fn open_watches(&self) -> usize {
        self.inner.shared.open_watches()
    }

    /// Stops the server: ends the watches, closes the listener and every connection,
    /// and waits for the server thread. Idempotent; the handle's other methods keep
    /// working on the stored state.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// Splits a YAML stream into its documents the way kubectl does (at lines that are
/// `---` and nothing else but trailing blanks), leaving out the documents with no
/// content (only blank and comment lines).
fn yaml_documents(yaml: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    let has_content = |d: &String| {
        d.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        })
    };
    docs.into_iter().filter(has_content).collect()
}

fn store_key(kind: Kind, ns: &str, name: &str) -> store::Key {
    let ns = if kind.namespaced() { ns } else { "" };
    (ns.to_string(), name.to_string())
}
