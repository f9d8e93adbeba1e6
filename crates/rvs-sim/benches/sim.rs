//! Simulator throughput: simulated connections per second of wall time, with the real engine
//! and, as the baseline in the same run, with the engine replaced by a stateless stub (so the
//! difference is the engine's share), on two traffic shapes:
//!
//! * `r1`: a rollout test bed that forces port reuse: one client address, 1,024 ports,
//!   20,000 short connections per second, the server closing first; the IPVS table stays
//!   at about a thousand entries;
//! * `fleet`: 100 client pods × 1,000 connections per second over the default port range
//!   with tcp_tw_reuse; the IPVS table grows to millions of entries.
//!
//! Both run a rolling restart of 3 replicas under kube-proxy (the built-in `incident`'s pods
//! and control plane). After criterion's groups, `main` times one 10-million-connection run of
//! each shape (set `RVS_SIM_10M=0` to skip).

use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use rvs_sim::scenario::CloseSide;
use rvs_sim::{RunOptions, Scenario, profile, sim};

/// A shape lasting `secs` of virtual time.
fn shape(name: &str, secs: f64) -> Scenario {
    let mut sc = Scenario::incident();
    sc.duration_s = secs;
    sc.phases.clear();
    if let Some(r) = sc.rollout.as_mut() {
        r.at_s = secs / 3.0;
    }
    let c = &mut sc.clients[0];
    c.tcp_tw_reuse = 1;
    match name {
        "r1" => {
            c.count = 1;
            c.rate = Some(20_000.0);
            c.port_range = [40000, 41023];
            c.close = CloseSide::Server;
        }
        _ => {
            c.count = 100;
            c.rate = Some(1_000.0);
        }
    }
    sc
}

/// Virtual seconds for about `n` connections.
fn secs_for(name: &str, n: f64) -> f64 {
    n / if name == "r1" { 20_000.0 } else { 100_000.0 }
}

fn run(sc: &Scenario, prof: &str, stub: bool) -> u64 {
    let p = profile::select(sc, &[prof.to_string()]).expect("profile");
    let r = sim::run(
        sc,
        &p[0],
        None,
        &RunOptions {
            stub_engine: stub,
            ..RunOptions::default()
        },
        None,
    );
    r.tcp.map(|t| t.total.attempted).unwrap_or(0)
}

fn connections(c: &mut Criterion) {
    let mut g = c.benchmark_group("connections");
    g.sample_size(10);
    for name in ["r1", "fleet"] {
        let sc = shape(name, secs_for(name, 300_000.0));
        let n = run(&sc, "linux-5.16", true);
        g.throughput(Throughput::Elements(n));
        for (label, prof, stub) in [
            ("stub", "linux-5.16", true),
            ("safe", "safe", false),
            ("linux-5.16", "linux-5.16", false),
        ] {
            g.bench_with_input(BenchmarkId::new(name, label), &sc, |b, sc| {
                b.iter(|| run(sc, prof, stub))
            });
        }
    }
    g.finish();
    let mut g = c.benchmark_group("scenarios");
    g.sample_size(10);
    let inc = Scenario::incident();
    for prof in ["safe", "linux-4.19-reuse0", "linux-4.19-reuse1"] {
        let n = run(&inc, prof, false);
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("incident", prof), &inc, |b, sc| {
            b.iter(|| run(sc, prof, false))
        });
    }
    let vm = Scenario::vm_incident();
    let p = profile::select(&vm, &[]).expect("profiles");
    g.throughput(Throughput::Elements(1));
    g.bench_function("vm-incident/all-48-runs", |b| {
        b.iter(|| rvs_sim::simulate(&vm, &p, &RunOptions::default(), 1, false))
    });
    g.finish();
}

/// One 10-million-connection run per shape, timed once.
fn ten_million() {
    println!();
    println!("one run of ~10M connections per shape (one thread):");
    for name in ["r1", "fleet"] {
        let sc = shape(name, secs_for(name, 10_000_000.0));
        for (label, prof, stub) in [
            ("stub", "linux-5.16", true),
            ("linux-5.16", "linux-5.16", false),
        ] {
            let t = Instant::now();
            let n = run(&sc, prof, stub);
            let dt = t.elapsed().as_secs_f64();
            println!(
                "  {name:<5} {label:<10} {n:>9} connections in {dt:6.2} s = {:>9.0} connections/s",
                n as f64 / dt
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    connections(&mut c);
    c.final_summary();
    if std::env::var("RVS_SIM_10M").as_deref() != Ok("0")
        && !std::env::args().any(|a| a == "--list")
    {
        ten_million();
    }
}
