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

use crate::check::Got;

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

/// A helper's `summary label=L ...` line (tcpclient or udpflow), or a scenario's `RESULT` line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Every `key=value` of the line.
    pub fields: BTreeMap<String, String>,
}

impl Summary {
    /// An integer field; `Err` names the field when it is absent or not an integer (never
    /// a default: a line without the field lacks the data).
    pub fn n(&self, k: &str) -> Got<i64> {
        match self.fields.get(k) {
            None => Err(format!("no {k}= field")),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| format!("{k}={v} is not an integer")),
        }
    }
    /// A numeric field that may have decimals (`ok_max_ms=12.5`).
    pub fn f(&self, k: &str) -> Got<f64> {
        match self.fields.get(k) {
            None => Err(format!("no {k}= field")),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{k}={v} is not a number")),
        }
    }
    /// The number of attempts, which must be positive (a phase without attempts has nothing
    /// to compare).
    pub fn attempted(&self) -> Got<i64> {
        match self.n("attempted")? {
            0 => Err("attempted=0 (no attempts)".into()),
            n => Ok(n),
        }
    }
    /// The failed attempts (everything but ok).
    pub fn failed(&self) -> Got<i64> {
        Ok(self.attempted()? - self.n("ok")?)
    }
    /// The outcome kinds among `fields` seen at least once. Every field must be present, and
    /// their counts must add up to `attempted` (the line holds every outcome, or it is
    /// not trusted).
    pub fn kinds(&self, fields: &[&'static str]) -> Got<Vec<&'static str>> {
        let att = self.attempted()?;
        let mut sum = 0;
        let mut out = Vec::new();
        for k in fields {
            let n = self.n(k)?;
            sum += n;
            if n > 0 {
                out.push(*k);
            }
        }
        if sum != att {
            return Err(format!(
                "the outcome counts ({}) add up to {sum}, not attempted={att}",
                fields.join("+")
            ));
        }
        Ok(out)
    }
}

/// The `summary` line with `label=L` in `lines`.
pub fn summary<'a>(lines: impl IntoIterator<Item = &'a str>, label: &str) -> Got<Summary> {
    lines
        .into_iter()
        .filter(|l| l.starts_with("summary "))
        .map(kv)
        .find(|f| f.get("label").map(String::as_str) == Some(label))
        .map(|fields| Summary { fields })
        .ok_or_else(|| format!("no `summary label={label}` line"))
}

