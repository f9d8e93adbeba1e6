//! The file as TOML gives it (with spans), and its conversion to [`Config`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use rvs_core::addr::Netmask;
use rvs_core::dest::{DestConfig, ForwardMethod, TunnelInfo};
use rvs_core::profile::Profile;
use rvs_core::sched;
use rvs_core::service::{Protocol, ServiceConfig, ServiceFlags, ServiceKey};
use rvs_core::sysctl::Sysctls;

use super::{
    Config, ConfigError, DataplaneSection, EngineSection, Origin, ServiceEntry, default_timeouts,
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: Option<Spanned<RawEngine>>,
    #[serde(default)]
    sysctl: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    dataplane: Option<Spanned<RawDataplane>>,
    #[serde(default)]
    service: Vec<RawService>,
    #[serde(default)]
    kubernetes: Option<Spanned<super::kubernetes::RawKubernetes>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    profile: Option<Spanned<String>>,
    conn_max: Option<Spanned<u32>>,
    conn_tab_bits: Option<Spanned<u8>>,
    seed: Option<Spanned<u64>>,
    netfilter_conntrack: Option<bool>,
    maglev_table_size: Option<Spanned<u32>>,
    maglev_seed: Option<Spanned<u64>>,
    #[serde(default)]
    fullnat_addrs: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    tcp: Option<Spanned<u32>>,
    tcpfin: Option<Spanned<u32>>,
    udp: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDataplane {
    tun_name: Option<Spanned<String>>,
    tun_addrs: Option<Vec<Spanned<String>>>,
    tunnel_src: Option<Vec<Spanned<String>>>,
    tun_mtu: Option<Spanned<u32>>,
    txqueuelen: Option<u32>,
    tunnel_mtu: Option<Spanned<u32>>,
    admin_socket: Option<String>,
    http_listen: Option<Spanned<String>>,
    reply_table: Option<Spanned<u32>>,
    reply_prefixes: Option<Vec<Spanned<String>>>,
    rule_priority: Option<u32>,
    batch: Option<Spanned<usize>>,
    output: Option<Spanned<String>>,
    output_mark: Option<Spanned<u32>>,
    snapshot_ms: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    proto: Option<Spanned<String>>,
    vip: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    fwmark: Option<Spanned<u32>>,
    ipv6: Option<bool>,
    scheduler: Option<Spanned<String>>,
    persistent: Option<Spanned<u32>>,
    netmask: Option<Spanned<toml::Value>>,
    #[serde(default)]
    sched_flags: Vec<Spanned<String>>,
    #[serde(default)]
    one_packet: bool,
    pe: Option<Spanned<String>>,
    #[serde(default)]
    real_server: Vec<RawDest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDest {
    addr: Spanned<String>,
    port: Option<Spanned<u16>>,
    weight: Option<Spanned<i64>>,
    forward: Option<Spanned<String>>,
    u_threshold: Option<Spanned<u32>>,
    l_threshold: Option<Spanned<u32>>,
}

/// The default `rule_priority` with a `[kubernetes]` section (below the `local` table's
/// moved place; see `rvs_dataplane::netlink`).
pub const KUBERNETES_RULE_PRIORITY: u32 = 60;

/// The scheduler flags a service may name.
pub const SCHED_FLAGS: &str = "flag-1, flag-2, flag-3, sh-fallback, sh-port, mh-fallback, mh-port";

/// The bit of a scheduler flag by its ipvsadm name (`sh-port`, `mh-fallback`, `flag-3`, ...).
pub fn sched_flag(name: &str) -> Option<u32> {
    Some(match name {
        "flag-1" | "sh-fallback" | "mh-fallback" => ServiceFlags::SCHED1,
        "flag-2" | "sh-port" | "mh-port" => ServiceFlags::SCHED2,
        "flag-3" => ServiceFlags::SCHED3,
        _ => return None,
    })
}

/// Line and column (from 1) of a byte offset.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text.as_bytes()[..at];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, at - start + 1)
}

/// The key written on a line (`weight = x` gives `weight`; `[dataplane]` gives `dataplane`).
fn key_on_line(text: &str, line: usize) -> String {
    let l = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim();
    if let Some(h) = l.strip_prefix('[') {
        return h.trim_matches(|c| c == '[' || c == ']').trim().to_string();
    }
    match l.split_once('=') {
        Some((k, _)) => k.trim().trim_matches('"').to_string(),
        None => String::new(),
    }
}

pub(super) struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn origin<T>(&self, s: &Spanned<T>, field: impl Into<String>) -> Origin {
        let (line, column) = line_col(self.text, s.span().start);
        Origin {
            line,
            column,
            field: field.into(),
        }
    }
    pub(super) fn err<T>(
        &self,
        s: &Spanned<T>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> ConfigError {
        let o = self.origin(s, field);
        ConfigError {
            file: self.path.into(),
            line: o.line,
            column: o.column,
            field: o.field,
            message: msg.into(),
        }
    }
}

pub(super) fn ip(c: &Ctx, s: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
    s.get_ref()
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| c.err(s, field, format!("'{}' is not an IP address", s.get_ref())))
}

