//! Statistics (kernel-semantics §6), thresholds (kernel-semantics §4.15), control-plane validation
//! (kernel-semantics §8.8a), the table bound and the defences (kernel-semantics §2.12), ICMP errors
//! (kernel-semantics §2.9) and full NAT.

mod common;
use common::*;
use rvs_core::command::{AdmError, Command};
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Decision, DropReason, EngineConfig, Forward, PacketMeta, Profile, Xmit};
use rvs_packet::{L4, Quoted};

const V: (&str, u16) = ("10.0.0.100", 80);
const RS1: &str = "10.0.11.2";

fn one_server(profile: Profile) -> (Lab, ServiceKey) {
    let mut lab = Lab::new(profile);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    (lab, k)
}

/// Counters reach user space only on the 2-second estimator tick (kernel-semantics §6.2; golden
/// stats-refresh-lag.txt: `0 0` for ~1.5 s, then `1 5`).
#[test]
fn counters_published_on_the_2s_tick_spec_6_2() {
    let (mut lab, k) = one_server(Profile::Linux5_16);
    lab.advance(0.5);
    let c = ("10.0.1.2", 40000);
    let rs = lab.connect(c, V).unwrap();
    lab.close_client_first(c, V, rs);
    let s = lab.e.service(&k).unwrap().stats;
    assert_eq!((s.conns, s.inpkts), (0, 0));
    lab.advance(1.6);
    let s = lab.e.service(&k).unwrap().stats;
    // In: SYN, ACK, FIN, ACK; out: SYN-ACK, FIN.
    assert_eq!((s.conns, s.inpkts, s.outpkts), (1, 4, 2));
    assert_eq!(s.inbytes, 4 * 40);
    assert_eq!(lab.e.totals().stats.conns, 1);
    assert_eq!(lab.e.dest(&k, ip(RS1), 80).unwrap().stats.inpkts, 4);
}

/// Rates follow the estimator (kernel-semantics §6.3) and zeroing restarts counters and rates
/// (kernel-semantics §6.2).
#[test]
fn rates_and_zero_spec_6_3() {
    let (mut lab, k) = one_server(Profile::Linux5_16);
    for i in 0..40u16 {
        let c = ("10.0.1.2", 40000 + i);
        lab.connect(c, V).unwrap();
        lab.advance(0.05);
    }
    lab.advance(0.1); // t = 2.1 s: one tick with 40 connections in 2 s
    let r = lab.e.service(&k).unwrap().rates;
    assert_eq!(r.cps, 5, "20 conn/s × 1/4 = 5");
    lab.cmd(Command::Zero(Some(k)));
    let v = lab.e.service(&k).unwrap();
    assert_eq!((v.stats.conns, v.rates.cps), (0, 0));
    assert_eq!(
        lab.e.totals().stats.conns,
        40,
        "zeroing one service leaves the totals"
    );
    lab.cmd(Command::Zero(None));
    assert_eq!(lab.e.totals().stats.conns, 0);
}

/// run_estimation=0 freezes counters and rates (kernel-semantics §6.2, 5.16+).
#[test]
fn run_estimation_off_freezes_spec_6_2() {
    let (mut lab, k) = one_server(Profile::Linux5_16);
    lab.sysctl("run_estimation", "0");
    lab.connect(("10.0.1.2", 40000), V).unwrap();
    lab.advance(5.0);
    assert_eq!(lab.e.service(&k).unwrap().stats.conns, 0);
}

