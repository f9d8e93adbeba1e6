//! Output formats, one file each, all producing `String`s from the snapshot views, byte for
//! byte as ipvsadm 1.31 (and the kernel's `/proc/net/ip_vs*` files) print them.
//!
//! | ipvsadm / file | function |
//! |---|---|
//! | `-L`, `-Ln`, `--nosort` | [`listing`] (with [`list`] lines) |
//! | `-L -t VIP:port` | [`single_service`] |
//! | `--stats`, `--rate`, `--exact` | [`listing`] (with [`stats`] lines) |
//! | `--thresholds` | [`listing`] (with [`thresholds`] lines) |
//! | `--persistent-conn` | [`listing`] (with [`persistent`] lines) |
//! | `--tun-info` | [`listing`] (with [`tuninfo`] lines) |
//! | `-S`, `-S -n` | [`save::save`] |
//! | `-Lc`, `-Lnc` | [`conns::conns`] |
//! | `-L --timeout` | [`timeout::timeout`] |
//! | `-L --daemon` | [`daemon::daemons`] |
//! | `-v` | [`version::version`] |
//! | `-h` | [`help::usage`] |
//! | `/proc/net/ip_vs` | [`proc_ip_vs::proc_ip_vs`] |
//! | `/proc/net/ip_vs_conn`, `/proc/net/ip_vs_conn_sync` | [`proc_conn`] |
//! | `/proc/net/ip_vs_stats` | [`proc_stats::proc_ip_vs_stats`] |

use core::net::IpAddr;
use std::fmt::Write as _;

use rvs_core::service::{Protocol, ServiceKey};
use rvs_core::snapshot::{DestView, InfoView, ServiceView};

use crate::args::ListOptions;
use crate::resolve::Resolver;

pub mod conns;
pub mod daemon;
pub mod help;
pub mod list;
pub mod persistent;
pub mod proc_conn;
pub mod proc_ip_vs;
pub mod proc_stats;
pub mod save;
pub mod stats;
pub mod thresholds;
pub mod timeout;
pub mod tuninfo;
pub mod version;

/// Which of ipvsadm's listing formats applies (ipvsadm tests its format flags in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
    Plain,
}

impl Style {
    pub(crate) fn of(o: &ListOptions) -> Style {
        if o.stats {
            Style::Stats
        } else if o.rate {
            Style::Rate
        } else if o.thresholds {
            Style::Thresholds
        } else if o.persistent_conn {
            Style::PersistentConn
        } else if o.tun_info {
            Style::TunInfo
        } else {
            Style::Plain
        }
    }
}

/// ipvsadm's `addrport_to_anyname`: `addr:port` (`[addr]:port` for IPv6) with names unless
/// `numeric`; the result is cut at 59 bytes like ipvsadm's 60-byte buffer.
pub(crate) fn addrport(
    addr: IpAddr,
    port: u16,
    proto: Option<Protocol>,
    numeric: bool,
    names: &dyn Resolver,
) -> String {
    let (open, close) = if addr.is_ipv4() { ("", "") } else { ("[", "]") };
    let s = if numeric {
        format!("{open}{addr}{close}:{port}")
    } else {
        let host = names.addr_to_host(addr).unwrap_or_else(|| addr.to_string());
        let serv = proto
            .and_then(|p| names.port_to_service(port, p))
            .unwrap_or_else(|| port.to_string());
        format!("{open}{host}{close}:{serv}")
    };
    cut(s, 59)
}

/// Truncates to at most `max` bytes (as C string truncation does).
pub(crate) fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// glibc's `qsort` (a top-down merge sort, as glibc 2.36 uses for small arrays) with a C
/// comparator. With ipvsadm's non-transitive comparators (P27) the result is exactly glibc's.
pub(crate) fn glibc_msort<T: Clone>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut tmp: Vec<T> = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            tmp.push(v[i].clone());
            i += 1;
        } else {
            tmp.push(v[j].clone());
            j += 1;
        }
    }
    while i < n1 {
        tmp.push(v[i].clone());
        i += 1;
    }
    // The rest of the second half is already in place.
    for (k, x) in tmp.into_iter().enumerate() {
        v[k] = x;
    }
}

