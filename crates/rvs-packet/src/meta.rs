//! [`PacketMeta`]: the one summary of a packet that the engine consumes.
//!
//! The data plane builds it from bytes with [`PacketMeta::parse`](crate::PacketMeta) (see the
//! parser modules); the simulator and the tests build it directly, without bytes. It carries
//! everything a forwarding decision needs (the flow tuple, TCP flags and sequence numbers for
//! synthesizing resets, the first SCTP chunk, the tuple quoted inside an ICMP error, fragment
//! position, the firewall mark) and nothing else. It is `Copy` and allocation-free.

use core::net::IpAddr;

/// IP protocol numbers that matter to a layer-4 balancer.
pub mod ipproto {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// IPv4-in-IP encapsulation (the IPIP tunnel method).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6-in-IP encapsulation (the IP6IP6 tunnel method).
    pub const IPV6: u8 = 41;
    /// Encapsulating Security Payload.
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// TCP header flags (the low byte of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;

    /// Whether all bits of `mask` are set.
    pub const fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
    /// SYN set.
    pub const fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// ACK set.
    pub const fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// FIN set.
    pub const fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// RST set.
    pub const fn rst(self) -> bool {
        self.has(Self::RST)
    }
}

/// SCTP chunk types that the IPVS state machine distinguishes (RFC 9260 §3.2).
pub mod sctp_chunk {
    /// DATA.
    pub const DATA: u8 = 0;
    /// INIT.
    pub const INIT: u8 = 1;
    /// INIT ACK.
    pub const INIT_ACK: u8 = 2;
    /// SACK.
    pub const SACK: u8 = 3;
    /// HEARTBEAT.
    pub const HEARTBEAT: u8 = 4;
    /// HEARTBEAT ACK.
    pub const HEARTBEAT_ACK: u8 = 5;
    /// ABORT.
    pub const ABORT: u8 = 6;
    /// SHUTDOWN.
    pub const SHUTDOWN: u8 = 7;
    /// SHUTDOWN ACK.
    pub const SHUTDOWN_ACK: u8 = 8;
    /// ERROR.
    pub const ERROR: u8 = 9;
    /// COOKIE ECHO.
    pub const COOKIE_ECHO: u8 = 10;
    /// COOKIE ACK.
    pub const COOKIE_ACK: u8 = 11;
    /// SHUTDOWN COMPLETE.
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

/// Where a packet sits in a fragmented datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    #[default]
    None,
    /// The first fragment: it carries the transport header and ports.
    First,
    /// A later fragment: no transport header, no ports.
    NonFirst,
}

/// The flow tuple quoted inside an ICMP error (the start of the packet that caused it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Source address of the quoted packet.
    pub src: IpAddr,
    /// Destination address of the quoted packet.
    pub dst: IpAddr,
    /// Transport protocol of the quoted packet.
    pub protocol: u8,
    /// Source port of the quoted packet (0 when it has none).
    pub sport: u16,
    /// Destination port of the quoted packet (0 when it has none).
    pub dport: u16,
}

/// Transport-level facts, by protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// A TCP segment.
    Tcp {
        /// Header flags.
        flags: TcpFlags,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number (meaningful when ACK is set).
        ack: u32,
        /// Payload length in bytes (data only; SYN and FIN are not counted).
        payload_len: u32,
    },
    /// A UDP datagram.
    Udp,
    /// An SCTP packet.
    Sctp {
        /// Type of the first chunk.
        first_chunk: u8,
        /// The first chunk is COOKIE ECHO or COOKIE ACK and the next chunk is ABORT
        /// (the kernel treats the packet as an ABORT, kernel-semantics §3.3.2).
        cookie_then_abort: bool,
        /// Verification tag of the common header.
        vtag: u32,
    },
    /// An ICMP or ICMPv6 error message (IPv4 types 3, 4, 11, 12; IPv6 types below 128).
    IcmpError {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// The tuple of the packet the error is about.
        quoted: Quoted,
    },
    /// Any other ICMP or ICMPv6 message (echo and friends).
    IcmpOther {
        /// ICMP type.
        icmp_type: u8,
    },
    /// Any other protocol (AH, ESP, GRE, ...): only the addresses are known.
    Other,
}

/// Everything the engine needs to know about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol number (after IPv6 extension headers).
    pub protocol: u8,
    /// Source port (0 when the protocol has none, or for a non-first fragment).
    pub sport: u16,
    /// Destination port (0 when the protocol has none, or for a non-first fragment).
    pub dport: u16,
    /// Length of the whole IP packet in bytes, header included (what IPVS counts as bytes).
    pub len: u32,
    /// Transport-level facts.
    pub l4: L4,
    /// Fragment position.
    pub frag: Fragment,
    /// Firewall mark attached by the data plane (0 = none).
    pub fwmark: u32,
}

impl PacketMeta {
    /// A TCP segment (helper for the simulator and tests).
    pub fn tcp(src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8, seq: u32, ack: u32) -> Self {
        let hdr = if src.0.is_ipv4() { 40 } else { 60 };
        PacketMeta {
            src: src.0,
            dst: dst.0,
            protocol: ipproto::TCP,
            sport: src.1,
            dport: dst.1,
            len: hdr,
            l4: L4::Tcp {
                flags: TcpFlags(flags),
                seq,
                ack,
                payload_len: 0,
            },
            frag: Fragment::None,
            fwmark: 0,
        }
    }

    /// A UDP datagram with `payload` bytes of data (helper for the simulator and tests).
    pub fn udp(src: (IpAddr, u16), dst: (IpAddr, u16), payload: u32) -> Self {
        let hdr = if src.0.is_ipv4() { 28 } else { 48 };
        PacketMeta {
            src: src.0,
            dst: dst.0,
            protocol: ipproto::UDP,
            sport: src.1,
            dport: dst.1,
            len: hdr + payload,
            l4: L4::Udp,
            frag: Fragment::None,
            fwmark: 0,
        }
    }

    /// An SCTP packet whose first chunk is `first_chunk` (helper for the simulator and tests).
    pub fn sctp(src: (IpAddr, u16), dst: (IpAddr, u16), first_chunk: u8) -> Self {
        let hdr = if src.0.is_ipv4() { 48 } else { 68 };
        PacketMeta {
            src: src.0,
            dst: dst.0,
            protocol: ipproto::SCTP,
            sport: src.1,
            dport: dst.1,
            len: hdr,
            l4: L4::Sctp {
                first_chunk,
                cookie_then_abort: false,
                vtag: 0,
            },
            frag: Fragment::None,
            fwmark: 0,
        }
    }

    /// Sets the payload length (TCP) and adds it to the packet length.
    pub fn with_payload(mut self, bytes: u32) -> Self {
        if let L4::Tcp { payload_len, .. } = &mut self.l4 {
            *payload_len = bytes;
        }
        self.len += bytes;
        self
    }

    /// Sets the firewall mark.
    pub fn with_fwmark(mut self, mark: u32) -> Self {
        self.fwmark = mark;
        self
    }

    /// TCP flags, if this is a TCP segment.
    pub fn tcp_flags(&self) -> Option<TcpFlags> {
        match self.l4 {
            L4::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }
}
