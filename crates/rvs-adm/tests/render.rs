//! Renderer cases the golden captures do not exercise: sorting quirks and `--nosort`,
//! `--tun-info`, IPv6 and fwmark variants, number suffixes, truncation, names.

mod common;

use common::{dest, service, tcp, udp};
use rvs_adm::ListOptions;
use rvs_adm::render;
use rvs_adm::resolve::StaticResolver;
use rvs_core::addr::Netmask;
use rvs_core::dest::{ForwardMethod, TunnelCsum, TunnelInfo, TunnelType};
use rvs_core::service::{ServiceFlags, ServiceKey};
use rvs_core::snapshot::{ConnView, InfoView, ServiceView};
use rvs_core::stats::Counters;

use ForwardMethod::{Masq, Route, Tunnel};

fn info() -> InfoView {
    InfoView {
        version: (1, 2, 1),
        conn_tab_size: 4096,
        conn_count: 0,
        conn_max: 0,
    }
}

fn none() -> StaticResolver {
    StaticResolver::empty()
}

fn numeric() -> ListOptions {
    ListOptions {
        numeric: true,
        ..ListOptions::default()
    }
}

/// Kernel order: services as the view gives them, real servers newest first.
fn quirky() -> Vec<ServiceView> {
    vec![
        service(
            tcp("192.168.1.2", 80),
            "rr",
            0,
            vec![
                dest("10.0.0.100", 80, Masq, 1),
                dest("10.0.0.5", 80, Masq, 1),
                dest("192.168.1.2", 80, Masq, 1),
                dest("172.16.0.1", 80, Masq, 1),
            ],
        ),
        service(tcp("10.0.0.100", 80), "rr", 0, vec![]),
        service(ServiceKey::Fwmark { v6: true, mark: 2 }, "rr", 0, vec![]),
        service(ServiceKey::Fwmark { v6: false, mark: 2 }, "rr", 0, vec![]),
        service(udp("10.0.0.1", 53), "rr", 0, vec![]),
        service(tcp("fd00::1", 80), "rr", 0, vec![]),
    ]
}

#[test]
fn sorting_quirk_and_nosort() {
    let got = render::listing(&info(), &quirky(), &numeric(), &none());
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.1.2:80 rr
  -> 172.16.0.1:80                Masq    1      0          0         
  -> 192.168.1.2:80               Masq    1      0          0         
  -> 10.0.0.5:80                  Masq    1      0          0         
  -> 10.0.0.100:80                Masq    1      0          0         
TCP  10.0.0.100:80 rr
UDP  10.0.0.1:53 rr
TCP  [fd00::1]:80 rr
FWM  2 rr
FWM  2 IPv6 rr
";
    assert_eq!(got, want);
    let o = ListOptions {
        nosort: true,
        ..numeric()
    };
    let got = render::listing(&info(), &quirky(), &o, &none());
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.1.2:80 rr
  -> 10.0.0.100:80                Masq    1      0          0         
  -> 10.0.0.5:80                  Masq    1      0          0         
  -> 192.168.1.2:80               Masq    1      0          0         
  -> 172.16.0.1:80                Masq    1      0          0         
TCP  10.0.0.100:80 rr
FWM  2 IPv6 rr
FWM  2 rr
UDP  10.0.0.1:53 rr
TCP  [fd00::1]:80 rr
";
    assert_eq!(got, want);
}

