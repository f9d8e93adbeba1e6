//! # rvs-core: the IPVS engine, without I/O
//!
//! `rvs-core` decides, packet by packet, where each flow goes, with the semantics of Linux IPVS
//! (services, real servers, schedulers, the connection table and its state machines,
//! persistence, statistics, the sysctl knobs) and with named *profiles* that reproduce what a
//! given kernel decides. It does no I/O and reads no clock: it is fed parsed packets
//! ([`rvs_packet::PacketMeta`]) and the time, and it returns decisions.
//!
//! Every kernel behaviour the engine reproduces is pinned by a test that names the section of
//! `docs/kernel-semantics.md` it mirrors: a comment's "kernel-semantics §2.4.2" and a test's
//! `_spec_2_4_2` suffix are that page's §2.4.2, which says what the kernel does and where in
//! its sources (`net/netfilter/ipvs/`) to check it. Measurements on a real Linux 6.1 kernel are
//! in `docs/kernel-6.1-incident.md` and `tests/fixtures/kernel-6.1/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod command;
pub mod conn;
pub mod conntrack;
pub mod decision;
pub mod dest;
mod engine;
pub mod fullnat;
pub mod persist;
pub mod profile;
pub mod proto;
pub mod reuse;
pub mod rng;
pub mod sched;
pub mod service;
pub mod snapshot;
pub mod stats;
pub mod sysctl;
pub mod time;

pub use decision::{Answer, Decision, DropReason, Forward, Synth, Xmit};
pub use engine::{
    BYTES_PER_ENTRY_BUDGET, Engine, EngineConfig, EngineCounters, EvictReason, STATE_MAGIC,
    STATE_VERSION, StateError, StateInfo, checksum, conn_max_for_memory, state_info,
};
pub use profile::Profile;
pub use rvs_packet::PacketMeta;
pub use time::Instant;