pub(super) fn prefix(
    c: &Ctx,
    s: &Spanned<String>,
    field: &str,
) -> Result<(IpAddr, u8), ConfigError> {
    let bad = || c.err(s, field, format!("'{}' is not ADDRESS/PREFIX", s.get_ref()));
    let (a, p) = s.get_ref().split_once('/').ok_or_else(bad)?;
    let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
    let p: u8 = p.trim().parse().map_err(|_| bad())?;
    if p > if a.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok((a, p))
}

/// The address after `a` (the default tunnel source next to the TUN address).
fn next_addr(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(u32::from(v).wrapping_add(1).into()),
        IpAddr::V6(v) => IpAddr::V6(u128::from(v).wrapping_add(1).into()),
    }
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let c = Ctx { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
        let msg = e.message().trim().to_string();
        ConfigError {
            file: path.into(),
            line,
            column,
            field: if line > 0 {
                key_on_line(text, line)
            } else {
                String::new()
            },
            message: msg,
        }
    })?;
    let mut restart_origins = Vec::new();

    // [engine]
    let re = raw.engine.as_ref().map(|s| s.get_ref());
    let def = rvs_core::EngineConfig::default();
    let mut engine = EngineSection {
        profile: Profile::Safe,
        conn_max: default_conn_max(),
        conn_tab_bits: def.conn_tab_bits,
        seed: def.seed,
        netfilter_conntrack: false,
        fullnat_addrs: Vec::new(),
        maglev: None,
    };
    if let Some(re) = re {
        if let Some(p) = &re.profile {
            engine.profile = p
                .get_ref()
                .parse()
                .map_err(|m: String| c.err(p, "engine.profile", m))?;
        }
        if let Some(v) = &re.conn_max {
            if *v.get_ref() == 0 {
                return Err(c.err(v, "engine.conn_max", "must be at least 1"));
            }
            engine.conn_max = *v.get_ref();
            restart_origins.push(("engine.conn_max", c.origin(v, "engine.conn_max")));
        }
        if let Some(v) = &re.conn_tab_bits {
            if !(8..=20).contains(v.get_ref()) {
                return Err(c.err(v, "engine.conn_tab_bits", "must be in 8..=20"));
            }
            engine.conn_tab_bits = *v.get_ref();
            restart_origins.push(("engine.conn_tab_bits", c.origin(v, "engine.conn_tab_bits")));
        }
        if let Some(v) = &re.seed {
            engine.seed = *v.get_ref();
            restart_origins.push(("engine.seed", c.origin(v, "engine.seed")));
        }
        engine.netfilter_conntrack = re.netfilter_conntrack.unwrap_or(false);
        if re.maglev_table_size.is_some() || re.maglev_seed.is_some() {
            let mut m = rvs_core::sched::MaglevConfig::default();
            if let Some(v) = &re.maglev_table_size {
                m.table_size = *v.get_ref();
                if let Err(e) = m.validate() {
                    return Err(c.err(v, "engine.maglev_table_size", e.to_string()));
                }
                restart_origins.push((
                    "engine.maglev_table_size",
                    c.origin(v, "engine.maglev_table_size"),
                ));
            }
            if let Some(v) = &re.maglev_seed {
                m.seed = Some(*v.get_ref());
                restart_origins.push(("engine.maglev_seed", c.origin(v, "engine.maglev_seed")));
            }
            engine.maglev = Some(m);
        }
        if let Some(list) = &re.fullnat_addrs {
            restart_origins.push((
                "engine.fullnat_addrs",
                c.origin(list, "engine.fullnat_addrs"),
            ));
            for (i, a) in list.get_ref().iter().enumerate() {
                let f = format!("engine.fullnat_addrs[{i}]");
                let a = ip(&c, a, &f)?;
                engine.fullnat_addrs.push(a);
            }
            if engine.fullnat_addrs.iter().filter(|a| a.is_ipv4()).count() > 255
                || engine.fullnat_addrs.iter().filter(|a| a.is_ipv6()).count() > 255
            {
                return Err(c.err(list, "engine.fullnat_addrs", "at most 255 per family"));
            }
        }
    }

    // [sysctl]
    let mut sysctls = Sysctls::default();
    for (name, v) in &raw.sysctl {
        let field = format!("sysctl.{name}");
        let value = match v.get_ref() {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(s) => s.clone(),
            toml::Value::Boolean(b) => (*b as i32).to_string(),
            other => {
                return Err(c.err(
                    v,
                    field,
                    format!(
                        "expected an integer or a string, found {}",
                        other.type_str()
                    ),
                ));
            }
        };
        sysctls.set(name, &value).map_err(|m| c.err(v, &field, m))?;
    }

    // [timeouts]
    let mut timeouts = default_timeouts();
    for (slot, v, name) in [
        (&mut timeouts.tcp, &raw.timeouts.tcp, "timeouts.tcp"),
        (
            &mut timeouts.tcpfin,
            &raw.timeouts.tcpfin,
            "timeouts.tcpfin",
        ),
        (&mut timeouts.udp, &raw.timeouts.udp, "timeouts.udp"),
    ] {
        if let Some(v) = v {
            let max = (i32::MAX / 250) as u32;
            if *v.get_ref() == 0 || *v.get_ref() > max {
                return Err(c.err(v, name, format!("must be in 1..={max} seconds")));
            }
            *slot = *v.get_ref();
        }
    }

    // [dataplane]
    let rd = raw.dataplane.as_ref();
    if let Some(s) = rd {
        restart_origins.push(("dataplane", c.origin(s, "dataplane")));
    }
    let rd = rd.map(|s| s.get_ref());
    let mut dataplane = dataplane(&c, rd)?;

    // [kubernetes]
    let kubernetes = match &raw.kubernetes {
        Some(k) => {
            restart_origins.push(("kubernetes", c.origin(k, "kubernetes")));
            Some(super::kubernetes::section(&c, k.get_ref())?)
        }
        None => None,
    };

    // A node's service proxy: replies come before the `local` table, so that a host-network
    // client (kubelet, a hostNetwork pod) reaching a ClusterIP gets its replies translated.
    if kubernetes.is_some() && rd.and_then(|d| d.rule_priority).is_none() {
        dataplane.rule_priority = KUBERNETES_RULE_PRIORITY;
    }

    // [[service]]
    let mut services = Vec::with_capacity(raw.service.len());
    for (i, s) in raw.service.iter().enumerate() {
        services.push(service(&c, i, s)?);
    }

    Ok(Config {
        path: path.into(),
        engine,
        sysctls,
        timeouts,
        dataplane,
        services,
        kubernetes,
        overrides: Default::default(),
        rule_priority_given: rd.and_then(|d| d.rule_priority).is_some(),
        restart_origins,
    })
}

