//! The object store: the current objects of each kind, the global resourceVersion
//! counter, and the bounded event history that watches replay from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The default cap on the event history (the oldest events are dropped beyond it).
pub(crate) const DEFAULT_HISTORY_LIMIT: usize = 100_000;

/// The kinds served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `v1` `Service`, namespaced.
    Service,
    /// `discovery.k8s.io/v1` `EndpointSlice`, namespaced.
    EndpointSlice,
    /// `v1` `Node`, cluster-scoped.
    Node,
}

impl Kind {
    /// Every kind, in index order.
    pub(crate) const ALL: [Kind; 3] = [Kind::Service, Kind::EndpointSlice, Kind::Node];

    /// The kind named `name` (as in an object's `kind` field).
    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The object kind, e.g. `Service`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Node => "Node",
        }
    }

    /// The kind of a list of these objects, e.g. `ServiceList`.
    pub(crate) fn list_kind(self) -> &'static str {
        match self {
            Kind::Service => "ServiceList",
            Kind::EndpointSlice => "EndpointSliceList",
            Kind::Node => "NodeList",
        }
    }

    /// The API group ("" for the core group).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::EndpointSlice => "discovery.k8s.io",
            Kind::Service | Kind::Node => "",
        }
    }

    /// `apiVersion` of the objects.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::Service | Kind::Node => "v1",
        }
    }

    /// The resource name in URL paths, e.g. `services`.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::EndpointSlice => "endpointslices",
            Kind::Node => "nodes",
        }
    }

    /// The resource as the real server names it in messages, e.g.
    /// `endpointslices.discovery.k8s.io`.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            g => format!("{}.{g}", self.plural()),
        }
    }

    /// Whether objects live in namespaces.
    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, Kind::Node)
    }

    fn index(self) -> usize {
        match self {
            Kind::Service => 0,
            Kind::EndpointSlice => 1,
            Kind::Node => 2,
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One recorded write.
#[derive(Debug)]
pub(crate) struct Event {
    /// The resourceVersion the write produced.
    pub(crate) rv: u64,
    pub(crate) kind: Kind,
    pub(crate) etype: EventType,
    /// The object before the write (None for a creation); watches use it to tell
    /// whether the object matched their selectors before.
    pub(crate) prev: Option<Arc<Value>>,
    /// The object after the write; for a deletion, its last state stamped with the
    /// deletion's resourceVersion.
    pub(crate) obj: Arc<Value>,
}

/// The key of a stored object: (namespace, name), namespace "" for cluster-scoped kinds.
/// Ordering the maps by it gives the list order the real server (etcd keys) has.
pub(crate) type Key = (String, String);

/// An object checked by [`prepare`], ready to be written.
#[derive(Debug)]
pub(crate) struct Prepared {
    kind: Kind,
    key: Key,
    obj: Value,
}

/// Everything under the server's one lock.
#[derive(Debug)]
pub(crate) struct Store {
    /// The global resourceVersion: the last one handed out.
    pub(crate) rv: u64,
    objects: [BTreeMap<Key, Arc<Value>>; 3],
    /// Events in resourceVersion order, at most `history_limit` of them.
    history: VecDeque<Event>,
    history_limit: usize,
    /// Events with a resourceVersion up to this one may have been dropped: an open watch
    /// that has not yet seen up to here has missed some and gets a 410.
    pub(crate) dropped_through: u64,
    /// The oldest resourceVersion a new watch may start from; older → 410 Expired.
    pub(crate) oldest_watchable: u64,
}

impl Store {
    pub(crate) fn new() -> Store {
        Store {
            // As an empty etcd is at revision 1: a list never reports "0", which a watch
            // would take to mean "from now".
            rv: 1,
            objects: Default::default(),
            history: VecDeque::new(),
            history_limit: DEFAULT_HISTORY_LIMIT,
            dropped_through: 0,
            oldest_watchable: 0,
        }
    }

    /// The current objects of a kind, ordered by namespace then name.
    pub(crate) fn objects(&self, kind: Kind) -> &BTreeMap<Key, Arc<Value>> {
        &self.objects[kind.index()]
    }

    /// The resourceVersion a list (or a watch's initial-events bookmark) reports.
    ///
    /// After [`Store::compact`] the current resourceVersion itself is no longer
    /// watchable (so that re-watching from it is answered with 410, as after a real
    /// compaction that passed the client by); the first list afterwards therefore moves
    /// the counter on to a watchable one, as if a write had happened.
    pub(crate) fn list_rv(&mut self) -> u64 {
        self.rv = self.rv.max(self.oldest_watchable);
        self.rv
    }

    /// Creates or replaces an object; returns the new resourceVersion.
    pub(crate) fn put(&mut self, p: Prepared) -> u64 {
        let Prepared { kind, key, mut obj } = p;
        self.rv += 1;
        let rv = self.rv;
        let prev = self.objects[kind.index()].get(&key).cloned();
        let meta = metadata(&mut obj);
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        match &prev {
            // A replacement keeps the identity and the creation time of the object.
            Some(old) => {
                for field in ["uid", "creationTimestamp"] {
                    if let Some(v) = old.pointer(&format!("/metadata/{field}")) {
                        meta.insert(field.into(), v.clone());
                    }
                }
            }
            None => {
                if !meta.get("uid").is_some_and(Value::is_string) {
                    meta.insert("uid".into(), Value::String(new_uid()));
                }
                if !meta.get("creationTimestamp").is_some_and(Value::is_string) {
                    meta.insert("creationTimestamp".into(), Value::String(rfc3339_now()));
                }
            }
        }
        let obj = Arc::new(obj);
        self.objects[kind.index()].insert(key, obj.clone());
        let etype = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv,
            kind,
            etype,
            prev,
            obj,
        });
        rv
    }

    /// Deletes an object; returns the new resourceVersion, or None if it is absent.
    pub(crate) fn delete(&mut self, kind: Kind, key: &Key) -> Option<u64> {
        let prev = self.objects[kind.index()].remove(key)?;
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*prev).clone();
        metadata(&mut last).insert("resourceVersion".into(), Value::String(rv.to_string()));
        let ev = Event {
            rv,
            kind,
            etype: EventType::Deleted,
            prev: Some(prev),
            obj: Arc::new(last),
        };
        self.record(ev);
        Some(rv)
    }

    fn record(&mut self, ev: Event) {
        self.history.push_back(ev);
        self.trim_history();
    }

    fn trim_history(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                // Watching from old.rv still works (it needs only later events); from
                // anything earlier it cannot.
                self.dropped_through = self.dropped_through.max(old.rv);
                self.oldest_watchable = self.oldest_watchable.max(old.rv);
            }
        }
    }

    /// Caps the history (at least one event is kept).
    pub(crate) fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
        self.trim_history();
    }

    /// Drops the whole history: a new watch from any resourceVersion handed out so far
    /// gets 410 Expired. Open watches that have seen everything carry on.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.dropped_through = self.rv;
        self.oldest_watchable = self.rv + 1;
    }

    /// The recorded events with a resourceVersion greater than `rv`, oldest first.
    pub(crate) fn events_after(&self, rv: u64) -> impl Iterator<Item = &Event> {
        let start = self.history.partition_point(|e| e.rv <= rv);
        self.history.range(start..)
    }
}

