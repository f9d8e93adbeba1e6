//! Address and port translation of one packet, in place.

use core::net::IpAddr;

use super::{fix_checksum, icmp, write_addr, write16};
use crate::checksum::{self, Delta};
use crate::error::Malformed;
use crate::field::get32;
use crate::icmp::{is_icmpv4_error, is_icmpv6_error};
use crate::ip::{self, Layout};
use crate::ipv4;
use crate::meta::{Fragment, ipproto};
use crate::sctp::{self, SctpPacket};
use crate::tcp::{self, TcpPacket};
use crate::udp::{self, UdpPacket};

/// DCCP: its checksum covers a pseudo-header we do not update.
const DCCP: u8 = 33;
/// UDP-Lite: same.
const UDPLITE: u8 = 136;

/// What to do at the transport layer, decided before anything is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Ports and the checksum at this offset in the header (TCP, or UDP with its zero rules).
    Ports { checksum_at: usize, udp: bool },
    /// Ports and a CRC32c patch (SCTP).
    Sctp,
    /// The ICMPv6 checksum covers the pseudo-header: addresses only.
    Icmpv6,
    /// Nothing above IP depends on the addresses (ICMPv4, ESP, AH, GRE, non-first fragments).
    None,
}

/// Replaces the source and/or destination address and port of a packet, in place, with
/// incremental checksum updates.
///
/// **Contract: `src` and `dst` describe the translation of the flow in the direction this
/// packet travels.** `Some((addr, port))` is the new source (or destination) of packets of
/// this direction; `None` leaves it as it is. So:
///
/// * DNAT (masquerading, client→VIP becomes client→RS): `nat(buf, None, Some((rs, rport)))`.
/// * Reverse DNAT of a reply (RS→client becomes VIP→client):
///   `nat(buf, Some((vip, vport)), None)`.
/// * Full NAT: both, in each direction.
///
/// Both addresses must be of the packet's family ([`Malformed::FamilyMismatch`]).
///
/// By protocol: TCP and UDP get their ports and checksum updated (RFC 1624; a UDP checksum of
/// 0 stays 0, a result of 0 is written 0xffff); SCTP gets its ports and a patched CRC32c
/// (which does not cover IP addresses); ICMPv6 messages get their checksum updated for the
/// pseudo-header; ICMPv4 echo, ESP, AH, GRE and other protocols get their addresses only, and
/// the ports are ignored. DCCP and UDP-Lite are refused ([`Malformed::UnsupportedProtocol`]).
///
/// **ICMP errors** (IPv4 types 3, 4, 11, 12; ICMPv6 types below 128) are translated
/// consistently with the flow they quote, as `ip_vs_nat_icmp()` does: the outer source and
/// destination *addresses* become `src.0` and `dst.0`, and the quoted packet, which travelled
/// the other way, is translated in the opposite direction: quoted destination ← `src`
/// (address and port), quoted source ← `dst`. The outer IPv4 header checksum, the quoted IPv4
/// header checksum, the quoted transport checksum and the ICMP checksum (with its
/// pseudo-header for ICMPv6) are updated incrementally. The quoted transport checksum is
/// updated whenever its field lies inside the quote, even when the quote is cut: the
/// incremental update stays exact for the full datagram, so the quote becomes byte for byte
/// what the endpoint sent (the kernel leaves it stale). A quoted SCTP CRC32c is patched only
/// when the quote holds the whole SCTP packet.
///
/// Fragments: a first fragment is translated like a whole packet (the incremental updates
/// are exact for the reassembled datagram), except that an SCTP port change is refused
/// ([`Malformed::FragmentedSctp`]). A non-first fragment has no transport header: only its
/// addresses are rewritten and the ports are ignored, which is right only if every fragment
/// of the datagram gets the same translation (the rvs data plane drops them instead).
///
/// An IPv6 packet with a routing header that still has segments left is refused
/// ([`Malformed::UnsupportedExtension`]): its transport checksum covers the final
/// destination, not the destination field.
///
/// The whole packet is validated before the first write: on error the buffer is unchanged.
/// IPv4 options that carry addresses (source routes, timestamps) are not rewritten, as in
/// the kernel.
pub fn nat(
    buf: &mut [u8],
    src: Option<(IpAddr, u16)>,
    dst: Option<(IpAddr, u16)>,
) -> Result<(), Malformed> {
    let lay = ip::locate(buf)?;
    let wrong_family = |x: Option<(IpAddr, u16)>| x.is_some_and(|(a, _)| a.is_ipv6() != lay.v6);
    if wrong_family(src) || wrong_family(dst) {
        return Err(Malformed::FamilyMismatch);
    }
    if lay.routed {
        return Err(Malformed::UnsupportedExtension);
    }
    if lay.has_l4_header() && lay.is_icmp() {
        if let Some(&t) = buf[..lay.end].get(lay.l4_off) {
            let error = if lay.v6 {
                is_icmpv6_error(t)
            } else {
                is_icmpv4_error(t)
            };
            if error {
                return icmp::translate(buf, &lay, src, dst);
            }
        }
    }
    let plan = plan(buf, &lay, src, dst)?;

    let mut d_addr = Delta::ZERO;
    if let Some((a, _)) = src {
        write_addr(buf, lay.src_range().start, a, &mut d_addr);
    }
    if let Some((a, _)) = dst {
        write_addr(buf, lay.dst_range().start, a, &mut d_addr);
    }
    let mut unused = Delta::ZERO;
    if !lay.v6 {
        fix_checksum(buf, ipv4::CHECKSUM, d_addr, false, &mut unused);
    }
    let l4 = lay.l4_off;
    match plan {
        Plan::Ports { checksum_at, udp } => {
            let mut d = d_addr;
            write_ports(buf, l4, src, dst, &mut d);
            fix_checksum(buf, l4 + checksum_at, d, udp, &mut unused);
        }
        Plan::Sctp => {
            let old = get32(buf, l4).to_be_bytes();
            write_ports(buf, l4, src, dst, &mut unused);
            let new = get32(buf, l4).to_be_bytes();
            let crc = SctpPacket::new_unchecked(&buf[l4..lay.end]).checksum();
            let trailing = lay.end - l4 - 4;
            let crc = checksum::crc32c_patch(crc, &old, &new, trailing);
            SctpPacket::new_unchecked(&mut buf[l4..lay.end]).set_checksum(crc);
        }
        Plan::Icmpv6 => fix_checksum(buf, l4 + crate::icmp::CHECKSUM, d_addr, false, &mut unused),
        Plan::None => {}
    }
    Ok(())
}

