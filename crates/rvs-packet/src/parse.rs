//! [`PacketMeta::parse`]: from the bytes of one IP packet to the summary the engine consumes.

use crate::error::Malformed;
use crate::icmp::{self, is_icmpv4_error, is_icmpv6_error};
use crate::ip::{self, Layout, has_ports};
use crate::ipv4::Ipv4Packet;
use crate::meta::{Fragment, L4, PacketMeta, Quoted, ipproto, sctp_chunk};
use crate::sctp::SctpPacket;
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;

impl PacketMeta {
    /// Parses a raw IP packet, as read from a TUN device: IPv4 or IPv6, chosen by the version
    /// nibble. It never panics and never allocates.
    ///
    /// What is checked: every length (IP header and total length, IPv6 extension chain,
    /// transport header); the IPv4 header checksum; the checksum of ICMP and ICMPv6 *errors*
    /// (rare, and the kernel verifies them before acting on the quote). Transport checksums
    /// of TCP, UDP and SCTP are *not* verified: the receiver does that, and the rewrites
    /// update them incrementally, so a wrong one stays wrong.
    ///
    /// Fragments: a first fragment (offset 0, more-fragments set) still holds the transport
    /// header, so it is parsed like a whole packet and marked [`Fragment::First`]. A later
    /// fragment has no transport header: it is marked [`Fragment::NonFirst`], with ports 0
    /// and [`L4::Other`], and the data plane counts and drops it (rvs does not reassemble).
    /// An IPv6 atomic fragment (offset 0, M clear, RFC 6946) is a whole packet.
    ///
    /// ICMP errors (IPv4 types 3, 4, 11, 12; IPv6 types below 128) become [`L4::IcmpError`]
    /// with the tuple of the quoted packet: its addresses, protocol, and the ports from the
    /// first bytes of its transport header. The quote may be cut right after them (RFC 792
    /// guarantees 8 bytes). `sport`/`dport` of the error itself are 0.
    ///
    /// `len` is the IP length (IPv4 total length, IPv6 40 + payload length); bytes of the
    /// buffer past it are ignored. `fwmark` is 0: the data plane sets it.
    pub fn parse(buf: &[u8]) -> Result<PacketMeta, Malformed> {
        let lay = ip::locate(buf)?;
        if !lay.v6 && !Ipv4Packet::new_unchecked(buf).verify_checksum() {
            return Err(Malformed::BadChecksum);
        }
        let mut meta = PacketMeta {
            src: lay.src,
            dst: lay.dst,
            protocol: lay.protocol,
            sport: 0,
            dport: 0,
            len: lay.end as u32,
            l4: L4::Other,
            frag: lay.frag,
            fwmark: 0,
        };
        if lay.frag == Fragment::NonFirst {
            return Ok(meta);
        }
        let seg = &buf[lay.l4_off..lay.end];
        match lay.protocol {
            ipproto::TCP => {
                let t = TcpPacket::new_checked(seg)?;
                meta.sport = t.src_port();
                meta.dport = t.dst_port();
                meta.l4 = L4::Tcp {
                    flags: t.flags(),
                    seq: t.seq_number(),
                    ack: t.ack_number(),
                    payload_len: t.payload().len() as u32,
                };
            }
            ipproto::UDP => {
                let u = UdpPacket::new_unchecked(seg);
                if lay.frag == Fragment::None {
                    u.check_len()?;
                } else {
                    // The length field describes the whole datagram, not this fragment.
                    u.check_header_len()?;
                }
                meta.sport = u.src_port();
                meta.dport = u.dst_port();
                meta.l4 = L4::Udp;
            }
            ipproto::SCTP => {
                let s = SctpPacket::new_checked(seg)?;
                meta.sport = s.src_port();
                meta.dport = s.dst_port();
                meta.l4 = parse_sctp(&s)?;
            }
            _ if lay.is_icmp() => meta.l4 = parse_icmp(seg, &lay)?,
            _ => {}
        }
        Ok(meta)
    }
}