/// `obj.metadata` as a map (created if absent; callers have checked it is an object).
fn metadata(obj: &mut Value) -> &mut Map<String, Value> {
    let root = obj.as_object_mut().expect("prepare() checked the object");
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object")
}

/// Checks an object given to `apply`: a known kind, a matching apiVersion (filled in if
/// absent), a name, and a namespace exactly when the kind is namespaced.
pub(crate) fn prepare(mut obj: Value) -> Result<Prepared, String> {
    let Some(root) = obj.as_object_mut() else {
        return Err("not a JSON object".into());
    };
    let kind_name = root
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(kind) = Kind::from_name(&kind_name) else {
        return Err(if kind_name.is_empty() {
            "the object has no kind".into()
        } else {
            format!("unsupported kind {kind_name:?} (Service, EndpointSlice or Node)")
        });
    };
    match root.get("apiVersion").map(Value::as_str) {
        None => {
            root.insert(
                "apiVersion".into(),
                Value::String(kind.api_version().into()),
            );
        }
        Some(Some(v)) if v == kind.api_version() => {}
        Some(v) => {
            return Err(format!(
                "{kind_name}: apiVersion {v:?} is not served (expected {})",
                kind.api_version()
            ));
        }
    }
    let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(format!("{kind_name}: no metadata"));
    };
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(format!("{kind_name}: metadata.name is required"));
    }
    let ns = if kind.namespaced() {
        let ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if ns.is_empty() {
            return Err(format!(
                "{kind_name} {name}: metadata.namespace is required"
            ));
        }
        ns.to_string()
    } else {
        // The real server clears the namespace of cluster-scoped objects.
        meta.remove("namespace");
        String::new()
    };
    Ok(Prepared {
        kind,
        key: (ns, name),
        obj,
    })
}

