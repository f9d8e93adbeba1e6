//! Building packets the balancer sends on its own: TCP resets and ICMP errors.
//!
//! Everything is written into the caller's buffer; the functions return the length written.
//! TTL / hop limit is 64. Checksums are computed in full (these packets are new).

use core::net::IpAddr;

use crate::error::Malformed;
use crate::icmp::{
    Icmpv4Packet, Icmpv6Packet, icmpv4_type, icmpv4_unreach, icmpv6_type, icmpv6_unreach,
};
use crate::ip;
use crate::ipv4::{self, Ipv4Packet};
use crate::ipv6::{self, Ipv6Packet};
use crate::meta::{Fragment, L4, PacketMeta, TcpFlags, ipproto};
use crate::tcp::{self, TcpPacket};

/// TTL or hop limit of synthesized packets.
pub const TTL: u8 = 64;

/// The largest ICMPv4 error: RFC 1812 §4.3.2.3 quotes as much as fits in 576 bytes.
pub const ICMPV4_ERROR_MAX: usize = 576;
/// The largest ICMPv6 error: RFC 4443 §2.4 (c) quotes as much as fits in the minimum MTU.
pub const ICMPV6_ERROR_MAX: usize = 1280;

/// Writes an IP header of `src`'s family for a payload of `payload_len` bytes; returns the
/// header length. The caller has checked the families and the room.
fn ip_header(
    out: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    tos: u8,
    payload_len: usize,
) -> usize {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = Ipv4Packet::new_unchecked(&mut *out);
            p.set_header_len(ipv4::HEADER_LEN);
            p.set_tos(tos);
            p.set_total_len((ipv4::HEADER_LEN + payload_len) as u16);
            p.set_ident(0);
            p.set_frag(true, false, 0);
            p.set_ttl(TTL);
            p.set_protocol(protocol);
            p.set_src_addr(s);
            p.set_dst_addr(d);
            p.fill_checksum();
            ipv4::HEADER_LEN
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Ipv6Packet::new_unchecked(&mut *out);
            p.set_version_tc_flow(tos, 0);
            p.set_payload_len(payload_len as u16);
            p.set_next_header(protocol);
            p.set_hop_limit(TTL);
            p.set_src_addr(s);
            p.set_dst_addr(d);
            ipv6::HEADER_LEN
        }
        _ => 0,
    }
}

fn header_len(addr: IpAddr) -> usize {
    if addr.is_ipv4() {
        ipv4::HEADER_LEN
    } else {
        ipv6::HEADER_LEN
    }
}

/// Builds a TCP reset from `src` to `dst` (address, port) with sequence number `seq`; with
/// `ack = Some(n)` the ACK flag is set and the acknowledgment number is `n`. Window 0, no
/// options, no data; the IPv4 header has DF set and identification 0 (RFC 6864).
///
/// Which numbers to use (RFC 9293 §3.10.7.1, reset generation): to answer a segment that
/// carried ACK, send `seq = SEG.ACK` and no ACK; to answer one without ACK, send `seq = 0`
/// and `ack = SEG.SEQ + SEG.LEN` (SYN and FIN count one each). Never answer a RST.
/// [`rst_reply_numbers`] computes this from a [`PacketMeta`]. To reset both sides of an
/// established connection (a removed real server), use the sequence numbers the connection
/// expects next from each sender.
///
/// Returns the length written (40 for IPv4, 60 for IPv6). Errors:
/// [`Malformed::FamilyMismatch`], [`Malformed::OutputTooSmall`].
pub fn tcp_rst(
    out: &mut [u8],
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    seq: u32,
    ack: Option<u32>,
) -> Result<usize, Malformed> {
    if src.0.is_ipv4() != dst.0.is_ipv4() {
        return Err(Malformed::FamilyMismatch);
    }
    let hl = header_len(src.0);
    let total = hl + tcp::HEADER_LEN;
    let out = out.get_mut(..total).ok_or(Malformed::OutputTooSmall)?;
    ip_header(out, src.0, dst.0, ipproto::TCP, 0, tcp::HEADER_LEN);
    let mut t = TcpPacket::new_unchecked(&mut out[hl..]);
    t.set_src_port(src.1);
    t.set_dst_port(dst.1);
    t.set_seq_number(seq);
    t.set_ack_number(ack.unwrap_or(0));
    t.set_header_len(tcp::HEADER_LEN);
    let flags = if ack.is_some() {
        TcpFlags::RST | TcpFlags::ACK
    } else {
        TcpFlags::RST
    };
    t.set_flags(TcpFlags(flags));
    t.set_window_len(0);
    t.set_urgent_at(0);
    t.fill_checksum(src.0, dst.0);
    Ok(total)
}

