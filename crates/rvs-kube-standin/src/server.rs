//! The HTTP side: routing, list (with paging), get, and watch streams.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType, Key, Kind, Store};

/// The cap on the request log (the oldest entries are dropped beyond it).
const REQUEST_LOG_LIMIT: usize = 100_000;
/// The shortest bookmark interval accepted (a guard against a busy loop).
const MIN_BOOKMARK_INTERVAL: Duration = Duration::from_millis(10);
/// The longest bookmark interval or watch duration accepted (keeps deadlines
/// representable).
const LONGEST: Duration = Duration::from_secs(365 * 86_400);

/// State shared by the handle and the server's tasks.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// Bumped after every write: wakes the open watches.
    changes: watch::Sender<u64>,
    /// Bumped to end every open watch.
    ends: watch::Sender<u64>,
    unavailable: AtomicBool,
    unreachable: AtomicBool,
    bookmark_interval: Mutex<Duration>,
    max_watch: Mutex<Duration>,
    open_watches: AtomicUsize,
    requests: Mutex<VecDeque<String>>,
}

/// Locks a mutex, ignoring poisoning (every critical section leaves the data consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            store: Mutex::new(Store::new()),
            changes: watch::Sender::new(0),
            ends: watch::Sender::new(0),
            unavailable: AtomicBool::new(false),
            unreachable: AtomicBool::new(false),
            bookmark_interval: Mutex::new(Duration::from_secs(1)),
            max_watch: Mutex::new(Duration::from_secs(290)),
            open_watches: AtomicUsize::new(0),
            requests: Mutex::new(VecDeque::new()),
        }
    }

    /// The store, for reading (or for writes that need not wake watches).
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Runs a write on the store, then wakes the open watches.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let r = f(&mut self.store());
        self.changes.send_modify(|n| *n += 1);
        r
    }

    /// Ends every open watch stream (cleanly, as a server-side timeout does).
    pub(crate) fn end_watches(&self) {
        self.ends.send_modify(|n| *n += 1);
    }

    pub(crate) fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::SeqCst);
        if on {
            self.end_watches();
        }
    }

    pub(crate) fn unreachable(&self) -> bool {
        self.unreachable.load(Ordering::SeqCst)
    }

    pub(crate) fn set_unreachable(&self, on: bool) {
        self.unreachable.store(on, Ordering::SeqCst);
        if on {
            // Their final write fails, which breaks their connections.
            self.end_watches();
        }
    }

    pub(crate) fn set_bookmark_interval(&self, d: Duration) {
        *lock(&self.bookmark_interval) = d.clamp(MIN_BOOKMARK_INTERVAL, LONGEST);
    }

    pub(crate) fn set_max_watch(&self, d: Duration) {
        *lock(&self.max_watch) = d.min(LONGEST);
    }

    pub(crate) fn open_watches(&self) -> usize {
        self.open_watches.load(Ordering::SeqCst)
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        lock(&self.requests).iter().cloned().collect()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    fn log_request(&self, what: &str) {
        let mut log = lock(&self.requests);
        if log.len() >= REQUEST_LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(what.to_string());
    }
}

/// The router: one fallback handler that does its own routing, so that every miss is
/// answered the way the real server answers it.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A `Status` object, the body of every error answer.
pub(crate) fn status_object(code: u16, reason: &str, message: &str, details: Value) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if !details.is_null() {
        s["details"] = details;
    }
    s
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn error(code: StatusCode, reason: &str, message: &str, details: Value) -> Response {
    json_response(
        code,
        &status_object(code.as_u16(), reason, message, details),
    )
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BadRequest", message, Value::Null)
}

fn not_found() -> Response {
    let msg = "the server could not find the requested resource";
    error(StatusCode::NOT_FOUND, "NotFound", msg, json!({}))
}

/// What a path names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A collection, in one namespace or across all of them.
    Collection { kind: Kind, ns: Option<String> },
    /// One object (namespace "" for cluster-scoped kinds).
    Object {
        kind: Kind,
        ns: String,
        name: String,
    },
}