fn dataplane(c: &Ctx, rd: Option<&RawDataplane>) -> Result<DataplaneSection, ConfigError> {
    let empty = RawDataplane::default();
    let rd = rd.unwrap_or(&empty);
    let tun_name = match &rd.tun_name {
        Some(n) => {
            let s = n.get_ref();
            if s.is_empty() || s.len() > 15 || s.contains(['/', ' ', '\0']) {
                return Err(c.err(
                    n,
                    "dataplane.tun_name",
                    "an interface name has 1 to 15 characters, no '/' or space",
                ));
            }
            s.clone()
        }
        None => "rvs0".into(),
    };
    let tun_addrs = match &rd.tun_addrs {
        Some(list) => {
            let mut v = Vec::new();
            for (i, a) in list.iter().enumerate() {
                v.push(prefix(c, a, &format!("dataplane.tun_addrs[{i}]"))?);
            }
            v
        }
        None => vec![
            (
                "10.255.255.1"
                    .parse()
                    .unwrap_or(IpAddr::from([10, 255, 255, 1])),
                24,
            ),
            (
                "fd72:7673::1".parse().unwrap_or(IpAddr::from([0u16; 8])),
                64,
            ),
        ],
    };
    let tunnel_src = match &rd.tunnel_src {
        Some(list) => {
            let mut v = Vec::new();
            for (i, a) in list.iter().enumerate() {
                let f = format!("dataplane.tunnel_src[{i}]");
                let x = ip(c, a, &f)?;
                if tun_addrs.iter().any(|(t, _)| *t == x) {
                    return Err(c.err(a, f, "the tunnel source must not be the TUN's own address (the kernel drops received packets from its own addresses); use another address routed into the TUN"));
                }
                v.push(x);
            }
            v
        }
        None => {
            let mut v = Vec::new();
            for fam6 in [false, true] {
                if let Some((a, _)) = tun_addrs.iter().find(|(a, _)| a.is_ipv6() == fam6) {
                    v.push(next_addr(*a));
                }
            }
            v
        }
    };
    let tun_mtu = match &rd.tun_mtu {
        Some(m) if !(1280..=65535).contains(m.get_ref()) => {
            return Err(c.err(m, "dataplane.tun_mtu", "must be in 1280..=65535"));
        }
        Some(m) => *m.get_ref(),
        None => 1500,
    };
    let tunnel_mtu = match &rd.tunnel_mtu {
        Some(m) if !(1280..=65535).contains(m.get_ref()) => {
            return Err(c.err(m, "dataplane.tunnel_mtu", "must be in 1280..=65535"));
        }
        Some(m) => *m.get_ref(),
        None => 1500,
    };
    let http_listen = match &rd.http_listen {
        Some(h) if h.get_ref().is_empty() => None,
        Some(h) => Some(h.get_ref().parse::<SocketAddr>().map_err(|_| {
            c.err(
                h,
                "dataplane.http_listen",
                format!("'{}' is not ADDRESS:PORT", h.get_ref()),
            )
        })?),
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9180))),
    };
    let mut reply_prefixes = Vec::new();
    for (i, p) in rd.reply_prefixes.iter().flatten().enumerate() {
        reply_prefixes.push(prefix(c, p, &format!("dataplane.reply_prefixes[{i}]"))?);
    }
    let reply_table = match &rd.reply_table {
        Some(t) if matches!(*t.get_ref(), 0 | 253..=255) => {
            return Err(c.err(
                t,
                "dataplane.reply_table",
                "tables 0, 253 (default), 254 (main) and 255 (local) are the kernel's",
            ));
        }
        Some(t) => *t.get_ref(),
        None => 7373,
    };
    let batch = match &rd.batch {
        Some(b) if !(1..=1024).contains(b.get_ref()) => {
            return Err(c.err(b, "dataplane.batch", "must be in 1..=1024"));
        }
        Some(b) => *b.get_ref(),
        None => 64,
    };
    let output = match &rd.output {
        None => super::Output::Raw,
        Some(o) => match o.get_ref().as_str() {
            "packet" => super::Output::Packet,
            "raw" => super::Output::Raw,
            "tun" => super::Output::Tun,
            other => {
                return Err(c.err(
                    o,
                    "dataplane.output",
                    format!("'{other}' is not packet, raw or tun"),
                ));
            }
        },
    };
    let output_mark = match &rd.output_mark {
        Some(m) if *m.get_ref() == 0 => {
            return Err(c.err(
                m,
                "dataplane.output_mark",
                "must not be 0 (0 is an unmarked packet)",
            ));
        }
        Some(m) => *m.get_ref(),
        None => 0x7373,
    };
    let snapshot_ms = match &rd.snapshot_ms {
        Some(m) if !matches!(*m.get_ref(), 0 | 10..=60_000) => {
            return Err(c.err(
                m,
                "dataplane.snapshot_ms",
                "must be 0 (crash recovery off) or in 10..=60000",
            ));
        }
        Some(m) => *m.get_ref(),
        None => 200,
    };
    Ok(DataplaneSection {
        snapshot_ms,
        output,
        output_mark,
        tun_name,
        tun_addrs,
        tunnel_src,
        tun_mtu,
        txqueuelen: rd.txqueuelen.unwrap_or(10_000),
        tunnel_mtu,
        admin_socket: rd
            .admin_socket
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(crate::proto::DEFAULT_SOCKET)),
        http_listen,
        reply_table,
        reply_prefixes,
        rule_priority: rd.rule_priority.unwrap_or(7373),
        batch,
    })
}

