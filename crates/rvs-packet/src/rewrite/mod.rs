//! In-place rewrites: NAT (with ICMP error translation) and IP-in-IP tunnels.
//!
//! These apply the packet half of the kernel's transmitters: [`nat`] is what
//! `ip_vs_nat_xmit()` (and DPVS-style full NAT) does to the bytes, including
//! `ip_vs_nat_icmp()` for ICMP errors; [`encap`] is `ip_vs_tunnel_xmit()`. They validate the
//! whole packet before writing anything, so an error leaves the buffer untouched, and they
//! update every checksum incrementally ([`checksum::Delta`](crate::checksum::Delta)).

mod icmp;
mod nat;
mod tunnel;

pub use nat::nat;
pub use tunnel::{decap, encap};

use core::net::IpAddr;

use crate::checksum::Delta;
use crate::field::{get16, get32, put16, put32};

/// Writes the address `new` (its family matches the packet's) at `at`, recording the change.
#[inline]
fn write_addr(buf: &mut [u8], at: usize, new: IpAddr, d: &mut Delta) {
    match new {
        IpAddr::V4(a) => {
            let new = a.to_bits();
            d.add32(get32(buf, at), new);
            put32(buf, at, new);
        }
        IpAddr::V6(a) => {
            let field = &mut buf[at..at + 16];
            let mut old = [0u8; 16];
            old.copy_from_slice(field);
            let new = a.to_bits();
            d.add128(u128::from_be_bytes(old), new);
            field.copy_from_slice(&new.to_be_bytes());
        }
    }
}

/// Writes the 16-bit `new` at `at`, recording the change.
#[inline]
fn write16(buf: &mut [u8], at: usize, new: u16, d: &mut Delta) {
    d.add16(get16(buf, at), new);
    put16(buf, at, new);
}

/// Applies `d` to the checksum at `at`, recording the checksum's own change in `outer` (for a
/// checksum that lies inside data covered by another one, such as a quoted header inside an
/// ICMP message). `udp` applies the UDP rules: zero stays zero, a zero result becomes 0xffff.
#[inline]
fn fix_checksum(buf: &mut [u8], at: usize, d: Delta, udp: bool, outer: &mut Delta) {
    let old = get16(buf, at);
    if udp && old == 0 {
        return;
    }
    let mut new = d.apply(old);
    if udp && new == 0 {
        new = 0xffff;
    }
    outer.add16(old, new);
    put16(buf, at, new);
}
