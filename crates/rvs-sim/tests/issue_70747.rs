//! Kubernetes #70747 and what kube-proxy's workaround did: before 5.9, `conn_reuse_mode=1`
//! with conntrack drops every SYN that reuses a port still in IPVS's TIME_WAIT, so connects
//! take ≈ 1 s (the issue's ab run: connect median 999 ms); `conn_reuse_mode=0` (PR #71114)
//! removes the stall but sends reused ports to terminating and gone pods (#81775).

mod common;
use common::*;
use rvs_sim::Scenario;

/// One client, 400 short connections per second over the default port range without
/// tcp_tw_reuse: ports come back after the client's 60 s TIME_WAIT, while IPVS still holds
/// its 120 s TIME_WAIT entry. No rollout.
const HEAVY_REUSE: &str = r#"
name = "heavy-reuse"
duration_s = 300
[service]
vip = "10.96.0.10"
replicas = 3
[control_plane]
model = "none"
[[clients]]
address = "10.1.0.1"
rate = 400
connect_timeout_ms = 5000
"#;

#[test]
fn linux_4_19_reuse1_with_conntrack_stalls_one_second() {
    let sc = toml(HEAVY_REUSE);
    let r = &run1(&sc, "linux-4.19-reuse1")[0];
    let t = &tcp(r).total;
    assert_eq!(t.failed, 0, "{t:?}");
    let p50 = t.connect_ok.p50_ms.unwrap();
    assert!((900.0..=1100.0).contains(&p50), "median connect {p50} ms");
    assert!(t.slow * 2 > t.attempted, "most connects ≥ 1 s: {t:?}");
    assert!(r.engine.drops.get("reuse_conntrack").copied().unwrap_or(0) > 0);
}

/// The stall needs conntrack: the same traffic without netfilter tracking the flows is clean
/// (kernel-semantics §2.4.4: before 5.9 the drop needs the conn's NFCT and a conntrack on the
/// packet).
#[test]
fn linux_4_19_reuse1_without_conntrack_does_not_stall() {
    let mut sc = toml(HEAVY_REUSE);
    sc.engine.netfilter_conntrack = Some(false);
    let r = &run1(&sc, "linux-4.19-reuse1")[0];
    let t = &tcp(r).total;
    assert_eq!((t.failed, t.slow), (0, 0), "{t:?}");
}

/// From 5.9 the SYN carries a fresh conntrack and is rescheduled at once.
#[test]
fn linux_5_9_and_later_do_not_stall() {
    let sc = toml(HEAVY_REUSE);
    for p in ["linux-5.9", "linux-5.16", "safe"] {
        let r = &run1(&sc, p)[0];
        let t = &tcp(r).total;
        assert_eq!((t.failed, t.slow), (0, 0), "{p}: {t:?}");
        assert!(t.connect_ok.p99_ms.unwrap() < 10.0, "{p}");
    }
}

/// kube-proxy's workaround on 4.19 (`conn_reuse_mode=0`): no stall, but during a rollout the
/// reused ports follow their old entries to terminating and then gone pods, and the old real
/// servers never drain (#81775).
#[test]
fn linux_4_19_reuse0_no_stall_but_old_pods_get_traffic() {
    let sc = Scenario::incident();
    let r = &run1(&sc, "linux-4.19-reuse0")[0];
    let t = &tcp(r).total;
    assert_eq!(t.slow, 0, "{t:?}");
    assert!(t.to_draining > 1000 && t.to_gone > 1000, "{t:?}");
    assert!(t.failed > 1000, "{t:?}");
    assert_eq!(r.longest_drain.text(), "never");
    let before = phase(tcp(r), "before");
    assert_eq!(before.failed, 0, "nothing before the rollout");
}

/// With 4.19 and mode 1 the rollout itself is clean (only the stall remains).
#[test]
fn linux_4_19_reuse1_rollout_has_no_failures() {
    let sc = Scenario::incident();
    let r = &run1(&sc, "linux-4.19-reuse1")[0];
    let t = &tcp(r).total;
    assert_eq!(t.failed, 0, "{t:?}");
    assert_eq!(t.to_draining, 0);
    assert!(t.slow > t.attempted / 2);
}
