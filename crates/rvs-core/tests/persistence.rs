//! Persistence templates through the engine (kernel-semantics §5).

mod common;
use common::*;
use rvs_core::addr::Netmask;
use rvs_core::command::Command;
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Decision, PacketMeta, Profile};

const V: (&str, u16) = ("10.0.0.100", 443);
const RS: [&str; 2] = ["10.0.11.2", "10.0.12.2"];

fn persistent(profile: Profile, timeout: u32, netmask: u32) -> (Lab, ServiceKey) {
    let mut lab = Lab::new(profile);
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(V.0),
        port: V.1,
    };
    let mut cfg = ServiceConfig::new(key).scheduler("rr").persistent(timeout);
    cfg.netmask = Netmask::V4(netmask);
    lab.cmd(Command::AddService(cfg));
    for rs in RS {
        lab.nat_rs(key, rs, 443, 1);
    }
    (lab, key)
}

/// A new connection creates a template keyed by (client, VIP, port) with client port 0,
/// counted in PersistConn; later connections from the client follow it although rr would
/// alternate; the template turns ASSURED when a connection is established (kernel-semantics §5.2,
/// §5.4, §3.6, golden ipvsadm-Lnc-persistent-conn.txt).
#[test]
fn template_pins_a_client_spec_5_4() {
    let (mut lab, key) = persistent(Profile::Linux5_16, 300, u32::MAX);
    let first = lab.connect(("10.0.1.2", 40000), V).unwrap();
    let tmpl = lab
        .e
        .conns()
        .into_iter()
        .find(|c| c.template)
        .expect("a template");
    assert_eq!(
        (tmpl.cport, tmpl.vport, tmpl.state.as_str()),
        (0, 443, "ASSURED")
    );
    assert_eq!(tmpl.daddr, first.0);
    let d = lab.e.dest(&key, first.0, 443).unwrap();
    assert_eq!(d.persistconns, 1);
    for port in 40001..40010 {
        assert_eq!(lab.connect(("10.0.1.2", port), V), Some(first));
    }
    // Another client is scheduled normally (rr moves on).
    assert_ne!(lab.connect(("10.0.1.3", 40000), V), Some(first));
}

/// The netmask groups clients (kernel-semantics §5.2): /24 puts 10.0.1.2 and 10.0.1.77 on one
/// template.
#[test]
fn netmask_groups_clients_spec_5_2() {
    let (mut lab, _key) = persistent(Profile::Linux5_16, 300, 0xffff_ff00);
    let a = lab.connect(("10.0.1.2", 40000), V).unwrap();
    let b = lab.connect(("10.0.1.77", 40000), V).unwrap();
    assert_eq!(a, b);
    let tmpl: Vec<_> = lab.e.conns().into_iter().filter(|c| c.template).collect();
    assert_eq!(tmpl.len(), 1);
    assert_eq!(tmpl[0].caddr, ip("10.0.1.0"));
}

/// Templates are refreshed only by new connections, not by packets of existing ones; when a
/// template expires while it still controls connections it is kept with a 60 s timeout that
/// sticks (kernel-semantics §5.5, P9).
#[test]
fn template_lifetime_and_expire_later_spec_5_5_p9() {
    let (mut lab, _key) = persistent(Profile::Linux5_16, 100, u32::MAX);
    let c = ("10.0.1.2", 40000);
    lab.connect(c, V).unwrap();
    let tmpl_expiry = |lab: &Lab| {
        lab.e
            .conns()
            .into_iter()
            .find(|c| c.template)
            .map(|t| t.expires_ms)
    };
    assert_eq!(tmpl_expiry(&lab), Some(100_000));
    lab.advance(50.0);
    let _ = lab.tcp(c, V, PSHACK);
    assert_eq!(
        tmpl_expiry(&lab),
        Some(50_000),
        "packets of a controlled connection do not refresh"
    );
    lab.advance(50.5);
    assert_eq!(
        tmpl_expiry(&lab),
        Some(59_500),
        "expired while controlling: kept 60 s"
    );
    lab.advance(60.0);
    assert_eq!(tmpl_expiry(&lab), Some(59_500), "the 60 s timeout sticks");
}

/// A template outlives its last connection by at most its own timeout: once the controlled
/// connection is gone, the template goes at its next expiry (kernel-semantics §5.5).
#[test]
fn template_dies_after_its_connections() {
    let (mut lab, key) = persistent(Profile::Linux5_16, 30, u32::MAX);
    let c = ("10.0.1.2", 40000);
    let rs = lab.connect(c, V).unwrap();
    lab.close_client_first(c, V, rs);
    lab.advance(121.0);
    assert_eq!(lab.e.conn_count(), 0);
    assert_eq!(lab.e.dest(&key, rs.0, 443).unwrap().persistconns, 0);
}