/// An address as four host-order words, IPv4 in the first (the `nf_inet_addr` union).
fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(a) => [u32::from(a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            core::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// C `int r = a - b` on unsigned 32-bit values.
fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn addr_cmp(first_is_v6: bool, a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    if first_is_v6 {
        let mut r = 0;
        for i in 0..4 {
            r = diff(wa[i], wb[i]);
            if r != 0 {
                break;
            }
        }
        r
    } else {
        diff(wa[0], wb[0])
    }
}

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

struct SortKey {
    fwmark: u32,
    af: i32,
    proto: i32,
    addr: IpAddr,
    port: u16,
}

fn sort_key(k: &ServiceKey) -> SortKey {
    match *k {
        ServiceKey::Addr { proto, addr, port } => SortKey {
            fwmark: 0,
            af: if addr.is_ipv6() { AF_INET6 } else { AF_INET },
            proto: proto.ipproto() as i32,
            addr,
            port,
        },
        ServiceKey::Fwmark { v6, mark } => SortKey {
            fwmark: mark,
            af: if v6 { AF_INET6 } else { AF_INET },
            proto: 0,
            addr: if v6 {
                IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)
            },
            port: 0,
        },
    }
}

/// libipvs `ipvs_cmp_services`.
pub(crate) fn cmp_services(a: &ServiceView, b: &ServiceView) -> i32 {
    let (x, y) = (sort_key(&a.key), sort_key(&b.key));
    let r = diff(x.fwmark, y.fwmark);
    if r != 0 {
        return r;
    }
    let r = x.af - y.af;
    if r != 0 {
        return r;
    }
    let r = x.proto - y.proto;
    if r != 0 {
        return r;
    }
    let r = addr_cmp(x.af == AF_INET6, x.addr, y.addr);
    if r != 0 {
        return r;
    }
    x.port as i32 - y.port as i32
}

/// libipvs `ipvs_cmp_dests`.
pub(crate) fn cmp_dests(a: &DestView, b: &DestView) -> i32 {
    let r = addr_cmp(a.addr.is_ipv6(), a.addr, b.addr);
    if r != 0 {
        return r;
    }
    a.port as i32 - b.port as i32
}

/// Services in listing order: sorted as ipvsadm sorts them, unless `nosort`.
pub(crate) fn ordered(services: &[ServiceView], nosort: bool) -> Vec<ServiceView> {
    let mut v = services.to_vec();
    if !nosort {
        glibc_msort(&mut v, &cmp_services);
    }
    v
}

/// The protocol ipvsadm uses for port names of a service (none for fwmark services).
pub(crate) fn name_proto(key: &ServiceKey) -> Option<Protocol> {
    match key {
        ServiceKey::Addr { proto, .. } => Some(*proto),
        ServiceKey::Fwmark { .. } => None,
    }
}

/// The scheduler flag names (`sh-fallback,sh-port`...), empty when none prints.
pub(crate) fn sched_flags(svc: &ServiceView) -> String {
    use rvs_core::service::ServiceFlags as F;
    let f = svc.flags;
    let mut names: Vec<&str> = Vec::new();
    match svc.scheduler.as_str() {
        "sh" => {
            if f.has(F::SCHED1) {
                names.push("sh-fallback");
            }
            if f.has(F::SCHED2) {
                names.push("sh-port");
            }
        }
        "mh" => {
            if f.has(F::SCHED1) {
                names.push("mh-fallback");
            }
            if f.has(F::SCHED2) {
                names.push("mh-port");
            }
        }
        _ => {
            if f.has(F::SCHED1) {
                names.push("flag-1");
            }
            if f.has(F::SCHED2) {
                names.push("flag-2");
            }
            if f.has(F::SCHED3) {
                names.push("flag-3");
            }
        }
    }
    names.join(",")
}

/// Whether any scheduler flag bit is set.
pub(crate) fn any_sched_flag(svc: &ServiceView) -> bool {
    svc.flags.0 & rvs_core::service::ServiceFlags::SCHED_MASK != 0
}

/// `inet_ntoa` of a host-order IPv4 mask.
pub(crate) fn dotted(mask: u32) -> String {
    core::net::Ipv4Addr::from(mask).to_string()
}

/// The name column of a service in listings: `TCP  10.0.0.1:80` (cut at 33 bytes for
/// IPv4), `FWM  1`, `FWM  1 IPv6`.
pub(crate) fn list_name(svc: &ServiceView, numeric: bool, names: &dyn Resolver) -> String {
    match svc.key {
        ServiceKey::Fwmark { v6, mark } => {
            format!("FWM  {mark}{}", if v6 { " IPv6" } else { "" })
        }
        ServiceKey::Addr { proto, addr, port } => {
            let v = addrport(addr, port, Some(proto), numeric, names);
            let s = format!("{:<4} {v}", proto.name());
            if addr.is_ipv4() { cut(s, 33) } else { s }
        }
    }
}

/// A real server's `addr:port` column (cut at 28 bytes unless IPv6).
pub(crate) fn dest_name(
    svc: &ServiceView,
    d: &DestView,
    numeric: bool,
    names: &dyn Resolver,
) -> String {
    let s = addrport(d.addr, d.port, name_proto(&svc.key), numeric, names);
    if d.addr.is_ipv6() { s } else { cut(s, 28) }
}

/// The forwarding-method name of the listing (`Masq`, `Local`, `Tunnel`, `Route`).
pub(crate) fn fwd_name(d: &DestView) -> &'static str {
    d.fwd.ipvsadm_name()
}

