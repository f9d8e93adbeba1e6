//! Parsers for what both sides print: the helpers' `conn` / `udp` / `summary` / `dist`
//! lines, the scenarios' `RESULT` lines and sections, and ipvsadm's tables.
//!
//! Normalisation (what legitimately differs between the two runs, and nothing else):
//! * client ports in `-Lnc` are replaced by `*` (the two clients' kernels pick different
//!   ephemeral ports; port 0 of persistence templates and fixed ports such as udpflow's 5353
//!   are kept, they are part of the behaviour);
//! * `-Lnc` lines are compared as a multiset (their order is the hash table's);
//! * expiry times are kept apart from the rest of the line and compared with a tolerance.

use std::collections::BTreeMap;

/// `key=value` tokens of one line (tokens without `=` are skipped).
pub fn kv(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The scenario's sections: (title after `### `, the lines until the next section). The
/// runners' own marker lines (`@@KIPVS ...`, `@@RVS ...`) are left out.
pub fn sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    for l in text.lines() {
        if l.starts_with("@@KIPVS ") || l.starts_with("@@RVS ") {
            continue;
        }
        if let Some(t) = l.strip_prefix("### ") {
            out.push((t.trim().to_string(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(l.to_string());
        }
    }
    out
}

/// The first section whose title starts with `prefix`.
pub fn section<'a>(secs: &'a [(String, Vec<String>)], prefix: &str) -> Option<&'a [String]> {
    secs.iter()
        .find(|(t, _)| t.starts_with(prefix))
        .map(|(_, b)| b.as_slice())
}

/// A helper's `summary label=L ...` line (tcpclient or udpflow), as numbers where numeric.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Every `key=value` of the line.
    pub fields: BTreeMap<String, String>,
}

impl Summary {
    /// A numeric field (0 when absent).
    pub fn n(&self, k: &str) -> i64 {
        self.fields
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|f| f as i64)
            .unwrap_or(0)
    }
    /// The failed attempts (everything but ok).
    pub fn failed(&self) -> i64 {
        self.n("attempted") - self.n("ok")
    }
    /// Outcome kinds seen at least once (ok, refused, timeout, unreach, reset, other).
    pub fn kinds(&self) -> Vec<&'static str> {
        ["ok", "refused", "timeout", "unreach", "reset", "other"]
            .into_iter()
            .filter(|k| self.n(k) > 0)
            .collect()
    }
}

/// The `summary` line with `label=L` in `lines`.
pub fn summary<'a>(lines: impl IntoIterator<Item = &'a str>, label: &str) -> Option<Summary> {
    lines
        .into_iter()
        .filter(|l| l.starts_with("summary "))
        .map(kv)
        .find(|f| f.get("label").map(String::as_str) == Some(label))
        .map(|fields| Summary { fields })
}

/// The `dist label=L rsA=n ...` line with `label=L`: server -> count.
pub fn dist<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    label: &str,
) -> Option<BTreeMap<String, i64>> {
    lines
        .into_iter()
        .filter(|l| l.starts_with("dist "))
        .map(kv)
        .find(|f| f.get("label").map(String::as_str) == Some(label))
        .map(|mut f| {
            f.remove("label");
            f.into_iter()
                .map(|(k, v)| (k, v.parse().unwrap_or(0)))
                .collect()
        })
}

