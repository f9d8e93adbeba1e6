//! Shared test helpers: golden files, the golden state, an in-memory backend.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;

use rvs_adm::Backend;
use rvs_adm::resolve::StaticResolver;
use rvs_core::addr::Netmask;
use rvs_core::command::{AdmError, Command, Timeouts};
use rvs_core::dest::{DestConfig, ForwardMethod, TunnelInfo};
use rvs_core::sched::NAMES;
use rvs_core::service::{Protocol, ServiceConfig, ServiceFlags, ServiceKey};
use rvs_core::snapshot::{ConnView, DestView, InfoView, ServiceView, TotalsView};
use rvs_core::stats::{Counters, Rates};

/// Directory of the golden outputs, captured from ipvsadm 1.31 on Linux 6.1
/// (`tests/fixtures/kernel-6.1/README.md` says how).
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/kernel-6.1/ipvsadm-golden")
}

/// The text of one golden file; panics with a clear message when it is missing.
pub fn golden(name: &str) -> String {
    let p = golden_dir().join(name);
    match std::fs::read(&p) {
        Ok(b) => String::from_utf8(b).expect("golden files are UTF-8"),
        Err(e) => panic!(
            "golden file {} is missing ({e}); it belongs to the repository \
             (tests/fixtures/kernel-6.1/ipvsadm-golden)",
            p.display()
        ),
    }
}

/// The VM that captured the golden files had only `http 80/tcp` in /etc/services and no
/// host names.
pub fn vm_names() -> StaticResolver {
    StaticResolver::empty().service("http", 80, "tcp", &[])
}

pub fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn c(conns: u64, inpkts: u64, outpkts: u64, inbytes: u64, outbytes: u64) -> Counters {
    Counters {
        conns,
        inpkts,
        outpkts,
        inbytes,
        outbytes,
    }
}

fn r(cps: u64, inpps: u64, outpps: u64, inbps: u64, outbps: u64) -> Rates {
    Rates {
        cps,
        inpps,
        outpps,
        inbps,
        outbps,
    }
}

pub fn dest(addr: &str, port: u16, fwd: ForwardMethod, weight: u32) -> DestView {
    DestView {
        addr: ip(addr),
        port,
        fwd,
        weight,
        u_threshold: 0,
        l_threshold: 0,
        activeconns: 0,
        inactconns: 0,
        persistconns: 0,
        overloaded: false,
        tunnel: TunnelInfo::default(),
        stats: Counters::default(),
        rates: Rates::default(),
    }
}

pub fn service(key: ServiceKey, sched: &str, flags: u32, dests: Vec<DestView>) -> ServiceView {
    ServiceView {
        netmask: Netmask::full(key.is_v6()),
        key,
        scheduler: sched.into(),
        flags: ServiceFlags(flags),
        timeout: 0,
        pe_name: None,
        stats: Counters::default(),
        rates: Rates::default(),
        dests,
    }
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

pub fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip(addr),
        port,
    }
}

use ForwardMethod::{Masq, Route, Tunnel};

