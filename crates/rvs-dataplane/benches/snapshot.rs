//! Crash-recovery snapshots (issue 14, `rvs_dataplane::recovery`): what the packet thread
//! pauses for. Three ways to take a snapshot of a table of N established connections:
//!
//! * `fork_pause`: the design in use: the packet thread forks (this is its whole pause);
//!   the child exports and writes (timed separately as `fork_whole`, the thread does not
//!   wait for it);
//! * `inline_export`: the alternative: the packet thread exports the engine itself and
//!   hands the bytes to a writer (its pause is the export).
//!
//! Both in the same run, as ratios. Run: `cargo bench -p rvs-dataplane --bench snapshot`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rvs_dataplane::sys::{self, ChildState};

#[path = "../../rvs-core/benches/common/loaded.rs"]
mod loaded;

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("rvs-snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rvs.sock.engine");
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for n in [10_000u32, 100_000, 1_000_000] {
        let (mut e, now) = loaded::loaded(n);
        g.bench_function(BenchmarkId::new("fork_pause", n), |b| {
            b.iter_custom(|iters| {
                let mut paused = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = std::time::Instant::now();
                    let pid = sys::fork_run(30, || 0).unwrap();
                    paused += t0.elapsed();
                    assert_eq!(sys::wait_child(pid, true).unwrap().0, ChildState::Exited(0));
                }
                paused
            })
        });
        g.bench_function(BenchmarkId::new("fork_whole", n), |b| {
            b.iter(|| {
                let p = &path;
                let e = &mut e;
                let pid = sys::fork_run(30, || {
                    let s = e.export_state(now);
                    let bytes = rvs_dataplane::recovery::encode("bench", 1, 1, "rvs0", &s);
                    i32::from(std::fs::write(p, bytes).is_err())
                })
                .unwrap();
                assert_eq!(sys::wait_child(pid, true).unwrap().0, ChildState::Exited(0));
            })
        });
        g.bench_function(BenchmarkId::new("inline_export", n), |b| {
            b.iter(|| black_box(e.export_state(now)))
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
