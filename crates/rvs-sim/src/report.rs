//! Text tables and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::builtin::VM_MEASURED;
use crate::profile::ProfileSpec;
use crate::scenario::{CpModel, ReportStyle, Scenario};
use crate::stats::{CountersOut, ProtoResult, RunResult};

/// Everything a scenario run produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's identity.
    pub scenario: ScenarioInfo,
    /// The rows run.
    pub profiles: Vec<ProfileSpec>,
    /// One result per (profile, variant), profile-major.
    pub runs: Vec<RunResult>,
}

/// The scenario's identity in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioInfo {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Seed.
    pub seed: u64,
    /// Virtual seconds simulated.
    pub duration_s: f64,
    /// Cap on attempts per run, if any.
    pub max_connections: Option<u64>,
}

/// Milliseconds with a precision that suits their size.
pub fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x < 10.0 => format!("{x:.2}"),
        Some(x) if x < 1000.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.0}"),
    }
}

fn row_label(r: &RunResult) -> String {
    match &r.variant {
        Some(v) => format!("{} {}", r.profile, v),
        None => r.profile.clone(),
    }
}

/// The text report.
pub fn text(sc: &Scenario, rep: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "scenario {}: {}", sc.name, sc.description);
    let cp = &sc.control_plane;
    let cp_text = match cp.model {
        CpModel::KubeProxy => format!(
            "kube-proxy graceful termination (sync delay {} ms, check every {} s)",
            cp.sync_delay_ms, cp.check_interval_s
        ),
        CpModel::Lifecycle => format!(
            "lifecycle draining (sync delay {} ms, deadline {} s)",
            cp.sync_delay_ms, cp.deadline_s
        ),
        CpModel::None => "scripted (no control plane)".into(),
    };
    let _ = writeln!(
        s,
        "seed {}, {} s of virtual time{}; control plane: {}",
        rep.scenario.seed,
        rep.scenario.duration_s,
        rep.scenario
            .max_connections
            .map(|n| format!(", at most {n} connections per run"))
            .unwrap_or_default(),
        cp_text
    );
    if sc.report == ReportStyle::Vm {
        vm_tables(&mut s, rep);
        return s;
    }
    for (proto, name) in [(0, "TCP connections"), (1, "UDP queries")] {
        let rows: Vec<(&RunResult, &ProtoResult)> = rep
            .runs
            .iter()
            .filter_map(|r| {
                let p = if proto == 0 { &r.tcp } else { &r.udp };
                p.as_ref().map(|p| (r, p))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{name}");
        let w = rows
            .iter()
            .map(|(r, _)| row_label(r).len())
            .max()
            .unwrap_or(7)
            .max(7);
        let _ = writeln!(
            s,
            "{:<w$} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8}",
            "profile",
            "attempted",
            "failed",
            "refused",
            "timeout",
            "unreach",
            "≥1s",
            "p50 ms",
            "p99 ms",
            "p99.9ms",
            "max ms",
            "to-drain",
            "to-gone",
            "drain",
        );
        for (r, p) in &rows {
            let c = &p.total;
            let _ = writeln!(
                s,
                "{:<w$} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8}",
                row_label(r),
                c.attempted,
                c.failed,
                c.refused,
                c.timeout,
                c.unreach,
                c.slow,
                fmt_ms(c.connect_ok.p50_ms),
                fmt_ms(c.connect_ok.p99_ms),
                fmt_ms(c.connect_ok.p999_ms),
                fmt_ms(c.connect_ok.max_ms),
                c.to_draining,
                c.to_gone,
                r.longest_drain.text(),
            );
        }
        if !sc.phases.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "{name} by phase (by start time)");
            let pw = sc
                .phases
                .iter()
                .map(|p| p.name.len())
                .max()
                .unwrap_or(5)
                .max(5);
            let _ = writeln!(
                s,
                "{:<w$} {:<pw$} {:>9} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>13}",
                "profile",
                "phase",
                "attempted",
                "failed",
                "≥1s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "to-drain",
                "to-gone",
                "eaddrnotavail",
            );
            for (r, p) in &rows {
                for ph in &p.phases {
                    let c = &ph.counters;
                    let _ = writeln!(
                        s,
                        "{:<w$} {:<pw$} {:>9} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>13}",
                        row_label(r),
                        ph.name,
                        c.attempted,
                        c.failed,
                        c.slow,
                        fmt_ms(c.connect_ok.p50_ms),
                        fmt_ms(c.connect_ok.p99_ms),
                        fmt_ms(c.connect_ok.max_ms),
                        c.to_draining,
                        c.to_gone,
                        c.eaddrnotavail,
                    );
                }
            }
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "≥1s: connects that succeeded after 1 s or more (a dropped or lost SYN); latencies are of successful connects."
    );
    let _ = writeln!(
        s,
        "to-drain: attempts sent to a real server at weight 0; to-gone: attempts sent to a pod that no longer accepts."
    );
    let _ = writeln!(
        s,
        "drain: longest time from weight 0 to deletion; never = still listed at the end (the #81775 signature)."
    );
    s
}

