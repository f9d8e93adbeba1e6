//! SCTP common header view and chunk walk (RFC 9260 §3).
//!
//! The checksum is CRC32c over the SCTP packet with the checksum field zeroed; it does not
//! cover the IP header, so an address-only NAT leaves it alone, and a port rewrite patches it
//! with [`checksum::crc32c_patch`] without reading the chunks. On the wire the CRC is stored
//! least significant byte first (RFC 9260 appendix A), which [`SctpPacket::checksum`] undoes.

use crate::checksum;
use crate::error::Malformed;
use crate::field::{get16, get32, put16, put32};

mod field {
    use crate::field::Field;

    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const VTAG: usize = 4;
    pub(super) const CHECKSUM: Field = 8..12;
}

/// Length of the SCTP common header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
/// Byte range of the CRC32c in the common header.
pub const CHECKSUM: core::ops::Range<usize> = field::CHECKSUM;
/// Length of a chunk header (type, flags, length).
pub const CHUNK_HEADER_LEN: usize = 4;

/// One chunk, as found by [`SctpPacket::chunks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpChunk {
    /// Chunk type (see [`sctp_chunk`](crate::sctp_chunk)).
    pub kind: u8,
    /// Chunk flags.
    pub flags: u8,
    /// Chunk length field (header included, padding excluded).
    pub len: u16,
    /// Offset of the chunk from the start of the SCTP packet.
    pub offset: usize,
}

/// An iterator over the chunks of an SCTP packet. After an error it stops.
#[derive(Clone, Debug)]
pub struct SctpChunks<'a> {
    buf: &'a [u8],
    off: usize,
    done: bool,
}

impl Iterator for SctpChunks<'_> {
    type Item = Result<SctpChunk, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.off >= self.buf.len() {
            return None;
        }
        let Some(h) = self.buf.get(self.off..self.off + CHUNK_HEADER_LEN) else {
            self.done = true;
            return Some(Err(Malformed::TruncatedL4));
        };
        let len = get16(h, 2);
        if (len as usize) < CHUNK_HEADER_LEN {
            self.done = true;
            return Some(Err(Malformed::BadL4Length));
        }
        if self.off + len as usize > self.buf.len() {
            self.done = true;
            return Some(Err(Malformed::TruncatedL4));
        }
        let chunk = SctpChunk {
            kind: h[0],
            flags: h[1],
            len,
            offset: self.off,
        };
        // Chunks are padded to 4 bytes; the padding of the last one may be missing.
        self.off += (len as usize + 3) & !3;
        Some(Ok(chunk))
    }
}

/// A read (and, over a mutable buffer, write) view of an SCTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> Self {
        SctpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the common header is present ([`Malformed::TruncatedL4`]). Chunks are
    /// checked as they are walked.
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed::TruncatedL4);
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

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        get32(self.buffer.as_ref(), field::VTAG)
    }

    /// The CRC32c as a number (the field is stored least significant byte first).
    pub fn checksum(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The CRC32c of the packet as it should be (the field counted as zero).
    pub fn compute_checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        checksum::crc32c_parts(&[
            &b[..field::CHECKSUM.start],
            &[0; 4],
            &b[field::CHECKSUM.end..],
        ])
    }

    /// Whether the CRC32c is valid.
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == self.compute_checksum()
    }

    /// The chunks (everything after the common header).
    pub fn chunks(&self) -> SctpChunks<'_> {
        SctpChunks {
            buf: self.buffer.as_ref(),
            off: HEADER_LEN,
            done: false,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    /// Sets the source port (the CRC is not updated).
    pub fn set_src_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port (the CRC is not updated).
    pub fn set_dst_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the verification tag.
    pub fn set_verification_tag(&mut self, tag: u32) {
        put32(self.buffer.as_mut(), field::VTAG, tag);
    }

    /// Writes `crc` into the checksum field.
    pub fn set_checksum(&mut self, crc: u32) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&crc.to_le_bytes());
    }

    /// Computes and writes the CRC32c.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sctp_chunk;

    /// An INIT from port 5000 to 80, vtag 0, built with scapy
    /// (`SCTP(sport=5000, dport=80)/SCTPChunkInit(init_tag=0x01020304, a_rwnd=65535,
    /// n_out_streams=10, n_in_streams=10, init_tsn=1)`), CRC32c by scapy.
    static INIT: [u8; 32] = [
        0x13, 0x88, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, // header, CRC below
        0x01, 0x00, 0x00, 0x14, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0xff, 0xff, 0x00, 0x0a, 0x00,
        0x0a, 0x00, 0x00, 0x00, 0x01,
    ];

    fn init() -> [u8; 32] {
        let mut b = INIT;
        b[8..12].copy_from_slice(&INIT_CRC);
        b
    }

    /// The CRC field scapy wrote for [`INIT`], as bytes on the wire.
    const INIT_CRC: [u8; 4] = [0x31, 0x73, 0x87, 0x3c];

    #[test]
    fn deconstruct() {
        let b = init();
        let p = SctpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 5000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.verification_tag(), 0);
        assert!(p.verify_checksum());
        let mut chunks = p.chunks();
        let c = chunks.next().unwrap().unwrap();
        assert_eq!(
            (c.kind, c.flags, c.len, c.offset),
            (sctp_chunk::INIT, 0, 20, 12)
        );
        assert!(chunks.next().is_none());
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 32];
        buf[12..].copy_from_slice(&INIT[12..]);
        let mut p = SctpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(5000);
        p.set_dst_port(80);
        p.set_verification_tag(0);
        p.fill_checksum();
        assert_eq!(buf, init());
    }

    #[test]
    fn chunk_walk_errors() {
        let mut b = [0u8; 28];
        b[12] = sctp_chunk::COOKIE_ECHO;
        b[15] = 5; // 5 bytes, padded to 8
        b[20] = sctp_chunk::ABORT;
        b[23] = 4;
        let p = SctpPacket::new_checked(&b[..]).unwrap();
        let kinds: std::vec::Vec<_> = p.chunks().filter_map(|c| c.ok()).map(|c| c.kind).collect();
        assert_eq!(kinds, [sctp_chunk::COOKIE_ECHO, sctp_chunk::ABORT]);
        // A zero-length chunk stops the walk with an error instead of looping.
        let errs: std::vec::Vec<_> = p.chunks().filter_map(|c| c.err()).collect();
        assert_eq!(errs, [Malformed::BadL4Length]);
        b[27] = 200;
        let last = SctpPacket::new_checked(&b[..])
            .unwrap()
            .chunks()
            .last()
            .unwrap();
        assert_eq!(last, Err(Malformed::TruncatedL4));
        assert_eq!(
            SctpPacket::new_checked(&b[..11]).unwrap_err(),
            Malformed::TruncatedL4
        );
    }
}