fn route(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", "discovery.k8s.io", "v1", rest @ ..] => ("discovery.k8s.io", rest),
        _ => return None,
    };
    let kind = |resource: &str| {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.plural() == resource)
    };
    match rest {
        [resource] => Some(Target::Collection {
            kind: kind(resource)?,
            ns: None,
        }),
        [resource, name] => {
            let kind = kind(resource).filter(|k| !k.namespaced())?;
            Some(Target::Object {
                kind,
                ns: String::new(),
                name: name.to_string(),
            })
        }
        ["namespaces", ns, resource] => {
            let kind = kind(resource).filter(|k| k.namespaced())?;
            Some(Target::Collection {
                kind,
                ns: Some(ns.to_string()),
            })
        }
        ["namespaces", ns, resource, name] => {
            let kind = kind(resource).filter(|k| k.namespaced())?;
            Some(Target::Object {
                kind,
                ns: ns.to_string(),
                name: name.to_string(),
            })
        }
        _ => None,
    }
}

/// The query parameters understood (others are ignored, as the real server does).
#[derive(Debug, Default)]
struct Params {
    watch: bool,
    labels: LabelSelector,
    fields: FieldSelector,
    limit: Option<usize>,
    continue_token: Option<String>,
    resource_version: Option<String>,
    timeout_seconds: Option<u64>,
    bookmarks: bool,
    send_initial_events: bool,
}

/// Go's `strconv.ParseBool`, which the real server uses for boolean parameters.
fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(false),
        _ => Err(format!("{name}: invalid boolean {v:?}")),
    }
}

impl Params {
    fn parse(pairs: &[(String, String)]) -> Result<Params, String> {
        // The first occurrence of a parameter wins, as with Go's url.Values.Get.
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let number = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{name}: invalid value {v:?}"))
                })
                .transpose()
        };
        let flag = |name: &str| get(name).map_or(Ok(false), |v| parse_bool(name, v));
        Ok(Params {
            watch: flag("watch")?,
            labels: LabelSelector::parse(get("labelSelector").unwrap_or_default())?,
            fields: FieldSelector::parse(get("fieldSelector").unwrap_or_default())?,
            limit: number("limit")?
                .filter(|&n| n > 0)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            continue_token: get("continue")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            resource_version: get("resourceVersion")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            timeout_seconds: number("timeoutSeconds")?,
            bookmarks: flag("allowWatchBookmarks")?,
            send_initial_events: flag("sendInitialEvents")?,
        })
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let uri = req.uri();
    shared.log_request(uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()));
    if shared.unavailable.load(Ordering::SeqCst) {
        let msg = "the server is currently unable to handle the request";
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            msg,
            Value::Null,
        );
    }
    let Some(target) = route(uri.path()) else {
        return not_found();
    };
    if req.method() != Method::GET {
        let msg = "the server does not allow this method on the requested resource";
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            msg,
            json!({}),
        );
    }
    let params = match Query::<Vec<(String, String)>>::try_from_uri(uri) {
        Ok(Query(pairs)) => Params::parse(&pairs),
        Err(e) => Err(format!("invalid query: {e}")),
    };
    let params = match params {
        Ok(p) => p,
        Err(msg) => return bad_request(&msg),
    };
    match target {
        Target::Collection { kind, ns } if params.watch => watch(&shared, kind, ns, params),
        Target::Collection { kind, ns } => list(&shared, kind, ns.as_deref(), &params),
        Target::Object { kind, ns, name } => get(&shared, kind, (ns, name)),
    }
}

/// An object as the real server serves it in a list: without `kind` and `apiVersion`.
fn list_item(obj: &Value) -> Value {
    let mut item = obj.clone();
    if let Some(m) = item.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    item
}

/// Whether an object is in the namespace (None: any) and matches the selectors.
fn selected(obj: &Value, ns: Option<&str>, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    let in_ns =
        ns.is_none_or(|ns| obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns));
    in_ns && labels.matches(obj) && fields.matches(obj)
}

