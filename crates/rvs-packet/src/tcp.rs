//! TCP header view (RFC 9293 §3.1).
//!
//! Same contract as the IP views: [`TcpPacket::new_checked`] for untrusted input (the buffer is
//! the segment: header, options and data, as cut by the IP layer), `new_unchecked` to emit.

use core::net::IpAddr;

use crate::checksum;
use crate::error::Malformed;
use crate::field::{get16, get32, put16, put32};
use crate::meta::{TcpFlags, ipproto};

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const SEQ_NUM: usize = 4;
    pub(super) const ACK_NUM: usize = 8;
    pub(super) const DATA_OFF: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WIN_SIZE: usize = 14;
    pub(super) const CHECKSUM: usize = 16;
    pub(super) const URGENT: usize = 18;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT + 2;
/// Offset of the checksum in a TCP header.
pub const CHECKSUM: usize = field::CHECKSUM;

/// A read (and, over a mutable buffer, write) view of a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed header is present ([`Malformed::TruncatedL4`]) and that the data
    /// offset is at least 5 words and inside the buffer ([`Malformed::BadL4Length`]).
    pub fn check_len(&self) -> Result<(), Malformed> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Malformed::TruncatedL4);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN || hl > len {
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize) * 4
    }

    /// The flags byte (CWR, ECE, URG, ACK, PSH, RST, SYN, FIN).
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window size.
    pub fn window_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        get16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space taken by the segment: data bytes, plus one for SYN and one for FIN
    /// (SEG.LEN in RFC 9293).
    pub fn segment_len(&self) -> u32 {
        let f = self.flags();
        self.payload().len() as u32 + f.syn() as u32 + f.fin() as u32
    }

    /// Whether the checksum is valid for a segment between `src` and `dst` (the whole buffer
    /// is the segment).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ipproto::TCP, b.len() as u32);
        checksum::combine(&[ph, checksum::data(b)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: u32) {
        put32(self.buffer.as_mut(), field::SEQ_NUM, seq);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: u32) {
        put32(self.buffer.as_mut(), field::ACK_NUM, ack);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60); clears the reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Sets the flags byte.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window size.
    pub fn set_window_len(&mut self, win: u16) {
        put16(self.buffer.as_mut(), field::WIN_SIZE, win);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, at: u16) {
        put16(self.buffer.as_mut(), field::URGENT, at);
    }

    /// Computes and writes the checksum for a segment between `src` and `dst`.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ipproto::TCP, b.len() as u32);
        let c = checksum::finish(checksum::combine(&[ph, checksum::data(b)]));
        self.set_checksum(c);
    }

    /// The data after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::Ipv4Addr;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2));

    /// A SYN from 192.168.1.1:49152 to 192.168.1.2:80 with an MSS option and 4 data bytes,
    /// built by the independent oracle.
    fn oracle() -> std::vec::Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4([192, 168, 1, 1], [192, 168, 1, 2], 64)
            .tcp(49152, 80, 0x0102_0304, 65535)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let mut out = std::vec::Vec::new();
        b.write(&mut out, &[1, 2, 3, 4]).unwrap();
        out[20..].to_vec()
    }

    #[test]
    fn deconstruct() {
        let seg = oracle();
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(p.src_port(), 49152);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), TcpFlags(TcpFlags::SYN));
        assert_eq!(p.window_len(), 65535);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options(), &[2, 4, 0x05, 0xb4]);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(p.segment_len(), 5);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, SRC));
    }

    #[test]
    fn construct() {
        let seg = oracle();
        let mut buf = std::vec![0xa5u8; seg.len()];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(49152);
        p.set_dst_port(80);
        p.set_seq_number(0x0102_0304);
        p.set_ack_number(0);
        p.set_header_len(24);
        p.set_flags(TcpFlags(TcpFlags::SYN));
        p.set_window_len(65535);
        p.set_urgent_at(0);
        buf[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, seg);
    }

    #[test]
    fn impossible_lengths() {
        let seg = oracle();
        assert_eq!(
            TcpPacket::new_checked(&seg[..19]).unwrap_err(),
            Malformed::TruncatedL4
        );
        let mut b = seg.clone();
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            Malformed::BadL4Length
        );
        b[12] = 0xf0;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            Malformed::BadL4Length
        );
        assert!(TcpPacket::new_checked(&seg[..24]).is_ok());
    }
}
