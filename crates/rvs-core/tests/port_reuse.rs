//! Port reuse and removed real servers through the engine, per profile: the incident of
//! `docs/kernel-6.1-incident.md` and kernel-semantics §2.4–§2.5, and where `safe` departs (issue 2
//! §4).

mod common;
use common::*;
use rvs_core::service::ServiceKey;
use rvs_core::{Answer, Decision, DropReason, EngineConfig, Profile, Synth};

const V: (&str, u16) = ("10.0.0.100", 80);
const RS: [&str; 3] = ["10.0.11.2", "10.0.12.2", "10.0.13.2"];
/// With rr and real servers added rs1, rs2, rs3 (kernel order rs3, rs2, rs1), the first
/// connection goes to rs3 and the second to rs2.
const ON_RS3: (&str, u16) = ("10.0.1.2", 40000);
const ON_RS2: (&str, u16) = ("10.0.1.2", 40002);

/// Three NAT real servers, rr; one finished connection (TIME_WAIT) on rs3 and one on rs2.
fn incident(profile: Profile, mode: i32, nodest: i32, conntrack: bool) -> (Lab, ServiceKey) {
    let mut lab = Lab::with(EngineConfig {
        profile,
        netfilter_conntrack: conntrack,
        ..EngineConfig::default()
    });
    lab.sysctl("conn_reuse_mode", &mode.to_string());
    lab.sysctl("expire_nodest_conn", &nodest.to_string());
    lab.sysctl("conntrack", if conntrack { "1" } else { "0" });
    let k = lab.tcp_service(V.0, V.1, "rr");
    for rs in RS {
        lab.nat_rs(k, rs, 80, 1);
    }
    for c in [ON_RS3, ON_RS2] {
        let rs = lab.connect(c, V).unwrap();
        lab.close_client_first(c, V, rs);
    }
    assert_eq!(lab.states_of(ON_RS2.1), ["TIME_WAIT"]);
    assert_eq!(
        lab.e
            .conns()
            .iter()
            .find(|c| c.cport == ON_RS2.1)
            .unwrap()
            .daddr,
        ip(RS[1])
    );
    (lab, k)
}

fn target(d: &Decision) -> Option<std::net::IpAddr> {
    nat_target(d).map(|t| t.0)
}

/// 6.1 measurement, row `0/0`: with conn_reuse_mode=0 and expire_nodest_conn=0, a reused
/// port's SYN goes to the weight-0 real server (kernel-semantics §2.4.2 last row;
/// kernel-6.1-incident §1).
#[test]
fn mode0_nodest0_sends_reused_syn_to_weight0_server_linux_5_16() {
    let (mut lab, k) = incident(Profile::Linux5_16, 0, 0, true);
    lab.set_weight(k, RS[1], 80, 0);
    lab.advance(1.0);
    let d = lab.tcp(ON_RS2, V, SYN);
    assert_eq!(target(&d), Some(ip(RS[1])));
    assert_eq!(
        lab.states_of(ON_RS2.1),
        ["SYN_RECV"],
        "TIME_WAIT + SYN -> SYN_RECV on the old entry"
    );
    assert_eq!(
        lab.counts(k, RS[1], 80),
        (1, 0),
        "the weight-0 server gains ActiveConn (#99162)"
    );
    // The reused SYN is not a scheduling decision: Conns does not count it (golden README).
    lab.advance(2.1);
    let stats = lab.e.service(&k).unwrap().stats;
    assert_eq!(stats.conns, 2);
}

/// 6.1 measurement, row `0/1`: expire_nodest_conn=1 alone reschedules a SYN whose entry
/// points to a weight-0 server on ≥ 5.16 (c95c07836fa4; kernel-semantics §2.4.4).
#[test]
fn mode0_nodest1_reschedules_on_linux_5_16() {
    let (mut lab, k) = incident(Profile::Linux5_16, 0, 1, true);
    lab.set_weight(k, RS[1], 80, 0);
    let d = lab.tcp(ON_RS2, V, SYN);
    assert!(matches!(target(&d), Some(a) if a != ip(RS[1])), "{d:?}");
    assert_eq!(
        lab.counts(k, RS[1], 80),
        (0, 0),
        "the old TIME_WAIT entry was expired"
    );
}

