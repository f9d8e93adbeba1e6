//! `safe` shows zero failures and zero connects of 1 s or more in every scenario where the
//! kernel profiles fail.

mod common;
use common::*;
use rvs_sim::Scenario;

fn scenario_file(name: &str) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Scenario::from_file(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_clean(label: &str, c: &rvs_sim::stats::CountersOut) {
    assert!(c.attempted > 0, "{label}: nothing ran");
    assert_eq!(c.failed, 0, "{label}: {c:?}");
    assert_eq!(c.slow, 0, "{label}: {c:?}");
    assert_eq!(c.to_gone, 0, "{label}: {c:?}");
}

#[test]
fn safe_incident() {
    let r = &run1(&Scenario::incident(), "safe")[0];
    assert_clean("incident", &tcp(r).total);
    assert_eq!(tcp(r).total.to_draining, 0);
    assert_eq!(r.longest_drain.unfinished, 0, "every old server drained");
}

#[test]
fn safe_vm_incident_every_row() {
    let rs = run1(&Scenario::vm_incident(), "safe");
    assert_eq!(rs.len(), 12);
    for r in &rs {
        let label = r.variant.clone().unwrap();
        assert_clean(&label, &tcp(r).total);
        assert_eq!(phase(tcp(r), "main").pkts_to_draining, 0, "{label}");
    }
}

#[test]
fn safe_rollout_with_udp() {
    let r = &run1(&scenario_file("dns-rollout"), "safe")[0];
    assert_clean("dns-rollout tcp", &tcp(r).total);
    assert_clean("dns-rollout udp", &udp(r).total);
}

#[test]
fn safe_lifecycle_draining() {
    let r = &run1(&scenario_file("lifecycle"), "safe")[0];
    assert_clean("lifecycle", &tcp(r).total);
    // Lifecycle draining deletes a server when its pod is gone: well under kube-proxy's
    // connection-count drain.
    let d = r.longest_drain.longest_finished_s.unwrap();
    assert!(d < 15.0, "{d}");
}

/// The same scenarios fail on the kernel profiles kube-proxy ran with before 5.9, so the
/// checks above are not vacuous.
#[test]
fn the_kernels_do_fail_there() {
    let r = &run1(&scenario_file("dns-rollout"), "linux-4.19-reuse0")[0];
    assert!(tcp(r).total.failed > 0);
    assert!(
        udp(r).total.slow > 0,
        "one lost query per flow of a deleted server"
    );
}
