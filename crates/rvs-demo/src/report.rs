//! From a run's raw records to the summary (JSON) and the table (text).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::client::Outcome;
use crate::profiles::DemoProfile;
use crate::reference::Reference;
use crate::run::{Plan, ProfileRun};

/// Connect latency of the successful attempts, ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// One phase of the run (attempts by start time).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Phase {
    /// `before` (all old servers), `rollout` (first new server added to last old one
    /// stopped), `after`.
    pub name: &'static str,
    /// Start, seconds from the start of traffic.
    pub from_s: f64,
    /// End, seconds from the start of traffic.
    pub to_s: f64,
    /// Attempts started in the phase.
    pub attempts: u64,
    /// Succeeded.
    pub ok: u64,
    /// Failed (any kind).
    pub failed: u64,
    /// Successful connects that took ≥ 900 ms.
    pub slow: u64,
}

/// One real server, as the run saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Server {
    /// `rsN`.
    pub name: String,
    /// Address.
    pub addr: String,
    /// `old` or `new`.
    pub role: &'static str,
    /// Seconds from the start of traffic (negative: before it).
    pub added_s: Option<f64>,
    /// Weight set to 0.
    pub weight0_s: Option<f64>,
    /// Process stopped.
    pub stopped_s: Option<f64>,
    /// Deleted by the graceful-termination check.
    pub deleted_s: Option<f64>,
    /// Weight 0 to deletion, seconds; `None` for an old server: never drained.
    pub drain_s: Option<f64>,
    /// ActiveConn, InActConn at the last check.
    pub last_conns: (u32, u32),
    /// Connections it answered.
    pub answered: u64,
    /// Connections it answered that started after its weight was 0.
    pub answered_at_weight0: u64,
    /// TCP segments its kernel received after its process was stopped.
    pub segs_after_stop: Option<u64>,
    /// RSTs its kernel sent after its process was stopped.
    pub rsts_after_stop: Option<u64>,
    /// The daemon's per-server counters at the end (connections, packets in), if listed.
    pub final_conns: Option<u64>,
    /// Packets in, from the daemon, at the end, if listed.
    pub final_inpkts: Option<u64>,
    /// Undrained servers: the daemon's entries still pointing to it at the end, by state.
    pub entries_at_end: Vec<crate::run::EntryGroup>,
}

/// One profile's results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The profile name (`--profile`).
    pub profile: &'static str,
    /// The row label.
    pub label: &'static str,
    /// The engine profile.
    pub engine: &'static str,
    /// The sysctls set (others at their defaults).
    pub sysctls: BTreeMap<&'static str, &'static str>,
    /// Netfilter conntrack modelled on.
    pub netfilter_conntrack: bool,
    /// What the row stands for.
    pub about: &'static str,
    /// What the kernel (or rvs) is expected to do.
    pub expect: &'static str,
    /// Connection attempts.
    pub attempts: u64,
    /// Succeeded (connected and answered).
    pub ok: u64,
    /// Refused.
    pub refused: u64,
    /// Timed out.
    pub timeout: u64,
    /// Host or network unreachable.
    pub unreachable: u64,
    /// Reset after connecting, or another failure.
    pub reset_other: u64,
    /// All failures.
    pub failures: u64,
    /// Successful connects that took ≥ 900 ms (a dropped first SYN, retransmitted after 1 s).
    pub slow: u64,
    /// Connect latency of successes, ms.
    pub connect_ms: Latency,
    /// New connections answered by a server whose weight was already 0 when they started.
    pub to_draining: u64,
    /// Attempts started after a server was stopped that were refused, timed out or got
    /// unreachable.
    pub to_gone: u64,
    /// Successful connections answered by the new servers (the rollout's replacements).
    pub answered_by_new: u64,
    /// TCP segments the stopped servers' kernels received after their stop.
    pub gone_segments: u64,
    /// RSTs they sent.
    pub gone_rsts: u64,
    /// Longest drain (weight 0 to deletion) of an old server, s; `None` with
    /// `never_drained` non-empty, or when no server drained.
    pub longest_drain_s: Option<f64>,
    /// Old servers still listed at the end of the traffic (the drain deadline).
    pub never_drained: Vec<String>,
    /// Times the client found no free local port and retried (not attempts).
    pub port_busy: u64,
    /// The daemon's "no real server available" ICMP answers (expected 0).
    pub no_dest_unreachable: u64,
    /// Phases.
    pub phases: Vec<Phase>,
    /// Servers.
    pub servers: Vec<Server>,
    /// Lab setup time, s.
    pub setup_s: f64,
    /// Wall time of the profile (setup, traffic, cleanup), s.
    pub wall_s: f64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn secs(t0: u64, t: Option<u64>) -> Option<f64> {
    t.map(|t| (t as f64 - t0 as f64) / 1e6)
}

