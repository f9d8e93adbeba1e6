//! [`verify_checksums`]: every checksum of a packet, for tests, fuzzing and debugging.

use core::net::IpAddr;

use crate::checksum;
use crate::icmp::{self, is_icmpv4_error, is_icmpv6_error};
use crate::ip::{self, Layout};
use crate::ipv4::Ipv4Packet;
use crate::meta::{Fragment, ipproto};
use crate::sctp::SctpPacket;
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;

/// Whether every checksum of the IP packet `buf` that can be checked is valid: the IPv4
/// header; the TCP, UDP (zero allowed over IPv4 only), SCTP CRC32c, ICMP or ICMPv6 checksum;
/// and for an ICMP error, the quoted IPv4 header and, when the quote holds the whole quoted
/// datagram, its transport checksum. Transport checksums of fragments cannot be checked and
/// are skipped. A malformed packet (see [`PacketMeta::parse`](crate::PacketMeta::parse))
/// returns `false`. This reads the whole packet: it is not for the hot path.
pub fn verify_checksums(buf: &[u8]) -> bool {
    let Ok(lay) = ip::locate(buf) else {
        return false;
    };
    if !lay.v6 && !Ipv4Packet::new_unchecked(buf).verify_checksum() {
        return false;
    }
    if lay.frag != Fragment::None {
        return true;
    }
    let seg = &buf[lay.l4_off..lay.end];
    if !transport_ok(seg, &lay) {
        return false;
    }
    if lay.is_icmp() {
        let t = seg[0];
        let error = if lay.v6 {
            is_icmpv6_error(t)
        } else {
            is_icmpv4_error(t)
        };
        if error {
            return quote_ok(&seg[icmp::HEADER_LEN..], lay.v6);
        }
    }
    true
}

/// The transport checksum of a whole (unfragmented) segment.
fn transport_ok(seg: &[u8], lay: &Layout) -> bool {
    let (src, dst): (IpAddr, IpAddr) = (lay.src, lay.dst);
    match lay.protocol {
        ipproto::TCP => TcpPacket::new_checked(seg).is_ok_and(|t| t.verify_checksum(src, dst)),
        ipproto::UDP => UdpPacket::new_checked(seg).is_ok_and(|u| u.verify_checksum(src, dst)),
        ipproto::SCTP => SctpPacket::new_checked(seg).is_ok_and(|s| s.verify_checksum()),
        _ if lay.is_icmp() => seg.len() >= icmp::HEADER_LEN && icmp::verify(seg, src, dst),
        _ => true,
    }
}

fn quote_ok(quote: &[u8], v6: bool) -> bool {
    let Ok(q) = ip::locate_quote(quote, v6) else {
        return false;
    };
    if !q.v6 && checksum::data(&quote[..Ipv4Packet::new_unchecked(quote).header_len()]) != 0xffff {
        return false;
    }
    if !q.full || q.frag != Fragment::None {
        return true;
    }
    transport_ok(&quote[q.l4_off..q.end], &q)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn detects_each_corruption() {
        let good = [
            tcp_v4(CLIENT4, 1, VIP4, 2, b"abc"),
            udp_v6(CLIENT6, 1, VIP6, 2, b"abc"),
            icmp4_error(RS4, CLIENT4, 3, 3, &udp_v4(CLIENT4, 1, RS4, 2, b"abc")),
            icmp6_error(RS6, CLIENT6, 1, 4, &tcp_v6(CLIENT6, 1, RS6, 2, b"abc")),
        ];
        for g in &good {
            assert!(verify_checksums(g));
            for i in 0..g.len() {
                // Flipping a byte of a length field may make the packet malformed, which also
                // reads as false; every other flip must be caught by some checksum, but for
                // the IPv6 traffic class, flow label and hop limit, which none covers, and the
                // IPv6 next header, which may turn into a protocol without a checksum.
                if g[0] >> 4 == 6 && matches!(i, 1..=3 | 6 | 7) {
                    continue;
                }
                let mut b = g.clone();
                b[i] ^= 0x10;
                assert!(!verify_checksums(&b), "flip at {i} of {g:02x?}");
            }
        }
    }
}