/// OVERLOAD is set at bind time when active+inactive reaches the upper threshold, makes the
/// scheduler skip the server, and clears below the lower threshold at unbind
/// (kernel-semantics §4.15).
#[test]
fn thresholds_set_and_clear_overload_spec_4_15() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.cmd(Command::AddDest(
        k,
        DestConfig::new(ip(RS1), 80)
            .fwd(ForwardMethod::Masq)
            .thresholds(2, 1),
    ));
    lab.nat_rs(k, "10.0.12.2", 80, 1);
    // rr visits the newest first: 10.0.12.2, then RS1...
    let mut on_rs1 = vec![];
    for p in 0..6u16 {
        let c = ("10.0.1.2", 40000 + p);
        let rs = lab.connect(c, V).unwrap();
        if rs.0 == ip(RS1) {
            on_rs1.push(c);
        }
    }
    assert_eq!(
        on_rs1.len(),
        2,
        "RS1 took two connections, then was OVERLOADed"
    );
    assert!(lab.e.dest(&k, ip(RS1), 80).unwrap().overloaded);
    // Close both; entries expire after TIME_WAIT; at 1 connection OVERLOAD is kept (not < 1),
    // at 0 it clears.
    for c in &on_rs1 {
        lab.close_client_first(*c, V, (ip(RS1), 80));
    }
    lab.advance(121.0);
    assert!(!lab.e.dest(&k, ip(RS1), 80).unwrap().overloaded);
}

/// Control-plane errors carry ipvsadm's texts and leave the state unchanged
/// (kernel-semantics §8.8a; golden ipvsadm-errors.txt).
#[test]
fn control_errors_spec_8_8a() {
    let (mut lab, k) = one_server(Profile::Safe);
    let before = lab.e.services();
    let e = |lab: &mut Lab, c| lab.e.apply(lab.now, c).unwrap_err();
    assert_eq!(
        e(&mut lab, Command::AddService(ServiceConfig::new(k))),
        AdmError::ServiceExists
    );
    assert_eq!(
        e(
            &mut lab,
            Command::AddDest(k, DestConfig::new(ip(RS1), 80).fwd(ForwardMethod::Masq))
        ),
        AdmError::DestExists
    );
    assert_eq!(
        e(&mut lab, Command::DelDest(k, ip("10.0.99.2"), 80)),
        AdmError::NoDest
    );
    let other = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip("10.9.9.9"),
        port: 80,
    };
    assert_eq!(e(&mut lab, Command::DelService(other)), AdmError::NoService);
    assert_eq!(
        e(&mut lab, Command::EditService(ServiceConfig::new(other))),
        AdmError::NoService
    );
    let bad = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(V.0),
        port: 81,
    };
    assert_eq!(
        e(
            &mut lab,
            Command::AddService(ServiceConfig::new(bad).scheduler("nosuchsched"))
        ),
        AdmError::NoScheduler
    );
    assert_eq!(
        e(
            &mut lab,
            Command::AddDest(other, DestConfig::new(ip(RS1), 80))
        ),
        AdmError::ServiceNotDefined
    );
    assert_eq!(
        e(
            &mut lab,
            Command::EditDest(k, DestConfig::new(ip("10.0.99.2"), 80))
        ),
        AdmError::NoDest
    );
    assert!(matches!(
        e(
            &mut lab,
            Command::AddDest(k, DestConfig::new(ip("10.0.13.2"), 80).thresholds(1, 5))
        ),
        AdmError::Range(_)
    ));
    assert_eq!(
        e(
            &mut lab,
            Command::AddDest(k, DestConfig::new(ip("fd00::1"), 80))
        ),
        AdmError::AddressFamily
    );
    assert!(matches!(
        e(
            &mut lab,
            Command::Sysctl("conn_reuse_mode".into(), "9".into())
        ),
        AdmError::Sysctl(_)
    ));
    assert_eq!(lab.e.services(), before);
    assert_eq!(
        AdmError::ServiceExists.ipvsadm_message(),
        "Service already exists"
    );
    // The kernel accepts weights above 65535 (golden: -w 70000, exit 0).
    lab.cmd(Command::AddDest(
        k,
        DestConfig::new(ip(RS1), 8080)
            .fwd(ForwardMethod::Masq)
            .weight(70000),
    ));
}

/// Real servers are listed newest first, the kernel's order (kernel-semantics §1.3, P10).
#[test]
fn dest_order_newest_first_spec_1_3() {
    let mut lab = Lab::new(Profile::Safe);
    let k = lab.tcp_service(V.0, V.1, "rr");
    for rs in ["10.0.11.2", "10.0.12.2", "10.0.13.2"] {
        lab.nat_rs(k, rs, 80, 1);
    }
    let order: Vec<_> = lab
        .e
        .service(&k)
        .unwrap()
        .dests
        .iter()
        .map(|d| d.addr)
        .collect();
    assert_eq!(order, [ip("10.0.13.2"), ip("10.0.12.2"), ip("10.0.11.2")]);
}