fn vm_tables(s: &mut String, rep: &Report) {
    let phase = |c: &ProtoResult, name: &str| -> Option<CountersOut> {
        c.phases
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.counters.clone())
    };
    let _ = writeln!(
        s,
        "main = rs2 at weight 0 and dead, still listed; removed = rs2 deleted (ipvsadm -d)"
    );
    for prof in &rep.profiles {
        let _ = writeln!(s);
        let _ = writeln!(s, "{} (simulated)", prof.label);
        vm_header(s);
        for r in rep.runs.iter().filter(|r| r.profile == prof.label) {
            let Some(tcp) = &r.tcp else { continue };
            let (Some(m), Some(rm)) = (phase(tcp, "main"), phase(tcp, "removed")) else {
                continue;
            };
            let label = r.variant.clone().unwrap_or_default();
            let parts: Vec<&str> = label.split_whitespace().collect();
            let (death, mode, nodest) = match parts.as_slice() {
                [d, m, n] => (*d, *m, *n),
                _ => (label.as_str(), "", ""),
            };
            let lat = format!(
                "{} / {} / {}",
                fmt_ms(m.connect_ok.p50_ms),
                fmt_ms(m.connect_ok.p99_ms),
                fmt_ms(m.connect_all.max_ms)
            );
            let _ = writeln!(
                s,
                "{:<8} {:>4} {:>6} | {:>9} {:>5} {:>7} {:>7} {:>7} {:>9} {:>13} {:>22} | {:>12} {:>5} {:>6}",
                death,
                mode,
                nodest,
                m.attempted,
                m.ok,
                m.refused,
                m.timeout,
                m.unreach,
                m.pkts_to_draining,
                m.eaddrnotavail,
                lat,
                rm.attempted,
                rm.ok,
                rm.failed
            );
        }
        if prof.profile == rvs_core::Profile::Linux5_16 {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "measured on Linux 6.1.0-56 (docs/kernel-6.1-incident.md; TCG emulation: counts and 1 s/2 s effects are reliable, milliseconds are not)"
            );
            vm_header(s);
            for (death, mode, nodest, m, l, rm) in VM_MEASURED {
                let lat = format!(
                    "{} / {} / {}",
                    fmt_ms(Some(l[0])),
                    fmt_ms(Some(l[1])),
                    fmt_ms(Some(l[2]))
                );
                let _ = writeln!(
                    s,
                    "{:<8} {:>4} {:>6} | {:>9} {:>5} {:>7} {:>7} {:>7} {:>9} {:>13} {:>22} | {:>12} {:>5} {:>6}",
                    death,
                    mode,
                    nodest,
                    m[0],
                    m[1],
                    m[2],
                    m[3],
                    m[4],
                    m[5],
                    m[6],
                    lat,
                    rm[0],
                    rm[1],
                    rm[2]
                );
            }
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "crm = conn_reuse_mode, nodest = expire_nodest_conn; pkts→rs2 = packets the balancer sent to the dead rs2; connect ms: p50 and p99 of successful connects, max of all attempts."
    );
}

fn vm_header(s: &mut String) {
    let _ = writeln!(
        s,
        "{:<8} {:>4} {:>6} | {:>9} {:>5} {:>7} {:>7} {:>7} {:>9} {:>13} {:>22} | {:>12} {:>5} {:>6}",
        "death",
        "crm",
        "nodest",
        "main: att",
        "ok",
        "refused",
        "timeout",
        "unreach",
        "pkts→rs2",
        "eaddrnotavail",
        "connect ms p50/p99/max",
        "removed: att",
        "ok",
        "failed"
    );
}

/// The JSON report (pretty, with a final newline).
pub fn json(rep: &Report) -> String {
    let mut s =
        serde_json::to_string_pretty(rep).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
