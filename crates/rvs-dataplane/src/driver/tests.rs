use std::net::{IpAddr, Ipv4Addr};

use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Engine, EngineConfig};
use rvs_packet::{Ipv4Packet, L4, TcpFlags, TcpPacket, UdpPacket, verify_checksums};

use super::*;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
const RS1: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 2, 1, 2));
const TSRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 255, 255, 2));

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!(),
    }
}

fn ip4(proto: u8, src: IpAddr, dst: IpAddr, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + l4.len()];
    b[20..].copy_from_slice(l4);
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    p.set_header_len(20);
    p.set_total_len((20 + l4.len()) as u16);
    p.set_frag(true, false, 0);
    p.set_ttl(64);
    p.set_protocol(proto);
    p.set_src_addr(v4(src));
    p.set_dst_addr(v4(dst));
    p.fill_checksum();
    b
}

fn udp(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0u8; 8 + payload.len()];
    l4[8..].copy_from_slice(payload);
    let mut u = UdpPacket::new_unchecked(&mut l4[..]);
    u.set_src_port(src.1);
    u.set_dst_port(dst.1);
    u.set_len((8 + payload.len()) as u16);
    u.fill_checksum(src.0, dst.0);
    ip4(17, src.0, dst.0, &l4)
}

fn tcp(src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let mut l4 = vec![0u8; 20];
    let mut t = TcpPacket::new_unchecked(&mut l4[..]);
    t.set_src_port(src.1);
    t.set_dst_port(dst.1);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_header_len(20);
    t.set_flags(TcpFlags(flags));
    t.set_window_len(1000);
    t.fill_checksum(src.0, dst.0);
    ip4(6, src.0, dst.0, &l4)
}

fn driver(fwd: ForwardMethod, proto: Protocol) -> Driver {
    let mut e = Engine::new(EngineConfig::default());
    let key = ServiceKey::Addr {
        proto,
        addr: VIP,
        port: 80,
    };
    e.apply(
        Instant::ZERO,
        Command::AddService(ServiceConfig::new(key).scheduler("rr")),
    )
    .unwrap();
    e.apply(
        Instant::ZERO,
        Command::AddDest(key, DestConfig::new(RS1, 8080).fwd(fwd)),
    )
    .unwrap();
    Driver::new(
        e,
        DriverConfig {
            tunnel_src: vec![TSRC],
            tunnel_mtu: 1500,
            routed: vec![(VIP, 32), (TSRC, 24)],
        },
    )
}

fn run(d: &mut Driver, mut pkt: Vec<u8>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let now = d.now();
    d.packet(now, &mut pkt, &mut out);
    out
}

#[test]
fn nat_forward_and_reply() {
    let mut d = driver(ForwardMethod::Masq, Protocol::Udp);
    let out = run(&mut d, udp((CLIENT, 40000), (VIP, 80), b"hello"));
    assert_eq!(out.len(), 1);
    let m = PacketMeta::parse(&out[0]).unwrap();
    assert_eq!((m.src, m.sport, m.dst, m.dport), (CLIENT, 40000, RS1, 8080));
    assert!(verify_checksums(&out[0]));
    let out = run(&mut d, udp((RS1, 8080), (CLIENT, 40000), b"world"));
    let m = PacketMeta::parse(&out[0]).unwrap();
    assert_eq!((m.src, m.sport, m.dst, m.dport), (VIP, 80, CLIENT, 40000));
    assert!(verify_checksums(&out[0]));
    assert_eq!(d.counters.tx_packets, 2);
}

