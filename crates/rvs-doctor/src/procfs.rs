//! Parsers for the `/proc` files the audit reads (formats: `docs/kernel-semantics.md` §8.9, checked
//! against the kernel's `ip_vs_info_seq_show` and `ip_vs_conn_seq_show`).

use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A service or connection address: IPv4/IPv6 address and port, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum VAddr {
    /// `addr:port`.
    Addr(IpAddr, u16),
    /// `FWM <mark>`.
    Fwmark(u32),
}

impl fmt::Display for VAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VAddr::Addr(IpAddr::V4(a), p) => write!(f, "{a}:{p}"),
            VAddr::Addr(IpAddr::V6(a), p) => write!(f, "[{a}]:{p}"),
            VAddr::Fwmark(m) => write!(f, "fwmark {m}"),
        }
    }
}

/// One real server line of `/proc/net/ip_vs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dest {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// `Masq`, `Route`, `Tunnel`, `Local`.
    pub forward: String,
    /// Weight.
    pub weight: i64,
    /// ActiveConn.
    pub active: u64,
    /// InActConn.
    pub inactive: u64,
}

impl Dest {
    /// `addr:port` as ipvsadm prints it.
    pub fn endpoint(&self) -> String {
        VAddr::Addr(self.addr, self.port).to_string()
    }
}

/// One virtual service of `/proc/net/ip_vs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// `TCP`, `UDP`, `SCTP`, … or `FWM`.
    pub protocol: String,
    /// Address or fwmark.
    pub vaddr: VAddr,
    /// Scheduler name.
    pub scheduler: String,
    /// One-packet scheduling.
    pub ops: bool,
    /// Persistence: the raw timeout as printed (jiffies) and the netmask.
    pub persistent: Option<Persistence>,
    /// Real servers, in kernel order.
    pub dests: Vec<Dest>,
}

/// The `persistent <timeout> <mask>` part of a service line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Persistence {
    /// The value printed by the kernel: `svc->timeout`, which `ip_vs_add_service` stores as
    /// seconds × HZ, i.e. **jiffies** (75000 for 300 s at HZ=250 in the 6.1 golden capture).
    pub timeout_jiffies: u64,
    /// Netmask (IPv4: mask as host-order hex; IPv6: prefix length).
    pub netmask: u32,
}

/// The parsed `/proc/net/ip_vs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpvsTable {
    /// Version line, e.g. `1.2.1`.
    pub version: String,
    /// Connection hash table size (`size=`).
    pub size: Option<u64>,
    /// Services in the order printed.
    pub services: Vec<Service>,
}

fn parse_hex_u32(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 16).map_err(|_| format!("bad hex number {s:?}"))
}

fn parse_hex_u16(s: &str) -> Result<u16, String> {
    u16::from_str_radix(s, 16).map_err(|_| format!("bad hex port {s:?}"))
}

/// An address as /proc prints it: 8 hex digits (IPv4, host order) or the uncompressed IPv6
/// form, with or without brackets.
pub fn parse_proc_addr(s: &str) -> Result<IpAddr, String> {
    let s = s.trim_start_matches('[').trim_end_matches(']');
    if s.contains(':') {
        s.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("bad IPv6 address {s:?}"))
    } else if s.len() == 8 {
        Ok(IpAddr::V4(Ipv4Addr::from(parse_hex_u32(s)?)))
    } else {
        Err(format!("bad address {s:?}"))
    }
}

fn parse_addr_port(s: &str) -> Result<(IpAddr, u16), String> {
    let (a, p) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("expected ADDR:PORT, got {s:?}"))?;
    Ok((parse_proc_addr(a)?, parse_hex_u16(p)?))
}