/// A unique uid in the usual UUID shape.
fn new_uid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}-5354-4e44-8000-{n:012x}", std::process::id())
}

/// Now, as RFC 3339 in UTC with whole seconds (the format of `creationTimestamp`).
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (h, m, s) = (rem / 3_600, rem % 3_600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_688_000 + 3_661), "2026-12-08T01:01:01Z");
    }

    #[test]
    fn prepare_checks() {
        assert!(prepare(json!([])).is_err());
        assert!(prepare(json!({"kind": "Pod", "metadata": {"name": "a"}})).is_err());
        assert!(prepare(json!({"kind": "Service", "metadata": {"name": "a"}})).is_err());
        assert!(prepare(json!({"kind": "Service", "metadata": {"namespace": "a"}})).is_err());
        let bad_version = json!({"kind": "Service", "apiVersion": "v2", "metadata": {"name": "a", "namespace": "n"}});
        assert!(prepare(bad_version).is_err());
        let p =
            prepare(json!({"kind": "Node", "metadata": {"name": "a", "namespace": "x"}})).unwrap();
        assert_eq!(p.key, (String::new(), "a".to_string()));
        assert_eq!(
            p.obj,
            json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "a"}})
        );
    }

    #[test]
    fn writes_history_and_compaction() {
        let mut s = Store::new();
        let svc = |v: &str| {
            let o =
                json!({"kind": "Service", "metadata": {"name": "a", "namespace": "n", "uid": v}});
            prepare(o).unwrap()
        };
        assert_eq!(s.rv, 1);
        assert_eq!(s.put(svc("u1")), 2);
        assert_eq!(s.put(svc("u2")), 3);
        let key = ("n".to_string(), "a".to_string());
        let cur = s.objects(Kind::Service)[&key].clone();
        assert_eq!(cur["metadata"]["uid"], "u1", "a replacement keeps the uid");
        assert_eq!(cur["metadata"]["resourceVersion"], "3");
        assert_eq!(s.delete(Kind::Service, &key), Some(4));
        assert_eq!(s.delete(Kind::Service, &key), None);
        let types: Vec<_> = s.events_after(2).map(|e| e.etype).collect();
        assert_eq!(types, [EventType::Modified, EventType::Deleted]);
        s.compact();
        assert_eq!(s.events_after(0).count(), 0);
        assert_eq!((s.dropped_through, s.oldest_watchable), (4, 5));
        assert_eq!(s.list_rv(), 5);
        s.set_history_limit(2);
        for u in ["a", "b", "c"] {
            s.put(svc(u));
        }
        assert_eq!(s.events_after(0).map(|e| e.rv).collect::<Vec<_>>(), [7, 8]);
        assert_eq!((s.dropped_through, s.oldest_watchable), (6, 6));
    }
}