fn title(style: Style) -> &'static str {
    match style {
        Style::Stats => stats::STATS_TITLE,
        Style::Rate => stats::RATE_TITLE,
        Style::Thresholds => thresholds::TITLE,
        Style::PersistentConn => persistent::TITLE,
        Style::TunInfo => tuninfo::TITLE,
        Style::Plain => list::TITLE,
    }
}

/// One service and its real servers (ipvsadm's `print_service_entry`).
pub(crate) fn service_entry(
    out: &mut String,
    svc: &ServiceView,
    style: Style,
    o: &ListOptions,
    names: &dyn Resolver,
) {
    let name = list_name(svc, o.numeric, names);
    match style {
        Style::Stats => stats::stats_service(out, &name, svc, o.exact),
        Style::Rate => stats::rate_service(out, &name, svc, o.exact),
        _ => list::service_line(out, &name, svc),
    }
    let mut dests = svc.dests.clone();
    if !o.nosort {
        glibc_msort(&mut dests, &cmp_dests);
    }
    for d in &dests {
        let dn = dest_name(svc, d, o.numeric, names);
        match style {
            Style::Stats => stats::stats_dest(out, &dn, d, o.exact),
            Style::Rate => stats::rate_dest(out, &dn, d, o.exact),
            Style::Thresholds => thresholds::dest_line(out, &dn, d),
            Style::PersistentConn => persistent::dest_line(out, &dn, d),
            Style::TunInfo => tuninfo::dest_line(out, &dn, d),
            _ => list::dest_line(out, &dn, d),
        }
    }
}

/// `ipvsadm -L [options]` without a service: version header, titles, every service.
pub fn listing(
    info: &InfoView,
    services: &[ServiceView],
    o: &ListOptions,
    names: &dyn Resolver,
) -> String {
    let mut out = String::new();
    let (a, b, c) = info.version;
    let _ = writeln!(
        out,
        "IP Virtual Server version {a}.{b}.{c} (size={})",
        info.conn_tab_size as i32
    );
    let style = Style::of(o);
    out.push_str(title(style));
    for svc in ordered(services, o.nosort) {
        service_entry(&mut out, &svc, style, o, names);
    }
    out
}

/// `ipvsadm -L -t|-u|-f ...`: titles and the one service (no version header).
pub fn single_service(svc: &ServiceView, o: &ListOptions, names: &dyn Resolver) -> String {
    let mut out = String::new();
    let style = Style::of(o);
    out.push_str(title(style));
    service_entry(&mut out, svc, style, o, names);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msort_is_glibc_merge_with_p27_comparator() {
        // The P27 example of kernel-semantics §9.1: 172.16.0.1, 192.168.1.2, 10.0.0.5,
        // 10.0.0.100 as added (kernel order newest first) come out in exactly that order.
        let ips = ["10.0.0.100", "10.0.0.5", "192.168.1.2", "172.16.0.1"];
        let mut v: Vec<u32> = ips
            .iter()
            .map(|s| u32::from(s.parse::<core::net::Ipv4Addr>().unwrap()))
            .collect();
        glibc_msort(&mut v, &|a: &u32, b: &u32| diff(*a, *b));
        let got: Vec<String> = v
            .iter()
            .map(|x| core::net::Ipv4Addr::from(*x).to_string())
            .collect();
        assert_eq!(got, ["172.16.0.1", "192.168.1.2", "10.0.0.5", "10.0.0.100"]);
    }
}