/// The table is bounded: past `conn_max` new connections are dropped and counted, existing
/// ones keep working (rvs's own bound; the kernel limits by memory, kernel-semantics §2.12).
#[test]
fn table_bound() {
    let mut lab = Lab::with(EngineConfig {
        conn_max: 2,
        ..EngineConfig::default()
    });
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    lab.connect(("10.0.1.2", 1), V).unwrap();
    lab.connect(("10.0.1.2", 2), V).unwrap();
    assert_eq!(
        lab.tcp(("10.0.1.2", 3), V, SYN),
        Decision::Drop(DropReason::TableFull)
    );
    assert!(is_forward(&lab.tcp(("10.0.1.2", 1), V, PSHACK)));
}

/// drop_packet=3 drops one new connection in every `am_droprate` (kernel-semantics §2.12).
#[test]
fn drop_packet_defence_spec_2_12() {
    let (mut lab, _k) = one_server(Profile::Linux5_16);
    lab.sysctl("drop_packet", "3");
    lab.sysctl("am_droprate", "5");
    lab.advance(1.0);
    let dropped = (0..50u16)
        .filter(|p| {
            lab.tcp(("10.0.1.2", 30000 + p), V, SYN)
                == Decision::Drop(DropReason::DefenceDropPacket)
        })
        .count();
    assert_eq!(dropped, 10);
}

/// Automatic defences turn on when the table is nearly full and the sysctl moves 1 → 2
/// (kernel-semantics §2.12): secure_tcp switches to the DoS tables.
#[test]
fn secure_tcp_auto_spec_2_12() {
    let mut lab = Lab::with(EngineConfig {
        conn_max: 16,
        profile: Profile::Linux5_16,
        ..EngineConfig::default()
    });
    lab.sysctl("secure_tcp", "1");
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.nat_rs(k, RS1, 80, 1);
    for p in 0..16u16 {
        let _ = lab.tcp(("10.0.1.2", p + 1), V, SYN);
    }
    lab.advance(1.0);
    assert_eq!(lab.e.sysctls().secure_tcp, 2);
    // Secure INPUT table: a client ACK does not move SYN_RECV to ESTABLISHED
    // (kernel-semantics §3.1.4).
    let _ = lab.tcp(("10.0.1.2", 1), V, ACK);
    assert_eq!(lab.states_of(1), ["SYN_RECV"]);
}

/// drop_entry=3 removes half-open entries first (kernel-semantics §2.12).
#[test]
fn drop_entry_defence_spec_2_12() {
    let (mut lab, _k) = one_server(Profile::Linux5_16);
    lab.sysctl("drop_entry", "3");
    // (Ports from 1000: a SYN from port 20, FTP data, is never scheduled, kernel-semantics §2.6.3.)
    for p in 0..64u16 {
        let _ = lab.tcp(("10.0.1.2", 1000 + p), V, SYN);
    }
    assert_eq!(lab.e.conn_count(), 64);
    for _ in 0..40 {
        lab.advance(1.0);
    }
    // Each run visits 1/32 of the table from a random point (the kernel's rover); SYN_RECV
    // entries it visits are dropped unconditionally, before their 60 s timeout.
    let dropped = lab.e.counters().defence_dropped_entries;
    assert!(dropped > 10, "dropped {dropped}");
    assert_eq!(lab.e.conn_count() as u64 + dropped, 64);
}

fn icmp_error(src: &str, dst: &str, quoted: Quoted) -> PacketMeta {
    PacketMeta {
        src: ip(src),
        dst: ip(dst),
        protocol: 1,
        sport: 0,
        dport: 0,
        len: 56,
        l4: L4::IcmpError {
            icmp_type: 3,
            code: 1,
            quoted,
        },
        frag: rvs_packet::Fragment::None,
        fwmark: 0,
    }
}