/// The table of `examples-formats.sh` in kernel order (the order of `/proc/net/ip_vs`:
/// hash buckets, then the fwmark table; real servers newest first), with the counters,
/// rates and connection counts of the main capture (`ipvsadm -Ln`, `--stats`, `--rate`).
fn base_services() -> Vec<ServiceView> {
    let sh = ServiceFlags::SCHED1 | ServiceFlags::SCHED2;
    let mut s8080 = service(
        tcp("10.0.0.101", 8080),
        "sh",
        sh,
        vec![
            dest("10.0.12.2", 8080, Tunnel, 2),
            DestView {
                u_threshold: 100,
                l_threshold: 50,
                ..dest("10.0.11.2", 8080, Route, 1)
            },
        ],
    );
    s8080.flags = ServiceFlags(sh);

    let mut s5000 = service(
        udp("10.0.0.103", 5000),
        "rr",
        ServiceFlags::ONEPACKET,
        vec![dest("10.0.11.2", 5000, Masq, 1)],
    );
    s5000.stats = c(2, 2, 0, 66, 0);
    s5000.rates = r(0, 0, 0, 3, 0);
    s5000.dests[0].stats = s5000.stats;
    s5000.dests[0].rates = s5000.rates;

    let mut s443 = service(
        tcp("10.0.0.100", 443),
        "wlc",
        ServiceFlags::PERSISTENT,
        vec![
            dest("10.0.12.2", 443, Masq, 1),
            dest("10.0.11.2", 443, Masq, 1),
        ],
    );
    s443.timeout = 300;
    s443.stats = c(8, 40, 24, 2144, 1344);
    s443.rates = r(0, 2, 1, 85, 53);
    s443.dests[0].stats = s443.stats;
    s443.dests[0].rates = s443.rates;
    s443.dests[0].inactconns = 8;
    s443.dests[0].persistconns = 1;

    let mut mh = service(
        tcp("10.0.0.102", 80),
        "mh",
        sh,
        vec![
            dest("10.0.13.2", 80, Masq, 1),
            dest("10.0.12.2", 80, Masq, 1),
            dest("10.0.11.2", 80, Masq, 1),
        ],
    );
    mh.stats = c(9, 45, 27, 2412, 1512);
    mh.rates = r(0, 2, 1, 95, 60);
    let mh_d = [
        (c(5, 25, 15, 1340, 840), r(0, 1, 1, 53, 33), 5),
        (c(2, 10, 6, 536, 336), r(0, 0, 0, 21, 13), 2),
        (c(2, 10, 6, 536, 336), r(0, 0, 0, 21, 13), 2),
    ];
    for (d, (st, rt, inact)) in mh.dests.iter_mut().zip(mh_d) {
        d.stats = st;
        d.rates = rt;
        d.inactconns = inact;
    }

    let mut rr = service(
        tcp("10.0.0.100", 80),
        "rr",
        0,
        vec![
            dest("10.0.13.2", 80, Masq, 3),
            dest("10.0.12.2", 80, Masq, 2),
            dest("10.0.11.2", 80, Masq, 1),
        ],
    );
    rr.stats = c(93, 459, 277, 24612, 15520);
    rr.rates = r(7, 35, 21, 1890, 1190);
    let rr_d = [
        (c(31, 151, 92, 8100, 5156), r(2, 11, 7, 616, 391), 2, 30),
        (c(31, 155, 93, 8308, 5208), r(2, 12, 7, 632, 396), 0, 32),
        (c(31, 153, 92, 8204, 5156), r(2, 12, 7, 643, 403), 1, 31),
    ];
    for (d, (st, rt, act, inact)) in rr.dests.iter_mut().zip(rr_d) {
        d.stats = st;
        d.rates = rt;
        d.activeconns = act;
        d.inactconns = inact;
    }

    let v6 = service(
        tcp("fd00::100", 80),
        "rr",
        0,
        vec![dest("fd00::11:2", 80, Masq, 1)],
    );

    let mut dns = service(
        udp("10.0.0.100", 53),
        "wrr",
        0,
        vec![
            dest("10.0.12.2", 53, Masq, 1),
            dest("10.0.11.2", 53, Masq, 1),
        ],
    );
    dns.stats = c(6, 6, 6, 198, 192);
    dns.rates = r(0, 0, 0, 8, 8);
    for d in &mut dns.dests {
        d.stats = c(3, 3, 3, 99, 96);
        d.rates = r(0, 0, 0, 4, 4);
        d.inactconns = 3;
    }

    let fwm = service(
        ServiceKey::Fwmark { v6: false, mark: 1 },
        "lc",
        0,
        vec![dest("10.0.13.2", 0, Masq, 1)],
    );

    vec![s8080, s5000, s443, mh, rr, v6, dns, fwm]
}