#[test]
fn tunnel_encapsulates_from_the_tunnel_source() {
    let mut d = driver(ForwardMethod::Tunnel, Protocol::Tcp);
    let out = run(&mut d, tcp((CLIENT, 40000), (VIP, 80), TcpFlags::SYN, 7, 0));
    assert_eq!(out.len(), 1);
    let m = PacketMeta::parse(&out[0]).unwrap();
    assert_eq!((m.src, m.dst, m.protocol), (TSRC, RS1, 4));
    let inner = rvs_packet::rewrite::decap(&out[0]).unwrap();
    let im = PacketMeta::parse(inner).unwrap();
    assert_eq!(
        (im.src, im.dst, im.dport),
        (CLIENT, VIP, 80),
        "inner unchanged"
    );
}

#[test]
fn direct_route_is_dropped_and_counted() {
    let mut d = driver(ForwardMethod::Route, Protocol::Tcp);
    let out = run(&mut d, tcp((CLIENT, 40000), (VIP, 80), TcpFlags::SYN, 7, 0));
    assert!(out.is_empty());
    assert_eq!(d.counters.dropped[DpDrop::DirectRouteOnTun as usize], 1);
}

#[test]
fn unknown_tcp_flow_is_answered_with_a_reset() {
    let mut d = driver(ForwardMethod::Masq, Protocol::Tcp);
    let out = run(
        &mut d,
        tcp((CLIENT, 40000), (VIP, 80), TcpFlags::ACK, 7, 99),
    );
    assert_eq!(out.len(), 1);
    let m = PacketMeta::parse(&out[0]).unwrap();
    assert_eq!((m.src, m.sport, m.dst, m.dport), (VIP, 80, CLIENT, 40000));
    assert!(matches!(m.l4, L4::Tcp { flags, seq: 99, .. } if flags.rst()));
    assert_eq!(d.counters.resets_sent, 1);
}

#[test]
fn no_real_server_gets_port_unreachable_from_the_vip() {
    let mut d = driver(ForwardMethod::Masq, Protocol::Udp);
    let key = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: VIP,
        port: 80,
    };
    d.engine
        .apply(Instant::ZERO, Command::DelDest(key, RS1, 8080))
        .unwrap();
    let out = run(&mut d, udp((CLIENT, 40000), (VIP, 80), b"x"));
    assert_eq!(out.len(), 1);
    let m = PacketMeta::parse(&out[0]).unwrap();
    assert_eq!((m.src, m.dst), (VIP, CLIENT));
    assert!(matches!(
        m.l4,
        L4::IcmpError {
            icmp_type: 3,
            code: 3,
            ..
        }
    ));
}

#[test]
fn icmp_error_from_a_real_server_is_translated() {
    let mut d = driver(ForwardMethod::Masq, Protocol::Udp);
    let fwd = run(&mut d, udp((CLIENT, 40000), (VIP, 80), b"hello")).remove(0);
    // The real server answers the forwarded datagram with port unreachable.
    let mut err = [0u8; 600];
    let n = synth::icmp_unreachable(&mut err, &fwd, RS1, None).unwrap();
    let out = run(&mut d, err[..n].to_vec());
    assert_eq!(out.len(), 1);
    let m = PacketMeta::parse(&out[0]).unwrap();
    assert_eq!((m.src, m.dst), (VIP, CLIENT));
    let L4::IcmpError { quoted, .. } = m.l4 else {
        panic!("{m:?}")
    };
    assert_eq!((quoted.src, quoted.dst, quoted.dport), (CLIENT, VIP, 80));
    assert!(verify_checksums(&out[0]));
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut d = driver(ForwardMethod::Masq, Protocol::Udp);
    let good = udp((CLIENT, 40000), (VIP, 80), b"hello");
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..20_000 {
        let mut p = good.clone();
        let cut = (next() % (p.len() as u64 + 1)) as usize;
        p.truncate(cut.max(if i % 3 == 0 { 0 } else { 1 }));
        for _ in 0..(next() % 4) {
            if p.is_empty() {
                break;
            }
            let at = (next() % p.len() as u64) as usize;
            p[at] ^= next() as u8;
        }
        let mut out: Vec<Vec<u8>> = Vec::new();
        let now = d.now();
        d.packet(now, &mut p, &mut out);
    }
    let malformed: u64 = d.counters.malformed.iter().sum();
    assert!(malformed > 1000, "{malformed}");
    assert_eq!(d.counters.rx_packets, 20_000);
    // The live flow still works.
    let out = run(&mut d, udp((CLIENT, 40000), (VIP, 80), b"again"));
    assert_eq!(PacketMeta::parse(&out[0]).unwrap().dst, RS1);
}