/// Formats a server -> count map as `rs1=3 rs2=4`.
pub fn fmt_dist(d: &BTreeMap<String, i64>) -> String {
    if d.is_empty() {
        return "(none)".into();
    }
    d.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One `conn ...` line of tcpclient.
#[derive(Clone, Debug, PartialEq)]
pub struct Conn {
    /// Local (client) port.
    pub lport: u32,
    /// ok, refused, timeout, unreach, reset, other.
    pub result: String,
    /// Real server name, `-` when not ok.
    pub rs: String,
    /// Connect latency in µs (-1 for timeouts).
    pub lat_us: i64,
    /// Start, ms since the client started.
    pub t_ms: i64,
}

/// Every `conn` line in `text`.
pub fn conns(text: &str) -> Vec<Conn> {
    text.lines()
        .filter(|l| l.starts_with("conn "))
        .map(|l| {
            let f = kv(l);
            let g = |k: &str| f.get(k).cloned().unwrap_or_default();
            Conn {
                lport: g("lport").parse().unwrap_or(0),
                result: g("result"),
                rs: g("rs"),
                lat_us: g("lat_us").parse().unwrap_or(-1),
                t_ms: g("t_ms").parse().unwrap_or(0),
            }
        })
        .collect()
}

/// An `ipvsadm -Lnc` entry, normalised (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LncEntry {
    /// `pro state source virtual destination`, the client port replaced by `*` unless 0
    /// or `keep_port`.
    pub key: String,
    /// Expiry in seconds.
    pub expire_s: i64,
}

/// The entries of an `ipvsadm -Lnc` listing; client ports other than 0 and `keep_ports`
/// become `*`.
pub fn lnc(text: &str, keep_ports: &[u16]) -> Vec<LncEntry> {
    let mut v: Vec<LncEntry> = text
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            if t.len() != 6 || !matches!(t[0], "TCP" | "UDP" | "SCTP" | "IP") {
                return None;
            }
            let (m, s) = t[1].split_once(':')?;
            let expire_s = m.parse::<i64>().ok()? * 60 + s.parse::<i64>().ok()?;
            let src = match t[3].rsplit_once(':') {
                Some((a, p)) => {
                    let port: u16 = p.parse().unwrap_or(1);
                    if port == 0 || keep_ports.contains(&port) {
                        t[3].to_string()
                    } else {
                        format!("{a}:*")
                    }
                }
                None => t[3].to_string(),
            };
            Some(LncEntry {
                key: format!("{} {} {} {} {}", t[0], t[2], src, t[4], t[5]),
                expire_s,
            })
        })
        .collect();
    v.sort();
    v
}

/// One row of `ipvsadm -Ln --stats` (a service or a real server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsRow {
    /// `TCP  10.0.0.100:80` for a service, `-> 10.0.11.2:80` for a real server.
    pub key: String,
    /// Conns, InPkts, OutPkts, InBytes, OutBytes.
    pub v: [i64; 5],
}

/// The rows of the first `--stats` table in `lines`.
pub fn stats_rows<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<StatsRow> {
    let mut out = Vec::new();
    for l in lines {
        let t: Vec<&str> = l.split_whitespace().collect();
        let (key, nums) = match t.first() {
            Some(&"->") if t.len() == 7 => (format!("-> {}", t[1]), &t[2..]),
            Some(p) if matches!(*p, "TCP" | "UDP" | "SCTP" | "FWM") && t.len() == 7 => {
                (format!("{} {}", t[0], t[1]), &t[2..])
            }
            _ => continue,
        };
        let parsed: Vec<i64> = nums.iter().filter_map(|n| n.parse().ok()).collect();
        if parsed.len() == 5 {
            out.push(StatsRow {
                key,
                v: [parsed[0], parsed[1], parsed[2], parsed[3], parsed[4]],
            });
        }
    }
    out
}

/// One real-server row of `ipvsadm -Ln`: (address, forward, weight, active, inactive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnDest {
    /// `10.0.11.2:80`.
    pub addr: String,
    /// Weight column.
    pub weight: i64,
    /// ActiveConn.
    pub active: i64,
    /// InActConn.
    pub inactive: i64,
}

/// The real-server rows of an `ipvsadm -Ln` table (the plain one: Forward Weight Active
/// InAct columns).
pub fn ln_dests<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<LnDest> {
    lines
        .into_iter()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            if t.len() == 6 && t[0] == "->" && t[1] != "RemoteAddress:Port" {
                Some(LnDest {
                    addr: t[1].to_string(),
                    weight: t[3].parse().ok()?,
                    active: t[4].parse().ok()?,
                    inactive: t[5].parse().ok()?,
                })
            } else {
                None
            }
        })
        .collect()
}