/// Sets the (active, inactive) counts of `TCP 10.0.0.100:80`'s real servers .11.2, .12.2,
/// .13.2 (traffic kept flowing between captures, so they differ from file to file).
fn set_rr80(services: &mut [ServiceView], counts: [(u32, u32); 3]) {
    let rr = services
        .iter_mut()
        .find(|s| s.key == tcp("10.0.0.100", 80))
        .unwrap();
    for (last_octet_index, (act, inact)) in counts.iter().enumerate() {
        let addr = ip(&format!("10.0.1{}.2", last_octet_index + 1));
        let d = rr.dests.iter_mut().find(|d| d.addr == addr).unwrap();
        d.activeconns = *act;
        d.inactconns = *inact;
    }
}

/// Connections of a `-Lnc` capture, built from the capture itself: acceptable only for the
/// renderer test (the engine-driven version will produce them from real traffic).
fn conns_from_lnc(text: &str) -> Vec<ConnView> {
    text.lines()
        .skip(2)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (m, s) = f[1].split_once(':').unwrap();
            let secs: u64 = m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap();
            let hp = |x: &str| {
                let (h, p) = x.rsplit_once(':').unwrap();
                (
                    ip(h.trim_start_matches('[').trim_end_matches(']')),
                    p.parse::<u16>().unwrap(),
                )
            };
            let (caddr, cport) = hp(f[3]);
            let (vaddr, vport) = hp(f[4]);
            let (daddr, dport) = hp(f[5]);
            ConnView {
                proto: f[0].into(),
                caddr,
                cport,
                vaddr,
                vport,
                daddr,
                dport,
                state: f[2].into(),
                // Within the second, so that the floor to seconds is exercised.
                expires_ms: secs * 1000 + 731,
                template: f[2] == "ASSURED" || f[2] == "NONE",
                fwd: Masq,
                local: None,
            }
        })
        .collect()
}

/// Connections of a `/proc/net/ip_vs_conn` capture, built from the capture itself (renderer
/// test only, as above).
fn conns_from_proc(text: &str) -> Vec<ConnView> {
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let a = |x: &str| {
                IpAddr::from(std::net::Ipv4Addr::from(
                    u32::from_str_radix(x, 16).unwrap(),
                ))
            };
            let p = |x: &str| u16::from_str_radix(x, 16).unwrap();
            let secs: u64 = f.last().unwrap().parse().unwrap();
            ConnView {
                proto: f[0].into(),
                caddr: a(f[1]),
                cport: p(f[2]),
                vaddr: a(f[3]),
                vport: p(f[4]),
                daddr: a(f[5]),
                dport: p(f[6]),
                state: f[7].into(),
                expires_ms: secs * 1000 + 999,
                template: f[7] == "ASSURED" || f[7] == "NONE",
                fwd: Masq,
                local: None,
            }
        })
        .collect()
}

/// The state behind one golden capture: (header, services in kernel order, connections in
/// kernel order, totals). Everything is hand-built from the scenario for now; this is the one
/// function to replace with an engine-driven state (the scenario replayed through rvs-core)
/// once the engine exists. The capture name selects the moment: traffic kept flowing during
/// the run, so counts differ slightly between captures.
pub fn golden_state(capture: &str) -> (InfoView, Vec<ServiceView>, Vec<ConnView>, TotalsView) {
    let info = InfoView {
        version: (1, 2, 1),
        conn_tab_size: 4096,
        conn_count: 0,
        conn_max: 0,
    };
    let totals = TotalsView {
        stats: c(0x76, 0x228, 0x14E, 0x72F8, 0x4888),
        rates: r(8, 0x27, 0x18, 0x821, 0x51F),
    };
    let mut services = base_services();
    let mut conns = Vec::new();
    match capture {
        "ipvsadm-L-names.txt" => set_rr80(&mut services, [(1, 33), (0, 34), (2, 33)]),
        "ipvsadm-Ln-one-service.txt" | "ipvsadm-Ln-persistent-conn.txt" => {
            set_rr80(&mut services, [(1, 32), (0, 34), (2, 32)])
        }
        "ipvsadm-Ln-thresholds.txt" => set_rr80(&mut services, [(1, 32), (0, 33), (2, 32)]),
        "proc-net-ip_vs.txt" => set_rr80(&mut services, [(1, 34), (0, 35), (2, 33)]),
        "ipvsadm-Ln-stats-after-Z.txt" => {
            for s in &mut services {
                s.stats = Counters::default();
                for d in &mut s.dests {
                    d.stats = Counters::default();
                }
            }
        }
        "ipvsadm-Ln-after-C.txt" => services.clear(),
        "ipvsadm-S-n-after-R.txt" => {
            let rr = services
                .iter_mut()
                .find(|s| s.key == tcp("10.0.0.100", 80))
                .unwrap();
            rr.dests.insert(0, dest("10.0.11.2", 8080, Masq, 70000));
        }
        "ipvsadm-Lnc.txt" | "ipvsadm-Lnc-persistent-conn.txt" | "ipvsadm-Lnc-after-set.txt" => {
            conns = conns_from_lnc(&golden(capture));
        }
        "proc-net-ip_vs_conn.txt" | "proc-net-ip_vs_conn_sync.txt" => {
            conns = conns_from_proc(&golden(capture));
        }
        _ => {}
    }
    (info, services, conns, totals)
}

