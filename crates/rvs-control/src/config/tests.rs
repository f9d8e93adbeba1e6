use std::path::Path;

use rvs_core::command::Command;
use rvs_core::dest::ForwardMethod;
use rvs_core::profile::Profile;
use rvs_core::service::{Protocol, ServiceKey};
use rvs_core::{Decision, Engine, Instant, PacketMeta};

use super::*;

const BASE: &str = r#"
[engine]
profile = "safe"
conn_max = 4096
fullnat_addrs = ["10.255.1.1"]

[sysctl]
expire_nodest_conn = 1

[timeouts]
tcp = 600

[dataplane]
tun_name = "rvst0"
tun_addrs = ["10.255.255.1/24"]
admin_socket = "/tmp/x.sock"
http_listen = ""

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"

[[service.real_server]]
addr = "10.2.1.2"
weight = 1

[[service.real_server]]
addr = "10.2.2.2"
weight = 2

[[service]]
proto = "udp"
vip = "fd00::100"
port = 53
scheduler = "wrr"

[[service.real_server]]
addr = "fd00:2:1::2"
forward = "tunnel"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/rvs/test.toml"), text)
}

fn tcp80() -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "10.0.0.100".parse().unwrap(),
        port: 80,
    }
}

/// A running engine built from `text`.
fn engine_from(text: &str) -> (Engine, Config) {
    let cfg = parse(text).unwrap();
    let mut e = Engine::new(cfg.engine_config(None));
    for (cmd, _) in cfg.commands() {
        e.apply(Instant::ZERO, cmd).unwrap();
    }
    for (n, v) in cfg.sysctls.list() {
        e.apply(Instant::ZERO, Command::Sysctl(n, v)).unwrap();
    }
    e.apply(Instant::ZERO, Command::SetTimeouts(cfg.timeouts))
        .unwrap();
    (e, cfg)
}

fn diff_of(e: &Engine, cfg: &Config) -> Vec<Command> {
    let services = e.services();
    diff(
        &Running {
            services: &services,
            timeouts: e.timeouts(),
            sysctls: e.sysctls(),
            owned_elsewhere: &Default::default(),
        },
        cfg,
    )
}

fn apply_all(e: &mut Engine, cmds: Vec<Command>) {
    for c in cmds {
        e.apply(Instant::from_secs(1), c).unwrap();
    }
}

