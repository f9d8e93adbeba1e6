//! What a cluster's size costs the Kubernetes driver (issue 13's speed goals), with the real
//! engine: the first programming of N Services × 5 endpoints from a recorded list (JSON
//! lines, parsed as the watch delivers them), and one endpoint change at N Services (the
//! cost must follow what changed, not N). `cargo bench -p rvs-kubernetes --bench sync`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use rvs_control::config::KubernetesSection;
use rvs_core::command::Command;
use rvs_core::{Engine, EngineConfig, Instant as EInstant};
use rvs_kubernetes::store::Event;
use rvs_kubernetes::{Proxier, ProxierConfig};

/// The recorded list: one JSON object per line, Services then EndpointSlices.
fn recording(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let (a, b) = (i / 250, i % 250);
        out += &serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 50), "resourceVersion": format!("{}", 2 * i + 1)},
            "spec": {"clusterIP": format!("10.96.{a}.{b}"), "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
        })
        .to_string();
        out.push('\n');
    }
    for i in 0..n {
        let eps: Vec<_> = (0..5)
            .map(|k| {
                let x = i * 5 + k;
                serde_json::json!({
                    "addresses": [format!("10.{}.{}.{}", 100 + x / 65025, (x / 255) % 255, x % 255 + 1)],
                    "nodeName": format!("node{}", x % 20),
                    "conditions": {"ready": true}
                })
            })
            .collect();
        out += &serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("svc-{i}-abcde"), "namespace": format!("ns-{}", i % 50),
                "resourceVersion": format!("{}", 2 * i + 2),
                "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps
        })
        .to_string();
        out.push('\n');
    }
    out
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default())
}

fn proxier() -> Proxier {
    Proxier::new(ProxierConfig::new(
        &KubernetesSection::default(),
        "node0".into(),
        &[],
    ))
}

/// Parses the recording and feeds it as the two initial lists.
fn feed(p: &mut Proxier, rec: &str) {
    p.on_service(Event::Init);
    p.on_slice(Event::Init);
    for line in rec.lines() {
        if line.contains("\"kind\":\"Service\"") {
            let s: Service = serde_json::from_str(line).expect("service");
            p.on_service(Event::InitApply(s));
        } else {
            let s: EndpointSlice = serde_json::from_str(line).expect("slice");
            p.on_slice(Event::InitApply(s));
        }
    }
    p.on_service(Event::InitDone);
    p.on_slice(Event::InitDone);
}

fn apply(e: &mut Engine, cmds: Vec<Command>) {
    for c in cmds {
        e.apply(EInstant::ZERO, c).expect("accepted");
    }
}

/// A programmed proxier and engine at `n` Services.
fn programmed(n: usize) -> (Proxier, Engine, String) {
    let rec = recording(n);
    let mut p = proxier();
    let mut e = engine();
    feed(&mut p, &rec);
    let r = p.sync(Some(&[]));
    apply(&mut e, r.commands);
    (p, e, rec)
}

/// One endpoint of Service 7 turns terminating, as the watch would deliver it.
fn change(rec: &str, n: usize, round: usize) -> EndpointSlice {
    let line = rec.lines().nth(n + 7).expect("slice of Service 7");
    let mut s: EndpointSlice = serde_json::from_str(line).unwrap();
    s.metadata.resource_version = Some(format!("{}", 10 * n + round));
    let c = s.endpoints[0]
        .conditions
        .get_or_insert_with(Default::default);
    let flip = round % 2 == 1;
    c.ready = Some(!flip);
    c.terminating = Some(flip);
    s
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("kubernetes");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for n in [10_000usize, 50_000] {
        let rec = recording(n);
        // The engine's share of the first programming (the issue's "at most 1 s of engine
        // work" at 10,000 × 5), and the whole: parse, map, diff, apply.
        g.bench_function(
            format!("first programming, engine work, {n} Services x 5"),
            |b| {
                b.iter_batched(
                    || {
                        let mut p = proxier();
                        feed(&mut p, &rec);
                        p.sync(Some(&[])).commands
                    },
                    |cmds| {
                        let mut e = engine();
                        apply(&mut e, cmds);
                        black_box(e)
                    },
                    BatchSize::PerIteration,
                )
            },
        );
        g.bench_function(format!("first programming, all, {n} Services x 5"), |b| {
            b.iter(|| {
                let mut p = proxier();
                let mut e = engine();
                feed(&mut p, &rec);
                let r = p.sync(Some(&[]));
                apply(&mut e, r.commands);
                black_box(e)
            })
        });
    }
    for n in [10_000usize, 50_000] {
        let (mut p, mut e, rec) = programmed(n);
        let mut round = 0usize;
        g.bench_function(format!("one endpoint change, {n} Services"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let s = change(&rec, n, round);
                    let t0 = Instant::now();
                    p.on_slice(Event::Apply(s));
                    let r = p.sync(None);
                    assert_eq!(r.recomputed, 1);
                    assert_eq!(r.commands.len(), 1, "only the changed real server");
                    apply(&mut e, r.commands);
                    total += t0.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(sync, benches);
criterion_main!(sync);
