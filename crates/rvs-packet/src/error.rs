//! [`Malformed`]: why a packet was dropped, or why a rewrite or a synthesis was refused.
//!
//! The data plane keeps one counter per reason, in an array indexed by [`Malformed::index`]
//! and sized [`Malformed::COUNT`], and exports it with [`Malformed::as_str`] as the label
//! value. The enum is `Copy`, carries no data and never allocates, so returning it on the
//! packet path costs nothing more than a byte.

use core::fmt;

/// A reason to drop a packet (parse), or to refuse a rewrite or a synthesis.
///
/// Variants are grouped by the layer that detects them. New variants are appended at the end,
/// so the numeric [`index`](Malformed::index) of an existing variant never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Malformed {
    /// The buffer is shorter than the fixed IP header (20 bytes for IPv4, 40 for IPv6).
    Truncated,
    /// The version nibble is neither 4 nor 6 (or an inner packet's version does not fit).
    BadVersion,
    /// IPv4: the header length (IHL) is below 5 words or runs past the buffer.
    BadHeaderLength,
    /// IPv4: the total length is below the header length or beyond the buffer;
    /// IPv6: the payload length runs past the buffer.
    BadTotalLength,
    /// A checksum that we verify does not match (the IPv4 header, an ICMP error message).
    BadChecksum,
    /// An IPv6 extension header is cut by the end of the packet or has an impossible length.
    BadExtension,
    /// An IPv6 extension chain we refuse: more than 8 headers, a second fragment header, a
    /// hop-by-hop header that is not first, or a routing header with segments left.
    UnsupportedExtension,
    /// The fixed transport header (TCP 20, UDP 8, SCTP 12 plus one chunk header, ICMP 8) is
    /// cut by the end of the packet.
    TruncatedL4,
    /// A transport length field is inconsistent: TCP data offset, UDP length, SCTP chunk length.
    BadL4Length,
    /// An ICMP error whose quoted packet is unusable: wrong IP version, a bad quoted IP header,
    /// or a quote that stops before the ports.
    BadIcmpQuote,
    /// A rewrite was given an address of the other family than the packet's.
    FamilyMismatch,
    /// A port rewrite was asked for an SCTP fragment: its CRC32c covers the whole reassembled
    /// packet, which a single fragment does not hold.
    FragmentedSctp,
    /// The operation does not support this protocol (a NAT of DCCP or UDP-Lite, whose
    /// checksums we do not know how to update; a decapsulation of a non-tunnel packet).
    UnsupportedProtocol,
    /// An ICMP error must not be sent about this packet (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7,
    /// RFC 4443 §2.4 (e)): it is itself an ICMP error, a non-first fragment, or it was sent
    /// from or to a multicast, broadcast or unspecified address.
    IcmpSuppressed,
    /// The output buffer is too small for the packet to build.
    OutputTooSmall,
    /// The packet to build would exceed 65535 bytes.
    TooLong,
}

impl Malformed {
    /// Every variant, in [`index`](Malformed::index) order.
    pub const ALL: [Malformed; 16] = [
        Malformed::Truncated,
        Malformed::BadVersion,
        Malformed::BadHeaderLength,
        Malformed::BadTotalLength,
        Malformed::BadChecksum,
        Malformed::BadExtension,
        Malformed::UnsupportedExtension,
        Malformed::TruncatedL4,
        Malformed::BadL4Length,
        Malformed::BadIcmpQuote,
        Malformed::FamilyMismatch,
        Malformed::FragmentedSctp,
        Malformed::UnsupportedProtocol,
        Malformed::IcmpSuppressed,
        Malformed::OutputTooSmall,
        Malformed::TooLong,
    ];

    /// The number of variants: the size of a counter array indexed by [`index`](Malformed::index).
    pub const COUNT: usize = Self::ALL.len();

    /// A dense index in `0..COUNT`, stable across releases (variants are only appended).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name, usable as a Prometheus label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Malformed::Truncated => "truncated",
            Malformed::BadVersion => "bad_version",
            Malformed::BadHeaderLength => "bad_header_length",
            Malformed::BadTotalLength => "bad_total_length",
            Malformed::BadChecksum => "bad_checksum",
            Malformed::BadExtension => "bad_extension",
            Malformed::UnsupportedExtension => "unsupported_extension",
            Malformed::TruncatedL4 => "truncated_l4",
            Malformed::BadL4Length => "bad_l4_length",
            Malformed::BadIcmpQuote => "bad_icmp_quote",
            Malformed::FamilyMismatch => "family_mismatch",
            Malformed::FragmentedSctp => "fragmented_sctp",
            Malformed::UnsupportedProtocol => "unsupported_protocol",
            Malformed::IcmpSuppressed => "icmp_suppressed",
            Malformed::OutputTooSmall => "output_too_small",
            Malformed::TooLong => "too_long",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for Malformed {}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn indices_are_dense_and_in_order() {
        for (i, m) in Malformed::ALL.iter().enumerate() {
            assert_eq!(m.index(), i, "{m:?}");
        }
        assert_eq!(Malformed::COUNT, 16);
    }

    #[test]
    fn names_are_unique_prometheus_label_values() {
        for (i, a) in Malformed::ALL.iter().enumerate() {
            let s = a.as_str();
            assert!(!s.is_empty());
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
                "{s}"
            );
            for b in &Malformed::ALL[i + 1..] {
                assert_ne!(s, b.as_str());
            }
        }
    }
}