/// The continue token: hex of "rv\nnamespace\nname" (the list's resourceVersion and the
/// last key served). Like the real server's, it resumes after a key, so objects deleted
/// between pages do not shift the next page.
fn encode_continue(rv: u64, key: &Key) -> String {
    format!("{rv}\n{}\n{}", key.0, key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Option<(u64, Key)> {
    if token.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '\n');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, (parts.next()?.to_string(), parts.next()?.to_string())))
}

fn list(shared: &Shared, kind: Kind, ns: Option<&str>, p: &Params) -> Response {
    let mut store = shared.store();
    let (list_rv, after) = match &p.continue_token {
        None => (store.list_rv(), None),
        Some(token) => match decode_continue(token) {
            Some((rv, key)) => (rv, Some(key)),
            None => return bad_request("continue key is not valid"),
        },
    };
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut matching = store
        .objects(kind)
        .range((start, Bound::Unbounded))
        .filter(|(_, o)| selected(o, ns, &p.labels, &p.fields));
    let mut items = Vec::new();
    let mut last_key = None;
    for (key, obj) in matching.by_ref().take(p.limit.unwrap_or(usize::MAX)) {
        items.push(list_item(obj));
        last_key = Some(key);
    }
    let more = matching.next().is_some();
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), Value::String(list_rv.to_string()));
    if more && let Some(key) = last_key {
        meta.insert(
            "continue".into(),
            Value::String(encode_continue(list_rv, key)),
        );
    }
    drop(store);
    let body = json!({
        "kind": kind.list_kind(),
        "apiVersion": kind.api_version(),
        "metadata": meta,
        "items": items,
    });
    json_response(StatusCode::OK, &body)
}

fn get(shared: &Shared, kind: Kind, key: Key) -> Response {
    let found = shared.store().objects(kind).get(&key).cloned();
    match found {
        Some(obj) => json_response(StatusCode::OK, &obj),
        None => {
            let msg = format!("{} {:?} not found", kind.qualified(), key.1);
            let mut details = json!({"name": key.1, "kind": kind.plural()});
            if !kind.group().is_empty() {
                details["group"] = kind.group().into();
            }
            error(StatusCode::NOT_FOUND, "NotFound", &msg, details)
        }
    }
}

/// One watch-stream line: `{"type":T,"object":OBJ}` and a newline.
fn event_line(etype: &str, obj: &Value) -> Bytes {
    let mut line = format!("{{\"type\":\"{etype}\",\"object\":").into_bytes();
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut line, obj);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// The ERROR line a watch gets when the events it needs are gone.
fn expired_line(requested: u64, oldest: u64) -> Bytes {
    let msg = format!("too old resource version: {requested} ({oldest})");
    event_line("ERROR", &status_object(410, "Expired", &msg, Value::Null))
}

/// Counts a watch as open for as long as its stream exists.
struct OpenWatch(Arc<Shared>);