/// The lines after the first line that starts with `marker`, as long as they look like
/// ipvsadm output (headers, services, real servers, connection entries).
pub fn block_after<'a>(lines: &'a [String], marker: &str) -> Vec<&'a str> {
    let Some(i) = lines.iter().position(|l| l.starts_with(marker)) else {
        return Vec::new();
    };
    lines[i + 1..]
        .iter()
        .map(String::as_str)
        .take_while(|l| {
            [
                "IP Virtual Server",
                "Prot ",
                "  -> ",
                "TCP ",
                "UDP ",
                "SCTP ",
                "FWM ",
                "IPVS connection",
                "pro ",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect()
}

/// The value of `NAME=value` on the first line that starts with `NAME=`.
pub fn var<'a>(lines: impl IntoIterator<Item = &'a str>, name: &str) -> Option<String> {
    let p = format!("{name}=");
    lines
        .into_iter()
        .find_map(|l| l.strip_prefix(p.as_str()).map(|v| v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lnc_normalises_client_ports_but_not_templates_or_fixed_ports() {
        let t = "IPVS connection entries\npro expire state       source             virtual            destination\n\
TCP 01:59  TIME_WAIT   10.0.1.2:53302     10.0.0.100:80      10.0.12.2:80\n\
TCP 00:59  ASSURED     10.0.1.2:0         10.0.0.100:80      10.0.12.2:80\n\
UDP 00:04  UDP         10.0.1.2:5353      10.0.0.100:53      10.0.11.2:53\n";
        let e = lnc(t, &[5353]);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0].key,
            "TCP ASSURED 10.0.1.2:0 10.0.0.100:80 10.0.12.2:80"
        );
        assert_eq!(e[0].expire_s, 59);
        assert_eq!(
            e[1].key,
            "TCP TIME_WAIT 10.0.1.2:* 10.0.0.100:80 10.0.12.2:80"
        );
        assert_eq!(e[1].expire_s, 119);
        assert_eq!(e[2].key, "UDP UDP 10.0.1.2:5353 10.0.0.100:53 10.0.11.2:53");
    }

    #[test]
    fn stats_and_ln_tables() {
        let s = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n\
  -> RemoteAddress:Port\n\
TCP  10.0.0.100:8001                   120      600      363    32160    20316\n\
  -> 10.0.11.2:80                       40      200      120    10720     6720\n";
        let r = stats_rows(s.lines());
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].key, "TCP 10.0.0.100:8001");
        assert_eq!(r[1].v, [40, 200, 120, 10720, 6720]);
        let l = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  10.0.0.100:8001 rr\n  -> 10.0.11.2:80                 Masq    1      0          40        \n";
        let d = ln_dests(l.lines());
        assert_eq!(
            d,
            vec![LnDest {
                addr: "10.0.11.2:80".into(),
                weight: 1,
                active: 0,
                inactive: 40
            }]
        );
    }

    #[test]
    fn summary_dist_conn_sections() {
        let t = "@@KIPVS boot\n### a\nsummary label=x attempted=3 ok=2 refused=1 timeout=0\ndist label=x rs1=2\n\
conn i=0 t_ms=5 lport=40000 result=ok lat_us=12 rs=rs1 errno=0\n### b c\npinned=rs2\n@@RVS scenario-exit rc=0\n";
        let s = sections(t);
        assert_eq!(s.len(), 3);
        let a = section(&s, "a").unwrap();
        let sm = summary(a.iter().map(String::as_str), "x").unwrap();
        assert_eq!(sm.failed(), 1);
        assert_eq!(sm.kinds(), vec!["ok", "refused"]);
        assert_eq!(
            fmt_dist(&dist(a.iter().map(String::as_str), "x").unwrap()),
            "rs1=2"
        );
        assert_eq!(conns(t)[0].lport, 40000);
        let b = section(&s, "b").unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(
            var(b.iter().map(String::as_str), "pinned").as_deref(),
            Some("rs2")
        );
    }
}
