//! IP-in-IP encapsulation: the packet half of the kernel's `ip_vs_tunnel_xmit()`.

use core::net::IpAddr;

use crate::error::Malformed;
use crate::ip;
use crate::ipv4::{self, Ipv4Packet};
use crate::ipv6::{self, Ipv6Packet};
use crate::meta::{Fragment, ipproto};

/// Hop limit of the outer header.
pub const OUTER_TTL: u8 = 64;

/// Encapsulates the IP packet `inner` in a new outer header from `outer_src` to `outer_dst`,
/// written to `out`; returns the number of bytes written.
///
/// The outer protocol follows the inner version: 4 (IPIP) for an IPv4 inner packet, 41 for an
/// IPv6 one, under an outer header of either family (IPv4 in IPv4, IPv6 in IPv6, IPv6 in
/// IPv4, IPv4 in IPv6). The outer header gets TTL / hop limit 64 and the inner traffic class
/// (DSCP and ECN, copied as RFC 6040's normal mode does). Under an IPv4 outer header, DF is
/// copied from an IPv4 inner packet (with its identification, which keeps the outer one
/// unique whenever the inner one is) and set for an IPv6 inner packet, which routers may not
/// fragment (identification 0, RFC 6864). The IPv6 flow label is 0.
///
/// `inner` must hold one valid IP packet (bytes past its length are not copied). Errors: the
/// inner packet's own [`Malformed`] reason; [`Malformed::FamilyMismatch`] if the outer
/// addresses differ in family; [`Malformed::TooLong`] if the result (IPv4) or its payload
/// (IPv6) would exceed 65535 bytes; [`Malformed::OutputTooSmall`].
pub fn encap(
    inner: &[u8],
    outer_src: IpAddr,
    outer_dst: IpAddr,
    out: &mut [u8],
) -> Result<usize, Malformed> {
    let (len, protocol, tos, df, ident) = match inner.first().map(|b| b >> 4) {
        None => return Err(Malformed::Truncated),
        Some(4) => {
            let p = Ipv4Packet::new_checked(inner)?;
            (
                p.total_len() as usize,
                ipproto::IPIP,
                p.tos(),
                p.dont_frag(),
                p.ident(),
            )
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(inner)?;
            (p.packet_len(), ipproto::IPV6, p.traffic_class(), true, 0)
        }
        Some(_) => return Err(Malformed::BadVersion),
    };
    match (outer_src, outer_dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = ipv4::HEADER_LEN + len;
            if total > u16::MAX as usize {
                return Err(Malformed::TooLong);
            }
            let out = out.get_mut(..total).ok_or(Malformed::OutputTooSmall)?;
            let mut p = Ipv4Packet::new_unchecked(&mut *out);
            p.set_header_len(ipv4::HEADER_LEN);
            p.set_tos(tos);
            p.set_total_len(total as u16);
            p.set_ident(ident);
            p.set_frag(df, false, 0);
            p.set_ttl(OUTER_TTL);
            p.set_protocol(protocol);
            p.set_src_addr(s);
            p.set_dst_addr(d);
            p.fill_checksum();
            out[ipv4::HEADER_LEN..].copy_from_slice(&inner[..len]);
            Ok(total)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            if len > u16::MAX as usize {
                return Err(Malformed::TooLong);
            }
            let total = ipv6::HEADER_LEN + len;
            let out = out.get_mut(..total).ok_or(Malformed::OutputTooSmall)?;
            let mut p = Ipv6Packet::new_unchecked(&mut *out);
            p.set_version_tc_flow(tos, 0);
            p.set_payload_len(len as u16);
            p.set_next_header(protocol);
            p.set_hop_limit(OUTER_TTL);
            p.set_src_addr(s);
            p.set_dst_addr(d);
            out[ipv6::HEADER_LEN..].copy_from_slice(&inner[..len]);
            Ok(total)
        }
        _ => Err(Malformed::FamilyMismatch),
    }
}