impl OpenWatch {
    fn new(shared: Arc<Shared>) -> OpenWatch {
        shared.open_watches.fetch_add(1, Ordering::SeqCst);
        OpenWatch(shared)
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One open watch: its filter, how far it has read the history, and the lines queued
/// for the client.
struct Watch {
    open: OpenWatch,
    kind: Kind,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    /// Every event up to this resourceVersion has been considered.
    seen: u64,
    queue: VecDeque<Bytes>,
    /// End the stream once the queue is drained.
    done: bool,
    deadline: Instant,
    bookmarks: bool,
    next_bookmark: Instant,
    changes: watch::Receiver<u64>,
    ends: watch::Receiver<u64>,
}

fn watch(shared: &Arc<Shared>, kind: Kind, ns: Option<String>, p: Params) -> Response {
    let requested = match p.resource_version.as_deref() {
        None | Some("0") => None,
        Some(v) => match v.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => return bad_request(&format!("invalid resource version: {v:?}")),
        },
    };
    let cap = *lock(&shared.max_watch);
    let lifetime = p
        .timeout_seconds
        .filter(|&s| s > 0)
        .map_or(cap, |s| cap.min(Duration::from_secs(s)));
    let now = Instant::now();
    let mut changes = shared.changes.subscribe();
    changes.borrow_and_update();
    let mut w = Watch {
        open: OpenWatch::new(shared.clone()),
        kind,
        ns,
        labels: p.labels,
        fields: p.fields,
        seen: 0,
        queue: VecDeque::new(),
        done: false,
        deadline: now + lifetime,
        bookmarks: p.bookmarks,
        next_bookmark: now + *lock(&shared.bookmark_interval),
        changes,
        ends: shared.ends.subscribe(),
    };
    let mut store = shared.store();
    if p.send_initial_events {
        // Streaming list: the current state as ADDED events, then a bookmark marking
        // its end, then changes.
        let rv = store.list_rv();
        let lines: Vec<Bytes> = store
            .objects(kind)
            .values()
            .filter(|o| w.selects(o))
            .map(|o| event_line("ADDED", o))
            .collect();
        w.queue.extend(lines);
        let end = json!({"k8s.io/initial-events-end": "true"});
        w.queue.push_back(w.bookmark_line(rv, Some(end)));
        w.seen = rv;
    } else if let Some(rv) = requested {
        if rv < store.oldest_watchable {
            w.queue.push_back(expired_line(rv, store.oldest_watchable));
            w.done = true;
        } else {
            w.seen = rv;
            w.catch_up(&store);
        }
    } else {
        // "0" or no resourceVersion: from now on (see the crate docs).
        w.seen = store.rv;
    }
    drop(store);
    let body = Body::from_stream(futures::stream::unfold(w, Watch::next_chunk));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl Watch {
    fn selects(&self, obj: &Value) -> bool {
        selected(obj, self.ns.as_deref(), &self.labels, &self.fields)
    }

    fn bookmark_line(&self, rv: u64, annotations: Option<Value>) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if let Some(a) = annotations {
            meta["annotations"] = a;
        }
        let obj = json!({"kind": self.kind.name(), "apiVersion": self.kind.api_version(), "metadata": meta});
        event_line("BOOKMARK", &obj)
    }

    /// What this watch sends for an event of its kind, if anything. As on the real
    /// server, an object that stops matching the watch's selectors is sent as DELETED
    /// (its previous state with the event's resourceVersion), one that starts matching
    /// as ADDED.
    fn convert(&self, ev: &Event) -> Option<Bytes> {
        let now = ev.etype != EventType::Deleted && self.selects(&ev.obj);
        let before = ev.prev.as_deref().is_some_and(|o| self.selects(o));
        match (before, now) {
            (false, false) => None,
            (false, true) => Some(event_line("ADDED", &ev.obj)),
            (true, true) => Some(event_line("MODIFIED", &ev.obj)),
            (true, false) if ev.etype == EventType::Deleted => Some(event_line("DELETED", &ev.obj)),
            (true, false) => {
                let mut gone = ev.prev.as_deref().cloned().unwrap_or_default();
                if let Some(m) = gone.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("resourceVersion".into(), Value::String(ev.rv.to_string()));
                }
                Some(event_line("DELETED", &gone))
            }
        }
    }

    /// Queues the events after `seen`, or the 410 ERROR if some of them are gone.
    fn catch_up(&mut self, store: &Store) {
        if self.seen < store.dropped_through {
            self.queue
                .push_back(expired_line(self.seen, store.oldest_watchable));
            self.done = true;
            return;
        }
        let lines: Vec<Bytes> = store
            .events_after(self.seen)
            .filter(|e| e.kind == self.kind)
            .filter_map(|e| self.convert(e))
            .collect();
        self.queue.extend(lines);
        self.seen = self.seen.max(store.rv);
    }

