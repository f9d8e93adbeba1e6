//! Hand-over of the engine's state (issue 14): export and import of a table of one million
//! established TCP connections (the goal: the whole hand-over in at most 100 ms). Run:
//! `cargo bench -p rvs-core --bench state`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rvs_core::Engine;

const N: u32 = 1_000_000;

#[path = "common/loaded.rs"]
mod loaded;
use loaded::{config, loaded};

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
