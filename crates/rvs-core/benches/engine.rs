//! Engine benchmarks (issue 2): an established flow's lookup + state update, a new flow
//! (schedule + insert), expiry of 1M entries. Run: `cargo bench -p rvs-core --bench engine`.
//! The table-memory figure is printed by `cargo run --release -p rvs-core --example table_memory`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant as WallInstant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Engine, EngineConfig, Instant, PacketMeta, Profile};
use rvs_packet::TcpFlags;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

fn engine(servers: u8, conn_max: u32) -> Engine {
    let mut e = Engine::new(EngineConfig {
        profile: Profile::Safe,
        conn_max,
        ..EngineConfig::default()
    });
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: VIP,
        port: 80,
    };
    e.apply(
        Instant::ZERO,
        Command::AddService(ServiceConfig::new(key).scheduler("rr")),
    )
    .unwrap();
    let ukey = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: VIP,
        port: 53,
    };
    e.apply(
        Instant::ZERO,
        Command::AddService(ServiceConfig::new(ukey).scheduler("rr")),
    )
    .unwrap();
    for i in 0..servers {
        let rs = IpAddr::V4(Ipv4Addr::new(10, 1, 0, i + 1));
        for (k, port) in [(key, 80), (ukey, 53)] {
            e.apply(
                Instant::ZERO,
                Command::AddDest(k, DestConfig::new(rs, port).fwd(ForwardMethod::Masq)),
            )
            .unwrap();
        }
    }
    e.preallocate(false);
    e
}

/// The n-th client tuple: spread over addresses and ports like real clients.
fn client(n: u32) -> (IpAddr, u16) {
    let host = n / 50_000;
    let port = 10_000 + (n % 50_000) as u16;
    (
        IpAddr::V4(Ipv4Addr::new(
            172,
            16 + (host >> 16) as u8,
            (host >> 8) as u8,
            host as u8,
        )),
        port,
    )
}

/// `n` established TCP flows (SYN, SYN-ACK, ACK).
fn established(e: &mut Engine, n: u32) {
    let now = Instant::from_secs(1);
    for i in 0..n {
        let c = client(i);
        let d = e.handle_packet(now, &PacketMeta::tcp(c, (VIP, 80), TcpFlags::SYN, 1, 0));
        let rvs_core::Decision::Forward(f) = d else {
            panic!("{d:?}")
        };
        let rvs_core::Xmit::Nat { dst: Some(rs), .. } = f.xmit else {
            panic!()
        };
        let _ = e.handle_packet(
            now,
            &PacketMeta::tcp(rs, c, TcpFlags::SYN | TcpFlags::ACK, 1, 2),
        );
        let _ = e.handle_packet(now, &PacketMeta::tcp(c, (VIP, 80), TcpFlags::ACK, 2, 2));
    }
}

fn bench_established(c: &mut Criterion) {
    let mut g = c.benchmark_group("established_lookup_update");
    for flows in [1_000u32, 100_000, 1_000_000] {
        let mut e = engine(10, 2_000_000);
        established(&mut e, flows);
        // Packets of random established flows, ACK in, state ES -> ES, timer refreshed.
        let pkts: Vec<PacketMeta> = (0..4096u32)
            .map(|i| {
                let n = (i.wrapping_mul(2_654_435_761)) % flows;
                PacketMeta::tcp(client(n), (VIP, 80), TcpFlags::ACK | TcpFlags::PSH, 2, 2)
                    .with_payload(100)
            })
            .collect();
        let mut i = 0usize;
        let now = Instant::from_secs(2);
        g.bench_with_input(BenchmarkId::from_parameter(flows), &flows, |b, _| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(e.handle_packet(now, &pkts[i]))
            })
        });
    }
    g.finish();
}

/// The baseline for `established_lookup_update`, in the same run: a plain `HashMap` from the
/// client tuple to a small per-flow record, looked up and updated (a counter and a deadline),
/// at the same table sizes and with the same access pattern.
fn bench_baseline(c: &mut Criterion) {
    use std::collections::HashMap;
    let mut g = c.benchmark_group("baseline_hashmap_lookup_update");
    for flows in [1_000u32, 100_000, 1_000_000] {
        let mut m: HashMap<(IpAddr, u16, IpAddr, u16), (u64, u64)> =
            HashMap::with_capacity(flows as usize);
        for n in 0..flows {
            let c = client(n);
            m.insert((c.0, c.1, VIP, 80), (0, 0));
        }
        let keys: Vec<_> = (0..4096u32)
            .map(|i| {
                let c = client((i.wrapping_mul(2_654_435_761)) % flows);
                (c.0, c.1, VIP, 80u16)
            })
            .collect();
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(flows), &flows, |b, _| {
            b.iter(|| {
                i = (i + 1) & 4095;
                if let Some(e) = m.get_mut(&keys[i]) {
                    e.0 += 1;
                    e.1 = black_box(e.1 + 900);
                }
            })
        });
    }
    g.finish();
}

fn bench_new_flow(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_flow_schedule_insert");
    for servers in [10u8, 100] {
        g.bench_with_input(
            BenchmarkId::new("rr_servers", servers),
            &servers,
            |b, &servers| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut done = 0u64;
                    while done < iters {
                        let batch = (iters - done).min(500_000);
                        let mut e = engine(servers, 1_000_000);
                        let pkts: Vec<PacketMeta> = (0..batch as u32)
                            .map(|n| PacketMeta::tcp(client(n), (VIP, 80), TcpFlags::SYN, 1, 0))
                            .collect();
                        let now = Instant::from_secs(1);
                        let t = WallInstant::now();
                        for p in &pkts {
                            let _ = black_box(e.handle_packet(now, p));
                        }
                        total += t.elapsed();
                        done += batch;
                    }
                    total
                })
            },
        );
    }
    g.finish();
}

fn bench_expiry(c: &mut Criterion) {
    let mut g = c.benchmark_group("expiry");
    g.sample_size(10);
    g.bench_function("expire_1M_udp_entries", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut e = engine(10, 1_100_000);
                let now = Instant::from_secs(1);
                for n in 0..1_000_000u32 {
                    let _ = e.handle_packet(now, &PacketMeta::udp(client(n), (VIP, 53), 20));
                }
                assert_eq!(e.conn_count(), 1_000_000);
                let t = WallInstant::now();
                e.handle_timeout(Instant::from_secs(302));
                total += t.elapsed();
                assert_eq!(e.conn_count(), 0);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_baseline,
    bench_established,
    bench_new_flow,
    bench_expiry
);
criterion_main!(benches);
