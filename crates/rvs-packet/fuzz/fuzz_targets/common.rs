//! Shared by the fuzz targets: addresses of the packet's family from fuzzer bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bytes of the control prefix the `nat` and `encap_synth` targets read before the packet.
pub const PREFIX: usize = 1 + 2 * (16 + 2);

/// An address of the family of `packet` (by version nibble; IPv4 otherwise) from 16 bytes.
pub fn addr(packet: &[u8], b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    if packet.first().is_some_and(|v| v >> 4 == 6) {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

/// Splits fuzzer input into (flags, src, dst, packet).
pub fn split(data: &[u8]) -> Option<(u8, (IpAddr, u16), (IpAddr, u16), &[u8])> {
    if data.len() < PREFIX {
        return None;
    }
    let (ctl, packet) = data.split_at(PREFIX);
    let src = (
        addr(packet, &ctl[1..17]),
        u16::from_be_bytes([ctl[17], ctl[18]]),
    );
    let dst = (
        addr(packet, &ctl[19..35]),
        u16::from_be_bytes([ctl[35], ctl[36]]),
    );
    Some((ctl[0], src, dst, packet))
}
