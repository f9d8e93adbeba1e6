//! The packet path's costs: parse, nat (one direction per iteration, alternating so the packet
//! stays valid), ICMP error translation, encapsulation.
//!
//! `cargo bench -p rvs-packet --bench packet`

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use rvs_packet::{PacketMeta, rewrite};

fn v4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().unwrap().octets()
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// 20 + 8 + 32 = 60 bytes.
fn udp4() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(v4("192.0.2.1"), v4("198.51.100.10"), 64)
        .udp(5353, 53)
        .write(&mut out, &[0x42; 32])
        .unwrap();
    out
}

fn udp6() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(v6("2001:db8::1"), v6("2001:db8::10"), 64)
        .udp(5353, 53)
        .write(&mut out, &[0x42; 32])
        .unwrap();
    out
}

/// A 1500-byte TCP segment (what a busy flow carries).
fn tcp4() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(v4("192.0.2.1"), v4("198.51.100.10"), 64)
        .tcp(40000, 80, 1, 65535)
        .ack(1)
        .write(&mut out, &[0x42; 1460])
        .unwrap();
    out
}

fn tcp6() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(v6("2001:db8::1"), v6("2001:db8::10"), 64)
        .tcp(40000, 80, 1, 65535)
        .ack(1)
        .write(&mut out, &[0x42; 1440])
        .unwrap();
    out
}

fn icmp4_error() -> Vec<u8> {
    let quoted = {
        let mut q = Vec::new();
        PacketBuilder::ipv4(v4("192.0.2.1"), v4("10.0.0.5"), 64)
            .udp(5353, 5300)
            .write(&mut q, &[0x42; 32])
            .unwrap();
        q
    };
    let mut out = Vec::new();
    PacketBuilder::ipv4(v4("10.0.0.5"), v4("192.0.2.1"), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut out, &quoted)
        .unwrap();
    out
}

/// Benchmarks one nat per iteration, alternating between two translations.
fn bench_nat(
    c: &mut Criterion,
    name: &str,
    mut pkt: Vec<u8>,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    src: bool,
) {
    let mut flip = false;
    c.bench_function(name, |bench| {
        bench.iter(|| {
            flip = !flip;
            let to = if flip { a } else { b };
            let (s, d) = if src {
                (Some(to), None)
            } else {
                (None, Some(to))
            };
            rewrite::nat(black_box(&mut pkt), s, d).unwrap();
        })
    });
}

fn benches(c: &mut Criterion) {
    let udp = udp4();
    assert_eq!(udp.len(), 60);
    c.bench_function("parse/udp4_60B", |b| {
        b.iter(|| PacketMeta::parse(black_box(&udp)).unwrap())
    });
    let t4 = tcp4();
    c.bench_function("parse/tcp4_1500B", |b| {
        b.iter(|| PacketMeta::parse(black_box(&t4)).unwrap())
    });
    let err = icmp4_error();
    c.bench_function("parse/icmp4_error", |b| {
        b.iter(|| PacketMeta::parse(black_box(&err)).unwrap())
    });

    let (rs4, vip4) = ((ip("10.0.0.5"), 8080), (ip("198.51.100.10"), 80));
    let (rs6, vip6) = ((ip("fd00::5"), 8080), (ip("2001:db8::10"), 80));
    bench_nat(c, "nat/dnat_tcp4_1500B", tcp4(), rs4, vip4, false);
    bench_nat(c, "nat/dnat_udp4_60B", udp4(), rs4, vip4, false);
    bench_nat(c, "nat/dnat_tcp6_1500B", tcp6(), rs6, vip6, false);
    bench_nat(c, "nat/dnat_udp6_80B", udp6(), rs6, vip6, false);
    bench_nat(
        c,
        "nat/icmp4_error_translation",
        icmp4_error(),
        (ip("198.51.100.10"), 53),
        (ip("10.0.0.5"), 5300),
        true,
    );
    let mut fullnat = tcp4();
    let mut flip = false;
    c.bench_function("nat/fullnat_tcp4_1500B", |b| {
        b.iter(|| {
            flip = !flip;
            let (s, d) = if flip {
                ((ip("10.0.0.1"), 61000), rs4)
            } else {
                ((ip("192.0.2.1"), 40000), vip4)
            };
            rewrite::nat(black_box(&mut fullnat), Some(s), Some(d)).unwrap();
        })
    });

    let mut out = vec![0u8; 2000];
    let (l4, r4) = (ip("10.0.0.1"), ip("10.0.0.5"));
    c.bench_function("encap/ipip_60B", |b| {
        b.iter(|| rewrite::encap(black_box(&udp), l4, r4, &mut out).unwrap())
    });
    c.bench_function("encap/ipip_1500B", |b| {
        b.iter(|| rewrite::encap(black_box(&t4), l4, r4, &mut out).unwrap())
    });
    let (l6, r6) = (ip("fd00::1"), ip("fd00::5"));
    let t6 = tcp6();
    c.bench_function("encap/ip6ip6_1500B", |b| {
        b.iter(|| rewrite::encap(black_box(&t6), l6, r6, &mut out).unwrap())
    });
}

criterion_group! {
    name = group;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = benches
}
criterion_main!(group);
