//! Engine state export and import (issue 14, rvs's own: the kernel keeps its table in kernel
//! memory across a kube-proxy restart). A round trip gives an engine that lists the same and
//! decides the same from then on; damaged, foreign, newer or inconsistent states are refused
//! with an error, never a panic.

mod common;
use common::*;
use proptest::prelude::*;
use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::rng::SplitMix64;
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Engine, EngineConfig, Instant, PacketMeta, Profile, StateError};

const RS: [&str; 3] = ["10.0.11.2", "10.0.12.2", "10.0.13.2"];
const VIP: &str = "10.0.0.100";

fn cfg(profile: Profile) -> EngineConfig {
    EngineConfig {
        profile,
        conn_max: 256,
        fullnat_addrs: vec![ip("10.9.0.1"), ip("10.9.0.2")],
        ..EngineConfig::default()
    }
}

fn key(proto: Protocol, vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto,
        addr: ip(vip),
        port,
    }
}

/// Services with each kind of scheduler state: persistent wlc, rr, wrr, mh, full NAT, IPv6.
fn setup(lab: &mut Lab) -> Vec<ServiceKey> {
    let tk = key(Protocol::Tcp, VIP, 80);
    let uk = key(Protocol::Udp, VIP, 53);
    let wk = key(Protocol::Tcp, VIP, 8080);
    let mk = key(Protocol::Tcp, VIP, 443);
    let fk = key(Protocol::Tcp, VIP, 9000);
    let sk = key(Protocol::Tcp, "fd00::100", 80);
    lab.cmd(Command::AddService(
        ServiceConfig::new(tk).scheduler("wlc").persistent(30),
    ));
    lab.cmd(Command::AddService(ServiceConfig::new(uk).scheduler("rr")));
    lab.cmd(Command::AddService(ServiceConfig::new(wk).scheduler("wrr")));
    lab.cmd(Command::AddService(ServiceConfig::new(mk).scheduler("mh")));
    lab.cmd(Command::AddService(ServiceConfig::new(fk).scheduler("rr")));
    lab.cmd(Command::AddService(ServiceConfig::new(sk).scheduler("rr")));
    for (n, rs) in RS.iter().enumerate() {
        for k in [tk, uk, wk, mk] {
            lab.cmd(Command::AddDest(
                k,
                DestConfig::new(ip(rs), 80)
                    .fwd(ForwardMethod::Masq)
                    .weight(n as u32 + 1),
            ));
        }
        lab.cmd(Command::AddDest(
            fk,
            DestConfig::new(ip(rs), 80).fwd(ForwardMethod::FullNat),
        ));
        lab.cmd(Command::AddDest(
            sk,
            DestConfig::new(ip(&format!("fd00::11:{}", n + 2)), 80).fwd(ForwardMethod::Masq),
        ));
    }
    vec![tk, uk, wk, mk, fk, sk]
}