/// The `dist label=L rsA=n ...` line with `label=L`: server -> count. `Err` when the line is
/// missing or a count is not a number. No answers at all is an empty map (a line with the
/// label only), which is a result, not missing data.
pub fn dist<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    label: &str,
) -> Got<BTreeMap<String, i64>> {
    let mut f = lines
        .into_iter()
        .filter(|l| l.starts_with("dist "))
        .map(kv)
        .find(|f| f.get("label").map(String::as_str) == Some(label))
        .ok_or_else(|| format!("no `dist label={label}` line"))?;
    f.remove("label");
    f.into_iter()
        .map(|(k, v)| match v.parse::<i64>() {
            Ok(n) => Ok((k, n)),
            Err(_) => Err(format!("dist label={label}: {k}={v} is not a count")),
        })
        .collect()
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

/// Every `conn` line in `text`; `Err` on the first line that lacks a field (or has one that
/// does not parse), and when there is no `conn` line at all.
pub fn conns(text: &str) -> Got<Vec<Conn>> {
    let v = text
        .lines()
        .filter(|l| l.starts_with("conn "))
        .map(|l| {
            let f = kv(l);
            let g = |k: &str| {
                f.get(k)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .ok_or_else(|| format!("a conn line without {k}=: {l}"))
            };
            let num = |k: &str| {
                let v = g(k)?;
                v.parse::<i64>()
                    .map_err(|_| format!("a conn line with {k}={v}: {l}"))
            };
            Ok(Conn {
                lport: u32::try_from(num("lport")?)
                    .map_err(|_| format!("a conn line with a bad lport: {l}"))?,
                result: g("result")?,
                rs: g("rs")?,
                lat_us: num("lat_us")?,
                t_ms: num("t_ms")?,
            })
        })
        .collect::<Got<Vec<Conn>>>()?;
    if v.is_empty() {
        return Err("no `conn` lines".into());
    }
    Ok(v)
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
/// become `*`. `Err` when the text is not such a listing (no `pro expire state` header: an
/// error message, say), when an entry line does not parse, or when there are no entries
/// (every listing the scenarios take has some).
pub fn lnc(text: &str, keep_ports: &[u16]) -> Got<Vec<LncEntry>> {
    if !text.lines().any(|l| l.starts_with("pro expire state")) {
        return Err(format!(
            "not an ipvsadm -Lnc listing (no `pro expire state` header): {}",
            text.lines().next().unwrap_or("")
        ));
    }
    let mut v = Vec::new();
    for l in text.lines() {
        let t: Vec<&str> = l.split_whitespace().collect();
        if !t
            .first()
            .is_some_and(|p| matches!(*p, "TCP" | "UDP" | "SCTP" | "IP"))
        {
            continue;
        }
        let bad = || format!("an -Lnc line that does not parse: {l}");
        if t.len() != 6 {
            return Err(bad());
        }
        let (m, s) = t[1].split_once(':').ok_or_else(bad)?;
        let expire_s =
            m.parse::<i64>().map_err(|_| bad())? * 60 + s.parse::<i64>().map_err(|_| bad())?;
        let (a, p) = t[3].rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = p.parse().map_err(|_| bad())?;
        let src = if port == 0 || keep_ports.contains(&port) {
            t[3].to_string()
        } else {
            format!("{a}:*")
        };
        v.push(LncEntry {
            key: format!("{} {} {} {} {}", t[0], t[2], src, t[4], t[5]),
            expire_s,
        });
    }
    if v.is_empty() {
        return Err("an -Lnc listing without entries".into());
    }
    v.sort();
    Ok(v)
}

/// One row of `ipvsadm -Ln --stats` (a service or a real server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsRow {
    /// `TCP  10.0.0.100:80` for a service, `-> 10.0.11.2:80` for a real server.
    pub key: String,
    /// Conns, InPkts, OutPkts, InBytes, OutBytes.
    pub v: [i64; 5],
}

/// The rows of the `--stats` tables in `lines`: `Err` when a service or real-server row has
/// a field that is not an exact number, or when there is no row at all.
pub fn stats_rows<'a>(lines: impl IntoIterator<Item = &'a str>) -> Got<Vec<StatsRow>> {
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
        let mut v = [0i64; 5];
        for (slot, n) in v.iter_mut().zip(nums) {
            *slot = n
                .parse()
                .map_err(|_| format!("a --stats row with {n}, not an exact number: {l}"))?;
        }
        out.push(StatsRow { key, v });
    }
    if out.is_empty() {
        return Err("no ipvsadm --stats rows".into());
    }
    Ok(out)
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
/// InAct columns); `Err` on a row whose numbers do not parse.
pub fn ln_dests<'a>(lines: impl IntoIterator<Item = &'a str>) -> Got<Vec<LnDest>> {
    let mut out = Vec::new();
    for l in lines {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() == 6 && t[0] == "->" && t[1] != "RemoteAddress:Port" {
            let num = |s: &str| {
                s.parse::<i64>()
                    .map_err(|_| format!("an -Ln row that does not parse: {l}"))
            };
            out.push(LnDest {
                addr: t[1].to_string(),
                weight: num(t[3])?,
                active: num(t[4])?,
                inactive: num(t[5])?,
            });
        }
    }
    Ok(out)
}

/// The lines after the first line that starts with `marker`, as long as they look like
/// ipvsadm output (headers, services, real servers, connection entries); `Err` when no line
/// starts with `marker`.
pub fn block_after<'a>(lines: &'a [String], marker: &str) -> Got<Vec<&'a str>> {
    let i = lines
        .iter()
        .position(|l| l.starts_with(marker))
        .ok_or_else(|| format!("no line `{marker}`"))?;
    Ok(lines[i + 1..]
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
        .collect())
}

