//! UDP header view (RFC 768).
//!
//! Zero-checksum rules: over IPv4 a checksum of 0 means "none" and verifies; a computed
//! checksum of 0 is sent as `0xffff` (both are zero in ones' complement). Over IPv6 a zero
//! checksum is invalid (RFC 8200 §8.1) except for tunnels that opt out (RFC 6935); this view
//! reports it as not verifying, and the rewriters leave it at zero.

use core::net::IpAddr;

use crate::checksum;
use crate::error::Malformed;
use crate::field::{get16, put16};
use crate::meta::ipproto;

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const LENGTH: usize = 4;
    pub(super) const CHECKSUM: usize = 6;
}

/// Length of a UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM + 2;
/// Offset of the checksum in a UDP header.
pub const CHECKSUM: usize = field::CHECKSUM;

/// A read (and, over a mutable buffer, write) view of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 8-byte header is present ([`Malformed::TruncatedL4`]). Enough for a
    /// first fragment or a quote, whose length field describes more than the buffer holds.
    pub fn check_header_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed::TruncatedL4);
        }
        Ok(())
    }

    /// [`check_header_len`](Self::check_header_len), and the length field is at least 8 and
    /// inside the buffer ([`Malformed::BadL4Length`]). Bytes past the length are ignored (the
    /// kernel trims them the same way).
    pub fn check_len(&self) -> Result<(), Malformed> {
        self.check_header_len()?;
        let l = self.len() as usize;
        if l < HEADER_LEN || l > self.buffer.as_ref().len() {
            return Err(Malformed::BadL4Length);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field (header and data).
    pub fn len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the length field says there is no data (a length of 8 or less).
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= HEADER_LEN
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The data, up to the length field, clamped to the buffer.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (self.len() as usize).clamp(HEADER_LEN, b.len());
        &b[HEADER_LEN..end]
    }

    /// Whether the checksum is valid for a datagram between `src` and `dst` (see the module
    /// docs for zero). Needs a [`check_len`](Self::check_len)ed buffer.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let b = &self.buffer.as_ref()[..self.len() as usize];
        let ph = checksum::pseudo_header(src, dst, ipproto::UDP, b.len() as u32);
        checksum::combine(&[ph, checksum::data(b)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the length field. Invalidates a previous [`check_len`](Self::check_len).
    pub fn set_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Computes and writes the checksum (a result of 0 is written as `0xffff`). The length
    /// field must be set and inside the buffer.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let l = (self.len() as usize).min(self.buffer.as_ref().len());
        let b = &self.buffer.as_ref()[..l];
        let ph = checksum::pseudo_header(src, dst, ipproto::UDP, l as u32);
        let c = checksum::finish(checksum::combine(&[ph, checksum::data(b)]));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// The data, mutable (clamped like [`payload`](Self::payload)).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.buffer.as_ref().len();
        let end = (self.len() as usize).clamp(HEADER_LEN, len.max(HEADER_LEN));
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    // 10.0.0.1:1234 -> 10.0.0.2:53, 4 bytes of data ("abcd").
    static DATAGRAM: [u8; 12] = [
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x22, 0x06, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn deconstruct() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 1234);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.payload(), b"abcd");
        assert!(p.verify_checksum(SRC, DST));
        // The independent oracle computes the same checksum.
        let h = etherparse::UdpHeader::from_slice(&DATAGRAM).unwrap().0;
        let ip = etherparse::Ipv4Header::new(
            12,
            64,
            etherparse::IpNumber::UDP,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
        )
        .unwrap();
        assert_eq!(h.calc_checksum_ipv4(&ip, b"abcd").unwrap(), p.checksum());
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 12];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(1234);
        p.set_dst_port(53);
        p.set_len(12);
        p.payload_mut().copy_from_slice(b"abcd");
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, DATAGRAM);
    }

    #[test]
    fn zero_checksum() {
        let mut b = DATAGRAM;
        b[6] = 0;
        b[7] = 0;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST), "no checksum over IPv4");
        let v6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(!p.verify_checksum(v6, v6), "mandatory over IPv6");
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose data so that the sum is 0xffff: then the checksum would be 0.
        let mut b = [0u8; 10];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.set_len(10);
        let ph = checksum::pseudo_header(SRC, DST, ipproto::UDP, 10);
        let sum = checksum::combine(&[ph, 10]);
        // Data word w makes the total sum 0xffff.
        let w = !sum;
        p.payload_mut().copy_from_slice(&w.to_be_bytes());
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn impossible_lengths() {
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..7]).unwrap_err(),
            Malformed::TruncatedL4
        );
        let mut b = DATAGRAM;
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Malformed::BadL4Length
        );
        b[5] = 13;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Malformed::BadL4Length
        );
        assert!(UdpPacket::new_unchecked(&b[..]).check_header_len().is_ok());
        assert_eq!(UdpPacket::new_unchecked(&b[..]).payload(), b"abcd");
    }
}