/// ICMP errors follow their connection (kernel-semantics §2.9): from the real server back to the
/// client through the virtual address, from the client on to the real server.
#[test]
fn icmp_errors_follow_the_connection_spec_2_9() {
    let (mut lab, _k) = one_server(Profile::Linux5_16);
    let c = ("10.0.1.2", 40000);
    lab.connect(c, V).unwrap();
    let from_rs = icmp_error(
        RS1,
        c.0,
        Quoted {
            src: ip(c.0),
            dst: ip(RS1),
            protocol: 6,
            sport: c.1,
            dport: 80,
        },
    );
    let d = lab.e.handle_packet(lab.now, &from_rs);
    assert!(
        matches!(d, Decision::Forward(Forward { xmit: Xmit::Nat { src: Some(s), dst: None }, .. }) if s == (ip(V.0), 80))
    );
    let from_client = icmp_error(
        c.0,
        V.0,
        Quoted {
            src: ip(V.0),
            dst: ip(c.0),
            protocol: 6,
            sport: 80,
            dport: c.1,
        },
    );
    let d = lab.e.handle_packet(lab.now, &from_client);
    assert_eq!(nat_target(&d), Some((ip(RS1), 80)));
    let stray = icmp_error(
        c.0,
        V.0,
        Quoted {
            src: ip(V.0),
            dst: ip(c.0),
            protocol: 6,
            sport: 80,
            dport: 1,
        },
    );
    assert_eq!(lab.e.handle_packet(lab.now, &stray), Decision::Pass);
}

/// Hairpin (`safe`, rvs's own rule): a NAT connection whose client is the real server itself
/// gets full NAT, so that it does not come back to it from its own address (which its kernel
/// drops); other clients keep NAT, and the kernel profiles keep NAT for it too.
#[test]
fn hairpin_connections_get_full_nat_in_safe() {
    for (profile, hairpin) in [(Profile::Safe, true), (Profile::Linux5_16, false)] {
        let mut lab = Lab::with(EngineConfig {
            profile,
            fullnat_addrs: vec![ip("10.0.0.200")],
            ..EngineConfig::default()
        });
        let k = lab.tcp_service(V.0, V.1, "rr");
        lab.add_rs(k, RS1, 8080, 1, ForwardMethod::Masq);
        let d = lab.tcp((RS1, 40000), V, SYN);
        let Decision::Forward(Forward {
            xmit: Xmit::Nat { src, dst: Some(t) },
            ..
        }) = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(t, (ip(RS1), 8080));
        assert_eq!(src.is_some(), hairpin, "{profile:?}: {src:?}");
        if hairpin {
            let r = lab.tcp((RS1, 8080), ("10.0.0.200", src.unwrap().1), SYNACK);
            assert!(
                matches!(r, Decision::Forward(Forward { xmit: Xmit::Nat { src: Some(s), dst: Some(d) }, .. })
                if s == (ip(V.0), 80) && d == (ip(RS1), 40000)),
                "{r:?}"
            );
        }
        // Another client: NAT.
        let d = lab.tcp(("10.0.1.2", 40000), V, SYN);
        assert!(
            matches!(
                d,
                Decision::Forward(Forward {
                    xmit: Xmit::Nat { src: None, .. },
                    ..
                })
            ),
            "{d:?}"
        );
    }
}

/// Full NAT (our extension): the source becomes a local address and a per-flow port; replies
/// to that port map back to the client.
#[test]
fn full_nat_rewrites_both_ends() {
    let mut lab = Lab::with(EngineConfig {
        fullnat_addrs: vec![ip("10.0.0.200")],
        ..EngineConfig::default()
    });
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.add_rs(k, RS1, 8080, 1, ForwardMethod::FullNat);
    let c = ("10.0.1.2", 40000);
    let d = lab.tcp(c, V, SYN);
    let Decision::Forward(Forward {
        xmit: Xmit::Nat {
            src: Some(l),
            dst: Some(t),
        },
        ..
    }) = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(l, (ip("10.0.0.200"), 1024));
    assert_eq!(t, (ip(RS1), 8080));
    let r = lab.tcp((RS1, 8080), ("10.0.0.200", 1024), SYNACK);
    assert!(
        matches!(r, Decision::Forward(Forward { xmit: Xmit::Nat { src: Some(s), dst: Some(d) }, .. })
        if s == (ip(V.0), 80) && d == (ip(c.0), c.1))
    );
    let _ = lab.tcp(c, V, ACK);
    assert_eq!(lab.states_of(c.1), ["ESTABLISHED"]);
    // A second client gets another port.
    let d2 = lab.tcp(("10.0.1.3", 40000), V, SYN);
    assert!(matches!(
        d2,
        Decision::Forward(Forward {
            xmit: Xmit::Nat {
                src: Some((_, 1025)),
                ..
            },
            ..
        })
    ));
    // Full NAT without local addresses is refused.
    let mut bare = Lab::new(Profile::Safe);
    let k2 = bare.tcp_service(V.0, V.1, "rr");
    let err = bare.e.apply(
        bare.now,
        Command::AddDest(k2, DestConfig::new(ip(RS1), 80).fwd(ForwardMethod::FullNat)),
    );
    assert!(matches!(err, Err(AdmError::Invalid(_))));
}

