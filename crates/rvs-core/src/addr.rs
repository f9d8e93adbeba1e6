//! Address storage for the connection table.
//!
//! The connection table keeps IPv4 and IPv6 connections in two tables of different entry sizes
//! (an IPv4 entry stores three 4-byte addresses, not three 16-byte ones), which keeps an IPv4
//! entry small. [`Addr`] is what the table is generic over.

use core::fmt::Debug;
use core::hash::Hash;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address family's address, as stored in a connection entry.
pub trait Addr: Copy + Eq + Hash + Debug + Default + Send + Sync + 'static {
    /// Whether this is the IPv6 family.
    const V6: bool;
    /// From a generic address; `None` if the family does not match.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// To a generic address.
    fn to_ip(self) -> IpAddr;
    /// From a 32-bit value placed in the first four bytes (fwmark templates store the mark
    /// in the virtual address, kernel-semantics §5.2).
    fn from_mark(mark: u32) -> Self;
}

/// An IPv4 address in network byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct V4(pub [u8; 4]);

/// An IPv6 address in network byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct V6(pub [u8; 16]);

// Hash as one integer write (the derived impl hashes a length-prefixed slice): the connection
// table hashes two addresses per lookup.
impl core::hash::Hash for V4 {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        h.write_u32(u32::from_ne_bytes(self.0));
    }
}

impl core::hash::Hash for V6 {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(self.0));
    }
}

impl Addr for V4 {
    const V6: bool = false;
    #[inline]
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(V4(a.octets())),
            IpAddr::V6(_) => None,
        }
    }
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self.0))
    }
    fn from_mark(mark: u32) -> Self {
        V4(mark.to_be_bytes())
    }
}

impl Addr for V6 {
    const V6: bool = true;
    #[inline]
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(V6(a.octets())),
            IpAddr::V4(_) => None,
        }
    }
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self.0))
    }
    fn from_mark(mark: u32) -> Self {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&mark.to_be_bytes());
        V6(b)
    }
}

/// The kernel's `ip_vs_addr_fold` (used by sh, dh, mh, lblc, lblcr): an IPv4 address as a
/// host-order u32, an IPv6 address as the XOR of its four 32-bit words (kernel-semantics §4.7).
pub fn fold(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from_be_bytes(a.octets()),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// Masks `ip` for a persistence template key: IPv4 with a netmask, IPv6 with a prefix
/// length (kernel-semantics §5.2).
pub fn mask(ip: IpAddr, netmask: Netmask) -> IpAddr {
    match (ip, netmask) {
        (IpAddr::V4(a), Netmask::V4(m)) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & m)),
        (IpAddr::V6(a), Netmask::V6(p)) => {
            let p = p.min(128) as u32;
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
        (ip, _) => ip,
    }
}

/// A persistence netmask: dotted IPv4 mask (host order) or IPv6 prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Netmask {
    /// IPv4 netmask as a host-order u32 (`0xffffffff` = /32).
    V4(u32),
    /// IPv6 prefix length 1..=128.
    V6(u8),
}

impl Netmask {
    /// The full-length mask for a family.
    pub fn full(v6: bool) -> Self {
        if v6 {
            Netmask::V6(128)
        } else {
            Netmask::V4(u32::MAX)
        }
    }
    /// Whether it is the full-length mask (ipvsadm then prints no `mask`).
    pub fn is_full(self) -> bool {
        matches!(self, Netmask::V4(u32::MAX) | Netmask::V6(128))
    }
}

/// Whether `a` is in `net/len` (false across families).
pub fn in_prefix(a: IpAddr, net: IpAddr, len: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len.min(32))
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len.min(128))
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_v4_and_v6() {
        assert_eq!(fold("192.168.1.2".parse().unwrap()), 0xC0A8_0102);
        let v6: IpAddr = "fd00::11:2".parse().unwrap();
        assert_eq!(fold(v6), 0xfd00_0000 ^ 0x0011_0002);
    }

    #[test]
    fn mask_v4_v6() {
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            mask(a, Netmask::V4(0xffffff00)),
            "10.1.2.0".parse::<IpAddr>().unwrap()
        );
        let b: IpAddr = "fd00::1:2:3".parse().unwrap();
        assert_eq!(
            mask(b, Netmask::V6(64)),
            "fd00::".parse::<IpAddr>().unwrap()
        );
    }
}