#[test]
fn service_line_variants_and_tun_info() {
    let mut a = service(
        tcp("10.0.0.1", 80),
        "wrr",
        ServiceFlags::PERSISTENT | ServiceFlags::SCHED1 | ServiceFlags::SCHED3,
        vec![
            DestViewExt::tun(
                dest("10.0.1.4", 80, Tunnel, 1),
                TunnelType::Gre,
                0,
                TunnelCsum::Csum,
            ),
            DestViewExt::tun(
                dest("10.0.1.3", 80, Tunnel, 2),
                TunnelType::Gue,
                6080,
                TunnelCsum::RemCsum,
            ),
            DestViewExt::tun(
                dest("10.0.1.2", 80, Tunnel, 3),
                TunnelType::Ipip,
                0,
                TunnelCsum::NoCsum,
            ),
            dest("10.0.1.1", 80, Route, 0),
        ],
    );
    a.timeout = 600;
    a.netmask = Netmask::V4(0xffff_ff00);
    a.pe_name = Some("sip".into());
    let mut b = service(
        tcp("fd00::1", 443),
        "sh",
        ServiceFlags::PERSISTENT | ServiceFlags::SCHED3,
        vec![dest("fd00::2", 443, ForwardMethod::Local, 1)],
    );
    b.timeout = 60;
    b.netmask = Netmask::V6(64);
    let c = service(
        ServiceKey::Fwmark { v6: false, mark: 9 },
        "rr",
        ServiceFlags::ONEPACKET,
        vec![],
    );
    let o = ListOptions {
        tun_info: true,
        ..numeric()
    };
    let got = render::listing(&info(), &[a.clone(), b.clone(), c.clone()], &o, &none());
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn
TCP  10.0.0.1:80 wrr (flag-1,flag-3) persistent 600 mask 255.255.255.0 pe sip
  -> 10.0.1.1:80                  Route   n/a           0      0          0         
  -> 10.0.1.2:80                  Tunnel  ipip          3      0          0         
  -> 10.0.1.3:80                  Tunnel  gue:6080:r+c  2      0          0         
  -> 10.0.1.4:80                  Tunnel  gre:+c        1      0          0         
TCP  [fd00::1]:443 sh () persistent 60 mask 64
  -> [fd00::2]:443                Local   n/a           1      0          0         
FWM  9 rr ops
";
    assert_eq!(got, want);
    let saved = render::save::save(&[a, b, c], true, &none());
    let want = "\
-A -t 10.0.0.1:80 -s wrr -p 600 -M 255.255.255.0 --pe sip -b flag-1,flag-3
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 0
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -i -w 3 --tun-type ipip
-a -t 10.0.0.1:80 -r 10.0.1.3:80 -i -w 2 --tun-type gue --tun-port 6080 --tun-remcsum
-a -t 10.0.0.1:80 -r 10.0.1.4:80 -i -w 1 --tun-type gre --tun-csum
-A -t [fd00::1]:443 -s sh -p 60 -M 64 -b 
-a -t [fd00::1]:443 -r [fd00::2]:443 -g -w 1
-A -f 9 -s rr -o
";
    assert_eq!(saved, want);
}

struct DestViewExt;
impl DestViewExt {
    fn tun(
        mut d: rvs_core::snapshot::DestView,
        kind: TunnelType,
        port: u16,
        csum: TunnelCsum,
    ) -> rvs_core::snapshot::DestView {
        d.tunnel = TunnelInfo { kind, port, csum };
        d
    }
}

#[test]
fn big_numbers_and_truncation() {
    let mut s = service(
        tcp("10.0.0.1", 80),
        "rr",
        0,
        vec![dest("10.0.0.2", 80, Masq, 1)],
    );
    s.stats = Counters {
        conns: 123_456_789,
        inpkts: 12_345_678_901,
        outpkts: 123_456_789_012_345,
        inbytes: 99_999_999,
        outbytes: u64::MAX,
    };
    s.dests[0].rates.cps = 123_456_789;
    s.dests[0].rates.inbps = 1_000_000_000;
    let o = ListOptions {
        stats: true,
        ..numeric()
    };
    let got = render::single_service(&s, &o, &none());
    assert_eq!(
        got.lines().nth(2).unwrap(),
        // 8 digits before a suffix leave no separating space, exactly as ipvsadm's %8lluT.
        "TCP  10.0.0.1:80                   123456K   12345M     123T 9999999918446744T"
    );
    let o = ListOptions {
        rate: true,
        exact: true,
        ..numeric()
    };
    let got = render::single_service(&s, &o, &none());
    assert_eq!(
        got.lines().nth(3).unwrap(),
        "  -> 10.0.0.2:80                  123456789        0        0 1000000000        0"
    );
    // Long names: service column cut at 33 bytes, real-server column at 28 (IPv4 only).
    let names = StaticResolver::empty()
        .host(
            "10.0.0.1".parse().unwrap(),
            &["a-very-long-virtual-host-name.example.org"],
        )
        .host(
            "10.0.0.2".parse().unwrap(),
            &["a-very-long-real-server-name.example.org"],
        );
    let got = render::single_service(&s, &ListOptions::default(), &names);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[2], "TCP  a-very-long-virtual-host-nam rr");
    assert_eq!(
        lines[3],
        "  -> a-very-long-real-server-name Masq    1      0          0         "
    );
}

