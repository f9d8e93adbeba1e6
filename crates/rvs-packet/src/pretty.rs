//! A tcpdump-like one-line rendering of a packet, for logs and simulator traces.
//!
//! ```
//! use rvs_packet::{Pretty, synth};
//! let mut buf = [0u8; 40];
//! let n = synth::tcp_rst(
//!     &mut buf,
//!     ("10.0.0.1".parse().unwrap(), 80),
//!     ("10.0.0.2".parse().unwrap(), 40000),
//!     7,
//!     Some(9),
//! )
//! .unwrap();
//! assert_eq!(
//!     Pretty(&buf[..n]).to_string(),
//!     "IP 10.0.0.1.80 > 10.0.0.2.40000: Flags [R.], seq 7, ack 9, win 0, length 0"
//! );
//! ```
//!
//! The rendering never fails and never allocates: a malformed packet prints its
//! [`Malformed`](crate::Malformed) reason, and tunnels are unwrapped at most two levels deep.

use core::fmt;
use core::net::IpAddr;

use crate::icmp::{is_icmpv4_error, is_icmpv6_error};
use crate::ip::{self, Layout, has_ports};
use crate::ipv4::Ipv4Packet;
use crate::ipv6::Ipv6Packet;
use crate::meta::{Fragment, TcpFlags, ipproto};
use crate::sctp::SctpPacket;
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;

/// Displays the IP packet it wraps on one line, tcpdump style.
#[derive(Clone, Copy, Debug)]
pub struct Pretty<'a>(pub &'a [u8]);

impl fmt::Display for Pretty<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        packet(f, self.0, 0)
    }
}

/// Tunnels are unwrapped this many levels deep at most.
const MAX_DEPTH: u8 = 2;

/// An address and port, tcpdump style (`10.0.0.1.80`, `2001:db8::1.80`).
struct Ep(IpAddr, u16);

impl fmt::Display for Ep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The name of an IP protocol.
struct Proto(u8);

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            ipproto::ICMP => "ICMP",
            ipproto::IPIP => "IPIP",
            ipproto::TCP => "TCP",
            ipproto::UDP => "UDP",
            ipproto::IPV6 => "IP6IP",
            47 => "GRE",
            ipproto::ESP => "ESP",
            ipproto::AH => "AH",
            ipproto::ICMPV6 => "ICMP6",
            59 => "no-next-header",
            ipproto::SCTP => "SCTP",
            p => return write!(f, "ip-proto-{p}"),
        };
        f.write_str(name)
    }
}

fn ports(seg: &[u8]) -> (u16, u16) {
    (
        u16::from_be_bytes([seg[0], seg[1]]),
        u16::from_be_bytes([seg[2], seg[3]]),
    )
}

fn packet(f: &mut fmt::Formatter<'_>, buf: &[u8], depth: u8) -> fmt::Result {
    let lay = match ip::locate(buf) {
        Ok(l) => l,
        Err(e) => return write!(f, "malformed packet ({e}), {} bytes", buf.len()),
    };
    f.write_str(if lay.v6 { "IP6 " } else { "IP " })?;
    let seg = &buf[lay.l4_off..lay.end];
    if lay.has_l4_header() && has_ports(lay.protocol) && seg.len() >= 4 {
        let (sp, dp) = ports(seg);
        write!(f, "{} > {}: ", Ep(lay.src, sp), Ep(lay.dst, dp))?;
    } else {
        write!(f, "{} > {}: ", lay.src, lay.dst)?;
    }
    if !lay.has_l4_header() {
        write!(f, "{} fragment, length {}", Proto(lay.protocol), seg.len())?;
    } else {
        match lay.protocol {
            ipproto::TCP => tcp(f, seg)?,
            ipproto::UDP => match UdpPacket::new_checked(seg) {
                Ok(u) => write!(f, "UDP, length {}", u.payload().len())?,
                Err(_) if lay.frag == Fragment::First && seg.len() >= 8 => {
                    write!(f, "UDP, length {}", seg.len() - 8)?
                }
                Err(e) => write!(f, "UDP, malformed ({e})")?,
            },
            ipproto::SCTP => sctp(f, seg)?,
            _ if lay.is_icmp() => icmp(f, seg, &lay)?,
            ipproto::IPIP | ipproto::IPV6 if depth < MAX_DEPTH => {
                write!(f, "{} ", Proto(lay.protocol))?;
                packet(f, seg, depth + 1)?;
            }
            p => write!(f, "{}, length {}", Proto(p), seg.len())?,
        }
    }
    if lay.frag != Fragment::None {
        frag(f, buf, &lay)?;
    }
    Ok(())
}