/// An in-memory backend with the kernel's add/edit/delete semantics and libipvs's errors,
/// enough for round trips and error tests.
#[derive(Clone, Debug)]
pub struct MemBackend {
    pub info: InfoView,
    pub services: Vec<ServiceView>,
    pub conns: Vec<ConnView>,
    pub timeouts: Timeouts,
    pub totals: TotalsView,
    pub log: Vec<Command>,
}

impl MemBackend {
    pub fn empty() -> Self {
        MemBackend {
            info: InfoView {
                version: (1, 2, 1),
                conn_tab_size: 4096,
                conn_count: 0,
                conn_max: 0,
            },
            services: Vec::new(),
            conns: Vec::new(),
            timeouts: Timeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300,
            },
            totals: TotalsView::default(),
            log: Vec::new(),
        }
    }

    /// The backend behind a golden capture.
    pub fn golden(capture: &str) -> Self {
        let (info, services, conns, totals) = golden_state(capture);
        let timeouts = if capture.contains("after-set") {
            Timeouts {
                tcp: 600,
                tcpfin: 60,
                udp: 120,
            }
        } else {
            Timeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300,
            }
        };
        MemBackend {
            info,
            services,
            conns,
            timeouts,
            totals,
            log: Vec::new(),
        }
    }

    fn svc(&mut self, key: &ServiceKey) -> Option<&mut ServiceView> {
        self.services.iter_mut().find(|s| s.key == *key)
    }

    fn check_sched(cfg: &ServiceConfig) -> Result<(), AdmError> {
        if !(NAMES.contains(&cfg.scheduler.as_str()) || cfg.scheduler == "none")
            || cfg.pe_name.is_some()
        {
            return Err(AdmError::NoScheduler);
        }
        Ok(())
    }

    fn apply_cfg(s: &mut ServiceView, cfg: ServiceConfig) {
        s.scheduler = cfg.scheduler;
        s.flags = cfg.flags;
        s.timeout = cfg.timeout;
        s.netmask = cfg.netmask;
        s.pe_name = cfg.pe_name;
    }

    fn dest_view(cfg: &DestConfig) -> DestView {
        DestView {
            u_threshold: cfg.u_threshold,
            l_threshold: cfg.l_threshold,
            tunnel: cfg.tunnel,
            ..dest(&cfg.addr.to_string(), cfg.port, cfg.fwd, cfg.weight)
        }
    }

    fn check_dest(cfg: &DestConfig) -> Result<(), AdmError> {
        if cfg.weight > i32::MAX as u32 {
            return Err(AdmError::Range("weight".into()));
        }
        if cfg.l_threshold > cfg.u_threshold {
            return Err(AdmError::Range("thresholds".into()));
        }
        Ok(())
    }
}

