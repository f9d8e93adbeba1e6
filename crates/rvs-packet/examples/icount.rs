//! Instruction counts of the packet path, repeatable on a busy machine (unlike wall time):
//!
//! ```sh
//! cargo build --release -p rvs-packet --example icount
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/icount 100000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep 'icount::op_'
//! ```
//!
//! Each `op_*` function runs its operation N times: divide its inclusive count by N.

use std::hint::black_box;
use std::net::IpAddr;

use rvs_packet::{PacketMeta, rewrite, synth};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A 60-byte UDP/IPv4 packet (20 + 8 + 32) and friends, built with our own synthesizer and
/// a rewrite so that the example needs no other crate.
fn udp4() -> Vec<u8> {
    let mut b = vec![0u8; 60];
    b[..20].copy_from_slice(&[
        0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 10,
    ]);
    b[20..28].copy_from_slice(&[0x14, 0xe9, 0, 53, 0, 40, 0, 0]);
    rvs_packet::Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
    let (s, d) = (ip("192.0.2.1"), ip("198.51.100.10"));
    rvs_packet::UdpPacket::new_unchecked(&mut b[20..]).fill_checksum(s, d);
    b
}

fn tcp(v6: bool) -> Vec<u8> {
    let mut b = vec![0u8; 100];
    let (s, d) = if v6 {
        (ip("2001:db8::1"), ip("2001:db8::10"))
    } else {
        (ip("192.0.2.1"), ip("198.51.100.10"))
    };
    let n = synth::tcp_rst(&mut b, (s, 40000), (d, 80), 1, Some(1)).unwrap();
    b.truncate(n);
    b
}

#[inline(never)]
fn op_parse_udp4(b: &[u8], n: u64) {
    for _ in 0..n {
        black_box(PacketMeta::parse(black_box(b)).unwrap());
    }
}

#[inline(never)]
fn op_nat(b: &mut [u8], x: (IpAddr, u16), y: (IpAddr, u16), n: u64) {
    for i in 0..n {
        let to = if i & 1 == 0 { x } else { y };
        rewrite::nat(black_box(&mut *b), None, Some(to)).unwrap();
    }
}

#[inline(never)]
fn op_nat_udp4(b: &mut [u8], x: (IpAddr, u16), y: (IpAddr, u16), n: u64) {
    op_nat(b, x, y, n)
}

#[inline(never)]
fn op_nat_tcp4(b: &mut [u8], x: (IpAddr, u16), y: (IpAddr, u16), n: u64) {
    op_nat(b, x, y, n)
}

#[inline(never)]
fn op_nat_tcp6(b: &mut [u8], x: (IpAddr, u16), y: (IpAddr, u16), n: u64) {
    op_nat(b, x, y, n)
}

#[inline(never)]
fn op_encap_60(b: &[u8], out: &mut [u8], n: u64) {
    let (s, d) = (ip("10.0.0.1"), ip("10.0.0.5"));
    for _ in 0..n {
        black_box(rewrite::encap(black_box(b), s, d, out).unwrap());
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let udp = udp4();
    op_parse_udp4(&udp, n);
    let (rs4, vip4) = ((ip("10.0.0.5"), 8080), (ip("198.51.100.10"), 80));
    let (rs6, vip6) = ((ip("fd00::5"), 8080), (ip("2001:db8::10"), 80));
    op_nat_udp4(&mut udp4(), rs4, vip4, n);
    op_nat_tcp4(&mut tcp(false), rs4, vip4, n);
    op_nat_tcp6(&mut tcp(true), rs6, vip6, n);
    let mut out = vec![0u8; 200];
    op_encap_60(&udp, &mut out, n);
}