/// Before 5.16 (and its stable backports) the weight-0 reschedule sat under
/// `conn_reuse_mode != 0`: mode 0 disables it (kernel-semantics §2.4.4, P3).
#[test]
fn mode0_nodest1_sticks_on_linux_5_9_p3() {
    let (mut lab, k) = incident(Profile::Linux5_9, 0, 1, true);
    lab.set_weight(k, RS[1], 80, 0);
    let d = lab.tcp(ON_RS2, V, SYN);
    assert_eq!(target(&d), Some(ip(RS[1])));
}

/// 6.1 measurement, rows `1/x`: mode 1 reschedules a SYN on a TIME_WAIT entry at once; the
/// SYN carries a fresh, unconfirmed conntrack, so nothing is dropped (f0a5e4d7a594;
/// kernel-semantics §2.4.2, §2.4.4).
#[test]
fn mode1_reschedules_time_wait_without_drop_linux_5_9_and_5_16() {
    for p in [Profile::Linux5_9, Profile::Linux5_16] {
        let (mut lab, k) = incident(p, 1, 0, true);
        lab.set_weight(k, RS[1], 80, 0);
        let d = lab.tcp(ON_RS2, V, SYN);
        assert!(
            matches!(target(&d), Some(a) if a != ip(RS[1])),
            "{p}: {d:?}"
        );
        assert_eq!(lab.e.counters().reuse_rescheduled, 1);
        assert_eq!(lab.e.counters().drop_count(DropReason::ReuseConntrack), 0);
    }
}

/// Linux 4.19 with conntrack in use: the reused-port SYN is dropped after the old entry is
/// expired; the client's retransmission a second later is scheduled (the 1 s stall of
/// Kubernetes #70747, kernel-semantics §2.4.4, P1).
#[test]
fn linux_4_19_mode1_with_conntrack_drops_first_syn_p1() {
    let (mut lab, _k) = incident(Profile::Linux4_19, 1, 0, true);
    assert_eq!(
        lab.tcp(ON_RS2, V, SYN),
        Decision::Drop(DropReason::ReuseConntrack)
    );
    assert!(lab.states_of(ON_RS2.1).is_empty(), "old entry expired");
    lab.advance(1.0);
    let d = lab.tcp(ON_RS2, V, SYN);
    assert!(is_forward(&d));
    assert_eq!(lab.states_of(ON_RS2.1), ["SYN_RECV"]);
}

/// Linux 4.19 without netfilter conntrack (or with sysctl conntrack=0): no drop
/// (kernel-semantics §2.4.4).
#[test]
fn linux_4_19_mode1_without_conntrack_reschedules() {
    let (mut lab, _k) = incident(Profile::Linux4_19, 1, 0, false);
    let d = lab.tcp(ON_RS2, V, SYN);
    assert!(is_forward(&d));
    assert_eq!(lab.e.counters().reuse_rescheduled, 1);
}

/// Linux 4.19, mode 0 (kube-proxy's setting on old kernels): sticks to the old real server
/// even with expire_nodest_conn=1 and weight 0 (#81775).
#[test]
fn linux_4_19_mode0_sticks_to_weight0_server_81775() {
    let (mut lab, k) = incident(Profile::Linux4_19, 0, 1, true);
    lab.set_weight(k, RS[1], 80, 0);
    assert_eq!(target(&lab.tcp(ON_RS2, V, SYN)), Some(ip(RS[1])));
}

/// Mode 2 also reschedules FIN_WAIT entries of DR/tunnel connections (kernel-semantics §2.4.3, P5).
#[test]
fn mode2_reschedules_dr_fin_wait_spec_2_4_3() {
    for (mode, rescheduled) in [(1, false), (2, true)] {
        let mut lab = Lab::new(Profile::Linux5_16);
        lab.sysctl("conn_reuse_mode", &mode.to_string());
        let k = lab.tcp_service(V.0, V.1, "rr");
        lab.add_rs(k, RS[0], 80, 1, rvs_core::dest::ForwardMethod::Route);
        let c = ("10.0.1.2", 41000);
        let _ = lab.tcp(c, V, SYN);
        let _ = lab.tcp(c, V, ACK);
        let _ = lab.tcp(c, V, FINACK);
        assert_eq!(lab.states_of(c.1), ["FIN_WAIT"]);
        let _ = lab.tcp(c, V, SYN);
        assert_eq!(
            lab.e.counters().reuse_rescheduled,
            rescheduled as u64,
            "mode {mode}"
        );
    }
}