#[test]
fn the_base_file_parses_with_its_defaults() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.engine.profile, Profile::Safe);
    assert_eq!(c.engine.conn_max, 4096);
    assert_eq!(c.sysctls.expire_nodest_conn, 1);
    assert_eq!(c.sysctls.conn_reuse_mode, 1, "kernel default");
    assert_eq!(
        (c.timeouts.tcp, c.timeouts.tcpfin, c.timeouts.udp),
        (600, 120, 300)
    );
    assert_eq!(c.dataplane.tun_name, "rvst0");
    assert_eq!(c.dataplane.http_listen, None);
    assert_eq!(
        c.dataplane.tunnel_src,
        vec!["10.255.255.2".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(c.services.len(), 2);
    assert_eq!(c.services[0].cfg.scheduler, "rr");
    assert_eq!(c.services[0].dests[1].weight, 2);
    assert_eq!(
        c.services[0].dests[0].fwd,
        ForwardMethod::Masq,
        "default forward"
    );
    assert_eq!(
        c.services[0].dests[0].port, 80,
        "port defaults to the service's"
    );
    assert_eq!(c.services[1].dests[0].fwd, ForwardMethod::Tunnel);
    assert_eq!(c.services[0].dest_origins[1].line, 30);
}

#[test]
fn an_empty_file_is_a_valid_config() {
    let c = parse("").unwrap();
    assert!(c.services.is_empty());
    assert_eq!(c.dataplane.tun_name, "rvs0");
    assert_eq!(c.dataplane.admin_socket, Path::new("/run/rvs/rvs.sock"));
    assert_eq!(c.dataplane.tun_addrs.len(), 2);
    assert_eq!(c.dataplane.tunnel_src.len(), 2);
}

fn err(text: &str) -> ConfigError {
    parse(text).expect_err("must be refused")
}

#[test]
fn syntax_errors_name_file_line_and_key() {
    let e = err("[engine]\nprofile = \"safe\"\nconn_max = = 3\n");
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(e.field, "conn_max", "{e}");
    assert!(e.to_string().starts_with("/etc/rvs/test.toml:3:"), "{e}");
}

#[test]
fn unknown_and_mistyped_fields_name_the_line() {
    let e = err(&BASE.replace("weight = 2", "wieght = 2"));
    assert_eq!(e.line, 31, "{e}");
    assert_eq!(e.field, "wieght", "{e}");
    assert!(e.message.contains("unknown field"), "{e}");
    let e = err(&BASE.replace("conn_max = 4096", "conn_max = \"many\""));
    assert_eq!((e.line, e.field.as_str()), (4, "conn_max"), "{e}");
}

#[test]
fn semantic_errors_name_the_field_path() {
    let e = err(&BASE.replace("addr = \"10.2.2.2\"", "addr = \"10.2.2.300\""));
    assert_eq!(e.field, "service[0].real_server[1].addr");
    assert_eq!(e.line, 30);
    assert!(e.message.contains("not an IP address"), "{e}");

    let e = err(&BASE.replace("scheduler = \"rr\"", "scheduler = \"roundrobin\""));
    assert_eq!(
        (e.field.as_str(), e.line),
        ("service[0].scheduler", 23),
        "{e}"
    );

    let e = err(&BASE.replace("expire_nodest_conn = 1", "expire_nodest_conn = 7"));
    assert_eq!(
        (e.field.as_str(), e.line),
        ("sysctl.expire_nodest_conn", 8),
        "{e}"
    );
    assert!(e.message.contains("out of range"), "{e}");

    let e = err(&BASE.replace("forward = \"tunnel\"", "forward = \"teleport\""));
    assert_eq!(e.field, "service[1].real_server[0].forward");

    let e = err(&BASE.replace("profile = \"safe\"", "profile = \"linux-9\""));
    assert_eq!((e.field.as_str(), e.line), ("engine.profile", 3));

    let e = err(&BASE.replace("weight = 2", "weight = -1"));
    assert_eq!(e.field, "service[0].real_server[1].weight");

    // The Maglev table (our extension) must have a prime size the engine supports.
    let e = err(&BASE.replace(
        "profile = \"safe\"",
        "profile = \"safe\"\nmaglev_table_size = 65536",
    ));
    assert_eq!(
        (e.field.as_str(), e.line),
        ("engine.maglev_table_size", 4),
        "{e}"
    );
    let ok = parse(&BASE.replace(
        "profile = \"safe\"",
        "profile = \"safe\"\nmaglev_table_size = 65537\nmaglev_seed = 7",
    ))
    .unwrap();
    let m = ok.engine_config(None).sched.maglev.unwrap();
    assert_eq!((m.table_size, m.seed), (65537, Some(7)));

    // The raw output sockets' mark must be a mark: 0 is what every unmarked packet has.
    let e = err(&BASE.replace("[dataplane]", "[dataplane]\noutput_mark = 0"));
    assert_eq!(e.field, "dataplane.output_mark", "{e}");
    assert!(e.message.contains("must not be 0"), "{e}");
    let ok = parse(&BASE.replace("[dataplane]", "[dataplane]\noutput_mark = 0x10"));
    assert_eq!(ok.unwrap().dataplane.output_mark, 0x10);
    assert_eq!(parse("").unwrap().dataplane.output_mark, 0x7373);

    // Crash-recovery snapshots: every 200 ms unless told; 0 turns them off; a cadence that
    // would fork thousands of times a second, or keep nothing for minutes, is refused.
    assert_eq!(parse("").unwrap().dataplane.snapshot_ms, 200);
    for v in [0, 10, 60_000] {
        let ok = parse(&BASE.replace("[dataplane]", &format!("[dataplane]\nsnapshot_ms = {v}")));
        assert_eq!(ok.unwrap().dataplane.snapshot_ms, v);
    }
    for v in [1, 9, 60_001] {
        let e = err(&BASE.replace("[dataplane]", &format!("[dataplane]\nsnapshot_ms = {v}")));
        assert_eq!(e.field, "dataplane.snapshot_ms", "{e}");
        assert!(e.message.contains("10..=60000"), "{e}");
    }

    // Output modes: raw sockets by default; an unknown mode names the field and the modes
    // there are.
    use crate::config::Output;
    assert_eq!(parse("").unwrap().dataplane.output, Output::Raw);
    for (text, mode) in [
        ("packet", Output::Packet),
        ("raw", Output::Raw),
        ("tun", Output::Tun),
    ] {
        let line = format!("[dataplane]\noutput = \"{text}\"");
        let ok = parse(&BASE.replace("[dataplane]", &line)).unwrap();
        assert_eq!(ok.dataplane.output, mode, "{text}");
    }
    let e = err(&BASE.replace("[dataplane]", "[dataplane]\noutput = \"xdp\""));
    assert_eq!(e.field, "dataplane.output", "{e}");
    assert!(e.message.contains("'xdp' is not packet, raw or tun"), "{e}");
}

#[test]
fn engine_refusals_are_found_before_anything_runs() {
    // A duplicate real server: the scratch engine refuses the second AddDest.
    let dup = BASE.replace("addr = \"10.2.2.2\"", "addr = \"10.2.1.2\"");
    let e = err(&dup);
    assert_eq!(e.field, "service[0].real_server[1]", "{e}");
    assert_eq!(e.line, 30);
    assert!(e.message.contains("Destination already exists"), "{e}");
    // Thresholds out of order.
    let t = BASE.replace("weight = 2", "weight = 2\nu_threshold = 5\nl_threshold = 9");
    let e = err(&t);
    assert_eq!(e.field, "service[0].real_server[1]", "{e}");
    // Mixed families outside tunnels.
    let m = BASE.replace("addr = \"10.2.2.2\"", "addr = \"fd00::2\"");
    assert!(err(&m).message.contains("address family"));
    // Duplicate services.
    let d = format!("{BASE}\n[[service]]\nvip = \"10.0.0.100\"\nport = 80\n");
    let e = err(&d);
    assert_eq!(e.field, "service[2]");
    assert!(e.message.contains("Service already exists"));
}

#[test]
fn a_fresh_engine_built_from_the_file_needs_no_change() {
    let (e, cfg) = engine_from(BASE);
    assert_eq!(diff_of(&e, &cfg), Vec::<Command>::new());
}

#[test]
fn a_weight_change_is_one_edit_and_keeps_connections() {
    let (mut e, _) = engine_from(BASE);
    let client: IpAddr = "10.1.0.2".parse().unwrap();
    let vip: IpAddr = "10.0.0.100".parse().unwrap();
    for port in 40000..40010 {
        let d = e.handle_packet(
            Instant::from_millis(10),
            &PacketMeta::tcp((client, port), (vip, 80), 0x02, 1, 0),
        );
        assert!(matches!(d, Decision::Forward(_)), "{d:?}");
    }
    assert_eq!(e.conns().len(), 10);
    let new = parse(&BASE.replace("weight = 2", "weight = 0")).unwrap();
    let cmds = diff_of(&e, &new);
    let mut d = rvs_core::dest::DestConfig::new("10.2.2.2".parse().unwrap(), 80);
    d.fwd = ForwardMethod::Masq;
    d.weight = 0;
    assert_eq!(cmds, vec![Command::EditDest(tcp80(), d)]);
    apply_all(&mut e, cmds);
    assert_eq!(e.conns().len(), 10, "connections survive the edit");
    assert_eq!(diff_of(&e, &new), vec![]);
}

#[test]
fn added_and_removed_real_servers() {
    let (mut e, _) = engine_from(BASE);
    let text = BASE
        .replace(
            "[[service.real_server]]\naddr = \"10.2.1.2\"\nweight = 1\n",
            "",
        )
        .replace(
            "weight = 2\n",
            "weight = 2\n\n[[service.real_server]]\naddr = \"10.2.3.2\"\nport = 8080\n",
        );
    let new = parse(&text).unwrap();
    let cmds = diff_of(&e, &new);
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert_eq!(
        cmds[0],
        Command::DelDest(tcp80(), "10.2.1.2".parse().unwrap(), 80)
    );
    assert!(matches!(&cmds[1], Command::AddDest(k, d) if *k == tcp80() && d.port == 8080));
    apply_all(&mut e, cmds);
    assert_eq!(diff_of(&e, &new), vec![]);
}

#[test]
fn a_scheduler_change_edits_the_service_only() {
    let (e, _) = engine_from(BASE);
    let new = parse(&BASE.replace("scheduler = \"rr\"", "scheduler = \"wlc\"")).unwrap();
    let cmds = diff_of(&e, &new);
    assert_eq!(cmds.len(), 1);
    assert!(
        matches!(&cmds[0], Command::EditService(c) if c.scheduler == "wlc" && c.key == tcp80())
    );
}

#[test]
fn persistence_and_flags_changes_are_edits() {
    let (mut e, _) = engine_from(BASE);
    let new = parse(&BASE.replace(
        "scheduler = \"rr\"",
        "scheduler = \"sh\"\npersistent = 60\nnetmask = \"255.255.255.0\"\nsched_flags = [\"sh-port\"]",
    ))
    .unwrap();
    let cmds = diff_of(&e, &new);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    apply_all(&mut e, cmds);
    assert_eq!(diff_of(&e, &new), vec![]);
}

#[test]
fn removed_services_are_deleted_and_new_ones_added_whole() {
    let (mut e, _) = engine_from(BASE);
    let cut = BASE.find("[[service]]\nproto = \"udp\"").unwrap();
    let text = format!(
        "{}[[service]]\nproto = \"tcp\"\nvip = \"10.0.0.101\"\nport = 443\n\n[[service.real_server]]\naddr = \"10.2.1.2\"\nforward = \"fullnat\"\n",
        &BASE[..cut]
    );
    let new = parse(&text).unwrap();
    let cmds = diff_of(&e, &new);
    assert_eq!(cmds.len(), 3, "{cmds:?}");
    assert!(matches!(&cmds[0], Command::DelService(k) if k.is_v6()));
    assert!(matches!(&cmds[1], Command::AddService(c) if c.key.port() == 443));
    assert!(matches!(&cmds[2], Command::AddDest(_, d) if d.fwd == ForwardMethod::FullNat));
    apply_all(&mut e, cmds);
    assert_eq!(diff_of(&e, &new), vec![]);
}

#[test]
fn sysctls_and_timeouts_are_declarative() {
    let (mut e, _) = engine_from(BASE);
    // The file no longer sets expire_nodest_conn or tcp: both return to the defaults.
    let text = BASE
        .replace("expire_nodest_conn = 1", "conn_reuse_mode = 0")
        .replace("tcp = 600", "udp = 30");
    let new = parse(&text).unwrap();
    let cmds = diff_of(&e, &new);
    assert_eq!(
        cmds,
        vec![
            Command::Sysctl("net.ipv4.vs.conn_reuse_mode".into(), "0".into()),
            Command::Sysctl("net.ipv4.vs.expire_nodest_conn".into(), "0".into()),
            Command::SetTimeouts(Timeouts {
                tcp: 900,
                tcpfin: 0,
                udp: 30
            }),
        ]
    );
    apply_all(&mut e, cmds);
    assert_eq!(diff_of(&e, &new), vec![]);
    // A run-time change is reverted by the next reload.
    e.apply(
        Instant::from_secs(2),
        Command::Sysctl("sloppy_tcp".into(), "1".into()),
    )
    .unwrap();
    assert_eq!(
        diff_of(&e, &new),
        vec![Command::Sysctl("net.ipv4.vs.sloppy_tcp".into(), "0".into())]
    );
}

#[test]
fn services_added_at_run_time_are_removed_by_a_reload() {
    let (mut e, cfg) = engine_from(BASE);
    let k = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "10.0.0.200".parse().unwrap(),
        port: 22,
    };
    e.apply(
        Instant::ZERO,
        Command::AddService(rvs_core::service::ServiceConfig::new(k)),
    )
    .unwrap();
    assert_eq!(diff_of(&e, &cfg), vec![Command::DelService(k)]);
}