/// Connects of at least this many microseconds are "slow".
pub const SLOW_US: u64 = 900_000;

/// Summarizes one run.
pub fn summarize(p: &DemoProfile, run: &ProfileRun) -> Summary {
    let t0 = run.t0_us;
    let mut s = Summary {
        profile: p.name,
        label: p.label,
        engine: p.engine.name(),
        sysctls: p.sysctls.iter().copied().collect(),
        netfilter_conntrack: p.netfilter_conntrack,
        about: p.about,
        expect: p.expect,
        attempts: run.attempts.len() as u64,
        ok: 0,
        refused: 0,
        timeout: 0,
        unreachable: 0,
        reset_other: 0,
        failures: 0,
        slow: 0,
        connect_ms: Latency::default(),
        to_draining: 0,
        to_gone: 0,
        answered_by_new: 0,
        gone_segments: 0,
        gone_rsts: 0,
        longest_drain_s: None,
        never_drained: Vec::new(),
        port_busy: run.port_busy,
        no_dest_unreachable: run.no_dest_unreachable,
        phases: Vec::new(),
        servers: Vec::new(),
        setup_s: run.setup_ms as f64 / 1000.0,
        wall_s: run.wall_ms as f64 / 1000.0,
    };
    let first_stop = run.servers.iter().filter_map(|r| r.stopped_us).min();
    let weight0: BTreeMap<&str, u64> = run
        .servers
        .iter()
        .filter_map(|r| r.weight0_us.map(|w| (r.name.as_str(), w)))
        .collect();
    let mut answered: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut lat = Vec::new();
    let end_us = run
        .attempts
        .iter()
        .map(|a| a.t_us)
        .max()
        .unwrap_or(t0)
        .max(run.rollout_end_us);
    let bounds = [
        ("before", t0, run.rollout_start_us.max(t0)),
        (
            "rollout",
            run.rollout_start_us.max(t0),
            run.rollout_end_us.max(t0),
        ),
        ("after", run.rollout_end_us.max(t0), end_us + 1),
    ];
    let mut phases: Vec<Phase> = bounds
        .iter()
        .map(|(name, a, b)| Phase {
            name,
            from_s: (*a as f64 - t0 as f64) / 1e6,
            to_s: (*b as f64 - t0 as f64) / 1e6,
            ..Default::default()
        })
        .collect();
    for a in &run.attempts {
        let ph = bounds
            .iter()
            .position(|(_, lo, hi)| a.t_us >= *lo && a.t_us < *hi)
            .map(|i| &mut phases[i]);
        let slow = a.outcome == Outcome::Ok && a.connect_us >= SLOW_US;
        match a.outcome {
            Outcome::Ok => s.ok += 1,
            Outcome::Refused => s.refused += 1,
            Outcome::Timeout => s.timeout += 1,
            Outcome::Unreachable => s.unreachable += 1,
            Outcome::Reset | Outcome::Other => s.reset_other += 1,
        }
        if let Some(ph) = ph {
            ph.attempts += 1;
            if a.outcome == Outcome::Ok {
                ph.ok += 1;
            } else {
                ph.failed += 1;
            }
            ph.slow += slow as u64;
        }
        if a.outcome == Outcome::Ok {
            lat.push(a.connect_us as f64 / 1000.0);
            s.slow += slow as u64;
            if let Some(name) = a.server.as_deref() {
                let e = answered.entry(name).or_default();
                e.0 += 1;
                if weight0.get(name).is_some_and(|&w| a.t_us > w) {
                    e.1 += 1;
                    s.to_draining += 1;
                }
            }
        } else if matches!(
            a.outcome,
            Outcome::Refused | Outcome::Timeout | Outcome::Unreachable
        ) && first_stop.is_some_and(|f| a.t_us > f)
        {
            s.to_gone += 1;
        }
    }
    s.failures = s.attempts - s.ok;
    lat.sort_by(|a, b| a.total_cmp(b));
    s.connect_ms = Latency {
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(0.0),
    };
    s.phases = phases;
    let mut longest: Option<f64> = None;
    for r in &run.servers {
        let drain_s = match (r.weight0_us, r.deleted_us) {
            (Some(w), Some(d)) => Some((d as f64 - w as f64) / 1e6),
            _ => None,
        };
        if r.weight0_us.is_some() && r.deleted_us.is_none() {
            s.never_drained.push(r.name.clone());
        }
        if let Some(d) = drain_s {
            longest = Some(longest.map_or(d, |l| l.max(d)));
        }
        s.gone_segments += r.segs_after_stop.unwrap_or(0);
        s.gone_rsts += r.rsts_after_stop.unwrap_or(0);
        let (ans, ans0) = answered.get(r.name.as_str()).copied().unwrap_or_default();
        if r.role == "new" {
            s.answered_by_new += ans;
        }
        s.servers.push(Server {
            name: r.name.clone(),
            addr: r.addr.clone(),
            role: r.role,
            added_s: secs(t0, r.added_us),
            weight0_s: secs(t0, r.weight0_us),
            stopped_s: secs(t0, r.stopped_us),
            deleted_s: secs(t0, r.deleted_us),
            drain_s,
            last_conns: r.last_conns,
            answered: ans,
            answered_at_weight0: ans0,
            segs_after_stop: r.segs_after_stop,
            rsts_after_stop: r.rsts_after_stop,
            final_conns: r.final_view.as_ref().map(|v| v.stats.conns),
            final_inpkts: r.final_view.as_ref().map(|v| v.stats.inpkts),
            entries_at_end: r.entries_at_end.clone(),
        });
    }
    if s.never_drained.is_empty() {
        s.longest_drain_s = longest;
    }
    s
}