fn frag(f: &mut fmt::Formatter<'_>, buf: &[u8], lay: &Layout) -> fmt::Result {
    let (ident, offset, more) = if lay.v6 {
        match Ipv6Packet::new_unchecked(buf).extensions() {
            Ok(crate::Ipv6Ext { frag: Some(x), .. }) => (x.ident, x.offset, x.more),
            _ => return Ok(()),
        }
    } else {
        let p = Ipv4Packet::new_unchecked(buf);
        (p.ident() as u32, p.frag_offset(), p.more_frags())
    };
    write!(
        f,
        " (frag id {ident}, offset {offset}{})",
        if more { ", more" } else { "" }
    )
}

fn tcp(f: &mut fmt::Formatter<'_>, seg: &[u8]) -> fmt::Result {
    let t = match TcpPacket::new_checked(seg) {
        Ok(t) => t,
        Err(e) => return write!(f, "TCP, malformed ({e})"),
    };
    let flags = t.flags();
    f.write_str("Flags [")?;
    const NAMES: [(u8, char); 7] = [
        (TcpFlags::FIN, 'F'),
        (TcpFlags::SYN, 'S'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::URG, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ];
    for (bit, c) in NAMES {
        if flags.has(bit) {
            write!(f, "{c}")?;
        }
    }
    if flags.ack() {
        f.write_str(".")?;
    }
    if flags.0 == 0 {
        f.write_str("none")?;
    }
    write!(f, "], seq {}", t.seq_number())?;
    if flags.ack() {
        write!(f, ", ack {}", t.ack_number())?;
    }
    write!(f, ", win {}, length {}", t.window_len(), t.payload().len())
}

fn chunk_name(kind: u8) -> Option<&'static str> {
    use crate::sctp_chunk::*;
    Some(match kind {
        DATA => "DATA",
        INIT => "INIT",
        INIT_ACK => "INIT ACK",
        SACK => "SACK",
        HEARTBEAT => "HB REQ",
        HEARTBEAT_ACK => "HB ACK",
        ABORT => "ABORT",
        SHUTDOWN => "SHUTDOWN",
        SHUTDOWN_ACK => "SHUTDOWN ACK",
        ERROR => "OP ERR",
        COOKIE_ECHO => "COOKIE ECHO",
        COOKIE_ACK => "COOKIE ACK",
        SHUTDOWN_COMPLETE => "SHUTDOWN COMPLETE",
        _ => return None,
    })
}

fn sctp(f: &mut fmt::Formatter<'_>, seg: &[u8]) -> fmt::Result {
    let s = match SctpPacket::new_checked(seg) {
        Ok(s) => s,
        Err(e) => return write!(f, "SCTP, malformed ({e})"),
    };
    write!(f, "SCTP, vtag {:#x}", s.verification_tag())?;
    for (i, c) in s.chunks().enumerate() {
        if i == 4 {
            f.write_str(" ...")?;
            break;
        }
        match c {
            Ok(c) => match chunk_name(c.kind) {
                Some(n) => write!(f, " [{n}]")?,
                None => write!(f, " [chunk {}]", c.kind)?,
            },
            Err(e) => write!(f, " [malformed ({e})]")?,
        }
    }
    write!(f, ", length {}", seg.len())
}

fn icmp_name(v6: bool, t: u8, c: u8) -> Option<&'static str> {
    Some(match (v6, t, c) {
        (false, 0, _) => "echo reply",
        (false, 8, _) => "echo request",
        (false, 3, 0) => "net unreachable",
        (false, 3, 1) => "host unreachable",
        (false, 3, 2) => "protocol unreachable",
        (false, 3, 3) => "port unreachable",
        (false, 3, 4) => "need to frag",
        (false, 3, 13) => "admin prohibited",
        (false, 3, _) => "unreachable",
        (false, 4, _) => "source quench",
        (false, 5, _) => "redirect",
        (false, 11, _) => "time exceeded",
        (false, 12, _) => "parameter problem",
        (true, 1, 4) => "port unreachable",
        (true, 1, 1) => "admin prohibited",
        (true, 1, _) => "unreachable",
        (true, 2, _) => "packet too big",
        (true, 3, _) => "time exceeded",
        (true, 4, _) => "parameter problem",
        (true, 128, _) => "echo request",
        (true, 129, _) => "echo reply",
        (true, 133, _) => "router solicitation",
        (true, 134, _) => "router advertisement",
        (true, 135, _) => "neighbor solicitation",
        (true, 136, _) => "neighbor advertisement",
        (true, 137, _) => "redirect",
        _ => return None,
    })
}

