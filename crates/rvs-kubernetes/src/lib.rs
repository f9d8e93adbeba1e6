//! # rvs-kubernetes: rvs as a Kubernetes node's service proxy
//!
//! The driver watches Services, `discovery.k8s.io/v1` EndpointSlices and this node's Node
//! with kube-rs, and programs the engine with kube-proxy's IPVS mapping through the same
//! `rvs-control` commands `rvs adm` and a config reload use. Its layers:
//!
//! * [`store`]: objects by namespace and name, fed with kube-runtime's watcher events
//!   (relists included), reporting what changed;
//! * [`endpoints`] and [`mapping`]: one Service and its slices → virtual servers and real
//!   servers with weights (pure functions; kube-proxy's rules, the `safe` policy where it
//!   departs);
//! * [`proxier`]: which Services changed and the commands that follow (sans-IO);
//! * [`driver`]: the watches, the sync loop and the [`driver::Target`] it programs;
//! * [`health`]: kube-proxy's health and metrics servers (10256, 10249, the per-Service
//!   health-check node ports).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod driver;
pub mod endpoints;
pub mod health;
pub mod mapping;
pub mod proxier;
pub mod store;

pub use driver::{Target, run};
pub use proxier::{Proxier, ProxierConfig};