impl Backend for MemBackend {
    fn apply(&mut self, cmd: Command) -> Result<(), AdmError> {
        self.log.push(cmd.clone());
        match cmd {
            Command::AddService(cfg) => {
                if self.svc(&cfg.key).is_some() {
                    return Err(AdmError::ServiceExists);
                }
                Self::check_sched(&cfg)?;
                let mut s = service(cfg.key, "", 0, Vec::new());
                Self::apply_cfg(&mut s, cfg);
                self.services.push(s);
            }
            Command::EditService(cfg) => {
                let key = cfg.key;
                if self.svc(&key).is_none() {
                    return Err(AdmError::NoService);
                }
                Self::check_sched(&cfg)?;
                Self::apply_cfg(self.svc(&key).unwrap(), cfg);
            }
            Command::DelService(key) => {
                let n = self.services.len();
                self.services.retain(|s| s.key != key);
                if n == self.services.len() {
                    return Err(AdmError::NoService);
                }
            }
            Command::Flush => self.services.clear(),
            Command::Zero(None) => {
                for s in &mut self.services {
                    s.stats = Counters::default();
                    s.dests
                        .iter_mut()
                        .for_each(|d| d.stats = Counters::default());
                }
            }
            Command::Zero(Some(key)) => {
                let s = self.svc(&key).ok_or(AdmError::NoService)?;
                s.stats = Counters::default();
                s.dests
                    .iter_mut()
                    .for_each(|d| d.stats = Counters::default());
            }
            Command::AddDest(key, cfg) => {
                let s = self.svc(&key).ok_or(AdmError::ServiceNotDefined)?;
                Self::check_dest(&cfg)?;
                if s.dests
                    .iter()
                    .any(|d| d.addr == cfg.addr && d.port == cfg.port)
                {
                    return Err(AdmError::DestExists);
                }
                s.dests.insert(0, Self::dest_view(&cfg));
            }
            Command::EditDest(key, cfg) => {
                let s = self.svc(&key).ok_or(AdmError::ServiceNotDefined)?;
                Self::check_dest(&cfg)?;
                let d = s
                    .dests
                    .iter_mut()
                    .find(|d| d.addr == cfg.addr && d.port == cfg.port)
                    .ok_or(AdmError::NoDest)?;
                let fresh = Self::dest_view(&cfg);
                d.fwd = fresh.fwd;
                d.weight = fresh.weight;
                d.u_threshold = fresh.u_threshold;
                d.l_threshold = fresh.l_threshold;
                d.tunnel = fresh.tunnel;
            }
            Command::DelDest(key, addr, port) => {
                let s = self.svc(&key).ok_or(AdmError::ServiceNotDefined)?;
                let n = s.dests.len();
                s.dests.retain(|d| !(d.addr == addr && d.port == port));
                if n == s.dests.len() {
                    return Err(AdmError::NoDest);
                }
            }
            Command::SetTimeouts(t) => {
                if t.tcp != 0 {
                    self.timeouts.tcp = t.tcp;
                }
                if t.tcpfin != 0 {
                    self.timeouts.tcpfin = t.tcpfin;
                }
                if t.udp != 0 {
                    self.timeouts.udp = t.udp;
                }
            }
            Command::Sysctl(n, _) => return Err(AdmError::Sysctl(n)),
        }
        Ok(())
    }
    fn info(&mut self) -> InfoView {
        self.info.clone()
    }
    fn services(&mut self) -> Vec<ServiceView> {
        self.services.clone()
    }
    fn conns(&mut self) -> Vec<ConnView> {
        self.conns.clone()
    }
    fn timeouts(&mut self) -> Timeouts {
        self.timeouts
    }
    fn totals(&mut self) -> TotalsView {
        self.totals.clone()
    }
}

/// Runs one command line against a backend: (exit status, stdout, stderr).
pub fn run_cmd(
    backend: &mut MemBackend,
    names: &StaticResolver,
    cmdline: &str,
    stdin: &str,
) -> (i32, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut input = stdin.as_bytes();
    let code = rvs_adm::run_with(
        &argv(cmdline),
        backend,
        names,
        &mut input,
        &mut out,
        &mut err,
    );
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}
