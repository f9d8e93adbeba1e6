//! IPv6 header view (RFC 8200) and extension-header skipping.
//!
//! [`Ipv6Packet`] follows the same contract as [`Ipv4Packet`](crate::Ipv4Packet):
//! [`new_checked`](Ipv6Packet::new_checked) for untrusted input,
//! [`check_header_len`](Ipv6Packet::check_header_len) for a quoted packet whose payload is cut,
//! [`new_unchecked`](Ipv6Packet::new_unchecked) for emitting.
//!
//! [`Ipv6Packet::extensions`] walks hop-by-hop, routing, destination options, fragment and AH
//! headers to the upper-layer protocol, and stops at anything else (ESP, no next header, or a
//! transport protocol). It records the fragment header's offset, M flag and identification.

use core::net::Ipv6Addr;

use crate::error::Malformed;
use crate::field::{get16, get32, put16, put32};
use crate::meta::ipproto;

mod field {
    use crate::field::Field;

    pub(super) const VER_TC_FLOW: usize = 0;
    pub(super) const LENGTH: usize = 4;
    pub(super) const NXT_HDR: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC_ADDR: Field = 8..24;
    pub(super) const DST_ADDR: Field = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Byte range of the source address in an IPv6 header.
pub const SRC_ADDR: core::ops::Range<usize> = field::SRC_ADDR;
/// Byte range of the destination address in an IPv6 header.
pub const DST_ADDR: core::ops::Range<usize> = field::DST_ADDR;

/// Extension-header protocol numbers (RFC 8200 §4, RFC 4302).
pub mod ext {
    /// Hop-by-hop options (must come first).
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// No next header.
    pub const NO_NEXT: u8 = 59;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
}

/// The longest extension chain we walk; a longer one is refused as
/// [`Malformed::UnsupportedExtension`] (RFC 8504 §5.3 lets a node limit it).
pub const MAX_EXTENSIONS: usize = 8;

/// What the fragment header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Frag {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// The M (more fragments) flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

impl Ipv6Frag {
    /// Whether this is really a fragment: an atomic fragment (offset 0, M clear, RFC 6946) is
    /// a whole packet.
    pub fn is_fragment(&self) -> bool {
        self.offset != 0 || self.more
    }
}

/// The result of walking the extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Ext {
    /// The upper-layer protocol (or ESP, or 59 for no next header).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub header_len: usize,
    /// The fragment header, if one was found.
    pub frag: Option<Ipv6Frag>,
    /// A routing header with segments left was found: the destination address is not the
    /// final one.
    pub routed: bool,
}