/// A removed real server with expire_nodest_conn=0: its entries' packets are dropped without
/// refreshing the timer, until the entry expires (kernel-semantics §2.5, P4;
/// kernel-6.1-incident §4).
#[test]
fn removed_server_black_holes_until_expiry_nodest0() {
    for p in [Profile::Linux4_19, Profile::Linux5_9, Profile::Linux5_16] {
        let (mut lab, k) = incident(p, 0, 0, true);
        lab.del_rs(k, RS[1], 80);
        lab.advance(60.0);
        for _ in 0..3 {
            assert_eq!(
                lab.tcp(ON_RS2, V, SYN),
                Decision::Drop(DropReason::DestUnavailable),
                "{p}"
            );
            lab.advance(10.0);
        }
        // TIME_WAIT began at t≈0 and lasts 120 s; the drops did not refresh it.
        lab.advance(31.0);
        let d = lab.tcp(ON_RS2, V, SYN);
        assert!(
            matches!(target(&d), Some(a) if a != ip(RS[1])),
            "{p}: {d:?}"
        );
    }
}

/// ≥ 5.9 with expire_nodest_conn=1: deleting the real server flushes its entries at once
/// (04231e52d355; kernel-semantics §2.5).
#[test]
fn nodest1_flushes_on_delete_linux_5_9() {
    let (mut lab, k) = incident(Profile::Linux5_16, 1, 1, true);
    assert_eq!(lab.e.conn_count(), 2);
    lab.del_rs(k, RS[1], 80);
    assert_eq!(lab.e.conn_count(), 1);
    assert!(is_forward(&lab.tcp(ON_RS2, V, SYN)));
}

/// 4.19 with expire_nodest_conn=1: no flush; the first packet is dropped and expires the
/// entry, the next is scheduled (kernel-semantics §2.5 "Before 5.9").
#[test]
fn nodest1_drops_first_packet_linux_4_19() {
    let (mut lab, k) = incident(Profile::Linux4_19, 1, 1, false);
    lab.del_rs(k, RS[1], 80);
    assert_eq!(lab.e.conn_count(), 2);
    // An established-looking segment (not a SYN) hits the entry.
    assert_eq!(
        lab.tcp(ON_RS2, V, ACK),
        Decision::Drop(DropReason::DestUnavailableExpired)
    );
    assert_eq!(lab.e.conn_count(), 1);
}

/// Re-adding a deleted real server revives it from the trash and its old entries work again
/// (kernel-semantics §1.3, §2.5 nodest=0 rationale).
#[test]
fn trash_revival_restores_flows_spec_1_3() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS[0], 80, 1);
    let c = ("10.0.1.2", 40100);
    lab.connect(c, V).unwrap();
    lab.del_rs(k, RS[0], 80);
    assert_eq!(
        lab.tcp(c, V, PSHACK),
        Decision::Drop(DropReason::DestUnavailable)
    );
    lab.nat_rs(k, RS[0], 80, 1);
    assert_eq!(target(&lab.tcp(c, V, PSHACK)), Some(ip(RS[0])));
    assert_eq!(
        lab.counts(k, RS[0], 80),
        (1, 0),
        "the revived server keeps its counters"
    );
}

// ---- safe: where rvs departs from every kernel, on purpose (README, Profiles) ------------------

/// safe (a): a SYN on a closing entry of a weight-0 server is scheduled afresh in the same
/// call, whatever conn_reuse_mode says. Departs from every kernel with mode 0 and
/// expire_nodest_conn 0.
#[test]
fn safe_reschedules_reused_port_away_from_weight0_departs_from_kernel() {
    for (mode, nodest) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let (mut lab, k) = incident(Profile::Safe, mode, nodest, true);
        lab.set_weight(k, RS[1], 80, 0);
        let d = lab.tcp(ON_RS2, V, SYN);
        assert!(
            matches!(target(&d), Some(a) if a != ip(RS[1])),
            "mode {mode} nodest {nodest}: {d:?}"
        );
    }
}