#[test]
fn restart_only_fields_are_refused_on_reload() {
    let running = parse(BASE).unwrap();
    let new = parse(&BASE.replace("conn_max = 4096", "conn_max = 8192")).unwrap();
    let e = new
        .restart_needed(&running)
        .expect("conn_max needs a restart");
    assert_eq!((e.line, e.field.as_str()), (4, "engine.conn_max"), "{e}");
    let new = parse(&BASE.replace("tun_name = \"rvst0\"", "tun_name = \"rvst1\"")).unwrap();
    let e = new
        .restart_needed(&running)
        .expect("dataplane needs a restart");
    assert_eq!(e.field, "dataplane");
    assert!(running.restart_needed(&running).is_none());
    let ok = parse(&BASE.replace("weight = 2", "weight = 3")).unwrap();
    assert!(ok.restart_needed(&running).is_none());
}

#[test]
fn fwmark_services_and_v6_netmasks() {
    let text = "[[service]]\nfwmark = 7\nipv6 = true\nscheduler = \"rr\"\npersistent = 30\nnetmask = 64\n\n[[service.real_server]]\naddr = \"fd00::9\"\nport = 0\n";
    let c = parse(text).unwrap();
    assert_eq!(
        c.services[0].cfg.key,
        ServiceKey::Fwmark { v6: true, mark: 7 }
    );
    assert_eq!(c.services[0].cfg.netmask, rvs_core::addr::Netmask::V6(64));
    let e = err("[[service]]\nfwmark = 7\nproto = \"tcp\"\n");
    assert_eq!(e.field, "service[0].proto");
    let e = err("[[service]]\nscheduler = \"rr\"\n");
    assert_eq!(e.field, "service[0].vip");
}

