//! Test helpers: reference packets built by an independent implementation (etherparse) and
//! an independent checksum check.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::vec::Vec;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

pub const CLIENT4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
pub const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
pub const RS4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
pub const LOCAL4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub const ROUTER4: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
pub const CLIENT6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1));
pub const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10));
pub const RS6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5));
pub const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
pub const ROUTER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1));

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("want IPv4"),
    }
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => panic!("want IPv6"),
    }
}

fn build<B>(size: usize, write: impl FnOnce(&mut Vec<u8>) -> B) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    write(&mut out);
    out
}

/// A TCP ACK|PSH segment over IPv4 (DF set, TTL 64).
pub fn tcp_v4(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(v4(src), v4(dst), 64)
        .tcp(sport, dport, 1000, 65535)
        .ack(2000)
        .psh();
    build(0, |o| b.write(o, payload).unwrap())
}

/// A TCP ACK|PSH segment over IPv6.
pub fn tcp_v6(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(v6(src), v6(dst), 64)
        .tcp(sport, dport, 1000, 65535)
        .ack(2000)
        .psh();
    build(0, |o| b.write(o, payload).unwrap())
}

/// A UDP datagram over IPv4.
pub fn udp_v4(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(v4(src), v4(dst), 64).udp(sport, dport);
    build(0, |o| b.write(o, payload).unwrap())
}

/// A UDP datagram over IPv6.
pub fn udp_v6(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(v6(src), v6(dst), 64).udp(sport, dport);
    build(0, |o| b.write(o, payload).unwrap())
}

/// An SCTP packet over IPv4 with the given chunks (our CRC32c, checked against scapy in
/// `sctp.rs`).
pub fn sctp_v4(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, chunks: &[u8]) -> Vec<u8> {
    let mut l4 = std::vec![0u8; 12];
    l4.extend_from_slice(chunks);
    let mut s = crate::SctpPacket::new_unchecked(&mut l4[..]);
    s.set_src_port(sport);
    s.set_dst_port(dport);
    s.set_verification_tag(0x0a0b_0c0d);
    s.fill_checksum();
    let mut out = Vec::new();
    let ip = etherparse::Ipv4Header::new(
        l4.len() as u16,
        64,
        etherparse::IpNumber(132),
        v4(src),
        v4(dst),
    )
    .unwrap();
    ip.write(&mut out).unwrap(); // computes the header checksum
    out.extend_from_slice(&l4);
    out
}

/// An ICMPv4 error of `icmp_type`/`code` from `src` to `dst` quoting `quote`.
pub fn icmp4_error(src: IpAddr, dst: IpAddr, icmp_type: u8, code: u8, quote: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(v4(src), v4(dst), 64).icmpv4_raw(icmp_type, code, [0; 4]);
    build(0, |o| b.write(o, quote).unwrap())
}

/// An ICMPv6 error of `icmp_type`/`code` from `src` to `dst` quoting `quote`.
pub fn icmp6_error(src: IpAddr, dst: IpAddr, icmp_type: u8, code: u8, quote: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(v6(src), v6(dst), 64).icmpv6_raw(icmp_type, code, [0; 4]);
    build(0, |o| b.write(o, quote).unwrap())
}

/// Whether etherparse, computing on its own, agrees that the IPv4 header checksum and the
/// TCP, UDP, ICMP or ICMPv6 checksum are valid.
pub fn oracle_checksums_ok(buf: &[u8]) -> bool {
    let s = SlicedPacket::from_ip(buf).expect("the oracle parses the packet");
    let (src4, dst4, src6, dst6) = match &s.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            if h.to_header().calc_header_checksum() != h.header_checksum() {
                return false;
            }
            (h.source(), h.destination(), [0; 16], [0; 16])
        }
        Some(NetSlice::Ipv6(ip)) => (
            [0; 4],
            [0; 4],
            ip.header().source(),
            ip.header().destination(),
        ),
        _ => panic!("not IP"),
    };
    let is_v4 = matches!(s.net, Some(NetSlice::Ipv4(_)));
    match &s.transport {
        Some(TransportSlice::Tcp(t)) => {
            let c = if is_v4 {
                t.calc_checksum_ipv4(src4, dst4)
            } else {
                t.calc_checksum_ipv6(src6, dst6)
            };
            c.unwrap() == t.checksum()
        }
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            if is_v4 {
                u.checksum() == 0
                    || h.calc_checksum_ipv4_raw(src4, dst4, u.payload()).unwrap() == u.checksum()
            } else {
                h.calc_checksum_ipv6_raw(src6, dst6, u.payload()).unwrap() == u.checksum()
            }
        }
        Some(TransportSlice::Icmpv4(i)) => {
            i.header().icmp_type.calc_checksum(i.payload()) == i.checksum()
        }
        Some(TransportSlice::Icmpv6(i)) => i.is_checksum_valid(src6, dst6),
        _ => true,
    }
}