/// Returns the inner packet of an IPIP or IPv6-in-IP packet (the inverse of [`encap`], for
/// tests and for a real server's side).
///
/// Errors: the outer packet's own [`Malformed`] reason; [`Malformed::UnsupportedProtocol`]
/// if the outer protocol is neither 4 nor 41, or the outer packet is a fragment (rvs does
/// not reassemble); [`Malformed::BadVersion`] if the inner version does not match the outer
/// protocol.
pub fn decap(outer: &[u8]) -> Result<&[u8], Malformed> {
    let lay = ip::locate(outer)?;
    let want = match lay.protocol {
        ipproto::IPIP => 4,
        ipproto::IPV6 => 6,
        _ => return Err(Malformed::UnsupportedProtocol),
    };
    if lay.frag != Fragment::None {
        return Err(Malformed::UnsupportedProtocol);
    }
    let inner = &outer[lay.l4_off..lay.end];
    match inner.first() {
        Some(b) if b >> 4 == want => Ok(inner),
        Some(_) => Err(Malformed::BadVersion),
        None => Err(Malformed::Truncated),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testutil::*;
    use crate::{PacketMeta, verify_checksums};

    #[test]
    fn all_four_families() {
        let v4 = tcp_v4(CLIENT4, 40000, VIP4, 80, b"payload");
        let v6 = udp_v6(CLIENT6, 5353, VIP6, 53, b"payload");
        let cases = [
            (&v4, LOCAL4, RS4, 4u8, 20usize),
            (&v4, LOCAL6, RS6, 4, 40),
            (&v6, LOCAL4, RS4, 41, 20),
            (&v6, LOCAL6, RS6, 41, 40),
        ];
        for (inner, s, d, proto, hl) in cases {
            let mut out = [0u8; 200];
            let n = encap(inner, s, d, &mut out).unwrap();
            assert_eq!(n, inner.len() + hl);
            let pkt = &out[..n];
            assert!(verify_checksums(pkt));
            let m = PacketMeta::parse(pkt).unwrap();
            assert_eq!((m.src, m.dst, m.protocol), (s, d, proto));
            assert_eq!(decap(pkt).unwrap(), &inner[..]);
            // The oracle reads the same outer header.
            let s = etherparse::SlicedPacket::from_ip(pkt).unwrap();
            assert!(s.net.is_some());
        }
    }

    #[test]
    fn df_and_ttl() {
        let mut inner = tcp_v4(CLIENT4, 40000, VIP4, 80, b"");
        let mut out = [0u8; 100];
        let n = encap(&inner, LOCAL4, RS4, &mut out).unwrap();
        let p = Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert!(p.dont_frag(), "the test packet has DF");
        assert_eq!(p.ttl(), 64);
        let mut ip = Ipv4Packet::new_unchecked(&mut inner[..]);
        ip.set_frag(false, false, 0);
        ip.set_ident(0x4242);
        ip.fill_checksum();
        let n = encap(&inner, LOCAL4, RS4, &mut out).unwrap();
        let p = Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert!(!p.dont_frag());
        assert_eq!(p.ident(), 0x4242);
    }

    #[test]
    fn errors() {
        let inner = tcp_v4(CLIENT4, 40000, VIP4, 80, b"");
        let mut out = [0u8; 100];
        assert_eq!(
            encap(&inner, LOCAL4, RS6, &mut out),
            Err(Malformed::FamilyMismatch)
        );
        assert_eq!(
            encap(&inner, LOCAL4, RS4, &mut out[..59]),
            Err(Malformed::OutputTooSmall)
        );
        assert_eq!(encap(&[], LOCAL4, RS4, &mut out), Err(Malformed::Truncated));
        assert_eq!(
            encap(&[0x50; 40], LOCAL4, RS4, &mut out),
            Err(Malformed::BadVersion)
        );
        let mut big = std::vec![0u8; 65535];
        big[..inner.len()].copy_from_slice(&inner);
        big[2] = 0xff;
        big[3] = 0xff;
        let mut out = std::vec![0u8; 70000];
        assert_eq!(encap(&big, LOCAL4, RS4, &mut out), Err(Malformed::TooLong));
        assert_eq!(encap(&big, LOCAL6, RS6, &mut out), Ok(65575));
        assert_eq!(decap(&inner), Err(Malformed::UnsupportedProtocol));
    }
}