/// The `(seq, ack)` of a reset answering the TCP segment `meta` (RFC 9293 §3.10.7.1), or
/// `None` if `meta` is not TCP, is a non-first fragment, or is itself a reset.
pub fn rst_reply_numbers(meta: &PacketMeta) -> Option<(u32, Option<u32>)> {
    let L4::Tcp {
        flags,
        seq,
        ack,
        payload_len,
    } = meta.l4
    else {
        return None;
    };
    if flags.rst() || meta.frag == Fragment::NonFirst {
        return None;
    }
    if flags.ack() {
        Some((ack, None))
    } else {
        let len = payload_len
            .wrapping_add(flags.syn() as u32)
            .wrapping_add(flags.fin() as u32);
        Some((0, Some(seq.wrapping_add(len))))
    }
}

/// What kind of ICMP error to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    Unreachable(Option<u8>),
    TooBig(u32),
}

/// Builds an ICMP (IPv4) or ICMPv6 destination unreachable from `from` to the source of
/// `orig`, quoting `orig`. `code` defaults to port unreachable (IPv4 type 3 code 3, IPv6
/// type 1 code 4); see [`icmpv4_unreach`] and [`icmpv6_unreach`] for others.
///
/// The quote is as much of `orig` as fits in 576 bytes in all (IPv4, RFC 1812 §4.3.2.3) or
/// 1280 (IPv6, RFC 4443 §2.4 (c)), and in `out`; at least the IP header and 8 bytes of what
/// follows must fit ([`Malformed::OutputTooSmall`]).
///
/// No error is built ([`Malformed::IcmpSuppressed`]) about an ICMP error or redirect, a
/// non-first fragment, a packet to a multicast or broadcast address, or from an unspecified,
/// multicast or broadcast one (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)). A
/// malformed `orig` gets its own [`Malformed`] reason; `from` of the other family gets
/// [`Malformed::FamilyMismatch`]. The IPv4 header has DSCP CS6 (network control), DF clear.
pub fn icmp_unreachable(
    out: &mut [u8],
    orig: &[u8],
    from: IpAddr,
    code: Option<u8>,
) -> Result<usize, Malformed> {
    icmp_error(out, orig, from, ErrorKind::Unreachable(code))
}

/// Builds an ICMP "fragmentation needed" (IPv4 type 3 code 4, next-hop MTU in bytes 6..8,
/// RFC 1191) or ICMPv6 "packet too big" (type 2, MTU in bytes 4..8) about `orig`, which the
/// tunnel method sends when an encapsulated packet would exceed the path MTU. Same rules
/// and errors as [`icmp_unreachable`], except that an IPv6 packet too big may answer a
/// multicast destination (RFC 4443 §2.4 (e.3)).
pub fn icmp_too_big(
    out: &mut [u8],
    orig: &[u8],
    from: IpAddr,
    mtu: u32,
) -> Result<usize, Malformed> {
    icmp_error(out, orig, from, ErrorKind::TooBig(mtu))
}

fn suppressed(meta: &PacketMeta, kind: ErrorKind) -> bool {
    let about_error = match meta.l4 {
        L4::IcmpError { .. } => true,
        L4::IcmpOther { icmp_type } => {
            icmp_type
                == if meta.src.is_ipv4() {
                    icmpv4_type::REDIRECT
                } else {
                    icmpv6_type::REDIRECT
                }
        }
        _ => false,
    };
    let bad_dst = match meta.dst {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast() && !matches!(kind, ErrorKind::TooBig(_)),
    };
    let bad_src = match meta.src {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
    };
    about_error || meta.frag == Fragment::NonFirst || bad_dst || bad_src
}

