//! Command-line parsing: every command and option, every error path, with ipvsadm's exact
//! messages and exit statuses.

mod common;

use std::net::IpAddr;

use common::{MemBackend, argv, run_cmd, tcp, udp};
use rvs_adm::args::{DaemonState, ListOptions, Request, parse};
use rvs_adm::resolve::StaticResolver;
use rvs_core::addr::Netmask;
use rvs_core::command::{Command, Timeouts};
use rvs_core::dest::{DestConfig, ForwardMethod, TunnelCsum, TunnelInfo, TunnelType};
use rvs_core::service::{Protocol, ServiceConfig, ServiceFlags, ServiceKey};

fn names() -> StaticResolver {
    StaticResolver::empty()
        .host("10.0.0.9".parse().unwrap(), &["web", "web.example"])
        .host("fd00::9".parse().unwrap(), &["web6"])
        .service("http", 80, "tcp", &["www"])
        .service("domain", 53, "udp", &[])
}

fn p(cmd: &str) -> Request {
    match parse(&argv(cmd), &names()) {
        Ok(r) => r,
        Err(e) => panic!("{cmd}: {e:?}"),
    }
}

/// (stderr text, exit status) of a refused command line.
fn e(cmd: &str) -> (String, i32) {
    match parse(&argv(cmd), &names()) {
        Ok(r) => panic!("{cmd}: accepted as {r:?}"),
        Err(e) => (e.message, e.status),
    }
}