#[test]
fn connections_names_ipv6_and_long_expiry() {
    let conn = |proto: &str, c: &str, cp, v: &str, vp, d: &str, dp, state: &str, ms| ConnView {
        proto: proto.into(),
        caddr: c.parse().unwrap(),
        cport: cp,
        vaddr: v.parse().unwrap(),
        vport: vp,
        daddr: d.parse().unwrap(),
        dport: dp,
        state: state.into(),
        expires_ms: ms,
        template: false,
        fwd: Masq,
        local: None,
    };
    let conns = vec![
        conn(
            "TCP",
            "10.0.0.5",
            53122,
            "10.0.0.100",
            80,
            "192.168.1.2",
            80,
            "ESTABLISHED",
            7_200_999,
        ),
        conn(
            "UDP",
            "fd00::5",
            40000,
            "fd00::100",
            53,
            "fd00::2",
            53,
            "UDP",
            999,
        ),
        conn(
            "IP",
            "10.0.0.0",
            0,
            "0.0.0.1",
            0,
            "192.168.1.2",
            0,
            "NONE",
            359_000,
        ),
    ];
    let names = StaticResolver::empty()
        .host("192.168.1.2".parse().unwrap(), &["rs1"])
        .service("http", 80, "tcp", &[])
        .service("domain", 53, "udp", &[]);
    let got = render::conns::conns(&conns, false, false, &names);
    let want = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 120:00 ESTABLISHED 10.0.0.5:53122     10.0.0.100:http    rs1:http
UDP 00:00  UDP         [fd00::5]:40000    [fd00::100]:domain [fd00::2]:domain
IP  05:59  NONE        10.0.0.0:0         0.0.0.1:0          rs1:0
";
    assert_eq!(got, want);
    let got = render::proc_conn::proc_ip_vs_conn(&conns[1..2]);
    assert_eq!(
        got.lines().nth(1).unwrap(),
        "UDP fd00:0000:0000:0000:0000:0000:0000:0005 9C40 fd00:0000:0000:0000:0000:0000:0000:0100 0035 fd00:0000:0000:0000:0000:0000:0000:0002 0035 UDP               0"
    );
}

#[test]
fn proc_ip_vs_ipv6_persistence_and_fwmark_ops() {
    let mut a = service(tcp("fd00::1", 80), "wlc", ServiceFlags::PERSISTENT, vec![]);
    a.timeout = 300;
    a.netmask = Netmask::V6(64);
    let b = service(
        ServiceKey::Fwmark {
            v6: false,
            mark: 0x10,
        },
        "none",
        ServiceFlags::ONEPACKET,
        vec![],
    );
    let got = render::proc_ip_vs::proc_ip_vs(&info(), &[a, b], 100);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[3],
        "TCP  [fd00:0000:0000:0000:0000:0000:0000:0001]:0050 wlc persistent 30000 40000000"
    );
    assert_eq!(lines[4], "FWM  00000010 none ops ");
}

#[test]
fn daemon_lines() {
    use rvs_adm::args::{DaemonConfig, DaemonState};
    let d = DaemonConfig {
        state: DaemonState::Master,
        mcast_ifn: "eth0".into(),
        syncid: 1,
        sync_maxlen: 1472,
        mcast_group: Some("224.0.0.81".parse().unwrap()),
        mcast_port: 8848,
        mcast_ttl: 1,
    };
    let b = DaemonConfig {
        state: DaemonState::Backup,
        mcast_ifn: "eth1".into(),
        syncid: 0,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    };
    assert_eq!(
        render::daemon::daemons(&[d, b]),
        "master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\nbackup sync daemon (mcast=eth1, syncid=0)\n"
    );
    assert_eq!(render::daemon::daemons(&[]), "");
}