/// Writes the new source port at `l4` and the new destination port at `l4 + 2`.
#[inline]
fn write_ports(
    buf: &mut [u8],
    l4: usize,
    src: Option<(IpAddr, u16)>,
    dst: Option<(IpAddr, u16)>,
    d: &mut Delta,
) {
    if let Some((_, p)) = src {
        write16(buf, l4, p, d);
    }
    if let Some((_, p)) = dst {
        write16(buf, l4 + 2, p, d);
    }
}

fn plan(
    buf: &[u8],
    lay: &Layout,
    src: Option<(IpAddr, u16)>,
    dst: Option<(IpAddr, u16)>,
) -> Result<Plan, Malformed> {
    if !lay.has_l4_header() {
        return Ok(Plan::None);
    }
    let seg = &buf[lay.l4_off..lay.end];
    Ok(match lay.protocol {
        ipproto::TCP => {
            TcpPacket::new_checked(seg)?;
            Plan::Ports {
                checksum_at: tcp::CHECKSUM,
                udp: false,
            }
        }
        ipproto::UDP => {
            UdpPacket::new_unchecked(seg).check_header_len()?;
            Plan::Ports {
                checksum_at: udp::CHECKSUM,
                udp: true,
            }
        }
        ipproto::SCTP => {
            let s = SctpPacket::new_checked(seg)?;
            let sport = src.map_or(s.src_port(), |(_, p)| p);
            let dport = dst.map_or(s.dst_port(), |(_, p)| p);
            if (sport, dport) == (s.src_port(), s.dst_port()) {
                Plan::None
            } else if lay.frag != Fragment::None {
                return Err(Malformed::FragmentedSctp);
            } else {
                debug_assert!(seg.len() >= sctp::HEADER_LEN);
                Plan::Sctp
            }
        }
        ipproto::ICMPV6 if lay.v6 => {
            crate::Icmpv6Packet::new_checked(seg)?;
            Plan::Icmpv6
        }
        DCCP | UDPLITE => return Err(Malformed::UnsupportedProtocol),
        _ => Plan::None,
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testutil::*;
    use crate::{L4, PacketMeta, verify_checksums};

    #[test]
    fn dnat_then_reverse_restores_tcp_v4() {
        let orig = tcp_v4(CLIENT4, 40000, VIP4, 80, b"hello");
        let mut b = orig.clone();
        nat(&mut b, None, Some((RS4, 8080))).unwrap();
        assert!(verify_checksums(&b));
        assert!(oracle_checksums_ok(&b));
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!(
            (m.src, m.sport, m.dst, m.dport),
            (CLIENT4, 40000, RS4, 8080)
        );
        nat(&mut b, None, Some((VIP4, 80))).unwrap();
        assert_eq!(b, orig);
    }

    #[test]
    fn full_nat_udp_v6() {
        let orig = udp_v6(CLIENT6, 5353, VIP6, 53, b"query");
        let mut b = orig.clone();
        nat(&mut b, Some((LOCAL6, 61000)), Some((RS6, 5300))).unwrap();
        assert!(verify_checksums(&b));
        assert!(oracle_checksums_ok(&b));
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!((m.src, m.sport, m.dst, m.dport), (LOCAL6, 61000, RS6, 5300));
        nat(&mut b, Some((CLIENT6, 5353)), Some((VIP6, 53))).unwrap();
        assert_eq!(b, orig);
    }

    #[test]
    fn udp_v4_zero_checksum_stays_zero() {
        let mut b = udp_v4(CLIENT4, 5353, VIP4, 53, b"query");
        b[26] = 0;
        b[27] = 0;
        nat(&mut b, None, Some((RS4, 5300))).unwrap();
        assert_eq!(&b[26..28], &[0, 0]);
        assert!(verify_checksums(&b));
    }

    #[test]
    fn udp_result_zero_is_written_ffff() {
        // Search a destination port for which the translated checksum computes to zero.
        let orig = udp_v4(CLIENT4, 5353, VIP4, 53, b"q");
        let mut hit = false;
        for port in 0..=u16::MAX {
            let mut b = orig.clone();
            nat(&mut b, None, Some((RS4, port))).unwrap();
            assert_ne!(&b[26..28], &[0, 0]);
            if b[26..28] == [0xff, 0xff] {
                hit = true;
                assert!(verify_checksums(&b));
            }
        }
        assert!(hit, "some port gives a zero sum");
    }

    #[test]
    fn sctp_port_change_patches_crc() {
        let orig = sctp_v4(
            CLIENT4,
            5000,
            VIP4,
            80,
            &[
                1, 0, 0, 20, 1, 2, 3, 4, 0, 0, 0xff, 0xff, 0, 10, 0, 10, 0, 0, 0, 1,
            ],
        );
        let mut b = orig.clone();
        nat(&mut b, None, Some((RS4, 8080))).unwrap();
        assert!(verify_checksums(&b));
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!((m.dst, m.dport), (RS4, 8080));
        assert!(matches!(m.l4, L4::Sctp { first_chunk: 1, .. }));
        nat(&mut b, None, Some((VIP4, 80))).unwrap();
        assert_eq!(b, orig);
    }

    #[test]
    fn family_mismatch_leaves_buffer_alone() {
        let orig = tcp_v4(CLIENT4, 40000, VIP4, 80, b"");
        let mut b = orig.clone();
        assert_eq!(
            nat(&mut b, None, Some((RS6, 80))),
            Err(Malformed::FamilyMismatch)
        );
        assert_eq!(b, orig);
    }

    #[test]
    fn non_first_fragment_gets_addresses_only() {
        let mut b = udp_v4(CLIENT4, 5353, VIP4, 53, b"0123456789abcdef");
        // Turn it into a non-first fragment (offset 8) and fix the header checksum.
        b[6] = 0;
        b[7] = 1;
        let mut p = crate::Ipv4Packet::new_unchecked(&mut b[..]);
        p.fill_checksum();
        let before = b.clone();
        nat(&mut b, None, Some((RS4, 9999))).unwrap();
        assert_eq!(&b[20..], &before[20..], "payload untouched");
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!((m.dst, m.dport, m.frag), (RS4, 0, Fragment::NonFirst));
    }

    #[test]
    fn refusals_leave_the_buffer_alone() {
        // DCCP's checksum covers the pseudo-header too: refused rather than corrupted.
        let mut b = udp_v4(CLIENT4, 1, VIP4, 2, b"dccp?");
        let mut p = crate::Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_protocol(DCCP);
        p.fill_checksum();
        let orig = b.clone();
        assert_eq!(
            nat(&mut b, None, Some((RS4, 2))),
            Err(Malformed::UnsupportedProtocol)
        );
        assert_eq!(b, orig);
        // An IPv6 routing header with segments left: the checksum covers the final hop.
        let u = udp_v6(CLIENT6, 1, VIP6, 2, b"x");
        let mut b = u[..40].to_vec();
        b.extend_from_slice(&[17, 2, 0, 1, 0, 0, 0, 0]); // type 0, 1 segment left
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&u[40..]);
        b[6] = 43;
        b[5] += 24;
        let orig = b.clone();
        assert_eq!(
            nat(&mut b, None, Some((RS6, 2))),
            Err(Malformed::UnsupportedExtension)
        );
        assert_eq!(b, orig);
        // ESP: addresses only.
        let mut b = udp_v4(CLIENT4, 1, VIP4, 2, b"esp");
        let mut p = crate::Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_protocol(ipproto::ESP);
        p.fill_checksum();
        let l4 = b[20..].to_vec();
        nat(&mut b, None, Some((RS4, 9))).unwrap();
        assert_eq!(&b[20..], &l4[..]);
        assert_eq!(PacketMeta::parse(&b).unwrap().dst, RS4);
    }
}
