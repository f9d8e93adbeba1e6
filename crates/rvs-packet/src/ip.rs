//! Version-agnostic location of the layers of an IP packet, shared by the parser, the
//! rewriters, the checksum verifier and the pretty printer.

use core::net::IpAddr;
use core::ops::Range;

use crate::error::Malformed;
use crate::ipv4::{self, Ipv4Packet};
use crate::ipv6::{self, Ipv6Packet};
use crate::meta::{Fragment, ipproto};

/// Where the layers of one IP packet lie in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Offset of the transport header (after IPv4 options or IPv6 extensions).
    pub l4_off: usize,
    /// End of the packet bytes present: the declared length, clamped to the buffer.
    pub end: usize,
    /// The declared length fits in the buffer (always true for an outer packet).
    pub full: bool,
    /// Transport protocol.
    pub protocol: u8,
    /// Fragment position.
    pub frag: Fragment,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv6: a routing header with segments left is present.
    pub routed: bool,
}

impl Layout {
    /// Byte range of the source address.
    pub fn src_range(&self) -> Range<usize> {
        if self.v6 {
            ipv6::SRC_ADDR
        } else {
            ipv4::SRC_ADDR
        }
    }

    /// Byte range of the destination address.
    pub fn dst_range(&self) -> Range<usize> {
        if self.v6 {
            ipv6::DST_ADDR
        } else {
            ipv4::DST_ADDR
        }
    }

    /// Whether the transport is ICMP of this packet's family.
    pub fn is_icmp(&self) -> bool {
        self.protocol
            == if self.v6 {
                ipproto::ICMPV6
            } else {
                ipproto::ICMP
            }
    }

    /// Whether the transport header (with ports, for TCP, UDP and SCTP) is in this packet.
    pub fn has_l4_header(&self) -> bool {
        self.frag != Fragment::NonFirst
    }
}

fn v4_frag<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Fragment {
    if p.frag_offset() != 0 {
        Fragment::NonFirst
    } else if p.more_frags() {
        Fragment::First
    } else {
        Fragment::None
    }
}

fn v6_frag(f: Option<ipv6::Ipv6Frag>) -> Fragment {
    match f {
        Some(f) if f.offset != 0 => Fragment::NonFirst,
        Some(f) if f.more => Fragment::First,
        _ => Fragment::None,
    }
}

/// Locates the layers of a whole packet (as read from a TUN device), checking every length.
/// The IPv4 header checksum is not verified here.
pub(crate) fn locate(buf: &[u8]) -> Result<Layout, Malformed> {
    match buf.first().map(|b| b >> 4) {
        None => Err(Malformed::Truncated),
        Some(4) => {
            let p = Ipv4Packet::new_checked(buf)?;
            let end = p.total_len() as usize;
            Ok(Layout {
                v6: false,
                l4_off: p.header_len(),
                end,
                full: true,
                protocol: p.protocol(),
                frag: v4_frag(&p),
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                routed: false,
            })
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(buf)?;
            let e = p.extensions()?;
            Ok(Layout {
                v6: true,
                l4_off: e.header_len,
                end: p.packet_len(),
                full: true,
                protocol: e.protocol,
                frag: v6_frag(e.frag),
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                routed: e.routed,
            })
        }
        Some(_) => Err(Malformed::BadVersion),
    }
}

/// Locates the layers of a packet quoted in an ICMP error of family `v6`: the quote may be cut
/// anywhere after the IP header (and its extensions), but must hold the two ports of a TCP,
/// UDP or SCTP quote that is not a non-first fragment. Every failure is
/// [`Malformed::BadIcmpQuote`].
pub(crate) fn locate_quote(q: &[u8], v6: bool) -> Result<Layout, Malformed> {
    let bad = |_| Malformed::BadIcmpQuote;
    let lay = if v6 {
        let p = Ipv6Packet::new_unchecked(q);
        p.check_header_len().map_err(bad)?;
        let e = p.extensions().map_err(bad)?;
        let declared = ipv6::HEADER_LEN + p.payload_len() as usize;
        if e.header_len > declared {
            return Err(Malformed::BadIcmpQuote);
        }
        Layout {
            v6: true,
            l4_off: e.header_len,
            end: declared.min(q.len()),
            full: declared <= q.len(),
            protocol: e.protocol,
            frag: v6_frag(e.frag),
            src: p.src_addr().into(),
            dst: p.dst_addr().into(),
            routed: e.routed,
        }
    } else {
        let p = Ipv4Packet::new_unchecked(q);
        p.check_header_len().map_err(bad)?;
        let declared = p.total_len() as usize;
        if declared < p.header_len() {
            return Err(Malformed::BadIcmpQuote);
        }
        Layout {
            v6: false,
            l4_off: p.header_len(),
            end: declared.min(q.len()),
            full: declared <= q.len(),
            protocol: p.protocol(),
            frag: v4_frag(&p),
            src: p.src_addr().into(),
            dst: p.dst_addr().into(),
            routed: false,
        }
    };
    if has_ports(lay.protocol) && lay.has_l4_header() && lay.l4_off + 4 > lay.end {
        return Err(Malformed::BadIcmpQuote);
    }
    Ok(lay)
}

/// Whether the protocol carries 16-bit ports at the start of its header.
pub(crate) fn has_ports(protocol: u8) -> bool {
    matches!(protocol, ipproto::TCP | ipproto::UDP | ipproto::SCTP)
}