fn service(c: &Ctx, i: usize, s: &RawService) -> Result<ServiceEntry, ConfigError> {
    let f = |name: &str| format!("service[{i}].{name}");
    let (key, origin) = match (&s.fwmark, &s.vip) {
        (Some(m), None) => {
            if *m.get_ref() == 0 {
                return Err(c.err(m, f("fwmark"), "a firewall mark is not 0"));
            }
            if let Some(p) = &s.proto {
                return Err(c.err(
                    p,
                    f("proto"),
                    "a fwmark service covers TCP, UDP and SCTP: give no proto",
                ));
            }
            (
                ServiceKey::Fwmark {
                    v6: s.ipv6.unwrap_or(false),
                    mark: *m.get_ref(),
                },
                c.origin(m, format!("service[{i}]")),
            )
        }
        (None, Some(v)) => {
            let addr = ip(c, v, &f("vip"))?;
            let proto = match &s.proto {
                None => Protocol::Tcp,
                Some(p) => match p.get_ref().to_ascii_lowercase().as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    "sctp" => Protocol::Sctp,
                    other => {
                        return Err(c.err(
                            p,
                            f("proto"),
                            format!("'{other}' is not tcp, udp or sctp"),
                        ));
                    }
                },
            };
            let port = match &s.port {
                Some(p) => *p.get_ref(),
                None => {
                    return Err(c.err(
                        v,
                        f("port"),
                        "a service needs a port (0 = any port, persistent services only)",
                    ));
                }
            };
            (
                ServiceKey::Addr { proto, addr, port },
                c.origin(v, format!("service[{i}]")),
            )
        }
        (Some(m), Some(_)) => {
            return Err(c.err(
                m,
                f("fwmark"),
                "give either vip/port/proto or fwmark, not both",
            ));
        }
        (None, None) => {
            let origin = s
                .scheduler
                .as_ref()
                .map(|x| c.origin(x, f("vip")))
                .unwrap_or_default();
            return Err(ConfigError {
                file: c.path.into(),
                line: origin.line,
                column: origin.column,
                field: f("vip"),
                message: "a service needs vip and port (or fwmark)".into(),
            });
        }
    };
    let mut cfg = ServiceConfig::new(key);
    if let Some(sc) = &s.scheduler {
        let name = sc.get_ref();
        if !sched::NAMES.contains(&name.as_str()) && name != "none" {
            return Err(c.err(
                sc,
                f("scheduler"),
                format!(
                    "unknown scheduler '{name}' (one of: {})",
                    sched::NAMES.join(", ")
                ),
            ));
        }
        cfg.scheduler = name.clone();
    }
    if let Some(p) = &s.persistent {
        if *p.get_ref() == 0 {
            return Err(c.err(
                p,
                f("persistent"),
                "a persistence timeout is at least 1 second (omit the field for none)",
            ));
        }
        cfg = cfg.persistent(*p.get_ref());
    }
    if let Some(m) = &s.netmask {
        let v6 = key.is_v6();
        cfg.netmask = match (v6, m.get_ref()) {
            (true, toml::Value::Integer(n)) if (1..=128).contains(n) => Netmask::V6(*n as u8),
            (true, toml::Value::String(t)) => match t.trim_start_matches('/').parse::<u8>() {
                Ok(n) if (1..=128).contains(&n) => Netmask::V6(n),
                _ => {
                    return Err(c.err(
                        m,
                        f("netmask"),
                        "an IPv6 netmask is a prefix length 1..=128",
                    ));
                }
            },
            (false, toml::Value::String(t)) => match t.parse::<std::net::Ipv4Addr>() {
                Ok(a) => Netmask::V4(u32::from(a)),
                Err(_) => {
                    return Err(c.err(
                        m,
                        f("netmask"),
                        format!("'{t}' is not a dotted IPv4 netmask"),
                    ));
                }
            },
            _ => {
                return Err(c.err(
                    m,
                    f("netmask"),
                    if v6 {
                        "an IPv6 netmask is a prefix length 1..=128"
                    } else {
                        "an IPv4 netmask is a dotted string like \"255.255.255.0\""
                    },
                ));
            }
        };
    }
    for fl in &s.sched_flags {
        let Some(bit) = sched_flag(fl.get_ref()) else {
            return Err(c.err(
                fl,
                f("sched_flags"),
                format!("unknown scheduler flag '{}' ({SCHED_FLAGS})", fl.get_ref()),
            ));
        };
        cfg.flags.0 |= bit;
    }
    if s.one_packet {
        cfg.flags.0 |= ServiceFlags::ONEPACKET;
    }
    if let Some(pe) = &s.pe {
        cfg.pe_name = Some(pe.get_ref().clone());
    }
    let mut dests = Vec::new();
    let mut dest_origins = Vec::new();
    for (j, d) in s.real_server.iter().enumerate() {
        let g = |name: &str| format!("service[{i}].real_server[{j}].{name}");
        let addr = ip(c, &d.addr, &g("addr"))?;
        let mut dc = DestConfig::new(addr, d.port.as_ref().map_or(key.port(), |p| *p.get_ref()));
        dc.fwd = match &d.forward {
            None => ForwardMethod::Masq,
            Some(m) => match m.get_ref().to_ascii_lowercase().as_str() {
                "masq" | "nat" | "masquerading" => ForwardMethod::Masq,
                "route" | "dr" | "gatewaying" | "direct" => ForwardMethod::Route,
                "tunnel" | "ipip" | "tun" => ForwardMethod::Tunnel,
                "fullnat" | "full-nat" | "fnat" => ForwardMethod::FullNat,
                other => {
                    return Err(c.err(
                        m,
                        g("forward"),
                        format!("'{other}' is not masq, route, tunnel or fullnat"),
                    ));
                }
            },
        };
        if let Some(w) = &d.weight {
            let v = *w.get_ref();
            if !(0..=i32::MAX as i64).contains(&v) {
                return Err(c.err(
                    w,
                    g("weight"),
                    format!("{v} is out of range 0..={}", i32::MAX),
                ));
            }
            dc.weight = v as u32;
        }
        if let Some(u) = &d.u_threshold {
            dc.u_threshold = *u.get_ref();
        }
        if let Some(l) = &d.l_threshold {
            dc.l_threshold = *l.get_ref();
        }
        dc.tunnel = TunnelInfo::default();
        dests.push(dc);
        dest_origins.push(c.origin(&d.addr, format!("service[{i}].real_server[{j}]")));
    }
    Ok(ServiceEntry {
        cfg,
        dests,
        origin,
        dest_origins,
    })
}

/// The default `engine.conn_max`: sized from the machine's memory
/// ([`rvs_core::conn_max_for_memory`]); the engine's own default where `/proc/meminfo` cannot
/// be read.
pub fn default_conn_max() -> u32 {
    let kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    match kb {
        Some(kb) => rvs_core::conn_max_for_memory(kb * 1024),
        None => rvs_core::EngineConfig::default().conn_max,
    }
}
