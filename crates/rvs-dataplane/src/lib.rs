//! # rvs-dataplane: the daemon's data plane
//!
//! The engine (`rvs-core`) decides; this crate moves real packets around it:
//!
//! * [`tunloop`]: the TUN device (tun-rs, `IFF_TUN | IFF_NO_PI`) and the packet thread, which
//!   owns the engine and serves control messages between batches;
//! * [`driver`]: one packet in, the engine's decision applied with `rvs-packet`, packets out
//!   (no I/O, so it is unit-tested with a `Vec` sink);
//! * [`netlink`]: TUN addresses, VIP routes, the reply-steering policy rules, all tracked and
//!   removed on exit (after a crash, adopted with the snapshot or removed on the next start);
//! * [`metrics`]: the HTTP admin endpoint (`/metrics`, `/healthz`, `/state`);
//! * [`daemon`]: `rvs daemon` itself (admin socket, signals, reload);
//! * [`recovery`]: crash recovery: a persistent TUN and snapshots of the engine that the next
//!   start adopts after a `kill -9`;
//! * [`takeover`]: the hand-over of the TUN descriptor and the engine state to a new daemon;
//! * [`lab`]: network-namespace topologies for tests, the benchmark and the demo.
//!
//! See the crate's README for the netlink objects, fragments and what is partial.
#![warn(missing_docs)]

pub mod daemon;
pub mod driver;
pub mod lab;
pub mod metrics;
pub mod netlink;
pub mod nexthop;
pub mod recovery;
pub mod sys;
pub mod takeover;
pub mod tunloop;

pub use daemon::{Admin, Attach, DaemonOptions, Takeover, run, run_with};
