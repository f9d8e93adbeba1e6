//! ICMP (RFC 792) and ICMPv6 (RFC 4443) views, including the packet quoted inside errors.
//!
//! Both messages share a layout: type, code, checksum, four bytes whose meaning depends on the
//! type (echo identifier and sequence, next-hop MTU, pointer, unused), then data. For an error
//! the data is the start of the packet that caused it: [`Icmpv4Packet::quote`] and
//! [`Icmpv6Packet::quote`] return it, and [`Ipv4Packet::check_header_len`](crate::Ipv4Packet)
//! / [`Ipv6Packet::check_header_len`](crate::Ipv6Packet) read it while tolerating the cut.
//!
//! Which messages are errors: IPv4 types 3 (destination unreachable), 4 (source quench),
//! 11 (time exceeded) and 12 (parameter problem); IPv6 types below 128 (RFC 4443 §2.1).
//! IPv4 redirects (type 5) quote a packet too, but they are routing advice, not errors of a
//! flow, so they count as other messages here (the kernel's IPVS ignores them as well).

use core::net::{IpAddr, Ipv6Addr};

use crate::checksum;
use crate::error::Malformed;
use crate::field::{get16, get32, put16, put32};
use crate::meta::ipproto;

mod field {
    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: usize = 2;
    pub(super) const REST: usize = 4;
    pub(super) const ECHO_IDENT: usize = 4;
    pub(super) const ECHO_SEQ: usize = 6;
    pub(super) const DATA: usize = 8;
}

/// Length of the ICMP (and ICMPv6) header, the four type-specific bytes included.
pub const HEADER_LEN: usize = field::DATA;
/// Offset of the checksum in an ICMP or ICMPv6 header.
pub const CHECKSUM: usize = field::CHECKSUM;

/// ICMPv4 message types used here.
pub mod icmpv4_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench (deprecated, RFC 6633, still quoted).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// ICMPv4 destination-unreachable codes used here.
pub mod icmpv4_unreach {
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (the MTU is in bytes 6..8).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// ICMPv6 message types used here.
pub mod icmpv6_type {
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 1;
    /// Packet too big (the MTU is in bytes 4..8).
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Redirect (RFC 4861); no error may be sent about it (RFC 4443 §2.4 (e)).
    pub const REDIRECT: u8 = 137;
}

/// ICMPv6 destination-unreachable codes used here.
pub mod icmpv6_unreach {
    /// Communication administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Port unreachable.
    pub const PORT: u8 = 4;
}

/// Whether an ICMPv4 type is an error that quotes the packet of a flow (3, 4, 11, 12).
pub const fn is_icmpv4_error(msg_type: u8) -> bool {
    matches!(msg_type, 3 | 4 | 11 | 12)
}

/// Whether an ICMPv6 type is an error (below 128).
pub const fn is_icmpv6_error(msg_type: u8) -> bool {
    msg_type < 128
}

macro_rules! icmp_common {
    ($name:ident) => {
        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps a buffer without any check.
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps a buffer after [`check_len`](Self::check_len).
            pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
                let p = Self::new_unchecked(buffer);
                p.check_len()?;
                Ok(p)
            }

            /// Checks that the 8-byte header is present ([`Malformed::TruncatedL4`]).
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

            /// Message type.
            pub fn msg_type(&self) -> u8 {
                self.buffer.as_ref()[field::TYPE]
            }

            /// Message code.
            pub fn msg_code(&self) -> u8 {
                self.buffer.as_ref()[field::CODE]
            }

            /// Checksum field.
            pub fn checksum(&self) -> u16 {
                get16(self.buffer.as_ref(), field::CHECKSUM)
            }

            /// The four type-specific bytes after the checksum, as one number.
            pub fn rest_of_header(&self) -> u32 {
                get32(self.buffer.as_ref(), field::REST)
            }

            /// Echo identifier (bytes 4..6).
            pub fn echo_ident(&self) -> u16 {
                get16(self.buffer.as_ref(), field::ECHO_IDENT)
            }

            /// Echo sequence number (bytes 6..8).
            pub fn echo_seq_no(&self) -> u16 {
                get16(self.buffer.as_ref(), field::ECHO_SEQ)
            }

            /// Everything after the 8-byte header.
            pub fn data(&self) -> &[u8] {
                &self.buffer.as_ref()[field::DATA..]
            }

            /// The quoted packet, if this message is an error.
            pub fn quote(&self) -> Option<&[u8]> {
                if self.is_error() {
                    Some(self.data())
                } else {
                    None
                }
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            /// Sets the message type.
            pub fn set_msg_type(&mut self, t: u8) {
                self.buffer.as_mut()[field::TYPE] = t;
            }

            /// Sets the message code.
            pub fn set_msg_code(&mut self, c: u8) {
                self.buffer.as_mut()[field::CODE] = c;
            }

            /// Sets the checksum field.
            pub fn set_checksum(&mut self, c: u16) {
                put16(self.buffer.as_mut(), field::CHECKSUM, c);
            }

            /// Sets the four type-specific bytes.
            pub fn set_rest_of_header(&mut self, v: u32) {
                put32(self.buffer.as_mut(), field::REST, v);
            }

            /// Sets the echo identifier.
            pub fn set_echo_ident(&mut self, v: u16) {
                put16(self.buffer.as_mut(), field::ECHO_IDENT, v);
            }

            /// Sets the echo sequence number.
            pub fn set_echo_seq_no(&mut self, v: u16) {
                put16(self.buffer.as_mut(), field::ECHO_SEQ, v);
            }

            /// Everything after the 8-byte header, mutable.
            pub fn data_mut(&mut self) -> &mut [u8] {
                &mut self.buffer.as_mut()[field::DATA..]
            }
        }
    };
}

