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