/// A read (and, over a mutable buffer, write) view of an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the version is 6 and the fixed header is in the buffer.
    pub fn check_header_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        if b[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(Malformed::BadVersion);
        }
        Ok(())
    }

    /// [`check_header_len`](Self::check_header_len), and the payload length fits in the buffer
    /// (bytes past it are ignored). Jumbograms (RFC 2675) are not supported: a payload length
    /// of zero means an empty payload.
    pub fn check_len(&self) -> Result<(), Malformed> {
        self.check_header_len()?;
        if HEADER_LEN + self.payload_len() as usize > self.buffer.as_ref().len() {
            return Err(Malformed::BadTotalLength);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (6 for a checked packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        ((get32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) & 0xff) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        get32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length (everything after the fixed header, extensions included).
    pub fn payload_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr16(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr16(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// Length of the packet present in the buffer: 40 + payload length, clamped to the buffer.
    pub fn packet_len(&self) -> usize {
        (HEADER_LEN + self.payload_len() as usize).min(self.buffer.as_ref().len())
    }

    /// The payload (extension headers included), clamped to the buffer.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.packet_len().max(HEADER_LEN)]
    }

    /// Walks the extension headers present in the buffer (see the module docs).
    ///
    /// Errors: [`Malformed::BadExtension`] when a header is cut by the end of the packet (or
    /// of a quote); [`Malformed::UnsupportedExtension`] for more than [`MAX_EXTENSIONS`]
    /// headers, a second fragment header, or a hop-by-hop header that is not first. A
    /// non-first fragment stops the walk at its fragment header: what follows is data.
    pub fn extensions(&self) -> Result<Ipv6Ext, Malformed> {
        let b = &self.buffer.as_ref()[..self.packet_len().max(HEADER_LEN)];
        let mut next = self.next_header();
        let mut off = HEADER_LEN;
        let mut frag: Option<Ipv6Frag> = None;
        let mut routed = false;
        let mut count = 0;
        loop {
            let len = match next {
                ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS => {
                    if next == ext::HOP_BY_HOP && count != 0 {
                        return Err(Malformed::UnsupportedExtension);
                    }
                    let Some(h) = b.get(off..off + 2) else {
                        return Err(Malformed::BadExtension);
                    };
                    let len = (h[1] as usize + 1) * 8;
                    if next == ext::ROUTING {
                        // Segments left is the fourth byte of the routing header.
                        match b.get(off + 3) {
                            Some(&left) => routed |= left != 0,
                            None => return Err(Malformed::BadExtension),
                        }
                    }
                    len
                }
                ext::FRAGMENT => {
                    if frag.is_some() {
                        return Err(Malformed::UnsupportedExtension);
                    }
                    let Some(h) = b.get(off..off + 8) else {
                        return Err(Malformed::BadExtension);
                    };
                    let f = Ipv6Frag {
                        offset: get16(h, 2) & 0xfff8,
                        more: h[3] & 1 != 0,
                        ident: get32(h, 4),
                    };
                    frag = Some(f);
                    if f.offset != 0 {
                        // The rest of a non-first fragment is data, not headers.
                        return Ok(Ipv6Ext {
                            protocol: h[0],
                            header_len: off + 8,
                            frag,
                            routed,
                        });
                    }
                    8
                }
                ipproto::AH => {
                    let Some(h) = b.get(off..off + 2) else {
                        return Err(Malformed::BadExtension);
                    };
                    (h[1] as usize + 2) * 4
                }
                protocol => {
                    return Ok(Ipv6Ext {
                        protocol,
                        header_len: off,
                        frag,
                        routed,
                    });
                }
            };
            if off + len > b.len() {
                return Err(Malformed::BadExtension);
            }
            next = b[off];
            off += len;
            count += 1;
            if count > MAX_EXTENSIONS {
                return Err(Malformed::UnsupportedExtension);
            }
        }
    }
}

fn addr16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    a
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, the traffic class and the flow label at once.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6u32 << 28) | ((traffic_class as u32) << 20) | (flow_label & 0x000f_ffff);
        put32(self.buffer.as_mut(), field::VER_TC_FLOW, v);
    }

    /// Sets the payload length. Invalidates a previous [`check_len`](Self::check_len).
    pub fn set_payload_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the next header of the fixed header.
    pub fn set_next_header(&mut self, next: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = next;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// The payload, mutable (clamped like [`payload`](Self::payload)).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.packet_len().max(HEADER_LEN);
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // 2001:db8::1 -> 2001:db8::2, hop-by-hop (8 bytes, PadN), destination options (8 bytes),
    // fragment (offset 0, M set, ident 0xdeadbeef), then 8 bytes of UDP header.
    static PACKET: [u8; 72] = [
        0x60, 0x12, 0x34, 0x56, 0x00, 0x20, 0x00, 0x40, // ver/tc/flow, len 32, HBH, hop 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        60, 0, 1, 4, 0, 0, 0, 0, // HBH -> dest opts
        44, 0, 1, 4, 0, 0, 0, 0, // dest opts -> fragment
        17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // fragment -> UDP, offset 0, M
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x10, 0x00, 0x00, // UDP 1234 -> 53
    ];

    #[test]
    fn deconstruct() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0x01);
        assert_eq!(p.flow_label(), 0x23456);
        assert_eq!(p.payload_len(), 32);
        assert_eq!(p.next_header(), 0);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        let e = p.extensions().unwrap();
        assert_eq!(e.protocol, 17);
        assert_eq!(e.header_len, 64);
        assert_eq!(
            e.frag,
            Some(Ipv6Frag {
                offset: 0,
                more: true,
                ident: 0xdead_beef
            })
        );
        assert!(!e.routed);
        // The independent oracle finds the same transport offset.
        let s = etherparse::SlicedPacket::from_ip(&PACKET).unwrap();
        let exts = s.net.unwrap();
        assert!(matches!(exts, etherparse::NetSlice::Ipv6(_)));
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 72];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_version_tc_flow(0x01, 0x23456);
        p.set_payload_len(32);
        p.set_next_header(0);
        p.set_hop_limit(64);
        p.set_src_addr("2001:db8::1".parse().unwrap());
        p.set_dst_addr("2001:db8::2".parse().unwrap());
        p.payload_mut().copy_from_slice(&PACKET[40..]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn non_first_fragment_stops_the_walk() {
        let mut b = PACKET;
        b[58] = 0x05; // offset 0x0500 >> 3 ... i.e. 1280 bytes, M clear
        b[59] = 0x00;
        let e = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .extensions()
            .unwrap();
        assert_eq!(
            e.frag,
            Some(Ipv6Frag {
                offset: 1280,
                more: false,
                ident: 0xdead_beef
            })
        );
        assert_eq!(e.protocol, 17);
        assert_eq!(e.header_len, 64);
    }

    #[test]
    fn bad_chains() {
        // Cut inside the destination options header.
        let mut b = PACKET;
        b[5] = 12; // payload length 12: HBH + half of dest opts
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.extensions(), Err(Malformed::BadExtension));
        // Hop-by-hop not first.
        let mut b = PACKET;
        b[48] = 0;
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.extensions(), Err(Malformed::UnsupportedExtension));
        // Too long a header.
        let mut b = PACKET;
        b[49] = 200;
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.extensions(), Err(Malformed::BadExtension));
        // Payload length past the buffer.
        let mut b = PACKET;
        b[5] = 33;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadTotalLength
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            Malformed::Truncated
        );
        b[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadVersion
        );
    }

    #[test]
    fn long_chain_is_refused() {
        // Ten destination-options headers of 8 bytes each, then no next header.
        let mut b = [0u8; 40 + 80];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0, 0);
        p.set_payload_len(80);
        p.set_next_header(ext::DEST_OPTS);
        for i in 0..10 {
            b[40 + i * 8] = if i == 9 { ext::NO_NEXT } else { ext::DEST_OPTS };
        }
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.extensions(), Err(Malformed::UnsupportedExtension));
        // Eight are fine.
        b[40 + 7 * 8] = ext::NO_NEXT;
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.extensions().unwrap().protocol, ext::NO_NEXT);
        assert_eq!(p.extensions().unwrap().header_len, 104);
    }

    #[test]
    fn routing_and_ah() {
        // Routing header (segments left 1, 24 bytes) then AH (len field 4: 24 bytes) then TCP.
        let mut b = [0u8; 40 + 24 + 24 + 20];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0, 0);
        p.set_payload_len(68);
        p.set_next_header(ext::ROUTING);
        b[40] = ipproto::AH;
        b[41] = 2;
        b[43] = 1;
        b[64] = ipproto::TCP;
        b[65] = 4;
        let e = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .extensions()
            .unwrap();
        assert_eq!(e.protocol, ipproto::TCP);
        assert_eq!(e.header_len, 88);
        assert!(e.routed);
        // ESP stops the walk.
        b[64] = ipproto::ESP;
        let e = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .extensions()
            .unwrap();
        assert_eq!((e.protocol, e.header_len), (ipproto::ESP, 88));
    }
}