#[test]
fn requests_are_served() {
    let mut d = driver(ForwardMethod::Masq, Protocol::Udp);
    assert!(matches!(d.request(Request::Services), Response::Services(v) if v.len() == 1));
    assert_eq!(
        d.request(Request::SysctlSet("conn_reuse_mode".into(), "0".into())),
        Response::Sysctl("net.ipv4.vs.conn_reuse_mode".into(), "0".into())
    );
    assert!(matches!(
        d.request(Request::SysctlSet("conn_reuse_mode".into(), "9".into())),
        Response::Error(m) if m.contains("out of range")
    ));
    assert!(matches!(
        d.request(Request::SysctlGet("nope".into())),
        Response::Error(_)
    ));
    let Response::State(s) = d.request(Request::State) else {
        panic!()
    };
    assert_eq!(s.services.len(), 1);
    assert_eq!(s.dataplane.malformed.len(), Malformed::COUNT);
}

#[test]
fn icmpv6_error_from_a_real_server_is_translated() {
    use rvs_packet::Ipv6Packet;
    let c6: IpAddr = "fd01::2".parse().unwrap();
    let v6: IpAddr = "fd00::100".parse().unwrap();
    let r6: IpAddr = "fd02:1::2".parse().unwrap();
    let mut e = Engine::new(EngineConfig::default());
    let key = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: v6,
        port: 81,
    };
    e.apply(
        Instant::ZERO,
        Command::AddService(ServiceConfig::new(key).scheduler("rr")),
    )
    .unwrap();
    e.apply(
        Instant::ZERO,
        Command::AddDest(key, DestConfig::new(r6, 81).fwd(ForwardMethod::Masq)),
    )
    .unwrap();
    let mut d = Driver::new(e, DriverConfig::default());
    // UDP over IPv6.
    let payload = b"anyone?";
    let mut pkt = vec![0u8; 40 + 8 + payload.len()];
    pkt[48..].copy_from_slice(payload);
    {
        let mut u = UdpPacket::new_unchecked(&mut pkt[40..]);
        u.set_src_port(40000);
        u.set_dst_port(81);
        u.set_len((8 + payload.len()) as u16);
        u.fill_checksum(c6, v6);
    }
    {
        let (IpAddr::V6(s), IpAddr::V6(t)) = (c6, v6) else {
            unreachable!()
        };
        let mut p = Ipv6Packet::new_unchecked(&mut pkt[..]);
        p.set_version_tc_flow(0, 0);
        p.set_payload_len((8 + payload.len()) as u16);
        p.set_next_header(17);
        p.set_hop_limit(64);
        p.set_src_addr(s);
        p.set_dst_addr(t);
    }
    assert!(verify_checksums(&pkt));
    let fwd = run(&mut d, pkt).remove(0);
    let m = PacketMeta::parse(&fwd).unwrap();
    assert_eq!((m.dst, m.dport), (r6, 81));
    let mut err = [0u8; 1300];
    let n = synth::icmp_unreachable(&mut err, &fwd, r6, None).unwrap();
    assert!(verify_checksums(&err[..n]));
    let out = run(&mut d, err[..n].to_vec());
    assert_eq!(out.len(), 1, "{:?}", d.counters);
    let m = PacketMeta::parse(&out[0]).unwrap();
    assert_eq!((m.src, m.dst), (v6, c6));
    assert!(
        verify_checksums(&out[0]),
        "ICMPv6 checksums after translation"
    );
}
