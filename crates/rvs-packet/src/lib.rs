//! Typed views over IP packets and the in-place rewrites a layer-4 balancer applies.
//!
//! This crate is the lowest layer of rvs: it knows bytes, not policies. [`PacketMeta`] is the
//! summary the engine (`rvs-core`) consumes; the engine answers with decisions that the data
//! plane applies with [`rewrite::nat`], [`rewrite::encap`] and the builders of [`synth`].
//!
//! # Two levels
//!
//! * **Views** ([`Ipv4Packet`], [`Ipv6Packet`], [`TcpPacket`], [`UdpPacket`], [`SctpPacket`],
//!   [`Icmpv4Packet`], [`Icmpv6Packet`]) wrap any buffer `T: AsRef<[u8]>` and read fields in
//!   place; over `T: AsMut<[u8]>` they also have `set_*` setters. This is the pattern of
//!   smoltcp's `wire` module, written here rather than taken from smoltcp or etherparse
//!   because a balancer needs what they lack: RFC 1624 incremental checksum updates, ICMP
//!   error translation, tolerant parsing of quoted packets, a CRC32c that can be patched, and
//!   a drop reason ([`Malformed`]) for every failure instead of a unit error.
//! * **Summaries and operations**: [`PacketMeta::parse`], [`rewrite::nat`],
//!   [`rewrite::encap`], [`synth::tcp_rst`], [`synth::icmp_unreachable`],
//!   [`verify_checksums`] and [`Pretty`] work on whole packets and do all the checking.
//!
//! # The `new_checked` contract
//!
//! Each view has `new_unchecked` (wraps, checks nothing), `check_len` (proves that no getter
//! can panic: the buffer is long enough and the length fields are consistent) and
//! `new_checked` (both). Untrusted bytes must go through `new_checked` (or, for a packet quoted
//! in an ICMP error, `check_header_len`). When *emitting* into a reused buffer, use
//! `new_unchecked`: a check would read stale length fields.
//!
//! The whole-packet functions never panic on any input and never allocate: buffers belong to
//! the caller, and the crate is `#![no_std]` without `alloc`, so it *cannot* allocate.
//! Arithmetic on wire values cannot overflow; property tests and cargo-fuzz targets
//! (`fuzz/`) check both claims.
//!
//! ```
//! use rvs_packet::{PacketMeta, L4, rewrite, verify_checksums, synth};
//! use std::net::IpAddr;
//!
//! let client: IpAddr = "192.0.2.1".parse().unwrap();
//! let vip: IpAddr = "198.51.100.10".parse().unwrap();
//! let rs: IpAddr = "10.0.0.5".parse().unwrap();
//!
//! // A segment from the client to the virtual service (a reset is the simplest to build).
//! let mut buf = [0u8; 64];
//! let n = synth::tcp_rst(&mut buf, (client, 40000), (vip, 80), 1, None).unwrap();
//! let pkt = &mut buf[..n];
//! let meta = PacketMeta::parse(pkt).unwrap();
//! assert_eq!((meta.dst, meta.dport), (vip, 80));
//! assert!(matches!(meta.l4, L4::Tcp { .. }));
//!
//! // Masquerading (DNAT): the destination becomes the real server.
//! rewrite::nat(pkt, None, Some((rs, 8080))).unwrap();
//! assert!(verify_checksums(pkt));
//! assert_eq!(PacketMeta::parse(pkt).unwrap().dport, 8080);
//! ```
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
pub mod pretty;
pub mod rewrite;
pub mod sctp;
pub mod synth;
pub mod tcp;
pub mod udp;
mod verify;

pub use error::Malformed;
pub use icmp::{Icmpv4Packet, Icmpv6Packet};
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Ext, Ipv6Frag, Ipv6Packet};
pub use meta::{Fragment, L4, PacketMeta, Quoted, TcpFlags, ipproto, sctp_chunk};
pub use pretty::Pretty;
pub use sctp::{SctpChunk, SctpPacket};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;
pub use verify::verify_checksums;

#[cfg(test)]
#[allow(dead_code)] // not every helper is used by every test module
mod testutil;