fn icmp_error(
    out: &mut [u8],
    orig: &[u8],
    from: IpAddr,
    kind: ErrorKind,
) -> Result<usize, Malformed> {
    let meta = PacketMeta::parse(orig)?;
    let lay = ip::locate(orig)?;
    if from.is_ipv4() != meta.src.is_ipv4() {
        return Err(Malformed::FamilyMismatch);
    }
    if suppressed(&meta, kind) {
        return Err(Malformed::IcmpSuppressed);
    }
    let hl = header_len(from);
    let max = if lay.v6 {
        ICMPV6_ERROR_MAX
    } else {
        ICMPV4_ERROR_MAX
    };
    let room = out
        .len()
        .min(max)
        .saturating_sub(hl + crate::icmp::HEADER_LEN);
    let quote_len = lay.end.min(room);
    if quote_len < lay.end.min(lay.l4_off + 8) {
        return Err(Malformed::OutputTooSmall);
    }
    let msg_len = crate::icmp::HEADER_LEN + quote_len;
    let total = hl + msg_len;
    let out = &mut out[..total];
    match (from, meta.src) {
        (IpAddr::V4(f), IpAddr::V4(to)) => {
            ip_header(out, f.into(), to.into(), ipproto::ICMP, 0xc0, msg_len);
            // ICMP errors may be fragmented on tiny links: DF clear.
            Ipv4Packet::new_unchecked(&mut *out).set_frag(false, false, 0);
            Ipv4Packet::new_unchecked(&mut *out).fill_checksum();
            let mut m = Icmpv4Packet::new_unchecked(&mut out[hl..]);
            match kind {
                ErrorKind::Unreachable(code) => {
                    m.set_msg_type(icmpv4_type::DEST_UNREACH);
                    m.set_msg_code(code.unwrap_or(icmpv4_unreach::PORT));
                    m.set_rest_of_header(0);
                }
                ErrorKind::TooBig(mtu) => {
                    m.set_msg_type(icmpv4_type::DEST_UNREACH);
                    m.set_msg_code(icmpv4_unreach::FRAG_NEEDED);
                    m.set_rest_of_header(0);
                    m.set_next_hop_mtu(mtu.min(u16::MAX as u32) as u16);
                }
            }
            m.data_mut().copy_from_slice(&orig[..quote_len]);
            m.fill_checksum();
        }
        (IpAddr::V6(f), IpAddr::V6(to)) => {
            ip_header(out, f.into(), to.into(), ipproto::ICMPV6, 0, msg_len);
            let mut m = Icmpv6Packet::new_unchecked(&mut out[hl..]);
            match kind {
                ErrorKind::Unreachable(code) => {
                    m.set_msg_type(icmpv6_type::DEST_UNREACH);
                    m.set_msg_code(code.unwrap_or(icmpv6_unreach::PORT));
                    m.set_rest_of_header(0);
                }
                ErrorKind::TooBig(mtu) => {
                    m.set_msg_type(icmpv6_type::PACKET_TOO_BIG);
                    m.set_msg_code(0);
                    m.set_mtu(mtu);
                }
            }
            m.data_mut().copy_from_slice(&orig[..quote_len]);
            m.fill_checksum(f, to);
        }
        _ => return Err(Malformed::FamilyMismatch),
    }
    Ok(total)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testutil::*;
    use crate::{Quoted, verify_checksums};
    use core::net::Ipv4Addr;

    #[test]
    fn rst_v4_and_v6() {
        let mut out = [0u8; 80];
        let n = tcp_rst(&mut out, (VIP4, 80), (CLIENT4, 40000), 1234, None).unwrap();
        assert_eq!(n, 40);
        assert!(verify_checksums(&out[..n]));
        assert!(oracle_checksums_ok(&out[..n]));
        let m = PacketMeta::parse(&out[..n]).unwrap();
        assert_eq!(m.tcp_flags(), Some(TcpFlags(TcpFlags::RST)));
        let n = tcp_rst(&mut out, (VIP6, 80), (CLIENT6, 40000), 0, Some(99)).unwrap();
        assert_eq!(n, 60);
        assert!(verify_checksums(&out[..n]));
        let m = PacketMeta::parse(&out[..n]).unwrap();
        assert_eq!(
            m.l4,
            L4::Tcp {
                flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
                seq: 0,
                ack: 99,
                payload_len: 0
            }
        );
        assert_eq!(
            tcp_rst(&mut out[..59], (VIP6, 80), (CLIENT6, 1), 0, None),
            Err(Malformed::OutputTooSmall)
        );
        assert_eq!(
            tcp_rst(&mut out, (VIP6, 80), (CLIENT4, 1), 0, None),
            Err(Malformed::FamilyMismatch)
        );
    }

    #[test]
    fn rst_numbers_follow_rfc9293() {
        let syn = PacketMeta::tcp((CLIENT4, 1), (VIP4, 80), TcpFlags::SYN, 1000, 0);
        assert_eq!(rst_reply_numbers(&syn), Some((0, Some(1001))));
        let data = PacketMeta::tcp(
            (CLIENT4, 1),
            (VIP4, 80),
            TcpFlags::ACK | TcpFlags::PSH,
            5,
            77,
        )
        .with_payload(10);
        assert_eq!(rst_reply_numbers(&data), Some((77, None)));
        let fin =
            PacketMeta::tcp((CLIENT4, 1), (VIP4, 80), TcpFlags::FIN, u32::MAX, 0).with_payload(1);
        assert_eq!(rst_reply_numbers(&fin), Some((0, Some(1))), "wraps");
        let rst = PacketMeta::tcp((CLIENT4, 1), (VIP4, 80), TcpFlags::RST, 5, 0);
        assert_eq!(rst_reply_numbers(&rst), None);
    }

    #[test]
    fn unreachable_quotes_and_parses_back() {
        let orig = udp_v4(CLIENT4, 5353, VIP4, 53, &[0x55; 1000]);
        let mut out = [0u8; 2000];
        let n = icmp_unreachable(&mut out, &orig, VIP4, None).unwrap();
        assert_eq!(n, 576);
        assert!(verify_checksums(&out[..n]));
        let m = PacketMeta::parse(&out[..n]).unwrap();
        assert_eq!((m.src, m.dst), (VIP4, CLIENT4));
        let L4::IcmpError {
            icmp_type: 3,
            code: 3,
            quoted,
        } = m.l4
        else {
            panic!("{m:?}")
        };
        assert_eq!(
            quoted,
            Quoted {
                src: CLIENT4,
                dst: VIP4,
                protocol: 17,
                sport: 5353,
                dport: 53
            }
        );
        assert_eq!(&out[28..n], &orig[..548]);

        let orig = tcp_v6(CLIENT6, 40000, VIP6, 80, &[0x66; 2000]);
        let mut out = [0u8; 4000];
        let n = icmp_unreachable(&mut out, &orig, VIP6, None).unwrap();
        assert_eq!(n, 1280);
        assert!(verify_checksums(&out[..n]));
        assert!(oracle_checksums_ok(&out[..n]));
        let m = PacketMeta::parse(&out[..n]).unwrap();
        assert!(matches!(
            m.l4,
            L4::IcmpError {
                icmp_type: 1,
                code: 4,
                ..
            }
        ));

        // A small original is quoted whole; a small buffer cuts the quote.
        let orig = udp_v4(CLIENT4, 5353, VIP4, 53, b"x");
        let n = icmp_unreachable(&mut out, &orig, VIP4, Some(13)).unwrap();
        assert_eq!(n, 28 + orig.len());
        let mut small = [0u8; 56];
        assert_eq!(icmp_unreachable(&mut small, &orig, VIP4, None), Ok(56));
        assert_eq!(
            icmp_unreachable(&mut small[..55], &orig, VIP4, None),
            Err(Malformed::OutputTooSmall)
        );
    }

    #[test]
    fn too_big() {
        let orig = tcp_v4(CLIENT4, 40000, VIP4, 80, &[0; 1400]);
        let mut out = [0u8; 600];
        let n = icmp_too_big(&mut out, &orig, LOCAL4, 1480).unwrap();
        let p = Icmpv4Packet::new_checked(&out[20..n]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code(), p.next_hop_mtu()), (3, 4, 1480));
        let orig = tcp_v6(CLIENT6, 40000, VIP6, 80, &[0; 1400]);
        let mut out = [0u8; 1280];
        let n = icmp_too_big(&mut out, &orig, LOCAL6, 1400).unwrap();
        let p = Icmpv6Packet::new_checked(&out[40..n]).unwrap();
        assert_eq!((p.msg_type(), p.mtu()), (2, 1400));
        assert!(verify_checksums(&out[..n]));
    }

    #[test]
    fn suppression_rules() {
        let mut out = [0u8; 600];
        let err = icmp4_error(RS4, CLIENT4, 3, 3, &udp_v4(CLIENT4, 1, RS4, 2, b""));
        assert_eq!(
            icmp_unreachable(&mut out, &err, VIP4, None),
            Err(Malformed::IcmpSuppressed)
        );
        let bcast = udp_v4(CLIENT4, 1, Ipv4Addr::BROADCAST.into(), 2, b"");
        assert_eq!(
            icmp_unreachable(&mut out, &bcast, VIP4, None),
            Err(Malformed::IcmpSuppressed)
        );
        let mcast = udp_v4(CLIENT4, 1, Ipv4Addr::new(224, 0, 0, 5).into(), 2, b"");
        assert_eq!(
            icmp_unreachable(&mut out, &mcast, VIP4, None),
            Err(Malformed::IcmpSuppressed)
        );
        let unspec = udp_v4(Ipv4Addr::UNSPECIFIED.into(), 1, VIP4, 2, b"");
        assert_eq!(
            icmp_unreachable(&mut out, &unspec, VIP4, None),
            Err(Malformed::IcmpSuppressed)
        );
        let ok = udp_v4(CLIENT4, 1, VIP4, 2, b"");
        assert_eq!(
            icmp_unreachable(&mut out, &ok, VIP6, None),
            Err(Malformed::FamilyMismatch)
        );
        assert_eq!(
            icmp_unreachable(&mut out, &ok[..10], VIP4, None),
            Err(Malformed::Truncated)
        );
    }
}