#[test]
fn describe_is_readable() {
    let d = rvs_core::dest::DestConfig::new("10.2.1.2".parse().unwrap(), 80);
    assert_eq!(
        describe(&Command::AddDest(tcp80(), d)),
        "add real server 10.2.1.2:80 to TCP 10.0.0.100:80 (Route, weight 1)"
    );
}

#[test]
fn the_example_file_is_valid() {
    let text = include_str!("../../examples/rvs.toml");
    let c = parse(text).unwrap();
    assert_eq!(c.services.len(), 2);
    assert_eq!(c.services[0].dests[1].u_threshold, 1000);
    assert_eq!(c.dataplane.http_listen.unwrap().port(), 9180);
}

/// packaging/debian/rvs/rvs.toml, which the Debian package installs as /etc/rvs/rvs.toml:
/// valid, no service, the profile `safe`, and the socket `rvsadm` looks for by default.
#[test]
fn the_packaged_default_file_is_valid() {
    let text = include_str!("../../../../packaging/debian/rvs/rvs.toml");
    let c = parse(text).unwrap();
    assert!(c.services.is_empty(), "{:?}", c.services);
    assert_eq!(c.engine.profile, Profile::Safe);
    assert_eq!(
        c.dataplane.admin_socket,
        Path::new(crate::proto::DEFAULT_SOCKET)
    );
    assert!(c.inert_sysctls().is_empty());
}

