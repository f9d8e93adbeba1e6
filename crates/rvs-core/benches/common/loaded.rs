//! A loaded engine for the benchmarks of state hand-over (rvs-core) and crash-recovery
//! snapshots (rvs-dataplane, which includes this file by path).

use std::net::{IpAddr, Ipv4Addr};

use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Engine, EngineConfig, Instant, PacketMeta, Profile};
use rvs_packet::TcpFlags;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

/// The engine configuration of the loaded engine.
pub fn config() -> EngineConfig {
    EngineConfig {
        profile: Profile::Safe,
        conn_max: 1 << 20,
        ..EngineConfig::default()
    }
}

/// An engine holding `n` established NAT connections over 10 real servers.
pub fn loaded(n: u32) -> (Engine, Instant) {
    let mut e = Engine::new(config());
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: VIP,
        port: 80,
    };
    let t0 = Instant::ZERO;
    e.apply(
        t0,
        Command::AddService(ServiceConfig::new(key).scheduler("rr")),
    )
    .unwrap();
    for i in 0..10u8 {
        let rs = IpAddr::V4(Ipv4Addr::new(10, 1, 0, i + 1));
        e.apply(
            t0,
            Command::AddDest(key, DestConfig::new(rs, 80).fwd(ForwardMethod::Masq)),
        )
        .unwrap();
    }
    e.preallocate(false);
    for k in 0..n {
        let c = (
            IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + k / 50_000)),
            (10_000 + k % 50_000) as u16,
        );
        let _ = e.handle_packet(t0, &PacketMeta::tcp(c, (VIP, 80), TcpFlags::SYN, 1, 0));
        let _ = e.handle_packet(t0, &PacketMeta::tcp(c, (VIP, 80), TcpFlags::ACK, 2, 1));
    }
    assert_eq!(e.conn_count(), n as usize);
    (e, Instant::from_secs(1))
}