/// The first chunk, and whether a COOKIE ECHO or COOKIE ACK is followed by an ABORT (the
/// kernel's `set_sctp_state()` reads the second chunk header for exactly that case).
fn parse_sctp(s: &SctpPacket<&[u8]>) -> Result<L4, Malformed> {
    let mut chunks = s.chunks();
    let first = match chunks.next() {
        Some(c) => c?,
        None => return Err(Malformed::TruncatedL4),
    };
    let cookie_then_abort = matches!(first.kind, sctp_chunk::COOKIE_ECHO | sctp_chunk::COOKIE_ACK)
        && matches!(chunks.next(), Some(Ok(c)) if c.kind == sctp_chunk::ABORT);
    Ok(L4::Sctp {
        first_chunk: first.kind,
        cookie_then_abort,
        vtag: s.verification_tag(),
    })
}

fn parse_icmp(seg: &[u8], lay: &Layout) -> Result<L4, Malformed> {
    if seg.len() < icmp::HEADER_LEN {
        return Err(Malformed::TruncatedL4);
    }
    let (icmp_type, code) = (seg[0], seg[1]);
    let error = if lay.v6 {
        is_icmpv6_error(icmp_type)
    } else {
        is_icmpv4_error(icmp_type)
    };
    if !error {
        return Ok(L4::IcmpOther { icmp_type });
    }
    // A first fragment holds only part of the message the checksum covers.
    if lay.frag == Fragment::None && !icmp::verify(seg, lay.src, lay.dst) {
        return Err(Malformed::BadChecksum);
    }
    let quote = &seg[icmp::HEADER_LEN..];
    let q = ip::locate_quote(quote, lay.v6)?;
    let (sport, dport) = if has_ports(q.protocol) && q.has_l4_header() {
        let p = &quote[q.l4_off..];
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    } else {
        (0, 0)
    };
    Ok(L4::IcmpError {
        icmp_type,
        code,
        quoted: Quoted {
            src: q.src,
            dst: q.dst,
            protocol: q.protocol,
            sport,
            dport,
        },
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::ipv6::Ipv6Packet;
    use crate::meta::TcpFlags;
    use crate::testutil::*;
    use std::vec::Vec;

    #[test]
    fn tcp_v4() {
        let b = crate::testutil::tcp_v4(CLIENT4, 40000, VIP4, 80, b"hello");
        let m = PacketMeta::parse(&b).unwrap();
        let want = PacketMeta::tcp(
            (CLIENT4, 40000),
            (VIP4, 80),
            TcpFlags::ACK | TcpFlags::PSH,
            1000,
            2000,
        )
        .with_payload(5);
        assert_eq!(m, want);
        // Bytes past the IP length are ignored.
        let mut padded = b.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(PacketMeta::parse(&padded), Ok(want));
    }

    #[test]
    fn udp_v6_matches_the_simulator_helper() {
        let b = udp_v6(CLIENT6, 5353, VIP6, 53, b"query");
        assert_eq!(
            PacketMeta::parse(&b),
            Ok(PacketMeta::udp((CLIENT6, 5353), (VIP6, 53), 5))
        );
    }

    /// An IPv6 UDP datagram behind hop-by-hop and fragment headers.
    fn v6_frag(offset: u16, more: bool) -> Vec<u8> {
        let udp = udp_v6(CLIENT6, 5353, VIP6, 53, b"0123456789abcdef");
        let mut b = udp[..40].to_vec();
        b.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop -> fragment
        let off = offset | more as u16;
        b.extend_from_slice(&[17, 0, (off >> 8) as u8, off as u8, 0, 0, 0x12, 0x34]);
        b.extend_from_slice(&udp[40..]);
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_next_header(0);
        p.set_payload_len((udp.len() - 40 + 16) as u16);
        b
    }

    #[test]
    fn v6_fragments() {
        let m = PacketMeta::parse(&v6_frag(0, true)).unwrap();
        assert_eq!(
            (m.frag, m.protocol, m.sport, m.dport, m.l4),
            (Fragment::First, 17, 5353, 53, L4::Udp)
        );
        let m = PacketMeta::parse(&v6_frag(1448, false)).unwrap();
        assert_eq!(
            (m.frag, m.protocol, m.sport, m.dport, m.l4),
            (Fragment::NonFirst, 17, 0, 0, L4::Other)
        );
        let m = PacketMeta::parse(&v6_frag(0, false)).unwrap();
        assert_eq!(
            m.frag,
            Fragment::None,
            "an atomic fragment is a whole packet"
        );
        assert_eq!(m.len, 40 + 16 + 24);
    }

    #[test]
    fn v4_first_fragment_udp_length_describes_the_datagram() {
        let mut b = udp_v4(CLIENT4, 5353, VIP4, 53, &[0; 100]);
        b.truncate(20 + 48);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_total_len(68);
        p.set_frag(false, true, 0);
        p.fill_checksum();
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!(
            (m.frag, m.sport, m.dport, m.len),
            (Fragment::First, 5353, 53, 68)
        );
        // The same cut without MF is a bad UDP length.
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_frag(false, false, 0);
        p.fill_checksum();
        assert_eq!(PacketMeta::parse(&b), Err(Malformed::BadL4Length));
    }

    #[test]
    fn sctp_first_chunk_and_cookie_then_abort() {
        let init = [
            1, 0, 0, 20, 1, 2, 3, 4, 0, 0, 0xff, 0xff, 0, 10, 0, 10, 0, 0, 0, 1,
        ];
        let m = PacketMeta::parse(&sctp_v4(CLIENT4, 5000, VIP4, 80, &init)).unwrap();
        assert_eq!(
            m.l4,
            L4::Sctp {
                first_chunk: sctp_chunk::INIT,
                cookie_then_abort: false,
                vtag: 0x0a0b_0c0d
            }
        );
        assert_eq!((m.sport, m.dport, m.len), (5000, 80, 52));
        let cookie_abort = [10, 0, 0, 5, 9, 0, 0, 0, 6, 0, 0, 4];
        let m = PacketMeta::parse(&sctp_v4(CLIENT4, 5000, VIP4, 80, &cookie_abort)).unwrap();
        assert!(matches!(
            m.l4,
            L4::Sctp {
                first_chunk: sctp_chunk::COOKIE_ECHO,
                cookie_then_abort: true,
                ..
            }
        ));
        let data_abort = [0, 0, 0, 8, 9, 0, 0, 0, 6, 0, 0, 4];
        let m = PacketMeta::parse(&sctp_v4(CLIENT4, 5000, VIP4, 80, &data_abort)).unwrap();
        assert!(matches!(
            m.l4,
            L4::Sctp {
                first_chunk: 0,
                cookie_then_abort: false,
                ..
            }
        ));
        assert_eq!(
            PacketMeta::parse(&sctp_v4(CLIENT4, 5000, VIP4, 80, &[])),
            Err(Malformed::TruncatedL4)
        );
        assert_eq!(
            PacketMeta::parse(&sctp_v4(CLIENT4, 5000, VIP4, 80, &[0, 0, 0, 2])),
            Err(Malformed::BadL4Length)
        );
    }

    #[test]
    fn icmp_errors_and_others() {
        let quoted = crate::testutil::tcp_v4(CLIENT4, 40000, RS4, 8080, b"");
        for t in [3u8, 4, 11, 12] {
            let b = icmp4_error(ROUTER4, CLIENT4, t, 1, &quoted[..28]);
            let m = PacketMeta::parse(&b).unwrap();
            assert_eq!(
                m.l4,
                L4::IcmpError {
                    icmp_type: t,
                    code: 1,
                    quoted: Quoted {
                        src: CLIENT4,
                        dst: RS4,
                        protocol: 6,
                        sport: 40000,
                        dport: 8080
                    }
                }
            );
            assert_eq!((m.sport, m.dport, m.protocol), (0, 0, 1));
        }
        let redirect = icmp4_error(ROUTER4, CLIENT4, 5, 1, &quoted[..28]);
        assert_eq!(
            PacketMeta::parse(&redirect).unwrap().l4,
            L4::IcmpOther { icmp_type: 5 }
        );
        let echo = icmp4_error(ROUTER4, CLIENT4, 8, 0, b"ping");
        assert_eq!(
            PacketMeta::parse(&echo).unwrap().l4,
            L4::IcmpOther { icmp_type: 8 }
        );
        let v6echo = icmp6_error(CLIENT6, VIP6, 128, 0, b"ping");
        assert_eq!(
            PacketMeta::parse(&v6echo).unwrap().l4,
            L4::IcmpOther { icmp_type: 128 }
        );

        // A corrupt error is dropped; a corrupt echo is not our business.
        let mut bad = icmp4_error(ROUTER4, CLIENT4, 3, 3, &quoted[..28]);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(PacketMeta::parse(&bad), Err(Malformed::BadChecksum));
        // An IPv6 quote in an ICMPv4 error, a quote cut before the ports.
        let v6q = crate::testutil::tcp_v6(CLIENT6, 1, RS6, 2, b"");
        assert_eq!(
            PacketMeta::parse(&icmp4_error(ROUTER4, CLIENT4, 3, 3, &v6q)),
            Err(Malformed::BadIcmpQuote)
        );
        assert_eq!(
            PacketMeta::parse(&icmp4_error(ROUTER4, CLIENT4, 3, 3, &quoted[..23])),
            Err(Malformed::BadIcmpQuote)
        );
        // A quoted ICMP echo has no ports.
        let q = icmp4_error(CLIENT4, RS4, 8, 0, b"");
        let m = PacketMeta::parse(&icmp4_error(ROUTER4, CLIENT4, 11, 0, &q)).unwrap();
        assert!(matches!(
            m.l4,
            L4::IcmpError {
                quoted: Quoted {
                    protocol: 1,
                    sport: 0,
                    dport: 0,
                    ..
                },
                ..
            }
        ));
        // ICMPv6 error quoting IPv6 TCP cut after 8 bytes.
        let v6q = crate::testutil::tcp_v6(CLIENT6, 40000, RS6, 8080, b"data");
        let m = PacketMeta::parse(&icmp6_error(ROUTER6, CLIENT6, 3, 0, &v6q[..48])).unwrap();
        assert!(matches!(
            m.l4,
            L4::IcmpError {
                icmp_type: 3,
                quoted: Quoted {
                    sport: 40000,
                    dport: 8080,
                    ..
                },
                ..
            }
        ));
        assert_eq!(
            PacketMeta::parse(&icmp6_error(ROUTER6, CLIENT6, 1, 0, &[])),
            Err(Malformed::BadIcmpQuote)
        );
    }

    #[test]
    fn drop_reasons() {
        assert_eq!(PacketMeta::parse(&[]), Err(Malformed::Truncated));
        assert_eq!(PacketMeta::parse(&[0x50; 60]), Err(Malformed::BadVersion));
        assert_eq!(PacketMeta::parse(&[0x45; 10]), Err(Malformed::Truncated));
        let mut b = crate::testutil::tcp_v4(CLIENT4, 1, VIP4, 2, b"");
        b[8] -= 1; // TTL without fixing the checksum
        assert_eq!(PacketMeta::parse(&b), Err(Malformed::BadChecksum));
        let mut b = crate::testutil::tcp_v4(CLIENT4, 1, VIP4, 2, b"");
        b[32] = 0x40; // data offset 4
        assert_eq!(PacketMeta::parse(&b), Err(Malformed::BadL4Length));
        let b = crate::testutil::tcp_v4(CLIENT4, 1, VIP4, 2, b"");
        let mut cut = b[..30].to_vec();
        let mut p = Ipv4Packet::new_unchecked(&mut cut[..]);
        p.set_total_len(30);
        p.fill_checksum();
        assert_eq!(PacketMeta::parse(&cut), Err(Malformed::TruncatedL4));
        assert_eq!(PacketMeta::parse(&b[..39]), Err(Malformed::BadTotalLength));
    }

    #[test]
    fn other_protocols_keep_addresses_only() {
        let mut b = crate::testutil::udp_v6(CLIENT6, 1, VIP6, 2, b"esp payload");
        Ipv6Packet::new_unchecked(&mut b[..]).set_next_header(ipproto::ESP);
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!(
            (m.protocol, m.sport, m.dport, m.l4),
            (ipproto::ESP, 0, 0, L4::Other)
        );
    }
}
