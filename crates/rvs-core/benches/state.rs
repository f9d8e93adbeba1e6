//! Hand-over of the engine's state (issue 14): export and import of a table of one million
//! established TCP connections (the goal: the whole hand-over in at most 100 ms). Run:
//! `cargo bench -p rvs-core --bench state`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Engine, EngineConfig, Instant, PacketMeta, Profile};
use rvs_packet::TcpFlags;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
const N: u32 = 1_000_000;

fn config() -> EngineConfig {
    EngineConfig {
        profile: Profile::Safe,
        conn_max: 1 << 20,
        ..EngineConfig::default()
    }
}

/// An engine holding `n` established NAT connections over 10 real servers.
fn loaded(n: u32) -> (Engine, Instant) {
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

fn bench(c: &mut Criterion) {
    let (mut e, now) = loaded(N);
    let bytes = e.export_state(now);
    eprintln!(
        "state of {} connections: {} bytes ({:.1} per entry)",
        N,
        bytes.len(),
        bytes.len() as f64 / N as f64
    );
    let mut g = c.benchmark_group("handover_1m");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("export", |b| b.iter(|| black_box(e.export_state(now))));
    g.bench_function("import", |b| {
        b.iter_with_large_drop(|| Engine::import_state(config(), now, &bytes).unwrap())
    });
    g.bench_function("export_and_import", |b| {
        b.iter_with_large_drop(|| {
            let s = e.export_state(now);
            Engine::import_state(config(), now, &s).unwrap()
        })
    });
    // The whole hand-over as the daemon does it: export, through a Unix socket, import.
    g.bench_function("export_socket_import", |b| {
        b.iter_with_large_drop(|| {
            use std::io::{Read, Write};
            let s = e.export_state(now);
            let len = s.len();
            let (mut tx, mut rx) = std::os::unix::net::UnixStream::pair().unwrap();
            let w = std::thread::spawn(move || tx.write_all(&s).unwrap());
            let mut got = vec![0u8; len];
            rx.read_exact(&mut got).unwrap();
            w.join().unwrap();
            Engine::import_state(config(), now, &got).unwrap()
        })
    });
    g.bench_function("checksum", |b| {
        b.iter(|| black_box(rvs_core::checksum(&bytes)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
