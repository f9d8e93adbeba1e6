//! Typed views over IP packets and the in-place rewrites a layer-4 balancer applies.
//!
//! This crate is the lowest layer of rvs: it knows bytes, not policies. [`PacketMeta`] is the
//! summary the engine (`rvs-core`) consumes, built by [`PacketMeta::parse`].
//!
//! Views ([`Ipv4Packet`], [`Ipv6Packet`], [`TcpPacket`], [`UdpPacket`], [`SctpPacket`],
//! [`Icmpv4Packet`], [`Icmpv6Packet`]) follow smoltcp's `wire` pattern: `new_unchecked`,
//! `check_len`, `new_checked`, getters, and `set_*` setters over mutable buffers.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod checksum;
pub mod error;
mod field;
pub mod icmp;
mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod meta;
mod parse;
pub mod sctp;
pub mod tcp;
pub mod udp;
mod verify;

pub use error::Malformed;
pub use icmp::{Icmpv4Packet, Icmpv6Packet};
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Ext, Ipv6Frag, Ipv6Packet};
pub use meta::{Fragment, L4, PacketMeta, Quoted, TcpFlags, ipproto, sctp_chunk};
pub use sctp::{SctpChunk, SctpPacket};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;
pub use verify::verify_checksums;

#[cfg(test)]
#[allow(dead_code)] // not every helper is used by every test module
mod testutil;