fn fail(cmd: &str, msg: &str) {
    assert_eq!(e(cmd), (format!("{msg}\n"), 2), "{cmd}");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn svc(cmd: &str) -> ServiceConfig {
    match p(cmd) {
        Request::Apply(Command::AddService(c) | Command::EditService(c)) => c,
        r => panic!("{cmd}: {r:?}"),
    }
}

fn dst(cmd: &str) -> (ServiceKey, DestConfig) {
    match p(cmd) {
        Request::Apply(Command::AddDest(k, d) | Command::EditDest(k, d)) => (k, d),
        r => panic!("{cmd}: {r:?}"),
    }
}

fn list(cmd: &str) -> ListOptions {
    match p(cmd) {
        Request::List(o) => o,
        r => panic!("{cmd}: {r:?}"),
    }
}

const TRYHELP: &str = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n";

#[test]
fn commands() {
    let key = tcp("10.0.0.1", 80);
    assert_eq!(
        p("ipvsadm -A -t 10.0.0.1:80"),
        Request::Apply(Command::AddService(ServiceConfig::new(key)))
    );
    assert_eq!(
        p("ipvsadm --edit-service --tcp-service 10.0.0.1:80 -s rr"),
        Request::Apply(Command::EditService(
            ServiceConfig::new(key).scheduler("rr")
        ))
    );
    assert_eq!(
        p("ipvsadm -D -t 10.0.0.1:80"),
        Request::Apply(Command::DelService(key))
    );
    assert_eq!(
        p("ipvsadm --delete-service -t 10.0.0.1:80"),
        p("ipvsadm -D -t 10.0.0.1:80")
    );
    assert_eq!(p("ipvsadm -C"), Request::Apply(Command::Flush));
    assert_eq!(p("ipvsadm --clear"), Request::Apply(Command::Flush));
    assert_eq!(p("ipvsadm -R"), Request::Restore);
    assert_eq!(p("ipvsadm --restore"), Request::Restore);
    assert_eq!(p("ipvsadm -S"), Request::Save { numeric: false });
    assert_eq!(p("ipvsadm -Sn"), Request::Save { numeric: true });
    assert_eq!(p("ipvsadm --save -n"), Request::Save { numeric: true });
    assert_eq!(
        p("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1"),
        Request::Apply(Command::AddDest(key, DestConfig::new(ip("10.0.1.1"), 80)))
    );
    assert_eq!(
        p("ipvsadm --edit-server -t 10.0.0.1:80 --real-server 10.0.1.1:80"),
        Request::Apply(Command::EditDest(key, DestConfig::new(ip("10.0.1.1"), 80)))
    );
    assert_eq!(
        p("ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.1"),
        Request::Apply(Command::DelDest(key, ip("10.0.1.1"), 80))
    );
    assert_eq!(
        p("ipvsadm --delete-server -t 10.0.0.1:80 -r 10.0.1.1:8080"),
        Request::Apply(Command::DelDest(key, ip("10.0.1.1"), 8080))
    );
    assert_eq!(p("ipvsadm -L"), Request::List(ListOptions::default()));
    assert_eq!(p("ipvsadm -l"), Request::List(ListOptions::default()));
    assert_eq!(p("ipvsadm --list"), Request::List(ListOptions::default()));
    assert_eq!(p("ipvsadm"), Request::List(ListOptions::default()));
    assert_eq!(p("ipvsadm -Z"), Request::Apply(Command::Zero(None)));
    assert_eq!(
        p("ipvsadm --zero -t 10.0.0.1:80"),
        Request::Apply(Command::Zero(Some(key)))
    );
    assert_eq!(
        p("ipvsadm -Z -t 0.0.0.0:0"),
        Request::Apply(Command::Zero(None)),
        "libipvs zeroes everything for an all-zero service"
    );
    assert_eq!(
        p("ipvsadm --set 600 60 120"),
        Request::Apply(Command::SetTimeouts(Timeouts {
            tcp: 600,
            tcpfin: 60,
            udp: 120
        }))
    );
    assert_eq!(p("ipvsadm -h"), Request::Help);
    assert_eq!(p("ipvsadm --help -X --whatever"), Request::Help);
    assert_eq!(p("ipvsadm -v"), Request::Version);
    assert_eq!(p("ipvsadm --version"), Request::Version);
    assert_eq!(p("ipvsadm -L --timeout"), Request::Timeout);
    assert_eq!(p("ipvsadm -L --daemon"), Request::Daemon);
    match p("ipvsadm --start-daemon master") {
        Request::StartDaemon(d) => {
            assert_eq!(d.state, DaemonState::Master);
            assert_eq!(d.mcast_ifn, "eth0");
        }
        r => panic!("{r:?}"),
    }
    match p(
        "ipvsadm --start-daemon backup --mcast-interface eth1 --syncid 7 --sync-maxlen 1400 \
         --mcast-group 224.0.0.82 --mcast-port 8849 --mcast-ttl 2",
    ) {
        Request::StartDaemon(d) => {
            assert_eq!(d.state, DaemonState::Backup);
            assert_eq!(
                (
                    d.mcast_ifn.as_str(),
                    d.syncid,
                    d.sync_maxlen,
                    d.mcast_port,
                    d.mcast_ttl
                ),
                ("eth1", 7, 1400, 8849, 2)
            );
            assert_eq!(d.mcast_group, Some(ip("224.0.0.82")));
        }
        r => panic!("{r:?}"),
    }
    match p("ipvsadm --stop-daemon=backup --syncid 3") {
        Request::StopDaemon(d) => assert_eq!((d.state, d.syncid), (DaemonState::Backup, 3)),
        r => panic!("{r:?}"),
    }
}

#[test]
fn service_selectors_and_names() {
    assert_eq!(svc("ipvsadm -A -t web:http").key, tcp("10.0.0.9", 80));
    assert_eq!(
        svc("ipvsadm -A -t web.example:www").key,
        tcp("10.0.0.9", 80)
    );
    assert_eq!(
        svc("ipvsadm -A -u 10.0.0.1:domain").key,
        udp("10.0.0.1", 53)
    );
    fail(
        "ipvsadm -A -u 10.0.0.1:http",
        "illegal virtual server address[:port] specified",
    );
    assert_eq!(
        svc("ipvsadm -A --sctp-service 10.0.0.1:3868").key,
        ServiceKey::Addr {
            proto: Protocol::Sctp,
            addr: ip("10.0.0.1"),
            port: 3868
        }
    );
    assert_eq!(svc("ipvsadm -A -t [fd00::1]:443").key, tcp("fd00::1", 443));
    assert_eq!(svc("ipvsadm -A -t [fd00::1]:443").netmask, Netmask::V6(128));
    // A bare IPv6 address has no port; a port needs the brackets.
    assert_eq!(svc("ipvsadm -A -t fd00::1 -p").key, tcp("fd00::1", 0));
    fail(
        "ipvsadm -A -t [fd00::1]",
        "illegal virtual server address[:port] specified",
    );
    // IPv6 host names are not looked up (gethostbyname is IPv4 only).
    fail(
        "ipvsadm -A -t web6:80",
        "illegal virtual server address[:port] specified",
    );
    // inet_aton forms.
    assert_eq!(svc("ipvsadm -A -t 10.1:80").key, tcp("10.0.0.1", 80));
    assert_eq!(svc("ipvsadm -A -t 0x0a000001:80").key, tcp("10.0.0.1", 80));
    fail(
        "ipvsadm -A -t 80",
        "illegal virtual server address[:port] specified",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:65536",
        "illegal virtual server address[:port] specified",
    );
    fail(
        "ipvsadm -A -t nosuchhost:80",
        "illegal virtual server address[:port] specified",
    );
    assert_eq!(
        svc("ipvsadm -A -f 1").key,
        ServiceKey::Fwmark { v6: false, mark: 1 }
    );
    let c = svc("ipvsadm -A --fwmark-service 4294967295 -6");
    assert_eq!(
        c.key,
        ServiceKey::Fwmark {
            v6: true,
            mark: u32::MAX
        }
    );
    assert_eq!(c.netmask, Netmask::V6(128));
    fail("ipvsadm -A -f 0", "invalid fwmark value `0' specified");
    fail(
        "ipvsadm -A -f 4294967296",
        "invalid fwmark value `4294967296' specified",
    );
    fail("ipvsadm -A -f x1", "invalid fwmark value `x1' specified");
    assert_eq!(e("ipvsadm -A -6 -f 1"), ("-6 used before -f\n\n".into(), 2));
    fail(
        "ipvsadm -A -t 10.0.0.1:80 -u 10.0.0.1:80",
        "multiple 'service-address' options specified",
    );
}

#[test]
fn service_options_and_defaults() {
    // Edit semantics: what is not given takes its default (wlc, no flags, /32).
    assert_eq!(
        svc("ipvsadm -E -t 10.0.0.1:80"),
        ServiceConfig::new(tcp("10.0.0.1", 80))
    );
    let c = svc("ipvsadm -A -t 10.0.0.1:80 -s rr -p -M 255.255.255.0");
    assert_eq!(c.scheduler, "rr");
    assert_eq!(
        (c.flags, c.timeout),
        (ServiceFlags(ServiceFlags::PERSISTENT), 360)
    );
    assert_eq!(c.netmask, Netmask::V4(0xffff_ff00));
    assert_eq!(svc("ipvsadm -A -t 10.0.0.1:0 -p 60").timeout, 60);
    assert_eq!(svc("ipvsadm -A -t 10.0.0.1:0 -p60").timeout, 60);
    assert_eq!(svc("ipvsadm -A -t 10.0.0.1:0 --persistent=60").timeout, 60);
    assert_eq!(svc("ipvsadm -A -t 10.0.0.1:0 --persistent").timeout, 360);
    assert_eq!(
        svc("ipvsadm -A -t 10.0.0.1:0 -p 2678400").timeout,
        2_678_400
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:0 -p 2678401",
        "invalid timeout value `2678401' specified",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:0 -p 0",
        "invalid timeout value `0' specified",
    );
    // An optional value is taken from the next word unless it starts with '-'.
    fail(
        "ipvsadm -A -t 10.0.0.1:0 -p rr",
        "invalid timeout value `rr' specified",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 -M nomask",
        "illegal virtual server persistent mask specified",
    );
    assert_eq!(
        svc("ipvsadm -A -t [fd00::1]:80 -p -M 64").netmask,
        Netmask::V6(64)
    );
    fail(
        "ipvsadm -A -t [fd00::1]:80 -M 129",
        "illegal ipv6 netmask specified",
    );
    fail(
        "ipvsadm -A -t [fd00::1]:80 -M 255.255.255.0",
        "illegal ipv6 netmask specified",
    );
    // -M is read for the family known when it is seen, and a later IPv6 -t resets it.
    assert_eq!(
        svc("ipvsadm -A -M 255.0.0.0 -t [fd00::1]:80").netmask,
        Netmask::V6(128)
    );
    assert_eq!(
        svc("ipvsadm -A -u 10.0.0.1:53 -o").flags,
        ServiceFlags(ServiceFlags::ONEPACKET)
    );
    assert_eq!(
        svc("ipvsadm -A -f 3 --ops").flags,
        ServiceFlags(ServiceFlags::ONEPACKET)
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 -o",
        "One-Packet Scheduling is only for UDP virtual services",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:0",
        "Zero port specified for non-persistent service",
    );
    fail(
        "ipvsadm -E -t 10.0.0.1",
        "Zero port specified for non-persistent service",
    );
    assert_eq!(svc("ipvsadm -A -f 2").key.port(), 0);
    assert_eq!(
        svc("ipvsadm -A -t 10.0.0.1:80 --pe sip").pe_name.as_deref(),
        Some("sip")
    );
    assert_eq!(
        svc("ipvsadm -A -t 10.0.0.1:80 -s averyveryverylongname").scheduler,
        "averyveryverylo",
        "strncpy into a 16-byte name"
    );
    assert_eq!(
        svc("ipvsadm -A -t 10.0.0.1:80 --scheduler=sed").scheduler,
        "sed"
    );
}

#[test]
fn scheduler_flags() {
    let f = |cmd: &str| svc(cmd).flags.0;
    assert_eq!(
        f("ipvsadm -A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port"),
        ServiceFlags::SCHED1 | ServiceFlags::SCHED2
    );
    assert_eq!(
        f("ipvsadm -A -t 10.0.0.1:80 -b mh-port -s mh"),
        ServiceFlags::SCHED2
    );
    assert_eq!(
        f("ipvsadm -A -t 10.0.0.1:80 --sched-flags flag-1,,flag-2,flag-3"),
        ServiceFlags::SCHED_MASK
    );
    assert_eq!(
        f("ipvsadm -A -t 10.0.0.1:80 -b="),
        0,
        "an empty value is ignored"
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 -s rr -b sh-port",
        "incompatible scheduler flag `sh-port'",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 -b mh-fallback",
        "incompatible scheduler flag `mh-fallback'",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 -s sh -b sh-port,bogus",
        "invalid scheduler flag `bogus'",
    );
    // ipvsadm dereferences strtok's NULL on a value made only of commas.
    assert_eq!(e("ipvsadm -A -t 10.0.0.1:80 -b ,,"), (String::new(), 139));
}

#[test]
fn real_server_options() {
    let (k, d) = dst("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 3 -x 100 -y 10");
    assert_eq!(k, tcp("10.0.0.1", 80));
    assert_eq!(
        d,
        DestConfig::new(ip("10.0.1.1"), 8080)
            .fwd(ForwardMethod::Masq)
            .weight(3)
            .thresholds(100, 10)
    );
    // DR and tunnel real servers get the service port (not for fwmark services).
    assert_eq!(dst("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:8080").1.port, 80);
    assert_eq!(
        dst("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g").1.port,
        80
    );
    assert_eq!(
        dst("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:8080 -i").1.port,
        80
    );
    assert_eq!(dst("ipvsadm -a -f 1 -r 10.0.1.1:8080").1.port, 8080);
    assert_eq!(dst("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -m").1.port, 80);
    assert_eq!(
        dst("ipvsadm -a -t 10.0.0.1:80 -r web:www -m").1.addr,
        ip("10.0.0.9")
    );
    // -r before -t: the port then known (none) is used.
    assert_eq!(dst("ipvsadm -a -r 10.0.1.1 -m -t 10.0.0.1:80").1.port, 0);
    // Edit semantics: -e resets everything not given (DR, weight 1, no thresholds).
    assert_eq!(
        dst("ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1 -w 0").1,
        DestConfig::new(ip("10.0.1.1"), 80).weight(0)
    );
    assert_eq!(
        dst("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -w 70000")
            .1
            .weight,
        70000
    );
    assert_eq!(
        dst("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 --weight=2147483647")
            .1
            .weight,
        i32::MAX as u32
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -w 2147483648",
        "illegal weight specified",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -w -1",
        "illegal weight specified",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -x 1x",
        "illegal u_threshold specified",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -y -5",
        "illegal l_threshold specified",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -m -g",
        "multiple 'forwarding-method' options specified",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r nosuchhost",
        "illegal real server address[:port] specified",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r [fd00::2]:80 -m",
        "Different address family is allowed only for tunneling servers",
    );
    assert_eq!(
        dst("ipvsadm -a -t 10.0.0.1:80 -r [fd00::2]:80 -i").1.addr,
        ip("fd00::2")
    );
    assert_eq!(
        dst("ipvsadm -a -f 1 -6 -r [fd00::2]:0 -m").1.addr,
        ip("fd00::2")
    );
}

#[test]
fn tunnel_options() {
    let t = |cmd: &str| dst(cmd).1.tunnel;
    assert_eq!(
        t("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -i"),
        TunnelInfo::default()
    );
    assert_eq!(
        t("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue --tun-port 6080"),
        TunnelInfo {
            kind: TunnelType::Gue,
            port: 6080,
            csum: TunnelCsum::NoCsum
        }
    );
    assert_eq!(
        t("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue --tun-port 1 --tun-remcsum"),
        TunnelInfo {
            kind: TunnelType::Gue,
            port: 1,
            csum: TunnelCsum::RemCsum
        }
    );
    assert_eq!(
        t("ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type=gre --tun-csum"),
        TunnelInfo {
            kind: TunnelType::Gre,
            port: 0,
            csum: TunnelCsum::Csum
        }
    );
    assert_eq!(
        t("ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gre --tun-nocsum").csum,
        TunnelCsum::NoCsum
    );
    let base = "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1";
    fail(
        &format!("{base} -m --tun-type gue --tun-port 1"),
        "Tunnel options conflict with forward method",
    );
    fail(
        &format!("{base} --tun-nocsum"),
        "Tunnel options conflict with forward method",
    );
    fail(
        &format!("{base} -i --tun-type gue"),
        "You need to supply the 'tun-port' option for the 'gue' tunnel type",
    );
    fail(
        &format!("{base} -i --tun-port 80"),
        "Illegal 'tun-port' option with the 'ipip' tunnel type",
    );
    fail(
        &format!("{base} -i --tun-csum"),
        "Illegal 'tun-csum' option with the 'ipip' tunnel type",
    );
    fail(
        &format!("{base} -i --tun-type gue --tun-port 1 --tun-csum --tun-remcsum"),
        "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
    );
    fail(
        &format!("{base} -i --tun-type gre --tun-remcsum"),
        "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
    );
    fail(
        &format!("{base} -i --tun-type gre --tun-port 5"),
        "Illegal 'tun-port' option with the 'gre' tunnel type",
    );
    fail(
        &format!("{base} -i --tun-type gre --tun-nocsum --tun-csum"),
        "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type",
    );
    fail(
        &format!("{base} -i --tun-type vxlan"),
        "illegal tunnel type specified",
    );
    fail(
        &format!("{base} -i --tun-type gue --tun-port 0"),
        "illegal tunnel port specified",
    );
    fail(
        &format!("{base} -i --tun-type gue --tun-port 65536"),
        "illegal tunnel port specified",
    );
}

#[test]
fn list_options() {
    let o = list("ipvsadm -Ln --stats --exact --nosort --sort");
    assert!(o.numeric && o.stats && o.exact && o.nosort && !o.rate);
    let o = list("ipvsadm -lnc --persistent-conn");
    assert!(o.connections && o.numeric && o.persistent_conn);
    let o = list("ipvsadm -L -X --rate --thresholds --tun-info");
    assert!(o.exact && o.rate && o.thresholds && o.tun_info);
    assert_eq!(
        list("ipvsadm -Ln -t 10.0.0.1:80").service,
        Some(tcp("10.0.0.1", 80))
    );
    assert_eq!(
        list("ipvsadm -Lnt10.0.0.1:80").service,
        Some(tcp("10.0.0.1", 80))
    );
    assert_eq!(
        list("ipvsadm -L -f 5 -6").service,
        Some(ServiceKey::Fwmark { v6: true, mark: 5 })
    );
    // --syncid is allowed (and ignored) with -L, as in ipvsadm's table.
    assert_eq!(list("ipvsadm -L --syncid 3"), ListOptions::default());
    fail(
        "ipvsadm -L -c -t 10.0.0.1:80",
        "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
    );
    fail(
        "ipvsadm -L --timeout --daemon",
        "The option 'daemon' conflicts with the 'timeout' option in the 'list' command",
    );
    fail(
        "ipvsadm -Lc --stats",
        "options conflicts in the list command",
    );
    fail(
        "ipvsadm -L --timeout --rate",
        "options conflicts in the list command",
    );
    fail(
        "ipvsadm -L --daemon --thresholds",
        "options conflicts in the list command",
    );
    fail(
        "ipvsadm -L --timeout --persistent-conn",
        "options conflicts in the list command",
    );
    fail("ipvsadm -L -n -n", "multiple 'numeric' options specified");
    fail(
        "ipvsadm -L -s rr",
        "Illegal 'scheduler' option with the 'list' command",
    );
    fail(
        "ipvsadm -L -o",
        "Illegal 'ops' option with the 'list' command",
    );
}

#[test]
fn legality_matrix() {
    fail(
        "ipvsadm -A",
        "You need to supply the 'service-address' option for the 'add-service' command",
    );
    fail(
        "ipvsadm -E -s rr",
        "You need to supply the 'service-address' option for the 'edit-service' command",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80",
        "You need to supply the 'real-server' option for the 'add-server' command",
    );
    fail(
        "ipvsadm -d -r 10.0.1.1",
        "You need to supply the 'service-address' option for the 'delete-server' command",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 -w 1",
        "Illegal 'weight' option with the 'add-service' command",
    );
    fail(
        "ipvsadm -A -n -t 10.0.0.1:80",
        "Illegal 'numeric' option with the 'add-service' command",
    );
    fail(
        "ipvsadm -D -t 10.0.0.1:80 -s rr",
        "Illegal 'scheduler' option with the 'delete-service' command",
    );
    fail(
        "ipvsadm -C -n",
        "Illegal 'numeric' option with the 'flush' command",
    );
    fail(
        "ipvsadm -S --nosort",
        "Illegal 'nosort' option with the 'save' command",
    );
    fail(
        "ipvsadm -S -c",
        "Illegal 'connection' option with the 'save' command",
    );
    fail(
        "ipvsadm -R -n",
        "Illegal 'numeric' option with the 'restore' command",
    );
    fail(
        "ipvsadm -Z -n",
        "Illegal 'numeric' option with the 'zero' command",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -s rr",
        "Illegal 'scheduler' option with the 'add-server' command",
    );
    fail(
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 --tun-info",
        "Illegal 'tun-info' option with the 'add-server' command",
    );
    fail(
        "ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.1 -w 1",
        "Illegal 'weight' option with the 'delete-server' command",
    );
    fail(
        "ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.1 -m",
        "Illegal 'forwarding-method' option with the 'delete-server' command",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 --tun-type gue",
        "Illegal 'tun-type' option with the 'add-service' command",
    );
    fail(
        "ipvsadm -A -t 10.0.0.1:80 --syncid 1",
        "Illegal 'syncid' option with the 'add-service' command",
    );
    fail(
        "ipvsadm --set 1 2 3 -n",
        "Illegal 'numeric' option with the 'set' command",
    );
    fail(
        "ipvsadm --start-daemon master -n",
        "Illegal 'numeric' option with the 'start-daemon' command",
    );
    fail(
        "ipvsadm --stop-daemon master --mcast-interface eth0",
        "Illegal 'mcast-interface' option with the 'stop-daemon' command",
    );
    // The first failing column wins: numeric (0) before scheduler (3).
    fail(
        "ipvsadm -D -s rr -n",
        "Illegal 'numeric' option with the 'delete-service' command",
    );
}

#[test]
fn set_and_stray_arguments() {
    fail(
        "ipvsadm --set 1 2",
        "--set option requires 3 timeout values",
    );
    fail("ipvsadm --set", "--set option requires 3 timeout values");
    fail("ipvsadm --set 1 2 x", "invalid timeout value `x' specified");
    fail(
        "ipvsadm --set 1 2 2678401",
        "invalid timeout value `2678401' specified",
    );
    fail("ipvsadm --set 1 2 3 4", "unexpected argument 4");
    assert_eq!(
        p("ipvsadm 5 --set 6 7"),
        Request::Apply(Command::SetTimeouts(Timeouts {
            tcp: 5,
            tcpfin: 6,
            udp: 7
        })),
        "popt gathers non-options wherever they are"
    );
    fail("ipvsadm -L extra", "unexpected argument extra");
    fail("ipvsadm -C -- -L", "unexpected argument -L");
}

#[test]
fn popt_level_errors() {
    assert_eq!(e("ipvsadm foo"), (TRYHELP.into(), 255));
    assert_eq!(
        e("ipvsadm -n -L"),
        (TRYHELP.into(), 255),
        "the command comes first"
    );
    assert_eq!(e("ipvsadm --bogus"), (TRYHELP.into(), 255));
    assert_eq!(
        e("ipvsadm --lis"),
        (TRYHELP.into(), 255),
        "no abbreviations"
    );
    assert_eq!(e("ipvsadm -q"), (TRYHELP.into(), 255));
    assert_eq!(e("ipvsadm -- -L"), (TRYHELP.into(), 255));
    assert_eq!(
        e("ipvsadm -L --bogus"),
        ("--bogus: unknown option\n".into(), 255)
    );
    assert_eq!(e("ipvsadm -Lq"), ("-Lq: unknown option\n".into(), 255));
    assert_eq!(e("ipvsadm -A -t"), ("-t: missing argument\n".into(), 255));
    assert_eq!(
        e("ipvsadm -L --tcp-service"),
        ("--tcp-service: missing argument\n".into(), 255)
    );
    // Options popt knows but ipvsadm does not take after the command.
    fail("ipvsadm -L -A", "invalid option `-A'");
    fail("ipvsadm -Ln -h", "invalid option `-h'");
    fail("ipvsadm -LZ", "invalid option `-LZ'");
    fail("ipvsadm -C --version", "invalid option `--version'");
    fail(
        "ipvsadm -L --start-daemon master",
        "invalid option `master'",
    );
    // A value error stops at the first bad option, before the matrix is consulted.
    fail("ipvsadm -L -w x", "illegal weight specified");
    // The "Try" hint names the program as invoked.
    let (msg, _) = match parse(&argv("/sbin/ipvsadm"), &names()) {
        Ok(_) => (TRYHELP.to_string(), 0),
        Err(e) => (e.message, e.status),
    };
    assert_eq!(msg, TRYHELP);
    match parse(&argv("/sbin/ipvsadm nope"), &names()) {
        Err(e) => assert_eq!(
            e.message,
            "Try `/sbin/ipvsadm -h' or '/sbin/ipvsadm --help' for more information.\n"
        ),
        Ok(r) => panic!("{r:?}"),
    }
}

#[test]
fn daemon_options() {
    fail(
        "ipvsadm --start-daemon primary",
        "illegal start-daemon parameter specified",
    );
    fail(
        "ipvsadm --stop-daemon primary",
        "illegal start_daemon specified",
    );
    fail(
        "ipvsadm --start-daemon master --syncid 256",
        "illegal syncid specified",
    );
    fail(
        "ipvsadm --start-daemon master --mcast-group 10.0.0.1",
        "invalid IPv4 mcast-group `10.0.0.1'",
    );
    fail(
        "ipvsadm --start-daemon master --mcast-group fd00::1",
        "invalid IPv6 mcast-group `fd00::1'",
    );
    fail(
        "ipvsadm --start-daemon master --mcast-port 0",
        "illegal mcast-port specified",
    );
    fail(
        "ipvsadm --start-daemon master --mcast-ttl 256",
        "illegal mcast-ttl specified",
    );
    fail(
        "ipvsadm --start-daemon master --sync-maxlen 65508",
        "illegal sync-maxlen specified",
    );
    match p("ipvsadm --start-daemon master --mcast-group ff02::1") {
        Request::StartDaemon(d) => assert_eq!(d.mcast_group, Some(ip("ff02::1"))),
        r => panic!("{r:?}"),
    }
}

#[test]
fn run_statuses_and_streams() {
    let n = names();
    let mut b = MemBackend::empty();
    let (code, out, err) = run_cmd(&mut b, &n, "ipvsadm -h", "");
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with(
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n  ipvsadm -A|E virtual-service"
    ));
    assert!(out.contains("one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,\n"));
    assert!(out.ends_with("  --mcast-ttl ttl                     Multicast TTL (default=1)\n"));
    let (code, out, err) = run_cmd(&mut b, &n, "ipvsadm -L --bogus", "");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (255, "", "--bogus: unknown option\n")
    );
    let (code, _, err) = run_cmd(&mut b, &n, "ipvsadm -A -t 10.0.0.1:0", "");
    assert_eq!(
        (code, err.as_str()),
        (2, "Zero port specified for non-persistent service\n")
    );
    let (code, _, err) = run_cmd(&mut b, &n, "ipvsadm --start-daemon master", "");
    assert_eq!((code, err.as_str()), (255, rvs_adm::DAEMON_UNSUPPORTED));
    let (code, _, err) = run_cmd(&mut b, &n, "ipvsadm -Z -t 10.0.0.1:80", "");
    assert_eq!((code, err.as_str()), (255, "No such service\n"));
    let (code, out, _) = run_cmd(&mut b, &n, "ipvsadm", "");
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        )
    );
    assert_eq!(
        run_cmd(&mut b, &n, "ipvsadm -A -t 10.0.0.1:80 -s nosuch", "").0,
        255
    );
    assert_eq!(run_cmd(&mut b, &n, "ipvsadm -A -t web:http -s rr", "").0, 0);
    let (_, out, _) = run_cmd(&mut b, &n, "ipvsadm -L -t 10.0.0.9:80", "");
    assert_eq!(
        out,
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  web:http rr\n"
    );
}