#[test]
fn inert_sysctls_set_away_from_their_default_are_named() {
    let c = Config::parse(
        Path::new("t.toml"),
        "[sysctl]\npmtu_disc = 0\nsync_version = 1\nexpire_nodest_conn = 1\n",
    )
    .unwrap();
    let notes = c.inert_sysctls();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("pmtu_disc = 0"), "{notes:?}");
    assert!(notes[0].contains("no effect"), "{notes:?}");
}

/// `rvs daemon --kubernetes` / `--service-proxy-name`: a `[kubernetes]` section with its
/// defaults when the file has none, the Kubernetes rule priority unless the file sets one,
/// and the proxy name over the file's.
#[test]
fn command_line_overrides_turn_the_service_proxy_on() {
    let plain = Config::parse(Path::new("a.toml"), "").unwrap();
    assert!(plain.kubernetes.is_none());
    assert_eq!(plain.dataplane.rule_priority, 7373);
    let k = plain.clone().with_overrides(Overrides {
        kubernetes: true,
        service_proxy_name: None,
    });
    assert_eq!(k.kubernetes, Some(KubernetesSection::default()));
    assert_eq!(k.dataplane.rule_priority, KUBERNETES_RULE_PRIORITY);
    let named = plain.with_overrides(Overrides {
        kubernetes: false,
        service_proxy_name: Some("rvs".into()),
    });
    assert_eq!(
        named.kubernetes.unwrap().service_proxy_name.as_deref(),
        Some("rvs")
    );
    let given = Config::parse(Path::new("b.toml"), "[dataplane]\nrule_priority = 500\n")
        .unwrap()
        .with_overrides(Overrides {
            kubernetes: true,
            service_proxy_name: None,
        });
    assert_eq!(given.dataplane.rule_priority, 500);
    // A [kubernetes] section with a bad field names it.
    let e = Config::parse(
        Path::new("c.toml"),
        "[kubernetes]\nendpoint_policy = \"fast\"\n",
    )
    .unwrap_err();
    assert_eq!(
        (e.line, e.field.as_str()),
        (2, "kubernetes.endpoint_policy")
    );
}