/// The value of `NAME=value` on the first line that starts with `NAME=`; `Err` when there is
/// no such line or its value is empty (`pinned=` after a run in which nothing answered).
pub fn var<'a>(lines: impl IntoIterator<Item = &'a str>, name: &str) -> Got<String> {
    let p = format!("{name}=");
    match lines
        .into_iter()
        .find_map(|l| l.strip_prefix(p.as_str()).map(|v| v.trim().to_string()))
    {
        None => Err(format!("no `{name}=` line")),
        Some(v) if v.is_empty() => Err(format!("`{name}=` is empty")),
        Some(v) => Ok(v),
    }
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
        let e = lnc(t, &[5353]).unwrap();
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
    fn lnc_refuses_what_is_not_a_listing_with_entries() {
        let head = "IPVS connection entries\npro expire state source virtual destination\n";
        // An error message instead of a listing, an empty listing, a line that does not parse.
        assert!(lnc("Can't initialize ipvs: Protocol not available\n", &[]).is_err());
        assert!(lnc("", &[]).is_err());
        assert!(lnc(head, &[]).is_err());
        let bad = format!("{head}TCP 1:xx ESTABLISHED 10.0.1.2:1 10.0.0.100:80 10.0.11.2:80\n");
        assert!(lnc(&bad, &[]).unwrap_err().contains("does not parse"));
    }

    #[test]
    fn stats_and_ln_tables() {
        let s = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n\
  -> RemoteAddress:Port\n\
TCP  10.0.0.100:8001                   120      600      363    32160    20316\n\
  -> 10.0.11.2:80                       40      200      120    10720     6720\n";
        let r = stats_rows(s.lines()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].key, "TCP 10.0.0.100:8001");
        assert_eq!(r[1].v, [40, 200, 120, 10720, 6720]);
        assert!(stats_rows("".lines()).is_err());
        assert!(stats_rows("  -> 10.0.11.2:80  40 200 120 10K 6720".lines()).is_err());
        let l = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  10.0.0.100:8001 rr\n  -> 10.0.11.2:80                 Masq    1      0          40        \n";
        let d = ln_dests(l.lines()).unwrap();
        assert_eq!(
            d,
            vec![LnDest {
                addr: "10.0.11.2:80".into(),
                weight: 1,
                active: 0,
                inactive: 40
            }]
        );
        assert!(ln_dests("  -> 10.0.11.2:80 Masq 1 x 40".lines()).is_err());
    }

    #[test]
    fn summary_dist_conn_sections() {
        let t = "@@KIPVS boot\n### a\nsummary label=x attempted=3 ok=2 refused=1 timeout=0\ndist label=x rs1=2\n\
conn i=0 t_ms=5 lport=40000 result=ok lat_us=12 rs=rs1 errno=0\n### b c\npinned=rs2\n@@RVS scenario-exit rc=0\n";
        let s = sections(t);
        assert_eq!(s.len(), 3);
        let a = section(&s, "a").unwrap();
        let sm = summary(a.iter().map(String::as_str), "x").unwrap();
        assert_eq!(sm.failed(), Ok(1));
        assert_eq!(
            sm.kinds(&["ok", "refused", "timeout"]),
            Ok(vec!["ok", "refused"])
        );
        assert_eq!(
            fmt_dist(&dist(a.iter().map(String::as_str), "x").unwrap()),
            "rs1=2"
        );
        assert_eq!(conns(t).unwrap()[0].lport, 40000);
        let b = section(&s, "b").unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(
            var(b.iter().map(String::as_str), "pinned").as_deref(),
            Ok("rs2")
        );
    }

    #[test]
    fn absent_fields_are_errors_not_zeros() {
        let f = |l: &str| summary([l], "x").unwrap();
        // A field that is absent or not a number is missing data, not 0.
        assert!(f("summary label=x ok=2").n("attempted").is_err());
        assert!(f("summary label=x attempted= ok=2").n("attempted").is_err());
        assert!(f("summary label=x attempted=0 ok=0").attempted().is_err());
        assert!(f("summary label=x attempted=3").failed().is_err());
        // The outcome counts must be there and add up to the attempts.
        assert!(
            f("summary label=x attempted=3 ok=2")
                .kinds(&["ok", "refused"])
                .is_err()
        );
        assert!(
            f("summary label=x attempted=3 ok=2 refused=0")
                .kinds(&["ok", "refused"])
                .is_err()
        );
        assert!(f("summary label=x ok_max_ms=nan").f("ok_max_ms").is_err());
        assert!(summary(["summary label=y attempted=1"], "x").is_err());
        // A dist line is needed; an empty one means no answers; a bad count is an error.
        assert!(dist(["summary label=x"], "x").is_err());
        assert_eq!(dist(["dist label=x"], "x"), Ok(BTreeMap::new()));
        assert!(dist(["dist label=x rs1="], "x").is_err());
        // conn lines: every field; at least one line.
        assert!(conns("nothing\n").is_err());
        assert!(conns("conn i=0 t_ms=5 result=ok lat_us=12 rs=rs1\n").is_err());
        assert!(conns("conn i=0 t_ms=5 lport=x result=ok lat_us=12 rs=rs1\n").is_err());
        // var: absent or empty.
        assert!(var(["pinned="], "pinned").is_err());
        assert!(var(["other=1"], "pinned").is_err());
        assert!(block_after(&["x".to_string()], "marker").is_err());
    }
}
