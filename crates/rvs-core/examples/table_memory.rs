//! Measures the connection table's memory per entry at 1M established IPv4 TCP flows
//! (issue 2): heap bytes of the slab, the three indexes and the expiry wheel, divided by the
//! number of entries. Run: `cargo run --release -p rvs-core --example table_memory`.

use std::net::{IpAddr, Ipv4Addr};

use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Decision, Engine, EngineConfig, Instant, PacketMeta, Xmit};
use rvs_packet::TcpFlags;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let vip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    let mut e = Engine::new(EngineConfig {
        conn_max: n,
        ..EngineConfig::default()
    });
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
    let empty = e.table_heap_bytes();
    e.preallocate(false);
    let now = Instant::from_secs(1);
    for i in 0..n {
        let c = (
            IpAddr::V4(Ipv4Addr::from(0xac10_0000u32 + i / 50_000)),
            10_000 + (i % 50_000) as u16,
        );
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
    let bytes = e.table_heap_bytes();
    println!("entries: {}", e.conn_count());
    println!(
        "entry struct (IPv4): {} bytes",
        std::mem::size_of::<rvs_core::conn::Conn<rvs_core::addr::V4>>()
    );
    println!(
        "table heap: {} bytes ({:.1} MiB); empty table: {} bytes",
        bytes,
        bytes as f64 / 1048576.0,
        empty
    );
    println!(
        "per entry: {:.1} bytes (slab, client and server indexes, template index, wheel)",
        (bytes - empty) as f64 / e.conn_count() as f64
    );
}
