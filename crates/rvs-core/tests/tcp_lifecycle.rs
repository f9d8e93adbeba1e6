//! TCP through the engine: state tables applied to real packet sequences (kernel-semantics §3.1),
//! the active/inactive counters (kernel-semantics §1.6), timeouts and expiry
//! (kernel-semantics §2.10), no-destination and no-connection handling (kernel-semantics §2.6).

mod common;
use common::*;
use rvs_core::dest::ForwardMethod;
use rvs_core::{Answer, Decision, DropReason, Profile, Xmit};

const C: (&str, u16) = ("10.0.1.2", 40000);
const V: (&str, u16) = ("10.0.0.100", 80);
const RS1: &str = "10.0.11.2";

/// NAT, client closes first: NONE→SYN_RECV→ESTABLISHED→CLOSE_WAIT→TIME_WAIT, with the
/// counters moving active→inactive, and the entry gone 120 s after the last packet
/// (kernel-semantics §3.1.3 worked example, §1.6, §3.1.1 timeouts).
#[test]
fn nat_client_close_lifecycle_spec_3_1_3_and_1_6() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    let d = lab.tcp(C, V, SYN);
    assert_eq!(nat_target(&d), Some((ip(RS1), 80)));
    assert!(matches!(d, Decision::Forward(f) if f.new_conn));
    assert_eq!(lab.states_of(C.1), ["SYN_RECV"]);
    assert_eq!(lab.counts(k, RS1, 80), (1, 0), "SYN_RECV counts as active");
    let r = lab.tcp((RS1, 80), C, SYNACK);
    assert!(
        matches!(r, Decision::Forward(f) if f.xmit == Xmit::Nat { src: Some((ip(V.0), 80)), dst: None })
    );
    let _ = lab.tcp(C, V, ACK);
    assert_eq!(lab.states_of(C.1), ["ESTABLISHED"]);
    let _ = lab.tcp(C, V, FINACK);
    assert_eq!(lab.states_of(C.1), ["CLOSE_WAIT"]);
    assert_eq!(lab.counts(k, RS1, 80), (0, 1));
    let _ = lab.tcp((RS1, 80), C, FINACK);
    assert_eq!(lab.states_of(C.1), ["TIME_WAIT"]);
    let _ = lab.tcp(C, V, ACK);
    let tw = lab.e.conns().into_iter().next().unwrap();
    assert_eq!(tw.expires_ms, 120_000);
    lab.advance(119.9);
    assert_eq!(lab.e.conn_count(), 1);
    lab.advance(0.2);
    assert_eq!(lab.e.conn_count(), 0);
    assert_eq!(lab.counts(k, RS1, 80), (0, 0));
}

/// Server closes first: ESTABLISHED→FIN_WAIT→TIME_WAIT (kernel-semantics §3.1.3 worked example).
#[test]
fn nat_server_close_spec_3_1_3() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    let rs = lab.connect(C, V).unwrap();
    let _ = lab.tcp((RS1, 80), C, FINACK);
    assert_eq!(lab.states_of(C.1), ["FIN_WAIT"]);
    let _ = lab.tcp(C, V, ACK);
    assert_eq!(lab.states_of(C.1), ["FIN_WAIT"]);
    let _ = lab.tcp(C, V, FINACK);
    assert_eq!(lab.states_of(C.1), ["TIME_WAIT"]);
    assert_eq!(rs.0, ip(RS1));
}

/// Direct routing: replies never pass, the INPUT_ONLY table ends in FIN_WAIT, never
/// TIME_WAIT (kernel-semantics §3.1.3, pitfall P5).
#[test]
fn dr_ends_in_fin_wait_spec_3_1_3_p5() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.add_rs(k, RS1, 80, 1, ForwardMethod::Route);
    let d = lab.tcp(C, V, SYN);
    assert!(matches!(d, Decision::Forward(f) if f.xmit == Xmit::DirectRoute { dst: ip(RS1) }));
    let _ = lab.tcp(C, V, ACK);
    assert_eq!(lab.states_of(C.1), ["ESTABLISHED"]);
    let _ = lab.tcp(C, V, FINACK);
    assert_eq!(lab.states_of(C.1), ["FIN_WAIT"]);
    let _ = lab.tcp(C, V, ACK);
    assert_eq!(lab.states_of(C.1), ["FIN_WAIT"]);
}

/// A segment with none of SYN/FIN/ACK/RST forces CLOSE (10 s) (kernel-semantics §3.1.2, P6).
#[test]
fn flagless_segment_closes_spec_3_1_2_p6() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    lab.connect(C, V).unwrap();
    let _ = lab.tcp(C, V, rvs_packet::TcpFlags::PSH);
    assert_eq!(lab.states_of(C.1), ["CLOSE"]);
    assert_eq!(lab.e.conns()[0].expires_ms, 10_000);
}

