//! IPv4 header view (RFC 791).
//!
//! [`Ipv4Packet`] wraps any buffer. Untrusted bytes go through [`Ipv4Packet::new_checked`]
//! (header and total length inside the buffer) or, for a packet quoted inside an ICMP error,
//! [`Ipv4Packet::check_header_len`] (header inside the buffer, payload possibly cut). Once
//! either check passed, no getter panics; before, they may. When *emitting* into a reused
//! buffer, wrap it with [`Ipv4Packet::new_unchecked`]: a check would read stale fields.

use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::Malformed;
use crate::field::{get16, put16};

mod field {
    use crate::field::Field;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const TOS: usize = 1;
    pub(super) const LENGTH: usize = 2;
    pub(super) const IDENT: usize = 4;
    pub(super) const FLG_OFF: usize = 6;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: usize = 10;
    pub(super) const SRC_ADDR: Field = 12..16;
    pub(super) const DST_ADDR: Field = 16..20;

    pub(super) const FLG_DF: u16 = 0x4000;
    pub(super) const FLG_MF: u16 = 0x2000;
    pub(super) const OFF_MASK: u16 = 0x1fff;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Byte range of the source address in an IPv4 header.
pub const SRC_ADDR: core::ops::Range<usize> = field::SRC_ADDR;
/// Byte range of the destination address in an IPv4 header.
pub const DST_ADDR: core::ops::Range<usize> = field::DST_ADDR;
/// Offset of the header checksum in an IPv4 header.
pub const CHECKSUM: usize = field::CHECKSUM;

/// A read (and, over a mutable buffer, write) view of an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without any check (for emitting, or after a check elsewhere).
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the version is 4 and that the header, options included, lies inside the
    /// buffer: after it, no getter panics, and [`payload`](Self::payload) is clamped to the
    /// buffer. Use it for quoted packets, whose payload is cut; otherwise use
    /// [`check_len`](Self::check_len).
    pub fn check_header_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Malformed::BadVersion);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN || hl > b.len() {
            return Err(Malformed::BadHeaderLength);
        }
        Ok(())
    }

    /// [`check_header_len`](Self::check_header_len), and the total length covers the header
    /// and fits in the buffer (bytes past the total length are ignored, as link padding).
    pub fn check_len(&self) -> Result<(), Malformed> {
        self.check_header_len()?;
        let total = self.total_len() as usize;
        if total < self.header_len() || total > self.buffer.as_ref().len() {
            return Err(Malformed::BadTotalLength);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4 for a checked packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes, options included (IHL × 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    /// The type-of-service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Total length of the datagram, header included.
    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & field::FLG_DF != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & field::FLG_MF != 0
    }

    /// Fragment offset in bytes (the field × 8).
    pub fn frag_offset(&self) -> u16 {
        (get16(self.buffer.as_ref(), field::FLG_OFF) & field::OFF_MASK) << 3
    }

    /// Whether this is a fragment of a larger datagram (offset non-zero or MF set).
    pub fn is_fragment(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & (field::FLG_MF | field::OFF_MASK) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Whether the header checksum is valid.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The options (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Length of the packet present in the buffer: the total length, clamped to the buffer.
    pub fn packet_len(&self) -> usize {
        (self.total_len() as usize).min(self.buffer.as_ref().len())
    }

    /// The payload: from the end of the header to the total length, clamped to the buffer.
    pub fn payload(&self) -> &[u8] {
        let end = self.packet_len().max(self.header_len());
        &self.buffer.as_ref()[self.header_len()..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the type-of-service byte.
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::TOS] = tos;
    }

    /// Sets the total length. Invalidates a previous [`check_len`](Self::check_len).
    pub fn set_total_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, ident: u16) {
        put16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets the flags and the fragment offset (in bytes, a multiple of 8) at once.
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & field::OFF_MASK;
        if dont_frag {
            v |= field::FLG_DF;
        }
        if more_frags {
            v |= field::FLG_MF;
        }
        put16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Sets the source address (the checksum is not updated).
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address (the checksum is not updated).
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::finish(checksum::data(&self.buffer.as_ref()[..hl]));
        self.set_checksum(c);
    }

    /// The payload, mutable (clamped like [`payload`](Self::payload)).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let end = self.packet_len().max(hl);
        &mut self.buffer.as_mut()[hl..end]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // 10.0.0.1 -> 10.0.0.2, UDP, total length 32, ident 0x1234, DF, TTL 64, then 12 bytes.
    static PACKET: [u8; 32] = [
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x14, 0x97, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33,
        0x44, 0x55,
    ];

    #[test]
    fn deconstruct() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.tos(), 0);
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &PACKET[20..]);
        assert!(p.options().is_empty());
        // The independent oracle agrees.
        let (h, _) = etherparse::Ipv4Header::from_slice(&PACKET).unwrap();
        assert_eq!(h.header_checksum, p.checksum());
        assert_eq!(h.calc_header_checksum(), p.checksum());
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 32];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_header_len(20);
        p.set_tos(0);
        p.set_total_len(32);
        p.set_ident(0x1234);
        p.set_frag(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(17);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.payload_mut().copy_from_slice(&PACKET[20..]);
        p.fill_checksum();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn impossible_lengths() {
        assert_eq!(
            Ipv4Packet::new_checked(&PACKET[..19]).unwrap_err(),
            Malformed::Truncated
        );
        let mut b = PACKET;
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadVersion
        );
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadHeaderLength
        );
        b[0] = 0x4f; // 60-byte header in a 32-byte buffer
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadHeaderLength
        );
        b[0] = 0x45;
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadTotalLength
        );
        b[3] = 33;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadTotalLength
        );
        // A quote may be cut: only the header must be there.
        let q = Ipv4Packet::new_unchecked(&b[..24]);
        assert_eq!(q.check_header_len(), Ok(()));
        assert_eq!(q.payload(), &b[20..24]);
    }

    #[test]
    fn trailing_bytes_are_not_payload() {
        let mut b = [0u8; 40];
        b[..32].copy_from_slice(&PACKET);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 12);
        assert_eq!(p.packet_len(), 32);
    }

    #[test]
    fn fragment_fields() {
        let mut b = PACKET;
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_frag(false, true, 1480);
        assert!(p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
    }
}
