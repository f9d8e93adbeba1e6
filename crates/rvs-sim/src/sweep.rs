//! `sweep`: at which connection rate per client does a setting start failing?
//!
//! For each profile row and each client port-range size P, the scenario is run with its TCP
//! clients switched to an open loop at each rate of the grid, in ascending order, until a run
//! shows a failed connect or a connect of 1 s or more; that rate is the boundary. Next to it
//! the report prints P / 120 s, the rate above which a client must reuse a port while IPVS
//! still holds the previous connection's TIME_WAIT entry (120 s) if it cycled through its
//! ports evenly, and the lowest rate at which the client ran out of local ports (a client-side
//! limit, the same for every profile).

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::{SweepArgs, run_tasks};
use crate::profile::ProfileSpec;
use crate::scenario::{Proto, Scenario, ns};
use crate::sim::{self, RunOptions};

/// One grid point run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Connections per second per client.
    pub rate: f64,
    /// Attempts.
    pub attempted: u64,
    /// Failed connects.
    pub failed: u64,
    /// Connects ≥ 1 s.
    pub slow: u64,
    /// Local port exhaustion events.
    pub eaddrnotavail: u64,
}

/// One (profile, port-range size) line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// Profile row.
    pub profile: String,
    /// Port-range size.
    pub ports: u32,
    /// P / 120 s.
    pub estimate: f64,
    /// The lowest rate that failed or was slow (`None`: none up to the grid's top).
    pub boundary: Option<f64>,
    /// The lowest rate at which the client ran out of ports.
    pub ports_exhausted_at: Option<f64>,
    /// The points run (up to and including the boundary).
    pub points: Vec<Point>,
}

/// The sweep's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepResult {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Rates tried.
    pub rates: Vec<f64>,
    /// Port-range sizes tried.
    pub ports: Vec<u32>,
    /// Profile rows.
    pub profiles: Vec<String>,
    /// Lines, profile-major.
    pub lines: Vec<Line>,
}

/// The scenario at one grid point: every TCP client group opens `rate` connections per
/// second (Poisson) from a range of `ports` ports.
pub fn at_point(sc: &Scenario, rate: f64, ports: u32) -> Scenario {
    let mut s = sc.clone();
    for c in &mut s.clients {
        if c.protocol == Proto::Tcp {
            c.rate = Some(rate);
            c.interval_ms = None;
            let lo = 32768u32.min(65536 - ports.clamp(1, 65535));
            c.port_range = [lo as u16, (lo + ports.clamp(1, 65535) - 1) as u16];
        }
    }
    s.clients_only_in_phases = false;
    s
}

/// Runs the sweep.
pub fn sweep(
    sc: &Scenario,
    profiles: &[ProfileSpec],
    args: &SweepArgs,
    opts: &RunOptions,
    jobs: usize,
    progress: bool,
) -> anyhow::Result<SweepResult> {
    anyhow::ensure!(
        sc.clients.iter().any(|c| c.protocol == Proto::Tcp),
        "the sweep needs a scenario with TCP clients"
    );
    anyhow::ensure!(
        !args.rates.is_empty() && !args.ports.is_empty(),
        "empty grid"
    );
    anyhow::ensure!(
        args.rates.iter().all(|r| *r > 0.0 && r.is_finite()),
        "rates must be positive"
    );
    anyhow::ensure!(
        args.ports.iter().all(|p| (1..=65535).contains(p)),
        "port-range sizes must be in 1..=65535"
    );
    let mut rates = args.rates.clone();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let variant = sc.variants.first();
    let tasks: Vec<(usize, u32)> = (0..profiles.len())
        .flat_map(|p| args.ports.iter().map(move |&n| (p, n)))
        .collect();
    let duration = opts.duration_s.unwrap_or(sc.duration_s);
    let total = progress.then(|| ns(duration) * (tasks.len() * rates.len()) as u64);
    let lines = run_tasks(tasks.len(), jobs, total, |i, prog| {
        let (p, n) = tasks[i];
        let mut points = Vec::new();
        let mut boundary = None;
        let mut exhausted = None;
        for &rate in &rates {
            let s = at_point(sc, rate, n);
            let r = sim::run(&s, &profiles[p], variant, opts, Some(prog));
            let c = r.tcp.map(|t| t.total).unwrap_or_default();
            points.push(Point {
                rate,
                attempted: c.attempted,
                failed: c.failed,
                slow: c.slow,
                eaddrnotavail: c.eaddrnotavail,
            });
            if c.eaddrnotavail > 0 && exhausted.is_none() {
                exhausted = Some(rate);
            }
            if c.failed > 0 || c.slow > 0 {
                boundary = Some(rate);
                break;
            }
        }
        Line {
            profile: profiles[p].label.clone(),
            ports: n,
            estimate: n as f64 / 120.0,
            boundary,
            ports_exhausted_at: exhausted,
            points,
        }
    });
    Ok(SweepResult {
        scenario: sc.name.clone(),
        seed: sc.seed,
        rates,
        ports: args.ports.clone(),
        profiles: profiles.iter().map(|p| p.label.clone()).collect(),
        lines,
    })
}

fn cell(l: &Line, top: f64) -> String {
    match l.boundary {
        None => format!(">{}", num(top)),
        Some(r) => {
            let p = l.points.last();
            let what = match p {
                Some(p) if p.failed > 0 && p.slow > 0 => "fail+slow",
                Some(p) if p.failed > 0 => "fail",
                _ => "slow",
            };
            format!("{} ({what})", num(r))
        }
    }
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// The sweep's table.
pub fn text(sc: &Scenario, r: &SweepResult) -> String {
    let mut s = String::new();
    let top = r.rates.last().copied().unwrap_or(0.0);
    let _ = writeln!(
        s,
        "sweep of {} (seed {}): lowest connection rate per client (conn/s) at which connects fail or take ≥ 1 s",
        sc.name, r.seed
    );
    let _ = writeln!(
        s,
        "rates tried: {}",
        r.rates
            .iter()
            .map(|x| num(*x))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s);
    let w = r
        .profiles
        .iter()
        .map(|p| p.len())
        .max()
        .unwrap_or(7)
        .max(16);
    let _ = write!(s, "{:>6} {:>9} {:>10}", "ports", "P/120s", "no-port at");
    for p in &r.profiles {
        let _ = write!(s, " {p:>w$}");
    }
    let _ = writeln!(s);
    for &n in &r.ports {
        let lines: Vec<&Line> = r.lines.iter().filter(|l| l.ports == n).collect();
        let exhausted = lines
            .iter()
            .filter_map(|l| l.ports_exhausted_at)
            .reduce(f64::min)
            .map(num)
            .unwrap_or_else(|| "-".into());
        let _ = write!(s, "{:>6} {:>9.1} {:>10}", n, n as f64 / 120.0, exhausted);
        for p in &r.profiles {
            let c = lines
                .iter()
                .find(|l| &l.profile == p)
                .map(|l| cell(l, top))
                .unwrap_or_default();
            let _ = write!(s, " {c:>w$}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "P/120s: ports / IPVS TIME_WAIT (120 s), the rate above which an even cycle through the ports reuses one that IPVS still remembers."
    );
    let _ = writeln!(
        s,
        "no-port at: the lowest rate at which a client found no free local port (EADDRNOTAVAIL; the client's own limit, not counted as a failure)."
    );
    let _ = writeln!(
        s,
        ">N: no failure and no slow connect up to the top rate tried."
    );
    s
}

/// The sweep as JSON.
pub fn json(r: &SweepResult) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}
