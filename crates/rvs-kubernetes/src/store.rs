//! Objects of one kind by namespace and name, fed by a watcher's events with kube-runtime's
//! relist semantics: a relist (`Init`, `InitApply`…, `InitDone`) replaces the whole set
//! at its end, and an object missing from it counts as deleted.
//!
//! Every event returns what changed, object by object, so that the proxier recomputes only
//! the Services those objects belong to; an object that comes back from a relist unchanged
//! is no change.

use std::collections::HashMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Namespace and name of an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    /// Namespace (empty for cluster-scoped objects such as Nodes).
    pub ns: String,
    /// Name.
    pub name: String,
}

impl ObjKey {
    /// A key.
    pub fn new(ns: &str, name: &str) -> ObjKey {
        ObjKey {
            ns: ns.into(),
            name: name.into(),
        }
    }

    /// The key of an object (`None` when it has no name).
    pub fn of(m: &ObjectMeta) -> Option<ObjKey> {
        let name = m.name.as_deref().filter(|n| !n.is_empty())?;
        Some(ObjKey::new(m.namespace.as_deref().unwrap_or(""), name))
    }
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ns.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.ns, self.name)
        }
    }
}

/// One watcher event (kube-runtime's `watcher::Event`, without the dependency).
#[derive(Clone, Debug, PartialEq)]
pub enum Event<K> {
    /// A (re)list starts.
    Init,
    /// An object of the list.
    InitApply(K),
    /// The list is complete.
    InitDone,
    /// Added or modified.
    Apply(K),
    /// Deleted.
    Delete(K),
}

/// An object that has metadata.
pub trait Object: Clone + PartialEq {
    /// Its metadata.
    fn meta(&self) -> &ObjectMeta;
}

macro_rules! object {
    ($t:ty) => {
        impl Object for $t {
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
        }
    };
}
object!(k8s_openapi::api::core::v1::Service);
object!(k8s_openapi::api::core::v1::Node);
object!(k8s_openapi::api::discovery::v1::EndpointSlice);

/// One object's change: what it was and what it is (`None`: absent).
pub type Change<K> = (ObjKey, Option<K>, Option<K>);

/// The objects of one kind.
#[derive(Debug)]
pub struct Store<K> {
    objs: HashMap<ObjKey, K>,
    relist: Option<HashMap<ObjKey, K>>,
    listed: bool,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            objs: HashMap::new(),
            relist: None,
            listed: false,
        }
    }
}

impl<K: Object> Store<K> {
    /// Whether a first list has completed.
    pub fn listed(&self) -> bool {
        self.listed
    }

    /// An object.
    pub fn get(&self, k: &ObjKey) -> Option<&K> {
        self.objs.get(k)
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = (&ObjKey, &K)> {
        self.objs.iter()
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// Applies an event; returns the objects that changed.
    pub fn apply(&mut self, ev: Event<K>) -> Vec<Change<K>> {
        match ev {
            Event::Init => {
                self.relist = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(o) => {
                if let Some(k) = ObjKey::of(o.meta()) {
                    self.relist.get_or_insert_with(HashMap::new).insert(k, o);
                }
                Vec::new()
            }
            Event::InitDone => {
                let new = self.relist.take().unwrap_or_default();
                let old = std::mem::replace(&mut self.objs, new);
                self.listed = true;
                let mut out = Vec::new();
                for (k, o) in &old {
                    match self.objs.get(k) {
                        Some(n) if n == o => {}
                        n => out.push((k.clone(), Some(o.clone()), n.cloned())),
                    }
                }
                for (k, n) in &self.objs {
                    if !old.contains_key(k) {
                        out.push((k.clone(), None, Some(n.clone())));
                    }
                }
                out
            }
            Event::Apply(o) => {
                let Some(k) = ObjKey::of(o.meta()) else {
                    return Vec::new();
                };
                match self.objs.insert(k.clone(), o.clone()) {
                    Some(old) if old == o => Vec::new(),
                    old => vec![(k, old, Some(o))],
                }
            }
            Event::Delete(o) => {
                let Some(k) = ObjKey::of(o.meta()) else {
                    return Vec::new();
                };
                match self.objs.remove(&k) {
                    Some(old) => vec![(k, Some(old), None)],
                    None => Vec::new(),
                }
            }
        }
    }
}
