//! Typed views over IP packets and the in-place rewrites a layer-4 balancer applies.
//!
//! This crate is the lowest layer of rvs: it knows bytes, not policies. [`PacketMeta`] is the
//! summary the engine (`rvs-core`) consumes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod meta;

pub use meta::{Fragment, L4, PacketMeta, Quoted, TcpFlags, ipproto, sctp_chunk};
