//! UDP and SCTP through the engine (kernel-semantics §3.2, §3.3), one-packet scheduling (P19).

mod common;
use common::*;
use rvs_core::command::{Command, Timeouts};
use rvs_core::service::{Protocol, ServiceConfig, ServiceFlags, ServiceKey};
use rvs_core::{PacketMeta, Profile};
use rvs_packet::sctp_chunk as ch;

/// UDP entries are never active, live 300 s from the last packet of either direction, and a
/// reply assures a template (kernel-semantics §3.2, §1.6, P7).
#[test]
fn udp_is_inactive_and_lives_300s_spec_3_2() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.udp_service("10.0.0.100", 53, "rr");
    lab.nat_rs(k, "10.0.11.2", 53, 1);
    let c = ("10.0.1.2", 5000);
    let d = lab.udp(c, ("10.0.0.100", 53));
    assert_eq!(nat_target(&d), Some((ip("10.0.11.2"), 53)));
    assert_eq!(lab.counts(k, "10.0.11.2", 53), (0, 1));
    assert_eq!(lab.states_of(c.1), ["UDP"]);
    lab.advance(200.0);
    let r = lab.udp(("10.0.11.2", 53), c);
    assert!(is_forward(&r));
    assert_eq!(lab.e.conns()[0].expires_ms, 300_000);
    lab.cmd(Command::SetTimeouts(Timeouts {
        tcp: 0,
        tcpfin: 0,
        udp: 20,
    }));
    let _ = lab.udp(c, ("10.0.0.100", 53));
    assert_eq!(lab.e.conns()[0].expires_ms, 20_000);
}

/// UDP flows are never rescheduled by port reuse: a steady source port sticks to its server,
/// even at weight 0 (P7; Kubernetes #71514, #76664).
#[test]
fn udp_sticks_to_weight0_server_in_kernel_profiles_p7() {
    let mut lab = Lab::new(Profile::Linux5_16);
    lab.sysctl("expire_nodest_conn", "1");
    let k = lab.udp_service("10.0.0.100", 53, "rr");
    lab.nat_rs(k, "10.0.11.2", 53, 1);
    lab.nat_rs(k, "10.0.12.2", 53, 1);
    let c = ("10.0.1.2", 5000);
    let first = nat_target(&lab.udp(c, ("10.0.0.100", 53))).unwrap();
    lab.set_weight(k, &first.0.to_string(), 53, 0);
    assert_eq!(nat_target(&lab.udp(c, ("10.0.0.100", 53))), Some(first));
}

/// One-packet scheduling: every datagram is scheduled on its own, counted as a connection,
/// and leaves no entry (kernel-semantics §1.5 ONE_PACKET, P19).
#[test]
fn one_packet_scheduling_p19() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let key = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip("10.0.0.103"),
        port: 5000,
    };
    lab.cmd(Command::AddService(
        ServiceConfig::new(key)
            .scheduler("rr")
            .flags(ServiceFlags::ONEPACKET),
    ));
    lab.nat_rs(key, "10.0.11.2", 5000, 1);
    lab.nat_rs(key, "10.0.12.2", 5000, 1);
    let mut seen = vec![];
    for _ in 0..4 {
        seen.push(
            nat_target(&lab.udp(("10.0.1.2", 6000), ("10.0.0.103", 5000)))
                .unwrap()
                .0,
        );
    }
    assert_eq!(lab.e.conn_count(), 0);
    assert_ne!(
        seen[0], seen[1],
        "each datagram is scheduled (rr alternates)"
    );
    lab.advance(2.1);
    assert_eq!(lab.e.service(&key).unwrap().stats.conns, 4);
}

/// SCTP: INIT creates, the association reaches ESTABLISHED (active) through the INPUT and
/// OUTPUT tables, SHUTDOWN moves it on, ABORT closes it (kernel-semantics §3.3.3).
#[test]
fn sctp_association_spec_3_3() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let key = ServiceKey::Addr {
        proto: Protocol::Sctp,
        addr: ip("10.0.0.100"),
        port: 3868,
    };
    lab.cmd(Command::AddService(ServiceConfig::new(key).scheduler("rr")));
    lab.nat_rs(key, "10.0.11.2", 3868, 1);
    let c = (ip("10.0.1.2"), 40000);
    let v = (ip("10.0.0.100"), 3868);
    let rs = (ip("10.0.11.2"), 3868);
    let send = |lab: &mut Lab, from, to, chunk| {
        lab.e
            .handle_packet(lab.now, &PacketMeta::sctp(from, to, chunk))
    };
    assert!(is_forward(&send(&mut lab, c, v, ch::INIT)));
    assert_eq!(lab.states_of(40000), ["INIT1"]);
    let _ = send(&mut lab, rs, c, ch::INIT_ACK);
    assert_eq!(lab.states_of(40000), ["C-SENT"]);
    let _ = send(&mut lab, c, v, ch::COOKIE_ECHO);
    assert_eq!(lab.states_of(40000), ["C-REPLIED"]);
    let _ = send(&mut lab, rs, c, ch::COOKIE_ACK);
    assert_eq!(lab.states_of(40000), ["ESTABLISHED"]);
    assert_eq!(lab.counts(key, "10.0.11.2", 3868), (1, 0));
    let _ = send(&mut lab, c, v, ch::SHUTDOWN);
    assert_eq!(lab.states_of(40000), ["S-RECEIVED"]);
    assert_eq!(lab.counts(key, "10.0.11.2", 3868), (0, 1));
    let _ = send(&mut lab, c, v, ch::ABORT);
    assert_eq!(lab.states_of(40000), ["CLOSED"]);
    // A non-INIT chunk of an unknown association does not create one (kernel-semantics §2.6.2).
    assert!(!is_forward(&send(
        &mut lab,
        (ip("10.0.1.9"), 1),
        v,
        ch::DATA
    )));
}