/// Parses `/proc/net/ip_vs`.
pub fn parse_ip_vs(text: &str) -> Result<IpvsTable, String> {
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().ok_or("empty file")?;
    let version = first
        .strip_prefix("IP Virtual Server version ")
        .ok_or_else(|| format!("line 1: expected \"IP Virtual Server version\", got {first:?}"))?;
    let (version, size) = match version.split_once(" (size=") {
        Some((v, rest)) => (
            v.to_string(),
            rest.trim_end_matches(')').parse::<u64>().ok(),
        ),
        None => (version.trim().to_string(), None),
    };
    let mut services: Vec<Service> = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with("Prot ") || t.starts_with("-> RemoteAddress") {
            continue;
        }
        let err = |e: String| format!("line {n}: {e}: {line:?}");
        let toks: Vec<&str> = t.split_whitespace().collect();
        if toks[0] == "->" {
            if toks.len() < 6 {
                return Err(err("real-server line has fewer than 6 fields".into()));
            }
            let (addr, port) = parse_addr_port(toks[1]).map_err(err)?;
            let num = |s: &str| -> Result<i64, String> {
                s.parse::<i64>().map_err(|_| format!("bad number {s:?}"))
            };
            let weight = num(toks[3]).map_err(err)?;
            let active = num(toks[4]).map_err(err)?.max(0) as u64;
            let inactive = num(toks[5]).map_err(err)?.max(0) as u64;
            let svc = services
                .last_mut()
                .ok_or_else(|| err("real server before any service".into()))?;
            svc.dests.push(Dest {
                addr,
                port,
                forward: toks[2].to_string(),
                weight,
                active,
                inactive,
            });
            continue;
        }
        if toks.len() < 3 {
            return Err(err("service line has fewer than 3 fields".into()));
        }
        let protocol = toks[0].to_string();
        let vaddr = if protocol == "FWM" {
            VAddr::Fwmark(parse_hex_u32(toks[1]).map_err(err)?)
        } else {
            let (a, p) = parse_addr_port(toks[1]).map_err(err)?;
            VAddr::Addr(a, p)
        };
        let scheduler = toks[2].to_string();
        let mut ops = false;
        let mut persistent = None;
        let mut rest = toks[3..].iter();
        while let Some(tok) = rest.next() {
            match *tok {
                "ops" => ops = true,
                "persistent" => {
                    let timeout = rest
                        .next()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| err("bad persistent timeout".into()))?;
                    let netmask = rest
                        .next()
                        .map(|s| parse_hex_u32(s))
                        .transpose()
                        .map_err(err)?
                        .unwrap_or(0);
                    persistent = Some(Persistence {
                        timeout_jiffies: timeout,
                        netmask,
                    });
                }
                other => return Err(err(format!("unexpected service flag {other:?}"))),
            }
        }
        services.push(Service {
            protocol,
            vaddr,
            scheduler,
            ops,
            persistent,
            dests: Vec::new(),
        });
    }
    Ok(IpvsTable {
        version,
        size,
        services,
    })
}

/// One line of `/proc/net/ip_vs_conn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnEntry {
    /// `TCP`, `UDP`, `SCTP`, `IP` (fwmark templates), …
    pub protocol: String,
    /// Client address.
    pub caddr: IpAddr,
    /// Client port (0 for persistence templates).
    pub cport: u16,
    /// Virtual address (for fwmark templates: the mark, rendered as an address).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// State name (`ESTABLISHED`, `TIME_WAIT`, `UDP`, `NONE`, `ASSURED`, …).
    pub state: String,
    /// Remaining seconds.
    pub expires: u64,
}

impl ConnEntry {
    /// Persistence templates have client port 0 (`docs/kernel-semantics.md` §5.5).
    pub fn is_template(&self) -> bool {
        self.cport == 0
    }

    /// A TCP entry in a state that keeps a closed connection's tuple (the client port) in the
    /// table: TIME_WAIT and CLOSE (NAT), FIN_WAIT (DR/TUN never go further), CLOSE_WAIT,
    /// LAST_ACK.
    pub fn is_tcp_closing(&self) -> bool {
        self.protocol == "TCP"
            && !self.is_template()
            && matches!(
                self.state.as_str(),
                "TIME_WAIT" | "CLOSE" | "FIN_WAIT" | "CLOSE_WAIT" | "LAST_ACK"
            )
    }
}

/// Parses `/proc/net/ip_vs_conn` (and tolerates the `_sync` variant's extra `Origin` column).
pub fn parse_ip_vs_conn(text: &str) -> Result<Vec<ConnEntry>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().ok_or("empty file")?;
    if !first.starts_with("Pro FromIP") {
        return Err(format!(
            "line 1: expected the \"Pro FromIP ...\" header, got {first:?}"
        ));
    }
    for (i, line) in lines {
        let n = i + 1;
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.is_empty() {
            continue;
        }
        let err = |e: String| format!("line {n}: {e}: {line:?}");
        if toks.len() < 9 {
            return Err(err("fewer than 9 fields".into()));
        }
        let expires_tok = if matches!(toks[8], "LOCAL" | "SYNC") {
            toks.get(9).copied().unwrap_or("")
        } else {
            toks[8]
        };
        out.push(ConnEntry {
            protocol: toks[0].to_string(),
            caddr: parse_proc_addr(toks[1]).map_err(err)?,
            cport: parse_hex_u16(toks[2]).map_err(err)?,
            vaddr: parse_proc_addr(toks[3]).map_err(err)?,
            vport: parse_hex_u16(toks[4]).map_err(err)?,
            daddr: parse_proc_addr(toks[5]).map_err(err)?,
            dport: parse_hex_u16(toks[6]).map_err(err)?,
            state: toks[7].to_string(),
            expires: expires_tok
                .parse()
                .map_err(|_| err(format!("bad expiry {expires_tok:?}")))?,
        });
    }
    Ok(out)
}

/// A single integer sysctl.
pub fn parse_int(text: &str) -> Result<i64, String> {
    let t = text.trim();
    t.parse::<i64>()
        .map_err(|_| format!("expected an integer, got {t:?}"))
}

/// `ip_local_port_range`: two integers, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    /// First port.
    pub low: u32,
    /// Last port (inclusive).
    pub high: u32,
}

impl PortRange {
    /// Number of ports, inclusive.
    pub fn len(&self) -> u32 {
        self.high.saturating_sub(self.low) + 1
    }