/// Tunnel forwarding encapsulates towards the real server and keeps NOOUTPUT (INPUT_ONLY)
/// (kernel-semantics §1.5, §3.1.1).
#[test]
fn tunnel_decision() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let k = lab.tcp_service(V.0, V.1, "rr");
    lab.add_rs(k, RS1, 80, 1, ForwardMethod::Tunnel);
    let d = lab.tcp(("10.0.1.2", 40000), V, SYN);
    assert!(
        matches!(d, Decision::Forward(Forward { xmit: Xmit::Tunnel { dst, .. }, .. }) if dst == ip(RS1))
    );
}

/// Two entries with the same reply tuple (one client port talking to two services that share a
/// real server and port): the kernel's reply lookup takes the newest entry, because
/// `ip_vs_conn_hash` adds at the head of the hash chain that `ip_vs_conn_out_get` walks; the
/// older one answers again once the newer one is gone (found by the fidelity suite's
/// reply-same-client-port scenario).
#[test]
fn reply_lookup_takes_the_newest_entry_spec_2_3_2_8() {
    let mut lab = Lab::new(Profile::Linux5_16);
    lab.cmd(Command::SetTimeouts(rvs_core::command::Timeouts {
        tcp: 0,
        tcpfin: 0,
        udp: 10,
    }));
    let k53 = lab.udp_service(V.0, 53, "rr");
    let k54 = lab.udp_service(V.0, 54, "rr");
    lab.nat_rs(k53, RS1, 53, 1);
    lab.nat_rs(k54, RS1, 53, 1);
    let c = ("10.0.1.2", 5353);
    let reply_src = |d: &Decision| match d {
        Decision::Forward(Forward {
            xmit: Xmit::Nat { src: Some(s), .. },
            ..
        }) => s.1,
        other => panic!("{other:?}"),
    };
    assert!(is_forward(&lab.udp(c, (V.0, 53)))); // t=0, until 10
    lab.advance(1.0);
    assert!(is_forward(&lab.udp(c, (V.0, 54)))); // t=1, until 11
    assert_eq!(
        reply_src(&lab.udp((RS1, 53), c)),
        54,
        "the newer flow's VIP:port"
    );
    lab.advance(6.0);
    assert!(is_forward(&lab.udp(c, (V.0, 53)))); // t=7: the older one until 17
    lab.advance(6.0); // t=13: the newer one expired at 11
    assert_eq!(lab.e.conn_count(), 1);
    // (that reply refreshed the VIP:53 entry: until 23)
    assert_eq!(
        reply_src(&lab.udp((RS1, 53), c)),
        53,
        "the older entry answers again"
    );
    // A new VIP:54 flow hides the VIP:53 entry; then the hidden one expires first.
    lab.advance(4.0);
    assert!(is_forward(&lab.udp(c, (V.0, 54)))); // t=17, until 27
    assert_eq!(reply_src(&lab.udp((RS1, 53), c)), 54);
    lab.advance(6.5); // t=23.5: the hidden VIP:53 entry expired at 23
    assert_eq!(lab.e.conn_count(), 1);
    assert_eq!(reply_src(&lab.udp((RS1, 53), c)), 54);
    lab.advance(11.0);
    assert_eq!(lab.e.conn_count(), 0);
}
