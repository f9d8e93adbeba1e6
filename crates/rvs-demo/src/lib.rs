//! # rvs demo: the rolling-update incident, with real packets
//!
//! [`client`]: the demo's load generator (`rvs lab client`).

pub mod client;