/// A read (and, over a mutable buffer, write) view of an ICMPv4 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

icmp_common!(Icmpv4Packet);

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Whether the message is an error that quotes a packet (types 3, 4, 11, 12).
    pub fn is_error(&self) -> bool {
        is_icmpv4_error(self.msg_type())
    }

    /// Next-hop MTU of a "fragmentation needed" message (bytes 6..8, RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// Whether the checksum over the whole message (the buffer) is valid.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the next-hop MTU (bytes 6..8).
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQ, mtu);
    }

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::data(self.buffer.as_ref()));
        self.set_checksum(c);
    }
}

/// A read (and, over a mutable buffer, write) view of an ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

icmp_common!(Icmpv6Packet);

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Whether the message is an error (type below 128).
    pub fn is_error(&self) -> bool {
        is_icmpv6_error(self.msg_type())
    }

    /// MTU of a "packet too big" message (bytes 4..8).
    pub fn mtu(&self) -> u32 {
        self.rest_of_header()
    }

    /// Whether the checksum, pseudo-header included, is valid.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, ipproto::ICMPV6, b.len() as u32);
        checksum::combine(&[ph, checksum::data(b)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the MTU (bytes 4..8).
    pub fn set_mtu(&mut self, mtu: u32) {
        self.set_rest_of_header(mtu);
    }

    /// Computes and writes the checksum, pseudo-header included.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, ipproto::ICMPV6, b.len() as u32);
        let c = checksum::finish(checksum::combine(&[ph, checksum::data(b)]));
        self.set_checksum(c);
    }
}

/// Verifies the checksum of an ICMP or ICMPv6 message `msg` carried between `src` and `dst`.
pub(crate) fn verify(msg: &[u8], src: IpAddr, dst: IpAddr) -> bool {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => Icmpv6Packet::new_unchecked(msg).verify_checksum(s, d),
        _ => Icmpv4Packet::new_unchecked(msg).verify_checksum(),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::Ipv4Packet;

    /// An ICMP port unreachable from 10.0.0.2 about a UDP datagram 10.0.0.1:1234 ->
    /// 10.0.0.2:53, quoting the IP header and 8 bytes (built with scapy:
    /// `ICMP(type=3, code=3)/IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=1234, dport=53)`,
    /// the quote cut to 28 bytes).
    static UNREACH: [u8; 36] = [
        0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, // type, code, checksum (below), unused
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x66, 0xce, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // quoted IP header
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // quoted UDP header
    ];

    fn unreach() -> [u8; 36] {
        let mut b = UNREACH;
        let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
        p.fill_checksum();
        b
    }

    #[test]
    fn deconstruct() {
        let b = unreach();
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), icmpv4_type::DEST_UNREACH);
        assert_eq!(p.msg_code(), icmpv4_unreach::PORT);
        assert!(p.is_error());
        assert!(p.verify_checksum());
        let q = Ipv4Packet::new_unchecked(p.quote().unwrap());
        q.check_header_len().unwrap();
        assert!(q.verify_checksum());
        assert_eq!(q.protocol(), 17);
        assert_eq!(q.payload(), &UNREACH[28..]);
        // The independent oracle accepts it.
        let (h, _) = etherparse::Icmpv4Header::from_slice(&b).unwrap();
        assert_eq!(h.checksum, p.checksum());
    }

    #[test]
    fn echo_fields() {
        let mut b = [0u8; 12];
        let mut p = Icmpv6Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(icmpv6_type::ECHO_REQUEST);
        p.set_echo_ident(7);
        p.set_echo_seq_no(9);
        let (s, d) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
        p.fill_checksum(s, d);
        assert!(p.verify_checksum(s, d));
        assert!(!p.is_error());
        assert!(p.quote().is_none());
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (7, 9));
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..7]).unwrap_err(),
            Malformed::TruncatedL4
        );
    }

    #[test]
    fn error_classes() {
        for t in 0..=255u8 {
            assert_eq!(is_icmpv4_error(t), [3, 4, 11, 12].contains(&t));
            assert_eq!(is_icmpv6_error(t), t < 128);
        }
    }
}
