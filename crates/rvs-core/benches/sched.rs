//! Scheduler costs: one `schedule()` call for every scheduler with 10, 100 and 1000 real
//! servers, and Maglev table builds (M = 65537 and the kernel's 4093).
//!
//! `cargo bench -p rvs-core --bench sched -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rvs_core::addr::fold;
use rvs_core::dest::{Dest, DestArena, DestConfig, DestId};
use rvs_core::rng::SplitMix64;
use rvs_core::sched::{Dests, MaglevConfig, MaglevTable, NAMES, SchedInput, SchedOptions, by_name};
use rvs_core::service::{ServiceFlags, ServiceId};
use rvs_core::time::Instant;

struct Svc {
    arena: DestArena,
    order: Vec<DestId>,
}

/// `n` servers with weights 1..=5 and a spread of connection counts, in kernel order.
fn service(n: usize) -> Svc {
    let mut arena = DestArena::default();
    let mut order = Vec::new();
    let mut rng = SplitMix64::new(n as u64);
    for i in 0..n {
        let w = 1 + (rng.next_u64() % 5) as u32;
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32 + 1));
        let key = rvs_core::service::ServiceKey::Fwmark { v6: false, mark: 1 };
        let mut d = Dest::new(ServiceId(0), key, DestConfig::new(addr, 80).weight(w));
        d.activeconns = (rng.next_u64() % 50) as u32;
        d.inactconns = (rng.next_u64() % 500) as u32;
        let id = arena.insert(d);
        order.insert(0, id);
    }
    Svc { arena, order }
}

fn inputs() -> Vec<SchedInput> {
    (0..256u32)
        .map(|i| SchedInput {
            now: Instant::from_secs(10),
            protocol: 6,
            saddr: IpAddr::V4(Ipv4Addr::from(0xac10_0000 + i * 37)),
            sport: 40000 + i as u16,
            daddr: IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i)),
            dport: 80,
            flags: ServiceFlags::default(),
            lblc_expiration: 86_400,
            lblcr_expiration: 86_400,
        })
        .collect()
}

fn picks(c: &mut Criterion) {
    let inputs = inputs();
    for n in [10usize, 100, 1000] {
        let svc = service(n);
        let mut g = c.benchmark_group(format!("pick/{n}"));
        g.throughput(Throughput::Elements(1));
        for name in NAMES {
            let mut s = by_name(name, &SchedOptions::default()).unwrap();
            let dests = Dests {
                order: &svc.order,
                arena: &svc.arena,
            };
            s.init(dests);
            let mut rng = SplitMix64::new(7);
            // Warm the lblc/lblcr caches for the 256 destination addresses.
            for inp in &inputs {
                s.schedule(inp, dests, &mut rng);
            }
            let mut k = 0usize;
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    k = (k + 1) & 255;
                    black_box(s.schedule(black_box(&inputs[k]), dests, &mut rng))
                })
            });
        }
        g.finish();
    }
}

fn servers(n: usize) -> Vec<(u32, u16, u32)> {
    (0..n)
        .map(|i| {
            let a: IpAddr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32 + 1));
            (fold(a), 80, 1)
        })
        .collect()
}

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build");
    for (m, n) in [
        (65537u32, 1000usize),
        (65537, 100),
        (4093, 1000),
        (4093, 100),
    ] {
        let cfg = MaglevConfig {
            table_size: m,
            seed: None,
        };
        let list = servers(n);
        g.bench_function(BenchmarkId::from_parameter(format!("M{m}/N{n}")), |b| {
            b.iter(|| MaglevTable::build(black_box(&cfg), black_box(&list)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, maglev_build, picks);
criterion_main!(benches);