    /// Always false: a range has at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Parses `ip_local_port_range`.
pub fn parse_port_range(text: &str) -> Result<PortRange, String> {
    let v: Vec<&str> = text.split_whitespace().collect();
    if v.len() != 2 {
        return Err(format!("expected two integers, got {:?}", text.trim()));
    }
    let low: u32 = v[0].parse().map_err(|_| format!("bad port {:?}", v[0]))?;
    let high: u32 = v[1].parse().map_err(|_| format!("bad port {:?}", v[1]))?;
    if low > high || high > 65535 {
        return Err(format!("invalid range {low}..{high}"));
    }
    Ok(PortRange { low, high })
}

/// `ip_local_reserved_ports`: a comma-separated list of ports and `a-b` ranges (may be empty).
pub fn parse_reserved_ports(text: &str) -> Result<Vec<(u32, u32)>, String> {
    let mut out = Vec::new();
    for part in text
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u32 = a.trim().parse().map_err(|_| format!("bad port {part:?}"))?;
        let b: u32 = b.trim().parse().map_err(|_| format!("bad port {part:?}"))?;
        out.push((a.min(b), a.max(b)));
    }
    Ok(out)
}

/// `CONFIG_HZ=` from a kernel config file.
pub fn parse_config_hz(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN_IP_VS: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A000065:1F90 sh  
  -> 0A000C02:1F90      Tunnel  2      0          0         
  -> 0A000B02:1F90      Route   1      0          0         
UDP  0A000067:1388 rr ops  
  -> 0A000B02:1388      Masq    1      0          0         
TCP  0A000064:01BB wlc  persistent 75000 FFFFFFFF
  -> 0A000C02:01BB      Masq    1      0          8         
TCP  [fd00:0000:0000:0000:0000:0000:0000:0100]:0050 rr 
  -> [fd00:0000:0000:0000:0000:0000:0011:0002]:0050      Masq    1      0          0         
FWM  00000001 lc 
  -> 0A000D02:0000      Masq    1      0          0         
";

    #[test]
    fn parses_golden_ip_vs() {
        let t = parse_ip_vs(GOLDEN_IP_VS).unwrap();
        assert_eq!(t.version, "1.2.1");
        assert_eq!(t.size, Some(4096));
        assert_eq!(t.services.len(), 5);
        let sh = &t.services[0];
        assert_eq!(sh.vaddr.to_string(), "10.0.0.101:8080");
        assert_eq!(sh.dests[0].forward, "Tunnel");
        assert_eq!(sh.dests[0].weight, 2);
        assert!(t.services[1].ops);
        let p = t.services[2].persistent.unwrap();
        assert_eq!(p.timeout_jiffies, 75000);
        assert_eq!(p.netmask, 0xFFFF_FFFF);
        assert_eq!(t.services[2].dests[0].inactive, 8);
        assert_eq!(t.services[3].vaddr.to_string(), "[fd00::100]:80");
        assert_eq!(t.services[3].dests[0].endpoint(), "[fd00::11:2]:80");
        assert_eq!(t.services[4].vaddr, VAddr::Fwmark(1));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_ip_vs("").is_err());
        assert!(parse_ip_vs("hello\n").is_err());
        let bad = "IP Virtual Server version 1.2.1 (size=4096)\nTCP  ZZZ:0050 rr\n";
        let e = parse_ip_vs(bad).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let orphan = "IP Virtual Server version 1.2.1 (size=4096)\n  -> 0A000C02:01BB Masq 1 0 8\n";
        assert!(parse_ip_vs(orphan).is_err());
    }

    #[test]
    fn parses_conn_lines() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A000102 BE30 0A000064 01BB 0A000C02 01BB TIME_WAIT       109
TCP 0A000102 0000 0A000064 01BB 0A000C02 01BB ASSURED         289
TCP fd00:0000:0000:0000:0000:0000:0001:0002 BE30 fd00:0000:0000:0000:0000:0000:0000:0100 0050 fd00:0000:0000:0000:0000:0000:0011:0002 0050 ESTABLISHED     899
UDP 0A000102 9792 0A000064 0035 0A000B02 0035 UDP             289 sip abc
";
        let c = parse_ip_vs_conn(text).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].cport, 0xBE30);
        assert!(c[0].is_tcp_closing());
        assert!(c[1].is_template());
        assert_eq!(c[2].caddr.to_string(), "fd00::1:2");
        assert_eq!(c[3].expires, 289);
        assert!(parse_ip_vs_conn("nope\n").is_err());
    }

    #[test]
    fn small_parsers() {
        assert_eq!(parse_port_range("32768\t60999\n").unwrap().len(), 28232);
        assert!(parse_port_range("1").is_err());
        assert_eq!(
            parse_reserved_ports("30000-30009, 40000\n").unwrap(),
            vec![(30000, 30009), (40000, 40000)]
        );
        assert_eq!(parse_int(" 1\n").unwrap(), 1);
        assert!(parse_int("x").is_err());
        assert_eq!(parse_config_hz("CONFIG_X=y\nCONFIG_HZ=250\n"), Some(250));
    }
}