/// A template pointing at a weight-0 server keeps sending new connections there unless
/// expire_quiescent_template=1 (kernel-semantics §5.3, §5.6, P8; Kubernetes #71809).
#[test]
fn quiescent_template_spec_5_6_p8() {
    for (eqt, stays) in [(0, true), (1, false)] {
        let (mut lab, key) = persistent(Profile::Linux5_16, 300, u32::MAX);
        lab.sysctl("expire_quiescent_template", &eqt.to_string());
        let c = ("10.0.1.2", 40000);
        let rs = lab.connect(c, V).unwrap();
        lab.set_weight(key, &rs.0.to_string(), 443, 0);
        let next = lab.connect(("10.0.1.2", 40001), V).unwrap();
        assert_eq!(next == rs, stays, "expire_quiescent_template={eqt}");
    }
}

/// safe (d): templates of weight-0 servers are never used for new connections, even with
/// expire_quiescent_template=0. Departs from the kernel default.
#[test]
fn safe_ignores_quiescent_templates_departs_from_kernel() {
    let (mut lab, key) = persistent(Profile::Safe, 300, u32::MAX);
    let rs = lab.connect(("10.0.1.2", 40000), V).unwrap();
    lab.set_weight(key, &rs.0.to_string(), 443, 0);
    assert_ne!(lab.connect(("10.0.1.2", 40001), V).unwrap(), rs);
}

/// A deleted server's template is invalid (kernel-semantics §5.3): the next connection is
/// rescheduled and the old template is left to die with ports 65535.
#[test]
fn deleted_server_invalidates_template_spec_5_3() {
    let (mut lab, key) = persistent(Profile::Linux5_16, 300, u32::MAX);
    let rs = lab.connect(("10.0.1.2", 40000), V).unwrap();
    lab.del_rs(key, &rs.0.to_string(), 443);
    let next = lab.connect(("10.0.1.2", 40001), V).unwrap();
    assert_ne!(next, rs);
    let dead: Vec<_> = lab
        .e
        .conns()
        .into_iter()
        .filter(|c| c.template && c.vport == 0xffff)
        .collect();
    assert_eq!(dead.len(), 1);
}

/// Connections controlled by a template are never rescheduled on port reuse (kernel-semantics §2.4,
/// §5.6): with mode 1 a SYN on a TIME_WAIT entry of a persistent service stays.
#[test]
fn controlled_connections_are_not_rescheduled_on_reuse_spec_2_4() {
    let (mut lab, _key) = persistent(Profile::Linux5_16, 300, u32::MAX);
    let c = ("10.0.1.2", 40000);
    let rs = lab.connect(c, V).unwrap();
    lab.close_client_first(c, V, rs);
    let _ = lab.tcp(c, V, rvs_packet::TcpFlags::SYN);
    assert_eq!(lab.e.counters().reuse_rescheduled, 0);
    assert_eq!(lab.states_of(c.1), ["SYN_RECV"]);
}

/// fwmark services keep one template per client and mark, shown with protocol IP and the
/// mark as the virtual address (kernel-semantics §5.2, §3.6).
#[test]
fn fwmark_template_spec_5_2() {
    let mut lab = Lab::new(Profile::Linux5_16);
    let key = ServiceKey::Fwmark { v6: false, mark: 1 };
    lab.cmd(Command::AddService(
        ServiceConfig::new(key).scheduler("rr").persistent(300),
    ));
    lab.nat_rs(key, RS[0], 0, 1);
    lab.nat_rs(key, RS[1], 0, 1);
    let p = |port: u16, vport: u16| {
        PacketMeta::tcp((ip("10.0.1.2"), port), (ip("10.0.0.100"), vport), SYN, 1, 0).with_fwmark(1)
    };
    let a = nat_target(&lab.e.handle_packet(lab.now, &p(40000, 80))).unwrap();
    let b = nat_target(&lab.e.handle_packet(lab.now, &p(40001, 443))).unwrap();
    assert_eq!(
        a.0, b.0,
        "HTTP and HTTPS grouped by the mark stick together"
    );
    assert_eq!(
        (a.1, b.1),
        (80, 443),
        "persistent fwmark services keep the packet's port (P18)"
    );
    let t = lab.e.conns().into_iter().find(|c| c.template).unwrap();
    assert_eq!(
        (t.proto.as_str(), t.vaddr, t.vport),
        ("IP", ip("0.0.0.1"), 0)
    );
    assert!(matches!(
        lab.e.handle_packet(lab.now, &p(40002, 80)),
        Decision::Forward(_)
    ));
}