/// A client RST during the handshake leaves SYN_RECV (INPUT table); in ESTABLISHED it closes
/// (kernel-semantics §3.1.3).
#[test]
fn rst_in_syn_recv_is_ignored_spec_3_1_3() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    let _ = lab.tcp(C, V, SYN);
    let _ = lab.tcp(C, V, RST);
    assert_eq!(lab.states_of(C.1), ["SYN_RECV"]);
    let _ = lab.tcp(C, V, ACK);
    let _ = lab.tcp(C, V, RST);
    assert_eq!(lab.states_of(C.1), ["CLOSE"]);
}

/// Every packet refreshes the timer with the current state's timeout (kernel-semantics §2.7 step 5,
/// §3).
#[test]
fn packets_refresh_the_timer_spec_2_7() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    lab.connect(C, V).unwrap();
    for _ in 0..5 {
        lab.advance(800.0);
        let d = lab.tcp(C, V, PSHACK);
        assert!(is_forward(&d));
    }
    assert_eq!(lab.states_of(C.1), ["ESTABLISHED"]);
    lab.advance(899.0);
    assert_eq!(lab.e.conn_count(), 1);
    lab.advance(2.0);
    assert_eq!(lab.e.conn_count(), 0);
}

/// `ipvsadm --set` changes the ESTABLISHED timeout for later packets (kernel-semantics §1.7, §8.7).
#[test]
fn set_tcp_timeout_applies_on_next_packet_spec_8_7() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    lab.connect(C, V).unwrap();
    assert_eq!(lab.e.conns()[0].expires_ms, 900_000);
    lab.cmd(rvs_core::command::Command::SetTimeouts(
        rvs_core::command::Timeouts {
            tcp: 600,
            tcpfin: 60,
            udp: 120,
        },
    ));
    assert_eq!(
        lab.e.conns()[0].expires_ms,
        900_000,
        "existing deadline unchanged"
    );
    let _ = lab.tcp(C, V, PSHACK);
    assert_eq!(lab.e.conns()[0].expires_ms, 600_000);
}

/// No real server can take the connection (all weight 0): ICMP port unreachable
/// (kernel-semantics §2.6.4, P21); no service at all: not ours.
#[test]
fn no_destination_answers_port_unreachable_spec_2_6_4() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 0);
    assert_eq!(
        lab.tcp(C, V, SYN),
        Decision::Answer(Answer::IcmpPortUnreachable)
    );
    assert_eq!(lab.e.conn_count(), 0);
    assert_eq!(lab.tcp(C, ("10.0.0.100", 22), SYN), Decision::Pass);
}

/// A non-SYN segment of an unknown flow to a service goes to the director's local stack,
/// which resets it (kernel-semantics §2.6.2, P22); with `sloppy_tcp` it creates a connection.
#[test]
fn mid_stream_segment_without_entry_spec_2_6_2() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    let d = lab.tcp_seq(C, V, ACK, 5000, 7000);
    assert_eq!(
        d,
        Decision::Answer(Answer::TcpRst {
            seq: 7000,
            ack: None
        })
    );
    assert_eq!(lab.tcp(C, V, RST), Decision::Drop(DropReason::NoConnection));
    lab.sysctl("sloppy_tcp", "1");
    let d = lab.tcp(C, V, ACK);
    assert_eq!(nat_target(&d), Some((ip(RS1), 80)));
    assert_eq!(lab.states_of(C.1), ["ESTABLISHED"]);
}

/// A non-persistent port-0 service cannot schedule (kernel-semantics §2.6.3 step 4): unreachable.
#[test]
fn port_zero_needs_persistence_spec_2_6_3() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, 0, "rr");
    lab.nat_rs(k, RS1, 0, 1);
    assert_eq!(
        lab.tcp(C, ("10.0.0.100", 443), SYN),
        Decision::Answer(Answer::IcmpPortUnreachable)
    );
}

/// A real server with port 0 takes the packet's port (kernel-semantics §2.6.3 step 6).
#[test]
fn dest_port_zero_keeps_the_packet_port_spec_2_6_3() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let key = rvs_core::service::ServiceKey::Fwmark { v6: false, mark: 1 };
    lab.cmd(rvs_core::command::Command::AddService(
        rvs_core::service::ServiceConfig::new(key).scheduler("rr"),
    ));
    lab.nat_rs(key, RS1, 0, 1);
    let p =
        rvs_core::PacketMeta::tcp((ip(C.0), C.1), (ip("10.9.9.9"), 8443), SYN, 1, 0).with_fwmark(1);
    let d = lab.e.handle_packet(lab.now, &p);
    assert_eq!(nat_target(&d), Some((ip(RS1), 8443)));
}

/// Non-first fragments carry no ports and are dropped and counted (issue 4; kernel-semantics §2.2
/// step 7).
#[test]
fn non_first_fragment_is_dropped() {
    let mut lab = Lab::new(Profile::Safe);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    let mut p = rvs_core::PacketMeta::tcp((ip(C.0), C.1), (ip(V.0), V.1), SYN, 1, 0);
    p.frag = rvs_packet::Fragment::NonFirst;
    assert_eq!(
        lab.e.handle_packet(lab.now, &p),
        Decision::Drop(DropReason::NonFirstFragment)
    );
    assert_eq!(lab.e.counters().drop_count(DropReason::NonFirstFragment), 1);
}