/// safe (a): a SYN on any closing entry is a new connection, even to a healthy server, and
/// is never dropped (no 1 s stall) even where 4.19 would drop it. Departs from 4.19.
#[test]
fn safe_never_drops_reused_syn_departs_from_4_19() {
    let (mut lab, _k) = incident(Profile::Safe, 1, 0, true);
    let d = lab.tcp(ON_RS3, V, SYN);
    assert!(is_forward(&d));
    assert_eq!(lab.e.counters().reuse_rescheduled, 1);
    assert_eq!(lab.e.counters().drops.iter().sum::<u64>(), 0);
}

/// safe (b): a retransmitted SYN of a handshake in progress to a healthy server stays there.
#[test]
fn safe_syn_retransmit_stays_on_healthy_server() {
    let mut lab = Lab::new(Profile::Safe);
    let k = lab.tcp_service(V.0, V.1, "rr");
    for rs in RS {
        lab.nat_rs(k, rs, 80, 1);
    }
    let c = ("10.0.1.2", 42000);
    let first = target(&lab.tcp(c, V, SYN)).unwrap();
    lab.advance(1.0);
    assert_eq!(target(&lab.tcp(c, V, SYN)), Some(first));
    assert_eq!(lab.e.conn_count(), 1);
}

/// safe (b'): a SYN retransmission whose server went to weight 0 meanwhile is moved.
#[test]
fn safe_syn_retransmit_leaves_weight0_server() {
    let mut lab = Lab::new(Profile::Safe);
    let k = lab.tcp_service(V.0, V.1, "rr");
    for rs in RS {
        lab.nat_rs(k, rs, 80, 1);
    }
    let c = ("10.0.1.2", 42000);
    let first = target(&lab.tcp(c, V, SYN)).unwrap();
    lab.set_weight(k, &first.to_string(), 80, 0);
    let second = target(&lab.tcp(c, V, SYN)).unwrap();
    assert_ne!(first, second);
}

/// safe (c): a packet of an established flow whose server was removed is answered with a RST
/// to the client, a RST goes to the server, and the entry is retired. Departs from every
/// kernel (which drops, or with expire_nodest_conn passes it to the local stack).
#[test]
fn safe_resets_flows_to_removed_server_departs_from_kernel() {
    let mut lab = Lab::new(Profile::Safe);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS[0], 80, 1);
    let c = ("10.0.1.2", 43000);
    lab.connect(c, V).unwrap();
    lab.del_rs(k, RS[0], 80);
    let d = lab.tcp_seq(c, V, PSHACK, 7777, 8888);
    assert_eq!(
        d,
        Decision::Answer(Answer::TcpRst {
            seq: 8888,
            ack: None
        })
    );
    match lab.e.poll_output() {
        Some(Synth::TcpRst { src, dst, seq, .. }) => {
            assert_eq!(src, (ip(c.0), c.1));
            assert_eq!(dst, (ip(RS[0]), 80));
            assert_eq!(seq, 7777);
        }
        other => panic!("expected a reset towards the real server, got {other:?}"),
    }
    assert_eq!(lab.e.conn_count(), 0);
    assert_eq!(lab.e.counters().removed_resets, 1);
}

/// safe (c): a UDP datagram of a flow whose server was removed is rescheduled, not dropped.
#[test]
fn safe_reschedules_udp_of_removed_server_departs_from_kernel() {
    let mut lab = Lab::new(Profile::Safe);
    let k = lab.udp_service(V.0, 53, "rr");
    lab.nat_rs(k, RS[0], 53, 1);
    lab.nat_rs(k, RS[1], 53, 1);
    let c = ("10.0.1.2", 5353);
    let first = target(&lab.udp(c, (V.0, 53))).unwrap();
    lab.del_rs(k, &first.to_string(), 53);
    let second = target(&lab.udp(c, (V.0, 53))).unwrap();
    assert_ne!(first, second);
    assert_eq!(lab.e.counters().nodest_rescheduled, 1);
}

/// safe keeps draining: established flows to a weight-0 server continue (README, Profiles).
#[test]
fn safe_weight0_drains_existing_flows() {
    let mut lab = Lab::new(Profile::Safe);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS[0], 80, 1);
    lab.nat_rs(k, RS[1], 80, 1);
    let c = ("10.0.1.2", 44000);
    let rs = lab.connect(c, V).unwrap();
    lab.set_weight(k, &rs.0.to_string(), 80, 0);
    assert_eq!(nat_target(&lab.tcp(c, V, PSHACK)), Some(rs));
    let other = lab.connect(("10.0.1.2", 44001), V).unwrap();
    assert_ne!(other, rs);
}