fn icmp(f: &mut fmt::Formatter<'_>, seg: &[u8], lay: &Layout) -> fmt::Result {
    let name = if lay.v6 { "ICMP6" } else { "ICMP" };
    if seg.len() < crate::icmp::HEADER_LEN {
        return write!(f, "{name}, malformed (truncated_l4)");
    }
    let (t, c) = (seg[0], seg[1]);
    f.write_str(name)?;
    match icmp_name(lay.v6, t, c) {
        Some(n) => write!(f, " {n}")?,
        None => write!(f, " type {t} code {c}")?,
    }
    let rest = &seg[4..8];
    match (lay.v6, t, c) {
        (false, 0 | 8, _) | (true, 128 | 129, _) => {
            let (id, seq) = ports(rest);
            write!(f, ", id {id}, seq {seq}")?;
        }
        (false, 3, 4) => write!(f, " (mtu {})", u16::from_be_bytes([rest[2], rest[3]]))?,
        (true, 2, _) => write!(
            f,
            " (mtu {})",
            u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]])
        )?,
        _ => {}
    }
    let error = if lay.v6 {
        is_icmpv6_error(t)
    } else {
        is_icmpv4_error(t)
    };
    if error {
        let quote = &seg[8..];
        match ip::locate_quote(quote, lay.v6) {
            Ok(q) if has_ports(q.protocol) && q.has_l4_header() => {
                let (sp, dp) = ports(&quote[q.l4_off..]);
                write!(
                    f,
                    ", quoting {} {} > {}",
                    Proto(q.protocol),
                    Ep(q.src, sp),
                    Ep(q.dst, dp)
                )?;
            }
            Ok(q) => write!(f, ", quoting {} {} > {}", Proto(q.protocol), q.src, q.dst)?,
            Err(e) => write!(f, ", quote malformed ({e})")?,
        }
    }
    write!(f, ", length {}", seg.len())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testutil::*;
    use std::string::{String, ToString};

    fn p(b: &[u8]) -> String {
        Pretty(b).to_string()
    }

    #[test]
    fn renders_each_kind() {
        assert_eq!(
            p(&tcp_v4(CLIENT4, 40000, VIP4, 80, b"hello")),
            "IP 192.0.2.1.40000 > 198.51.100.10.80: Flags [P.], seq 1000, ack 2000, win 65535, length 5"
        );
        assert_eq!(
            p(&udp_v6(CLIENT6, 5353, VIP6, 53, b"q")),
            "IP6 2001:db8:1::1.5353 > 2001:db8:2::10.53: UDP, length 1"
        );
        let err = icmp4_error(
            RS4,
            CLIENT4,
            3,
            3,
            &udp_v4(CLIENT4, 5353, RS4, 5300, b"abc"),
        );
        assert_eq!(
            p(&err),
            "IP 10.0.0.5 > 192.0.2.1: ICMP port unreachable, quoting UDP 192.0.2.1.5353 > 10.0.0.5.5300, length 39"
        );
        let sctp = sctp_v4(
            CLIENT4,
            5000,
            VIP4,
            80,
            &[10, 0, 0, 5, 0, 0, 0, 0, 6, 0, 0, 4],
        );
        assert_eq!(
            p(&sctp),
            "IP 192.0.2.1.5000 > 198.51.100.10.80: SCTP, vtag 0xa0b0c0d [COOKIE ECHO] [ABORT], length 24"
        );
        let mut out = [0u8; 200];
        let inner = tcp_v4(CLIENT4, 40000, VIP4, 80, b"");
        let n = crate::rewrite::encap(&inner, LOCAL4, RS4, &mut out).unwrap();
        assert_eq!(
            p(&out[..n]),
            "IP 10.0.0.1 > 10.0.0.5: IPIP IP 192.0.2.1.40000 > 198.51.100.10.80: Flags [P.], seq 1000, ack 2000, win 65535, length 0"
        );
        assert_eq!(p(&[0x45, 0, 0]), "malformed packet (truncated), 3 bytes");
    }

    #[test]
    fn fragments() {
        let mut b = udp_v4(CLIENT4, 5353, VIP4, 53, b"0123456789abcdef");
        let mut ip = Ipv4Packet::new_unchecked(&mut b[..]);
        ip.set_ident(77);
        ip.set_frag(false, true, 0);
        ip.fill_checksum();
        assert_eq!(
            p(&b),
            "IP 192.0.2.1.5353 > 198.51.100.10.53: UDP, length 16 (frag id 77, offset 0, more)"
        );
        let mut ip = Ipv4Packet::new_unchecked(&mut b[..]);
        ip.set_frag(false, false, 24);
        ip.fill_checksum();
        assert_eq!(
            p(&b),
            "IP 192.0.2.1 > 198.51.100.10: UDP fragment, length 24 (frag id 77, offset 24)"
        );
    }
}