/// The whole result of `rvs demo` (what `--json` prints).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DemoReport {
    /// The plan (timing and shape).
    pub plan: Plan,
    /// One summary per profile, in the order run.
    pub profiles: Vec<Summary>,
    /// The real 6.1 kernel's measurements of the same kind of scenario.
    pub kernel_6_1: Reference,
    /// Wall time of the whole demo, s.
    pub wall_s: f64,
    /// The definitions of the columns.
    pub definitions: BTreeMap<&'static str, &'static str>,
}

/// The column definitions (also in `--help` and the crate docs).
pub fn definitions() -> BTreeMap<&'static str, &'static str> {
    [
        ("attempts", "connection attempts started by the client (a retry after EADDRNOTAVAIL, no free local port, is not an attempt: see port_busy)"),
        ("refused", "connect failed with ECONNREFUSED (a RST answered the SYN)"),
        ("timeout", "no answer to the SYN and its retransmissions within the 2 s connect timeout"),
        ("unreachable", "connect failed with EHOSTUNREACH or ENETUNREACH (ICMP)"),
        ("reset_other", "connected, then reset or closed before the server's one-line answer, or any other error"),
        ("slow", "successful connects that took >= 900 ms: a first SYN dropped and retransmitted after the 1 s initial RTO"),
        ("connect_ms", "connect latency (SYN sent to connect() returning) of successful attempts: p50, p99, max"),
        ("to_draining", "successful connections answered by a real server whose weight was already 0 (the daemon had acknowledged the change) when the attempt started"),
        ("to_gone", "attempts refused, timed out or unreachable that started after a real server's process had been stopped: in this lab only a stopped server refuses (live ones listen; the balancer always has a weight-1 server, see no_dest_unreachable), cross-checked by gone_segments, the TCP segments the stopped servers' own kernels received after the stop"),
        ("drain", "weight 0 to deletion by the graceful-termination check (kube-proxy's rule: delete when ActiveConn + InActConn == 0; kube-proxy checks every 60 s, the demo every 2 s, 1 s with --quick); 'never' when still listed at the end of the traffic"),
    ]
    .into_iter()
    .collect()
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The drain column of a summary.
pub fn drain_text(s: &Summary) -> String {
    if !s.never_drained.is_empty() {
        format!("never ({})", s.never_drained.join(","))
    } else {
        match s.longest_drain_s {
            Some(d) => format!("{d:.1} s"),
            None => "-".into(),
        }
    }
}

/// The text table of the demo's rows.
pub fn table(rows: &[Summary]) -> String {
    let head = [
        "profile",
        "attempts",
        "ok",
        "refused",
        "timeout",
        "unreach",
        "reset/other",
        ">=900ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "to draining",
        "to gone",
        "longest drain",
    ];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for s in rows {
        cells.push(vec![
            s.label.to_string(),
            s.attempts.to_string(),
            s.ok.to_string(),
            s.refused.to_string(),
            s.timeout.to_string(),
            s.unreachable.to_string(),
            s.reset_other.to_string(),
            s.slow.to_string(),
            ms(s.connect_ms.p50),
            ms(s.connect_ms.p99),
            ms(s.connect_ms.max),
            s.to_draining.to_string(),
            s.to_gone.to_string(),
            drain_text(s),
        ]);
    }
    render(&cells)
}

/// Renders rows of cells: the first column left-aligned, the others right-aligned.
fn render(cells: &[Vec<String>]) -> String {
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in cells {
        let mut line = String::new();
        for (c, v) in r.iter().enumerate() {
            let pad = width[c].saturating_sub(v.chars().count());
            if c == 0 {
                line += v;
                line += &" ".repeat(pad);
            } else if c == cols - 1 {
                line += "  ";
                line += v;
            } else {
                line += "  ";
                line += &" ".repeat(pad);
                line += v;
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// The kernel's rows as a table.
pub fn kernel_table(r: &Reference) -> String {
    let mut cells: Vec<Vec<String>> = vec![
        [
            "Linux 6.1",
            "attempts",
            "ok",
            "refused",
            "timeout",
            "unreach",
            "pkts to dead rs2",
            "p50/p99/max ms",
            "fails after -d",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    for k in &r.rows {
        cells.push(vec![
            format!(
                "reuse={} nodest={}",
                k.conn_reuse_mode, k.expire_nodest_conn
            ),
            k.attempted.to_string(),
            k.ok.to_string(),
            k.refused.to_string(),
            k.timeout.to_string(),
            k.unreach.to_string(),
            k.pkts_to_dead.to_string(),
            k.latency_ms.replace(' ', ""),
            k.removed_failed.to_string(),
        ]);
    }
    render(&cells)
}

/// `conn_reuse_mode` and `expire_nodest_conn` of a row, if it sets both.
fn mode_nodest(s: &Summary) -> Option<(u8, u8)> {
    let m = s.sysctls.get("conn_reuse_mode")?.parse().ok()?;
    let n = s.sysctls.get("expire_nodest_conn")?.parse().ok()?;
    Some((m, n))
}

fn share(part: u64, all: u64) -> String {
    if all == 0 {
        return format!("{part}/0");
    }
    format!("{part}/{all} ({:.0}%)", 100.0 * part as f64 / all as f64)
}

/// The demo's linux-5.16 rows next to the 6.1 kernel's rows of the same `conn_reuse_mode` /
/// `expire_nodest_conn` (empty when the run has no such row).
pub fn side_by_side(rows: &[Summary], r: &Reference) -> String {
    let mut cells: Vec<Vec<String>> = vec![
        [
            "reuse/nodest",
            "rvs linux-5.16: failed/attempts",
            ">=900ms",
            "6.1 kernel: failed/attempts",
            "6.1 max ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    for s in rows.iter().filter(|s| s.engine == "linux-5.16") {
        let Some((m, n)) = mode_nodest(s) else {
            continue;
        };
        let Some(k) = r
            .rows
            .iter()
            .find(|k| k.conn_reuse_mode == m && k.expire_nodest_conn == n)
        else {
            continue;
        };
        let kfail = k.refused + k.timeout + k.unreach;
        let kmax = k
            .latency_ms
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        cells.push(vec![
            format!("{m}/{n}"),
            share(s.failures, s.attempts),
            s.slow.to_string(),
            share(kfail, k.attempted),
            kmax,
        ]);
    }
    if cells.len() == 1 {
        return String::new();
    }
    let mut o = String::from(
        "rvs's linux-5.16 rows next to the 6.1 kernel's (the kernel: one server at weight 0 and killed \
for 30 s; rvs: the whole rollout):\n",
    );
    o += &render(&cells);
    o
}

/// Two lines per row: its settings, and what the run showed beyond the table.
pub fn notes(s: &Summary) -> String {
    let sys: Vec<String> = s.sysctls.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut o = format!(
        "{}: {} profile, {}{}\n",
        s.label,
        s.engine,
        if sys.is_empty() {
            "default sysctls".to_string()
        } else {
            sys.join(" ")
        },
        if s.netfilter_conntrack {
            ", netfilter conntrack on"
        } else {
            ""
        },
    );
    let mut seen = vec![format!(
        "new servers answered {} of {} successes",
        s.answered_by_new, s.ok
    )];
    if s.gone_segments > 0 {
        seen.push(format!(
            "stopped servers' kernels got {} TCP segments after the stop and sent {} RSTs",
            s.gone_segments, s.gone_rsts
        ));
    }
    let left: Vec<String> = s
        .servers
        .iter()
        .filter(|v| s.never_drained.contains(&v.name))
        .map(|v| {
            let states: Vec<String> = v
                .entries_at_end
                .iter()
                .map(|g| {
                    let odd = g.ports.iter().filter(|p| *p % 2 == 1).count();
                    let parity = if odd == g.ports.len() {
                        "odd ports".to_string()
                    } else if odd == 0 {
                        "even ports".to_string()
                    } else {
                        format!("{odd} on odd ports")
                    };
                    format!(
                        "{} {} ({parity}, <= {:.0} s left)",
                        g.count,
                        g.state,
                        g.max_expires_ms as f64 / 1000.0
                    )
                })
                .collect();
            format!("{} {}", v.name, states.join(" + "))
        })
        .collect();
    if !left.is_empty() {
        seen.push(format!(
            "entries left on the undrained: {}",
            left.join("; ")
        ));
    }
    if s.port_busy > 0 {
        seen.push(format!("{} waits for a free port", s.port_busy));
    }
    o += &wrap(&seen.join("; "), 100, "    ");
    o
}

/// Wraps `text` at `width` columns; every line starts with `indent`.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for w in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + w.len() > width {
            out += &line;
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line += w;
    }
    if line.len() > indent.len() {
        out += &line;
        out.push('\n');
    }
    out
}

/// The human report: table, legend, notes per row, the kernel's table.
pub fn text(rep: &DemoReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "rvs demo: rolling replacement of {} real server{} behind 10.0.0.100:80 (rr, NAT), \
real kernel TCP stacks in network namespaces, client ports {}-{} with tcp_tw_reuse=1",
        rep.plan.servers,
        if rep.plan.servers == 1 { "" } else { "s" },
        rep.plan.port_lo,
        rep.plan.port_hi
    );
    o.push('\n');
    o += &table(&rep.profiles);
    o.push('\n');
    for s in &rep.profiles {
        o += &notes(s);
    }
    o.push('\n');
    o += &wrap(
        &format!(
            "to draining: connections answered by a server already at weight 0. to gone: attempts \
refused, timed out or unreachable after a server's process was stopped. longest drain: weight 0 \
until deleted by a kube-proxy-style check (delete when ActiveConn+InActConn == 0; every {:.0} s \
here, kube-proxy: 60 s); never = still listed when the traffic ended. Linux hands out even client \
ports first, so the TIME_WAIT entries of odd ports are not reused and age out (IPVS: 120 s); a \
refused SYN leaves a CLOSE entry (10 s) that the next reused SYN refreshes.",
            rep.plan.check_ms as f64 / 1000.0
        ),
        100,
        "",
    );
    o.push('\n');
    o += &wrap(
        &format!(
            "The real Linux 6.1 kernel, same kind of scenario: 3 servers, rr, client ports \
40000-40009, tcp_tw_reuse=1, one server at weight 0 and killed for 30 s, then deleted ({}):",
            if rep.kernel_6_1.from == "embedded" {
                "docs/kernel-6.1-incident.md, embedded".to_string()
            } else {
                rep.kernel_6_1.from.clone()
            }
        ),
        100,
        "",
    );
    o += &kernel_table(&rep.kernel_6_1);
    let side = side_by_side(&rep.profiles, &rep.kernel_6_1);
    if !side.is_empty() {
        o.push('\n');
        o += &side;
    }
    let _ = writeln!(o, "\ntotal {:.0} s", rep.wall_s);
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Attempt;
    use crate::run::ServerRecord;

    fn att(t_us: u64, outcome: Outcome, ms: u64, server: Option<&str>) -> Attempt {
        Attempt {
            w: 0,
            t_us,
            port: 40000,
            outcome,
            connect_us: ms * 1000,
            server: server.map(str::to_string),
            error: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn attempts_are_counted_by_kind_and_attributed() {
        let p = crate::profiles::select("linux-5.16").unwrap()[0];
        let s = 1_000_000_000u64;
        let run = ProfileRun {
            t0_us: s,
            rollout_start_us: s + 3_000_000,
            rollout_end_us: s + 6_000_000,
            attempts: vec![
                att(s + 1_000_000, Outcome::Ok, 1, Some("rs1")),
                // rs1 at weight 0 from +4 s, stopped at +5 s.
                att(s + 4_100_000, Outcome::Ok, 1, Some("rs1")),
                att(s + 4_200_000, Outcome::Ok, 1000, Some("rs2")),
                att(s + 5_500_000, Outcome::Refused, 0, None),
                att(s + 5_600_000, Outcome::Reset, 1, None),
                att(s + 7_000_000, Outcome::Timeout, 2000, None),
            ],
            port_busy: 3,
            servers: vec![
                ServerRecord {
                    name: "rs1".into(),
                    addr: "10.2.1.2".into(),
                    role: "old",
                    added_us: Some(s),
                    weight0_us: Some(s + 4_000_000),
                    stopped_us: Some(s + 5_000_000),
                    segs_after_stop: Some(2),
                    rsts_after_stop: Some(2),
                    ..Default::default()
                },
                ServerRecord {
                    name: "rs2".into(),
                    addr: "10.2.2.2".into(),
                    role: "new",
                    added_us: Some(s + 3_000_000),
                    ..Default::default()
                },
            ],
            no_dest_unreachable: 0,
            setup_ms: 1500,
            wall_ms: 20_000,
            namespaces: vec![],
            pids: vec![],
        };
        let x = summarize(p, &run);
        assert_eq!(x.attempts, 6);
        assert_eq!(
            (x.ok, x.refused, x.timeout, x.reset_other, x.failures),
            (3, 1, 1, 1, 3)
        );
        assert_eq!(x.slow, 1);
        assert_eq!(x.to_draining, 1);
        assert_eq!(x.to_gone, 2);
        assert_eq!(x.gone_segments, 2);
        assert_eq!(x.never_drained, vec!["rs1".to_string()]);
        assert_eq!(x.longest_drain_s, None);
        assert_eq!(drain_text(&x), "never (rs1)");
        assert_eq!(x.connect_ms.max, 1000.0);
        assert_eq!(
            x.phases.iter().map(|p| p.attempts).collect::<Vec<_>>(),
            [1, 4, 1]
        );
        assert_eq!(x.servers[0].answered, 2);
        assert_eq!(x.servers[0].answered_at_weight0, 1);
        let t = table(&[x]);
        assert!(t.lines().count() == 2, "{t}");
        assert!(t.contains("linux-5.16 0/0"), "{t}");
    }

    #[test]
    fn the_kernel_table_has_its_four_rows() {
        let r = crate::reference::load();
        let t = kernel_table(&r);
        assert_eq!(t.lines().count(), 5, "{t}");
        assert!(t.contains("reuse=0 nodest=0"), "{t}");
    }
}
