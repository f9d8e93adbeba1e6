//! What the engine tells the data plane to do with a packet.

use core::net::IpAddr;

use crate::dest::{DestId, TunnelInfo};

/// The engine's answer for one packet. The data plane applies it with `rvs-packet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Send the packet on, transformed as described.
    Forward(Forward),
    /// Drop the packet; the reason is counted.
    Drop(DropReason),
    /// Drop the packet and send the described answer back to its sender.
    Answer(Answer),
    /// Not for the balancer: no service matches. A Linux director would hand it to its local
    /// stack; the TUN data plane has none behind the VIPs and counts it.
    Pass,
}

/// How to send a packet on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The transformation.
    pub xmit: Xmit,
    /// The real server involved (for logs and tests); `None` for bypassed packets.
    pub dest: Option<DestId>,
    /// Whether this packet created the connection (a scheduling decision).
    pub new_conn: bool,
}

/// The transformation of a forwarded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xmit {
    /// Rewrite the packet's source and/or destination (address and port): DNAT towards a real
    /// server, the reverse on replies, or both for full NAT. For an ICMP error the same
    /// translation applies to the outer addresses and, in the opposite direction, to the quoted
    /// packet (`rvs_packet::rewrite::nat`).
    Nat {
        /// New source, if it changes.
        src: Option<(IpAddr, u16)>,
        /// New destination, if it changes.
        dst: Option<(IpAddr, u16)>,
    },
    /// Encapsulate (IPIP / IP6IP6) towards the real server (the kernel's `ip_vs_tunnel_xmit`).
    Tunnel {
        /// The real server (outer destination).
        dst: IpAddr,
        /// Encapsulation parameters.
        tunnel: TunnelInfo,
    },
    /// Direct routing: resend unchanged to the real server's link-layer address (needs a
    /// layer-2 data plane; the kernel's `ip_vs_dr_xmit`).
    DirectRoute {
        /// The real server.
        dst: IpAddr,
    },
    /// Deliver to the local host (the kernel's LOCALNODE).
    Local,
    /// Forward unchanged to the original destination (`cache_bypass`).
    Bypass,
}

/// An answer the data plane synthesizes in reply to the packet it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// ICMP destination unreachable, port unreachable (IPv6: type 1 code 4), quoting the
    /// packet (the kernel's `ip_vs_leave`, kernel-semantics §2.6.4: no real server available).
    IcmpPortUnreachable,
    /// A TCP reset to the packet's sender (addresses and ports of the packet, reversed):
    /// `seq` and `ack` follow RFC 9293's reset generation for the packet.
    TcpRst {
        /// Sequence number of the reset.
        seq: u32,
        /// Acknowledgment number, if the reset carries ACK.
        ack: Option<u32>,
    },
}

/// A packet the engine wants sent that is not an answer to the current packet
/// ([`crate::Engine::poll_output`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synth {
    /// A TCP reset.
    TcpRst {
        /// Source address and port.
        src: (IpAddr, u16),
        /// Destination address and port.
        dst: (IpAddr, u16),
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number, if any.
        ack: Option<u32>,
        /// Send it through the tunnel to this real server instead of as is.
        tunnel_to: Option<IpAddr>,
    },
}

macro_rules! reasons {
    ($($(#[$m:meta])* $v:ident = $s:literal,)*) => {
        /// Why a packet was dropped. Each reason is counted; `as_str` gives the metric label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DropReason { $($(#[$m])* $v,)* }
        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)*];
            /// The label used in metrics.
            pub fn as_str(self) -> &'static str { match self { $(DropReason::$v => $s,)* } }
            /// The counter index.
            pub fn index(self) -> usize { self as usize }
        }
    };
}

reasons! {
    /// A fragment after the first: it has no ports (rvs does not reassemble).
    NonFirstFragment = "non_first_fragment",
    /// The connection's real server was removed and `expire_nodest_conn` is 0
    /// (kernel-semantics §2.5): black-holed until the entry expires.
    DestUnavailable = "dest_unavailable",
    /// Kernels before 5.9: the connection's real server was removed and `expire_nodest_conn`
    /// is 1: this packet is dropped, the entry expired (kernel-semantics §2.5).
    DestUnavailableExpired = "dest_unavailable_expired",
    /// Port reuse: the SYN was dropped to let conntrack forget the old flow, and the client will
    /// retransmit (kernel-semantics §2.4.4; the 1-second stall of Kubernetes #70747).
    ReuseConntrack = "reuse_conntrack",
    /// The drop_packet defence (kernel-semantics §2.12).
    DefenceDropPacket = "defence_drop_packet",
    /// The connection table is at its bound.
    TableFull = "table_full",
    /// No real server and the packet is itself an ICMP error (kernel-semantics §2.6.4).
    NoDestIcmp = "no_dest_icmp",
    /// Full NAT: no local port is free.
    FullNatPortsExhausted = "fullnat_ports_exhausted",
    /// A real server sent a packet that matches no connection while `nat_icmp_send` is set;
    /// it was answered with ICMP port unreachable (kernel-semantics §2.8).
    StrayFromRealServer = "stray_from_real_server",
    /// `safe`: a non-TCP packet of a flow whose real server was removed, which cannot be
    /// rescheduled (SCTP mid-association); the entry is retired.
    DestRemoved = "dest_removed",
    /// A segment that cannot start a connection (TCP RST, SCTP ABORT) for a flow the engine does
    /// not know.
    NoConnection = "no_connection",
}

/// Number of drop reasons.
pub const DROP_REASONS: usize = DropReason::ALL.len();