    /// The stream's next chunk: one line (so every event goes out as soon as it is
    /// produced), or None at the end. Every wait is bounded by the watch's deadline.
    async fn next_chunk(mut self) -> Option<(Result<Bytes, Infallible>, Watch)> {
        loop {
            if let Some(line) = self.queue.pop_front() {
                return Some((Ok(line), self));
            }
            if self.done {
                return None;
            }
            let shared = self.open.0.clone();
            tokio::select! {
                biased;
                _ = self.ends.changed() => self.done = true,
                () = tokio::time::sleep_until(self.deadline) => self.done = true,
                changed = self.changes.changed() => match changed {
                    Ok(()) => {
                        self.changes.borrow_and_update();
                        self.catch_up(&shared.store());
                    }
                    Err(_) => self.done = true,
                },
                () = tokio::time::sleep_until(self.next_bookmark), if self.bookmarks => {
                    // Everything up to the bookmark's resourceVersion goes out before it.
                    let store = shared.store();
                    self.catch_up(&store);
                    if !self.done {
                        let line = self.bookmark_line(store.rv.max(self.seen), None);
                        self.queue.push_back(line);
                    }
                    drop(store);
                    self.next_bookmark = Instant::now() + *lock(&shared.bookmark_interval);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let c = |kind, ns: Option<&str>| {
            Some(Target::Collection {
                kind,
                ns: ns.map(str::to_string),
            })
        };
        let o = |kind, ns: &str, name: &str| {
            Some(Target::Object {
                kind,
                ns: ns.to_string(),
                name: name.to_string(),
            })
        };
        assert_eq!(route("/api/v1/services"), c(Kind::Service, None));
        assert_eq!(
            route("/api/v1/namespaces/a/services"),
            c(Kind::Service, Some("a"))
        );
        assert_eq!(
            route("/api/v1/namespaces/a/services/b"),
            o(Kind::Service, "a", "b")
        );
        assert_eq!(
            route("/apis/discovery.k8s.io/v1/endpointslices"),
            c(Kind::EndpointSlice, None)
        );
        let slices = route("/apis/discovery.k8s.io/v1/namespaces/a/endpointslices");
        assert_eq!(slices, c(Kind::EndpointSlice, Some("a")));
        assert_eq!(route("/api/v1/nodes"), c(Kind::Node, None));
        assert_eq!(route("/api/v1/nodes/n1"), o(Kind::Node, "", "n1"));
        for miss in [
            "/",
            "",
            "/api",
            "/api/v1",
            "/api/v1/",
            "/api/v1/services/",
            "/api/v1/services/a",
            "/api/v1/endpointslices",
            "/apis/discovery.k8s.io/v1/services",
            "/api/v1/namespaces/a/nodes",
            "/api/v1/namespaces//services",
            "/api/v1/namespaces/a/services/b/status",
        ] {
            assert_eq!(route(miss), None, "{miss}");
        }
    }

    #[test]
    fn continue_tokens() {
        let key = ("ns".to_string(), "name.with.dots".to_string());
        let t = encode_continue(42, &key);
        assert_eq!(decode_continue(&t), Some((42, key)));
        for bad in ["", "zz", "abc", "ffff", "é1"] {
            assert_eq!(decode_continue(bad), None, "{bad}");
        }
    }

    #[test]
    fn params() {
        let q = |s: &[(&str, &str)]| {
            let v: Vec<(String, String)> = s
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            Params::parse(&v)
        };
        let p = q(&[("watch", "1"), ("limit", "0"), ("timeoutSeconds", "5")]).unwrap();
        assert!(p.watch);
        assert_eq!(p.limit, None);
        assert_eq!(p.timeout_seconds, Some(5));
        assert!(q(&[("watch", "yes")]).is_err());
        assert!(q(&[("limit", "-1")]).is_err());
        assert!(q(&[("labelSelector", "a in")]).is_err());
        assert!(q(&[("fieldSelector", "spec.x=1")]).is_err());
    }
}
