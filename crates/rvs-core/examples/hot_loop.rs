//! A fixed workload for instruction-count profiling (`valgrind --tool=callgrind`): packets of
//! established flows, new flows, and expiry. Not a benchmark (see benches/engine.rs).

use std::net::{IpAddr, Ipv4Addr};

use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Decision, Engine, EngineConfig, Instant, PacketMeta, Xmit};
use rvs_packet::TcpFlags;

fn main() {
    let flows: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let packets: u32 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let vip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    let mut e = Engine::new(EngineConfig::default());
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: vip,
        port: 80,
    };
    e.apply(
        Instant::ZERO,
        Command::AddService(ServiceConfig::new(key).scheduler("rr")),
    )
    .unwrap();
    for i in 1..=10u8 {
        let rs = IpAddr::V4(Ipv4Addr::new(10, 1, 0, i));
        e.apply(
            Instant::ZERO,
            Command::AddDest(key, DestConfig::new(rs, 80).fwd(ForwardMethod::Masq)),
        )
        .unwrap();
    }
    let client = |i: u32| {
        (
            IpAddr::V4(Ipv4Addr::from(0xac10_0000u32 + i / 50_000)),
            10_000 + (i % 50_000) as u16,
        )
    };
    let now = Instant::from_secs(1);
    for i in 0..flows {
        let c = client(i);
        let d = e.handle_packet(now, &PacketMeta::tcp(c, (vip, 80), TcpFlags::SYN, 1, 0));
        let Decision::Forward(f) = d else {
            panic!("{d:?}")
        };
        let Xmit::Nat { dst: Some(rs), .. } = f.xmit else {
            panic!()
        };
        let _ = e.handle_packet(
            now,
            &PacketMeta::tcp(rs, c, TcpFlags::SYN | TcpFlags::ACK, 1, 2),
        );
        let _ = e.handle_packet(now, &PacketMeta::tcp(c, (vip, 80), TcpFlags::ACK, 2, 2));
    }
    let mut n = 0u64;
    for k in 0..packets {
        let c = client(k.wrapping_mul(2_654_435_761) % flows);
        if let Decision::Forward(_) =
            e.handle_packet(now, &PacketMeta::tcp(c, (vip, 80), TcpFlags::ACK, 2, 2))
        {
            n += 1;
        }
    }
    println!("{n}");
}