#[derive(Clone, Debug)]
enum Op {
    Client { c: u8, port: u8, flags: u8, svc: u8 },
    Server { r: u8, c: u8, port: u8, flags: u8 },
    Weight { svc: u8, r: u8, w: u8 },
    Delete { svc: u8, r: u8 },
    Advance { ms: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        Just(SYN),
        Just(SYNACK),
        Just(ACK),
        Just(FINACK),
        Just(RST),
        any::<u8>()
    ];
    prop_oneof![
        8 => (0..6u8, 0..6u8, flags.clone(), 0..6u8)
            .prop_map(|(c, port, flags, svc)| Op::Client { c, port, flags, svc }),
        4 => (0..3u8, 0..6u8, 0..6u8, flags).prop_map(|(r, c, port, flags)| Op::Server { r, c, port, flags }),
        1 => (0..6u8, 0..3u8, 0..3u8).prop_map(|(svc, r, w)| Op::Weight { svc, r, w }),
        1 => (0..6u8, 0..3u8).prop_map(|(svc, r)| Op::Delete { svc, r }),
        3 => (0..100_000u32).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// A decision as text, without the real server's id (an index inside the engine).
fn norm(d: rvs_core::Decision) -> String {
    match d {
        rvs_core::Decision::Forward(mut f) => {
            f.dest = None;
            format!("{:?}", rvs_core::Decision::Forward(f))
        }
        d => format!("{d:?}"),
    }
}

/// Plays one operation; returns the decision's text for packets.
fn play(lab: &mut Lab, keys: &[ServiceKey], op: &Op) -> String {
    match *op {
        Op::Client {
            c,
            port,
            flags,
            svc,
        } => {
            let k = keys[svc as usize % keys.len()];
            let (addr, vport, proto) = match k {
                ServiceKey::Addr { addr, port, proto } => (addr, port, proto),
                ServiceKey::Fwmark { .. } => unreachable!(),
            };
            let src = if addr.is_ipv6() {
                ip(&format!("fd00::1:{}", c + 2))
            } else {
                ip(&format!("10.0.1.{}", c + 2))
            };
            let src = (src, 40000 + port as u16);
            let p = if proto == Protocol::Udp {
                PacketMeta::udp(src, (addr, vport), 10)
            } else {
                PacketMeta::tcp(src, (addr, vport), flags, 1, 1)
            };
            norm(lab.e.handle_packet(lab.now, &p))
        }
        Op::Server { r, c, port, flags } => {
            let p = PacketMeta::tcp(
                (ip(RS[r as usize]), 80),
                (ip(&format!("10.0.1.{}", c + 2)), 40000 + port as u16),
                flags,
                1,
                1,
            );
            norm(lab.e.handle_packet(lab.now, &p))
        }
        Op::Weight { svc, r, w } => {
            let k = keys[svc as usize % keys.len()];
            if let Some(d) = lab
                .e
                .service(&k)
                .and_then(|s| s.dests.get(r as usize).cloned())
            {
                let cfg = DestConfig {
                    addr: d.addr,
                    port: d.port,
                    fwd: d.fwd,
                    weight: w as u32,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    tunnel: d.tunnel,
                };
                let _ = lab.e.apply(lab.now, Command::EditDest(k, cfg));
            }
            String::new()
        }
        Op::Delete { svc, r } => {
            let k = keys[svc as usize % keys.len()];
            if let Some(d) = lab
                .e
                .service(&k)
                .and_then(|s| s.dests.get(r as usize).cloned())
            {
                let _ = lab.e.apply(lab.now, Command::DelDest(k, d.addr, d.port));
            }
            String::new()
        }
        Op::Advance { ms } => {
            // As a driver does: wake at each `poll_timeout` on the way. (One call for a long
            // jump would expire, at the jump's end, entries the wheel has filed early, in an
            // order that depends on how they were filed: an artefact of skipped wake-ups.)
            // Multiples of the 4 ms tick keep both engines' ticks aligned.
            let target = lab.now.add_nanos((ms as u64 / 4) * 4_000_000);
            for _ in 0..100_000 {
                let next = lab.e.poll_timeout().min(target).max(lab.now);
                lab.now = next;
                lab.e.handle_timeout(next);
                if next >= target {
                    break;
                }
            }
            String::new()
        }
    }
}

/// Everything the engine shows: entries (sorted), services with their real servers and
/// statistics, totals, counters, sysctls, timeouts, generation.
fn views(e: &Engine) -> String {
    let mut conns: Vec<String> = e.conns().iter().map(|c| format!("{c:?}")).collect();
    conns.sort();
    format!(
        "{conns:#?}\n{:#?}\n{:?}\n{:?}\n{:?}\n{:?}\n{} {}",
        e.services(),
        e.totals(),
        e.counters(),
        e.sysctls(),
        e.timeouts(),
        e.generation(),
        e.conn_count()
    )
}

fn round_trip(lab: &mut Lab, profile: Profile, shift_secs: u64) -> Lab {
    let bytes = lab.e.export_state(lab.now);
    let now = lab.now.add_nanos(shift_secs * 1_000_000_000);
    let e = Engine::import_state(cfg(profile), now, &bytes).expect("import");
    Lab { e, now }
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::Safe),
        Just(Profile::Linux4_19),
        Just(Profile::Linux5_16)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Export then import lists the same, and from then on both engines decide the same for
    /// the same packets, commands and clock (shifted: the new process's clock starts elsewhere).
    #[test]
    fn round_trip_lists_and_decides_the_same(
        profile in profile(),
        before in prop::collection::vec(op(), 0..120),
        after in prop::collection::vec(op(), 0..80),
        shift in prop_oneof![Just(0u64), Just(1000u64)],
    ) {
        let mut a = Lab::with(cfg(profile));
        let keys = setup(&mut a);
        for o in &before {
            play(&mut a, &keys, o);
        }
        a.e.handle_timeout(a.now);
        let mut b = round_trip(&mut a, profile, shift);
        prop_assert_eq!(views(&a.e), views(&b.e));
        a.e.set_random_source(Box::new(SplitMix64::new(9)));
        b.e.set_random_source(Box::new(SplitMix64::new(9)));
        for o in &after {
            let da = play(&mut a, &keys, o);
            let db = play(&mut b, &keys, o);
            prop_assert_eq!(da, db, "after {:?}", o);
        }
        prop_assert_eq!(views(&a.e), views(&b.e));
    }

    /// Any damage to a state is refused: truncation anywhere, any byte changed.
    #[test]
    fn damaged_states_are_refused(
        ops in prop::collection::vec(op(), 0..60),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let mut a = Lab::with(cfg(Profile::Safe));
        let keys = setup(&mut a);
        for o in &ops {
            play(&mut a, &keys, o);
        }
        let bytes = a.e.export_state(a.now);
        let n = cut.index(bytes.len());
        prop_assert!(Engine::import_state(cfg(Profile::Safe), a.now, &bytes[..n]).is_err());
        let mut bad = bytes.clone();
        bad[flip.index(bytes.len())] ^= 1 << bit;
        prop_assert!(Engine::import_state(cfg(Profile::Safe), a.now, &bad).is_err());
    }

    /// A payload changed behind a recomputed checksum (a buggy or hostile writer) is either
    /// refused or yields an engine that still works: never a panic.
    #[test]
    fn inconsistent_payloads_never_panic(
        ops in prop::collection::vec(op(), 0..60),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        more in prop::collection::vec(op(), 0..30),
    ) {
        let mut a = Lab::with(cfg(Profile::Safe));
        let keys = setup(&mut a);
        for o in &ops {
            play(&mut a, &keys, o);
        }
        let mut bytes = a.e.export_state(a.now);
        for (at, v) in edits {
            let i = 32 + at.index(bytes.len() - 32);
            bytes[i] = v;
        }
        let sum = rvs_core::checksum(&bytes[32..]);
        bytes[24..32].copy_from_slice(&sum.to_le_bytes());
        if let Ok(e) = Engine::import_state(cfg(Profile::Safe), a.now, &bytes) {
            let mut b = Lab { e, now: a.now };
            for o in &more {
                play(&mut b, &keys, o);
            }
            b.now = b.now.add_nanos(3600 * 1_000_000_000);
            b.e.handle_timeout(b.now);
        }
    }
}

fn busy_lab() -> Lab {
    let mut a = Lab::with(cfg(Profile::Safe));
    let keys = setup(&mut a);
    for c in 0..6u8 {
        for svc in 0..6u8 {
            for flags in [SYN, ACK] {
                play(
                    &mut a,
                    &keys,
                    &Op::Client {
                        c,
                        port: c,
                        flags,
                        svc,
                    },
                );
            }
        }
    }
    a
}

#[test]
fn a_busy_engine_round_trips() {
    let mut a = busy_lab();
    assert!(a.e.conn_count() > 30, "{}", a.e.conn_count());
    let b = round_trip(&mut a, Profile::Safe, 5);
    assert_eq!(views(&a.e), views(&b.e));
    assert_eq!(b.e.generation(), a.e.generation());
    assert!(a.e.generation() > 20);
}

#[test]
fn foreign_and_empty_input_is_refused() {
    let inputs: [&[u8]; 4] = [b"", b"GET / HTTP/1.1\r\n", &[0u8; 64], b"RVSSTATE"];
    for b in inputs {
        let r = Engine::import_state(cfg(Profile::Safe), Instant::ZERO, b);
        assert!(r.is_err(), "{b:?}");
    }
    assert_eq!(
        Engine::import_state(cfg(Profile::Safe), Instant::ZERO, b"{\"json\": 1}").err(),
        Some(StateError::Foreign)
    );
}

#[test]
fn a_newer_format_is_refused_with_a_clear_message() {
    let mut a = busy_lab();
    let mut bytes = a.e.export_state(a.now);
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    let e = Engine::import_state(cfg(Profile::Safe), a.now, &bytes)
        .err()
        .unwrap();
    assert_eq!(
        e,
        StateError::Version {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(
        e.to_string(),
        "engine state format version 2, but this binary reads version 1"
    );
}

#[test]
fn a_table_larger_than_conn_max_is_refused() {
    let mut a = busy_lab();
    let bytes = a.e.export_state(a.now);
    let small = EngineConfig {
        conn_max: 4,
        ..cfg(Profile::Safe)
    };
    let e = Engine::import_state(small, a.now, &bytes).err().unwrap();
    assert!(matches!(e, StateError::Unfit(_)), "{e}");
}

#[test]
fn missing_fullnat_addresses_are_refused() {
    let mut a = busy_lab();
    let bytes = a.e.export_state(a.now);
    let other = EngineConfig {
        fullnat_addrs: vec![ip("10.9.0.1")],
        ..cfg(Profile::Safe)
    };
    let e = Engine::import_state(other, a.now, &bytes).err().unwrap();
    assert!(e.to_string().contains("10.9.0.2"), "{e}");
}

#[test]
fn timers_are_carried_as_time_left() {
    let mut a = Lab::with(cfg(Profile::Safe));
    let k = a.tcp_service(VIP, 80, "rr");
    a.nat_rs(k, RS[0], 80, 1);
    a.connect(("10.0.1.2", 40000), (VIP, 80)).unwrap();
    a.advance(100.0);
    let mut b = round_trip(&mut a, Profile::Safe, 7777);
    // ESTABLISHED lasts 900 s: 800 s left. Alive just before, gone just after.
    b.advance(799.0);
    assert_eq!(b.e.conn_count(), 1);
    b.advance(2.0);
    assert_eq!(b.e.conn_count(), 0);
}

#[test]
fn rr_and_wrr_continue_where_they_stood() {
    let mut a = Lab::with(cfg(Profile::Safe));
    let keys = setup(&mut a);
    // Three new UDP flows through rr, two TCP through wrr.
    for c in 0..3u8 {
        play(
            &mut a,
            &keys,
            &Op::Client {
                c,
                port: 9,
                flags: SYN,
                svc: 1,
            },
        );
    }
    for c in 0..2u8 {
        play(
            &mut a,
            &keys,
            &Op::Client {
                c,
                port: 9,
                flags: SYN,
                svc: 2,
            },
        );
    }
    let mut b = round_trip(&mut a, Profile::Safe, 0);
    for c in 3..6u8 {
        for svc in [1u8, 2] {
            let o = Op::Client {
                c,
                port: 9,
                flags: SYN,
                svc,
            };
            assert_eq!(play(&mut a, &keys, &o), play(&mut b, &keys, &o));
        }
    }
}
