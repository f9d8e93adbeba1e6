//! The suite's cases (a scenario plus its knobs) and, per scenario, the comparison rules.
//!
//! Every rule and tolerance is stated in the check's `rule` text, which the report prints.
//! Why these tolerances: the kernel runs under TCG emulation (1–3 ms connects, 10–25 ms
//! tails, a slower clock for CPU work), rvs on this machine; the two clients' kernels differ
//! (the VM's 6.1 and this machine's), so they pick other ephemeral ports and may send other
//! numbers of pure ACKs. Decisions (which real server, which outcome, which state) must be
//! the same; counts that follow from timing are compared by magnitude class or within a
//! tolerance; timers within ±2 s. Each tolerance is a constant of [`tol`], with the measured
//! spread it was chosen from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::check::{Checks, Got, Num, Shows, emitted};
use crate::parse::{self, LncEntry};
use crate::runner::{RunSpec, Side};

/// The kinds of scenario, each with its comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `sched-distribution.sh` with one scheduler.
    Sched(String),
    /// `incident-port-reuse.sh` (some configurations, shortened).
    Incident,
    /// `persistence-quiescent.sh`.
    Persistence,
    /// `udp-removed.sh`.
    UdpRemoved,
    /// `timeouts-set.sh`.
    Timeouts,
    /// `reply-same-client-port.sh`.
    ReplyPort,
}

/// A scenario with its knobs.
#[derive(Clone, Debug)]
pub struct Case {
    /// Its name (the first part of its check ids).
    pub name: String,
    /// Which comparison applies.
    pub kind: Kind,
    /// How to run it (the same on both sides).
    pub spec: RunSpec,
}

/// Every scheduler of kernel 6.1 (sched-distribution.sh's list).
pub const SCHEDULERS: [&str; 13] = [
    "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "lblc", "lblcr", "fo", "ovf",
];

/// The schedulers of the CI subset.
pub const CI_SCHEDULERS: [&str; 4] = ["wrr", "wlc", "sh", "mh"];

fn env(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn case(
    name: &str,
    kind: Kind,
    scenario: &Path,
    e: &[(&str, &str)],
    udpflow: bool,
    secs: u64,
) -> Case {
    Case {
        name: name.to_string(),
        kind,
        spec: RunSpec {
            scenario: scenario.to_path_buf(),
            env: env(e),
            udpflow,
            timeout: Duration::from_secs(secs),
        },
    }
}

/// One case per scheduler: each runs in a topology of its own (a boot of its own on the
/// kernel side). sched-distribution.sh can run all 13 in one topology, but then one client
/// port may carry entries of two services with the same real server, which rvs mishandles
/// (see the reply-same-client-port case): that difference is tested deterministically there,
/// rather than by chance here.
fn sched(kipvs: &Path, s: &str) -> Case {
    case(
        &format!("sched-{s}"),
        Kind::Sched(s.into()),
        &kipvs.join("scenarios/sched-distribution.sh"),
        &[("SCHEDS", s)],
        false,
        300,
    )
}

fn incident(kipvs: &Path, death: &str, modes: &str, main_s: &str, removed_s: &str) -> Case {
    case(
        &format!("incident-{death}"),
        Kind::Incident,
        &kipvs.join("scenarios/incident-port-reuse.sh"),
        &[
            ("DEATHS", death),
            ("MODES", modes),
            ("NODESTS", "0 1"),
            ("WARM_S", "3"),
            ("MAIN_S", main_s),
            ("REMOVED_S", removed_s),
        ],
        false,
        900,
    )
}

fn ours(fidelity: &Path) -> Vec<Case> {
    let s = |n: &str| fidelity.join("scenarios").join(format!("{n}.sh"));
    vec![
        case(
            "persistence-quiescent",
            Kind::Persistence,
            &s("persistence-quiescent"),
            &[],
            false,
            300,
        ),
        case(
            "udp-removed",
            Kind::UdpRemoved,
            &s("udp-removed"),
            &[],
            true,
            300,
        ),
        case(
            "timeouts-set",
            Kind::Timeouts,
            &s("timeouts-set"),
            &[],
            false,
            300,
        ),
        case(
            "reply-same-client-port",
            Kind::ReplyPort,
            &s("reply-same-client-port"),
            &[],
            true,
            300,
        ),
    ]
}

/// The CI subset: the incident's kill rows with conn_reuse_mode 0 (the failing one and
/// the one expire_nodest_conn fixes), four schedulers, and the four scenarios of this suite.
pub fn ci(kipvs: &Path, fidelity: &Path) -> Vec<Case> {
    let mut v = vec![incident(kipvs, "kill", "0", "10", "6")];
    v.extend(CI_SCHEDULERS.iter().map(|s| sched(kipvs, s)));
    v.extend(ours(fidelity));
    v
}

/// The whole suite: all 12 incident configurations (shortened: warm 3 s, main 12 s,
/// removed 8 s), every scheduler, and the four scenarios of this suite.
pub fn all(kipvs: &Path, fidelity: &Path) -> Vec<Case> {
    let mut v: Vec<Case> = ["kill", "drop", "linkdown"]
        .iter()
        .map(|d| incident(kipvs, d, "0 1", "12", "8"))
        .collect();
    v.extend(SCHEDULERS.iter().map(|s| sched(kipvs, s)));
    v.extend(ours(fidelity));
    v
}

/// Tolerances, each with the reason it is what it is and the spread it was chosen from (the
/// fidelity README's table mirrors them). Spreads: 3 runs of the CI subset (the third with
/// these tolerances, after they were chosen), 1 each of incident-kill, -drop and -linkdown
/// (full length), on this 2-core machine with other VMs and builds running.
pub mod tol {
    /// `--stats` InPkts per service and real server: ±max(abs, rel of the kernel's). rvs's
    /// side is 5 per connection exactly; the VM's clients sometimes send one more (a
    /// retransmit or a separate ACK): measured kernel − rvs 0 to +4 (+2 at most on rows under
    /// 300, 0.8 % at most on larger ones; 48 rows).
    pub const INPKTS: (i64, f64) = (3, 0.02);
    /// `--stats` OutPkts: kernel − rvs from −SLACK to the row's Conns + SLACK. rvs's side is 3
    /// per connection (3.0–3.1 measured: SYN-ACK, banner, FIN with the ACK of the client's
    /// FIN); the VM's slower 6.1 servers often send that ACK before their FIN, one packet more
    /// per connection at most: measured kernel − rvs +0.07 to +0.63 per connection (up to 17 %
    /// of the kernel's value; 48 rows), which the former ±15 % did not cover (2 CI-subset
    /// checks failed in 1 of 3 runs).
    pub const OUTPKTS_SLACK: i64 = 3;
    /// Incident, phase main, death `kill`: the failed share of attempts, when both are
    /// non-zero. Refused connects fail at once, and the share follows from how many client
    /// ports are pinned to the dead server: measured kernel 0.82–0.83, rvs 0.86, |difference|
    /// 0.025–0.036 (4 runs).
    pub const FAILURE_SHARE_REFUSED: f64 = 0.12;
    /// Incident, after main: service Conns per attempt of warm+main. Conns is the same on
    /// both sides in every run (10 or 13 with conn_reuse_mode 0, every attempt with 1); the
    /// attempts differ with the client's speed: measured |difference| at most 0.03 (near 0.25
    /// with few attempts), 0.01 otherwise.
    pub const CONNS_PER_ATTEMPT: f64 = 0.10;
    /// Incident, phase main: a successful connect this slow is a dropped SYN retransmitted
    /// (1 s); measured slowest successful connect of a main phase 1–27 ms on both sides.
    pub const SLOW_CONNECT_MS: f64 = 900.0;
    /// udp-removed: datagrams answered after the removal (of 16). An unanswered datagram
    /// waits 500 ms, so the two sides can land one datagram apart; measured difference 0.
    pub const UDP_ANSWERED: i64 = 1;
    /// udp-removed: time until the flow is answered again, ms; one 500 ms wait apart, as
    /// above; measured difference 0–5 ms.
    pub const BLACK_HOLE_MS: i64 = 600;
    /// `-Lnc` expiry of each entry, s: whole seconds, and the VM lists later after the last
    /// packet; measured kernel − rvs −1 (28 entries) or 0 (74 entries).
    pub const EXPIRY_S: i64 = 2;
}

/// Whether the failed share of attempts is compared as a number for incident death `death`:
/// only for `kill`. With `drop` and `linkdown` a failed attempt holds the sequential client
/// for its 2 s timeout (or the 1–3 s until the ICMP error), so the number of failures is set by
/// the phase's length (the same on both sides: 6 and 6, 8 and 8) and the share by how many
/// fast successes the client's port choice fits in between: measured kernel 0.75 vs rvs 0.35
/// (drop) and 0.67 vs 0.47 (linkdown), which a tolerance of 0.35 did not cover.
fn share_compared(death: &str) -> bool {
    death == "kill"
}

/// Compares the two sides of `case`.
pub fn compare(case: &Case, k: &Side, r: &Side) -> Checks {
    let mut c = Checks::new(&case.name);
    let rc = |s: &Side| match s.rc {
        Some(124) => "124 (timed out)".to_string(),
        Some(n) => n.to_string(),
        None => format!("none (the runner failed: {})", tail(&s.log, 5)),
    };
    c.push(
        "exit-status",
        "the scenario's exit status: equal, and the run finished",
        rc(k),
        rc(r),
        k.rc == r.rc && k.rc.is_some() && k.rc != Some(124),
    );
    if k.output.trim().is_empty() || r.output.trim().is_empty() {
        c.push(
            "output",
            "both sides produced output",
            format!("{} bytes; runner log: {}", k.output.len(), tail(&k.log, 10)),
            format!("{} bytes; runner log: {}", r.output.len(), tail(&r.log, 10)),
            false,
        );
        return c;
    }
    match &case.kind {
        Kind::Sched(s) => sched_cmp(&mut c, s, k, r),
        Kind::Incident => incident_cmp(&mut c, &incident_configs(&case.spec.env), k, r),
        Kind::Persistence => persistence_cmp(&mut c, k, r),
        Kind::UdpRemoved => udp_removed_cmp(&mut c, k, r),
        Kind::Timeouts => timeouts_cmp(&mut c, k, r),
        Kind::ReplyPort => reply_port_cmp(&mut c, k, r),
    }
    c
}

fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

fn strs(v: &[String]) -> impl Iterator<Item = &str> {
    v.iter().map(String::as_str)
}

/// A copy of a side's value (or of what it lacks), for values read by more than one check.
fn owned<T: Clone>(g: &Got<T>) -> Got<T> {
    g.clone()
}

/// `-Lnc` listings (the emitted file `file` of each side): the same entries (normalised
/// keys, as a multiset) and, entry by entry in sorted order, expiry times within ±`tol` s.
fn lnc_cmp(c: &mut Checks, id: &str, file: &str, k: &Side, r: &Side, keep: &[u16], tol: i64) {
    let get = |s: &Side| {
        emitted(s, file).and_then(|t| parse::lnc(t, keep).map_err(|e| format!("{file}: {e}")))
    };
    let (ke, re) = (get(k), get(r));
    let keys = |v: &Got<Vec<LncEntry>>| {
        owned(v).map(|v| {
            v.iter()
                .map(|e| e.key.clone())
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    let (kk, rk) = (keys(&ke), keys(&re));
    let same = matches!((&kk, &rk), (Ok(a), Ok(b)) if a == b);
    c.eq(
        &format!("{id}/entries"),
        "ipvsadm -Lnc entries (protocol, state, addresses; client ports as *, order ignored): equal",
        kk,
        rk,
    );
    if let (true, Ok(ke), Ok(re)) = (same, ke, re) {
        let show = |v: &[LncEntry]| {
            v.iter()
                .map(|e| format!("{:>3}s {}", e.expire_s, e.key))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let ok = ke
            .iter()
            .zip(&re)
            .all(|(a, b)| (a.expire_s - b.expire_s).abs() <= tol);
        c.compare(
            &format!("{id}/expiry"),
            &format!("ipvsadm -Lnc expiry of each entry: within ±{tol} s"),
            Ok(show(&ke)),
            Ok(show(&re)),
            |_, _| ok,
        );
    }
}

/// The section titled `title` (a prefix) on both sides, or else a failing check `id` that says
/// which side lacks it.
fn both_sections<'a>(
    c: &mut Checks,
    id: &str,
    title: &str,
    ks: &'a [(String, Vec<String>)],
    rs: &'a [(String, Vec<String>)],
) -> Option<(&'a [String], &'a [String])> {
    let get = |x: &'a [(String, Vec<String>)]| {
        parse::section(x, title).ok_or_else(|| format!("no section `### {title}`"))
    };
    match (get(ks), get(rs)) {
        (Ok(a), Ok(b)) => Some((a, b)),
        (a, b) => {
            let has = |x: Got<&[String]>| x.map(|_| "present".to_string());
            c.eq(
                id,
                &format!("section '{title}': present on both sides"),
                has(a),
                has(b),
            );
            None
        }
    }
}

/// Whether a line holds only server names (`rs2`), with `-` for a failed connection.
fn servers_line(l: &str) -> bool {
    l.split_whitespace()
        .all(|t| t == "-" || t.starts_with("rs"))
}

// ---- sched-distribution -------------------------------------------------------------------

fn sched_cmp(c: &mut Checks, s: &str, k: &Side, r: &Side) {
    let (ks, rs) = (parse::sections(&k.output), parse::sections(&r.output));
    let title = format!("scheduler {s} ");
    let Some((kb, rb)) = both_sections(c, "section", &title, &ks, &rs) else {
        return;
    };
    // The line after `one client, ...`: one server name per connection (`-` for a failed one).
    let seq = |b: &[String]| -> Got<String> {
        let i = b
            .iter()
            .position(|l| l.starts_with("one client,"))
            .ok_or("no `one client, ...` line")?;
        b.get(i + 1)
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && servers_line(l))
            .ok_or_else(|| "no server names after `one client, ...`".to_string())
    };
    c.eq(
        "one-client-sequence",
        "which real server answered each of one client's connections, in order: equal",
        seq(kb),
        seq(rb),
    );
    let clients = |b: &[String]| -> Got<String> {
        let lines: Vec<String> = b
            .iter()
            .filter(|l| l.starts_with("  10.0.1."))
            .map(|l| l.trim_end().to_string())
            .collect();
        if lines.is_empty() {
            return Err("no per-client lines (`  10.0.1.N: rs...`)".into());
        }
        for l in &lines {
            let servers = l.split_once(':').map(|x| x.1.trim()).unwrap_or("");
            if servers.is_empty() || !servers_line(servers) {
                return Err(format!("a client line without server names: {}", l.trim()));
            }
        }
        Ok(lines.join("\n"))
    };
    c.eq(
        "clients-sequences",
        "per client address, which real server answered each connection: equal",
        clients(kb),
        clients(rb),
    );
    let (kst, rst) = (parse::stats_rows(strs(kb)), parse::stats_rows(strs(rb)));
    let keys = |x: &Got<Vec<parse::StatsRow>>| {
        owned(x).map(|v| {
            v.iter()
                .map(|x| x.key.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let (kk, rk) = (keys(&kst), keys(&rst));
    let same = matches!((&kk, &rk), (Ok(a), Ok(b)) if a == b);
    c.eq(
        "stats/rows",
        "ipvsadm --stats rows (the service and its real servers): the same on both sides",
        kk,
        rk,
    );
    if let (true, Ok(kst), Ok(rst)) = (same, kst, rst) {
        for (a, b) in kst.iter().zip(&rst) {
            let key = a.key.trim_start_matches("-> ").replace(' ', "-");
            c.eq(
                &format!("stats/{key}/conns"),
                "ipvsadm --stats Conns (new scheduling decisions): equal",
                Ok(a.v[0]),
                Ok(b.v[0]),
            );
            c.near(
                &format!("stats/{key}/inpkts"),
                "ipvsadm --stats InPkts (the clients' kernels differ: a retransmit or an extra ACK)",
                Ok(a.v[1]),
                Ok(b.v[1]),
                tol::INPKTS.0,
                tol::INPKTS.1,
            );
            let (conns, slack) = (a.v[0], tol::OUTPKTS_SLACK);
            c.compare(
                &format!("stats/{key}/outpkts"),
                &format!(
                    "ipvsadm --stats OutPkts: kernel − rvs from −{slack} to Conns + {slack} = \
                     {} (the VM's slower servers may ACK the client's FIN before sending their \
                     own, one packet more per connection at most)",
                    conns + slack
                ),
                Ok(a.v[2]),
                Ok(b.v[2]),
                |k, r| (-slack..=conns + slack).contains(&(k - r)),
            );
        }
    }
    // The `ipvsadm -Ln -t VIP:PORT` listing, byte for byte (the scenario prints it last).
    let ln = |b: &[String]| -> Got<String> {
        let i = b
            .iter()
            .rposition(|l| l.starts_with("Prot LocalAddress:Port Scheduler Flags"))
            .ok_or("no ipvsadm -Ln listing (`Prot LocalAddress:Port Scheduler Flags`)")?;
        Ok(b[i..]
            .iter()
            .take_while(|l| !l.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"))
    };
    c.eq(
        "ln-text",
        "ipvsadm -Ln -t VIP:PORT text (weights, ActiveConn, InActConn): equal, byte for byte",
        ln(kb),
        ln(rb),
    );
}

// ---- incident-port-reuse ------------------------------------------------------------------

/// The outcome fields of a `RESULT` row (tcpclient's reset is folded into other there).
const RESULT_KINDS: [&str; 5] = ["ok", "refused", "timeout", "unreach", "other"];

/// The configurations the case's knobs ask incident-port-reuse.sh for, in its loop order
/// (death, then conn_reuse_mode, then expire_nodest_conn), as its section titles tag them.
pub fn incident_configs(env: &[(String, String)]) -> Vec<String> {
    let knob = |k: &str, default: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map_or(default.to_string(), |(_, v)| v.clone())
    };
    let (deaths, modes, nodests) = (
        knob("DEATHS", "kill drop linkdown"),
        knob("MODES", "0 1"),
        knob("NODESTS", "0 1"),
    );
    let mut v = Vec::new();
    for d in deaths.split_whitespace() {
        for m in modes.split_whitespace() {
            for n in nodests.split_whitespace() {
                v.push(format!("reuse={m} nodest={n} death={d}"));
            }
        }
    }
    v
}

fn results(text: &str) -> Vec<BTreeMap<String, String>> {
    text.lines()
        .filter(|l| l.starts_with("RESULT "))
        .map(parse::kv)
        .collect()
}

fn summary_of(res: &[BTreeMap<String, String>], cfg: &str, phase: &str) -> Got<parse::Summary> {
    res.iter()
        .find(|f| {
            f.get("cfg").map(String::as_str) == Some(cfg)
                && f.get("phase").map(String::as_str) == Some(phase)
        })
        .map(|f| parse::Summary { fields: f.clone() })
        .ok_or_else(|| format!("no `RESULT cfg={cfg} ... phase={phase}` line"))
}

/// Per client port: the set of outcomes (server name when ok, "fail" otherwise).
fn pinning(conns: &[parse::Conn]) -> (bool, String) {
    let mut by: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut n: BTreeMap<u32, usize> = BTreeMap::new();
    for x in conns {
        let o = if x.result == "ok" {
            x.rs.clone()
        } else {
            "fail".into()
        };
        by.entry(x.lport).or_default().insert(o);
        *n.entry(x.lport).or_default() += 1;
    }
    let multi: Vec<String> = by
        .iter()
        .filter(|(p, s)| s.len() > 1 && n[p] >= 2)
        .map(|(p, s)| format!("{p}{{{}}}", s.iter().cloned().collect::<Vec<_>>().join(",")))
        .collect();
    let ports = by.len();
    if multi.is_empty() {
        (
            true,
            format!("all {ports} client ports pinned (one server or always failing)"),
        )
    } else {
        (
            false,
            format!(
                "{} of {ports} client ports not pinned: {}",
                multi.len(),
                multi.join(" ")
            ),
        )
    }
}

/// A `RESULT` row's fields as printed (`-` for an absent one).
fn result_line(s: &parse::Summary) -> String {
    [
        "attempted",
        "ok",
        "refused",
        "timeout",
        "unreach",
        "other",
        "eaddrnotavail",
        "pkts_to_rs2",
        "ok_max_ms",
    ]
    .iter()
    .map(|k| format!("{k}={}", s.fields.get(*k).map_or("-", String::as_str)))
    .collect::<Vec<_>>()
    .join(" ")
}

fn incident_cmp(c: &mut Checks, want: &[String], k: &Side, r: &Side) {
    let (ks, rs) = (parse::sections(&k.output), parse::sections(&r.output));
    let (kres, rres) = (results(&k.output), results(&r.output));
    let configs = |secs: &[(String, Vec<String>)]| -> Got<String> {
        let v: Vec<String> = secs
            .iter()
            .filter_map(|(t, _)| t.strip_prefix("config "))
            .filter_map(|t| t.split_once(": "))
            .map(|(n, tag)| format!("{n}: {tag}"))
            .collect();
        if v.is_empty() {
            return Err("no `### config N: ...` sections".into());
        }
        Ok(v.join("\n"))
    };
    let wanted: Vec<String> = want
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}: {t}", i + 1))
        .collect();
    let wanted_text = wanted.join("\n");
    c.compare(
        "configs",
        &format!(
            "the configurations that ran: the same on both sides, and the ones the case asks for ({})",
            wanted.join("; ")
        ),
        configs(&ks),
        configs(&rs),
        |a, b| a == b && *a == wanted_text,
    );
    for (i, tag) in want.iter().enumerate() {
        let n = (i + 1).to_string();
        let f = parse::kv(tag);
        let g = |k: &str| f.get(k).map_or("?", String::as_str);
        let (death, reuse, nodest) = (g("death"), g("reuse"), g("nodest"));
        let id = format!("{death}-reuse{reuse}-nodest{nodest}");
        let title = format!("config {n}: {tag}");
        let Some((kb, rb)) = both_sections(c, &id, &title, &ks, &rs) else {
            continue;
        };
        let get = |res: &[BTreeMap<String, String>], p: &str| summary_of(res, &n, p);
        for phase in ["warm", "main", "removed"] {
            let (a, b) = (get(&kres, phase), get(&rres, phase));
            // After rs2's deletion a connect fails only if its client port still has an
            // entry of rs2; with a few attempts (a black-holed connect waits out its
            // timeout), whether one of them meets a port without such an entry, and so
            // succeeds, is chance. There only the failure kinds are compared.
            let kinds = |s: &Got<parse::Summary>| -> Got<Shows<Vec<&'static str>>> {
                let s = owned(s)?;
                let all = s.kinds(&RESULT_KINDS)?;
                let mut v = all.clone();
                if phase == "removed" {
                    v.retain(|k| *k != "ok");
                }
                Ok(Shows {
                    v,
                    text: format!("{all:?}   ({})", result_line(&s)),
                })
            };
            let rule = if phase == "removed" {
                "phase removed: the kinds of failure that occur (refused, timeout, unreach, reset, \
                 other): the same set (whether a few attempts also meet a client port without an \
                 entry of the deleted server, and succeed, is chance)"
                    .to_string()
            } else {
                format!(
                    "phase {phase}: the kinds of outcome that occur (ok, refused, timeout, \
                     unreach, reset, other): the same set"
                )
            };
            c.compare(
                &format!("{id}/{phase}/outcome-kinds"),
                &rule,
                kinds(&a),
                kinds(&b),
                |x, y| x.v == y.v,
            );
            if phase != "main" {
                continue;
            }
            let share = |s: &Got<parse::Summary>| -> Got<Num> {
                let s = owned(s)?;
                let (f, n) = (s.failed()?, s.attempted()?);
                let v = f as f64 / n as f64;
                Ok(Num {
                    v,
                    text: format!("{v:.2} ({f} of {n})"),
                })
            };
            let numeric = share_compared(death);
            let rule = if numeric {
                format!(
                    "phase main: failed share of attempts: both 0, or both > 0 and within ±{} \
                     (refused connects fail at once; the share follows from the client ports \
                     pinned to the dead server)",
                    tol::FAILURE_SHARE_REFUSED
                )
            } else {
                "phase main: failed share of attempts: both 0 or both > 0 (with failures that \
                 wait out a timeout or an ICMP error, the share is set by the phase's length and \
                 the client's port choice, not by IPVS)"
                    .to_string()
            };
            c.compare(
                &format!("{id}/main/failure-share"),
                &rule,
                share(&a),
                share(&b),
                |x, y| {
                    (x.v == 0.0) == (y.v == 0.0)
                        && (!numeric || (x.v - y.v).abs() <= tol::FAILURE_SHARE_REFUSED)
                },
            );
            // pkts_to_rs2 is the rise of rs2's InPkts over main; the scenario reads 0 when rs2
            // has no --stats row, so the row must be there for the number to mean anything.
            let to_rs2 = |s: &Got<parse::Summary>, b: &[String]| -> Got<i64> {
                let n = owned(s)?.n("pkts_to_rs2")?;
                let rows =
                    parse::stats_rows(parse::block_after(b, "ipvsadm -Ln --stats after main:")?)?;
                if !rows.iter().any(|x| x.key == "-> 10.0.12.2:80") {
                    return Err(format!(
                        "pkts_to_rs2={n}, but rs2 (10.0.12.2:80) has no row in `ipvsadm -Ln --stats after main`"
                    ));
                }
                Ok(n)
            };
            c.zero_class(
                &format!("{id}/main/pkts-to-rs2"),
                "phase main: packets IPVS still sent to rs2 (weight 0, dead)",
                to_rs2(&a, kb),
                to_rs2(&b, rb),
            );
            c.zero_class(
                &format!("{id}/main/eaddrnotavail"),
                "phase main: client port starvation (healthy runs wait for TIME_WAIT ports)",
                owned(&a).and_then(|s| s.n("eaddrnotavail")),
                owned(&b).and_then(|s| s.n("eaddrnotavail")),
            );
            let slow = |s: &Got<parse::Summary>| -> Got<Num> {
                let v = owned(s)?.f("ok_max_ms")?;
                Ok(Num {
                    v,
                    text: format!("ok_max_ms={v}"),
                })
            };
            c.compare(
                &format!("{id}/main/slow-connects"),
                &format!(
                    "phase main: a successful connect took >= {} ms (a dropped SYN \
                     retransmitted): on both sides or on neither",
                    tol::SLOW_CONNECT_MS
                ),
                slow(&a),
                slow(&b),
                |x, y| (x.v >= tol::SLOW_CONNECT_MS) == (y.v >= tol::SLOW_CONNECT_MS),
            );
        }
        // Port pinning says something about IPVS only with conn_reuse_mode=0, where a reused
        // port keeps its entry (and so its server). With mode 1 every reuse is a fresh rr
        // decision, and whether one port meets both live servers depends on the order in
        // which the client's kernel cycles its 10 ports (this machine's kernel cycles them
        // in a fixed order, so with rr over two servers each port meets the same one; the
        // VM's does not): conns-per-attempt covers the rescheduling there.
        if reuse == "0" {
            let file = format!("c{n}-main-conns.txt");
            let pins = |s: &Side| -> Got<Shows<bool>> {
                let cs = parse::conns(emitted(s, &file)?).map_err(|e| format!("{file}: {e}"))?;
                let (v, text) = pinning(&cs);
                Ok(Shows { v, text })
            };
            c.compare(
                &format!("{id}/main/port-pinning"),
                "phase main: every client port always reaches the same server (or always fails), \
                 or not: the same on both sides",
                pins(k),
                pins(r),
                |x, y| x.v == y.v,
            );
        }
        let rs2 = |b: &[String]| -> Got<Shows<i64>> {
            let block = parse::block_after(b, "ipvsadm -Ln after main")?;
            let d = parse::ln_dests(block)?
                .into_iter()
                .find(|d| d.addr == "10.0.12.2:80")
                .ok_or("no row of rs2 (10.0.12.2:80) in `ipvsadm -Ln after main`")?;
            Ok(Shows {
                v: d.active + d.inactive,
                text: format!(
                    "rs2 weight={} ActiveConn={} InActConn={}",
                    d.weight, d.active, d.inactive
                ),
            })
        };
        c.compare(
            &format!("{id}/main/rs2-keeps-entries"),
            "after main: rs2 still has connection entries (kube-proxy would keep it): both or neither",
            rs2(kb),
            rs2(rb),
            |x, y| (x.v == 0) == (y.v == 0),
        );
        let conns = |b: &[String], res: &[BTreeMap<String, String>]| -> Got<Num> {
            let st = parse::stats_rows(parse::block_after(b, "ipvsadm -Ln --stats after main:")?)?;
            let svc = st
                .iter()
                .find(|x| x.key.starts_with("TCP "))
                .ok_or("no service row in `ipvsadm -Ln --stats after main`")?
                .v[0];
            let att = get(res, "warm")?.attempted()? + get(res, "main")?.attempted()?;
            let v = svc as f64 / att as f64;
            Ok(Num {
                v,
                text: format!("{v:.2} (Conns {svc} / {att} attempts)"),
            })
        };
        c.compare(
            &format!("{id}/main/conns-per-attempt"),
            &format!(
                "after main: service Conns (new scheduling decisions) per attempt of warm+main: \
                 within ±{} (port reuse without rescheduling keeps it near 0, rescheduling near 1)",
                tol::CONNS_PER_ATTEMPT
            ),
            conns(kb, &kres),
            conns(rb, &rres),
            |x, y| (x.v - y.v).abs() <= tol::CONNS_PER_ATTEMPT,
        );
    }
}

// ---- persistence-quiescent ----------------------------------------------------------------

/// An emitted file that must look like ipvsadm's `-Ln` listing (its header), compared as text.
fn ln_file<'a>(s: &'a Side, name: &str) -> Got<&'a str> {
    let t = emitted(s, name)?;
    if t.lines().any(|l| l.starts_with("Prot LocalAddress:Port")) {
        Ok(t)
    } else {
        Err(format!(
            "{name} is not an ipvsadm -Ln listing: {}",
            t.lines().next().unwrap_or("")
        ))
    }
}

fn persistence_cmp(c: &mut Checks, k: &Side, r: &Side) {
    let (ks, rs) = (parse::sections(&k.output), parse::sections(&r.output));
    for e in ["0", "1"] {
        let title = format!("expire_quiescent_template={e}");
        let id = format!("eqt{e}");
        let Some((kb, rb)) = both_sections(c, &id, &title, &ks, &rs) else {
            continue;
        };
        for phase in ["before", "after"] {
            let label = format!("eqt={e}-{phase}");
            let d = |b: &[String]| parse::dist(strs(b), &label).map(|d| parse::fmt_dist(&d));
            let rule = if phase == "before" {
                "the client's connections before the weight change: which servers answered, how often: equal"
            } else {
                "the client's new connections after its pinned server went to weight 0: which servers answered, how often: equal"
            };
            c.eq(&format!("{id}/{phase}"), rule, d(kb), d(rb));
        }
        c.eq(
            &format!("{id}/pinned"),
            "the server the template pinned the client to: equal",
            parse::var(strs(kb), "pinned"),
            parse::var(strs(rb), "pinned"),
        );
        lnc_cmp(
            c,
            &format!("{id}/lnc"),
            &format!("pq-eqt{e}-Lnc.txt"),
            k,
            r,
            &[],
            tol::EXPIRY_S,
        );
        let nf = format!("pq-eqt{e}-Ln.txt");
        c.eq(
            &format!("{id}/ln-persistent-conn"),
            "ipvsadm -Ln --persistent-conn text: equal, byte for byte",
            ln_file(k, &nf),
            ln_file(r, &nf),
        );
    }
}

// ---- udp-removed --------------------------------------------------------------------------

fn udp_removed_cmp(c: &mut Checks, k: &Side, r: &Side) {
    let (ks, rs) = (parse::sections(&k.output), parse::sections(&r.output));
    for n in ["0", "1"] {
        let title = format!("expire_nodest_conn={n}");
        let id = format!("nodest{n}");
        let Some((kb, rb)) = both_sections(c, &id, &title, &ks, &rs) else {
            continue;
        };
        let before = format!("nodest={n}-before");
        let after = format!("nodest={n}-after");
        let d = |b: &[String], l: &str| parse::dist(strs(b), l);
        c.eq(
            &format!("{id}/before"),
            "the flow's datagrams before the removal: which server answered, how often: equal",
            d(kb, &before).map(|x| parse::fmt_dist(&x)),
            d(rb, &before).map(|x| parse::fmt_dist(&x)),
        );
        let servers = |b: &[String]| {
            d(b, &after).map(|x| {
                let v: Vec<String> = x.into_keys().collect();
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.join(" ")
                }
            })
        };
        c.eq(
            &format!("{id}/after-servers"),
            "after the serving real server was deleted: which servers answered: equal",
            servers(kb),
            servers(rb),
        );
        let answered = |b: &[String]| parse::summary(strs(b), &after).and_then(|s| s.n("ok"));
        c.near(
            &format!("{id}/after-answered"),
            "after the removal: datagrams answered (of 16)",
            answered(kb),
            answered(rb),
            tol::UDP_ANSWERED,
            0.0,
        );
        let first = |b: &[String]| -> Got<Num> {
            let v = parse::var(strs(b), "first_ok_ms")?;
            let ms: i64 = v
                .parse()
                .map_err(|_| format!("first_ok_ms={v} is not a number"))?;
            Ok(Num {
                v: ms as f64,
                text: format!("first answer after {ms} ms"),
            })
        };
        c.compare(
            &format!("{id}/black-hole-ms"),
            &format!(
                "after the removal: time until the flow is answered again (the black hole): \
                 within ±{} ms (an unanswered datagram waits 500 ms)",
                tol::BLACK_HOLE_MS
            ),
            first(kb),
            first(rb),
            |x, y| (x.v - y.v).abs() <= tol::BLACK_HOLE_MS as f64,
        );
        lnc_cmp(
            c,
            &format!("{id}/lnc"),
            &format!("ur-nodest{n}-Lnc.txt"),
            k,
            r,
            &[5353],
            tol::EXPIRY_S,
        );
    }
}

// ---- timeouts-set -------------------------------------------------------------------------

fn timeouts_cmp(c: &mut Checks, k: &Side, r: &Side) {
    let text = |s: &Side| -> Got<String> {
        let t = emitted(s, "ts-timeout.txt")?;
        if t.starts_with("Timeout (tcp tcpfin udp):") {
            Ok(t.to_string())
        } else {
            Err(format!(
                "ts-timeout.txt is not ipvsadm's timeout line: {}",
                t.lines().next().unwrap_or("")
            ))
        }
    };
    c.eq(
        "timeout-text",
        "ipvsadm -L --timeout after --set 40 30 20: equal, byte for byte",
        text(k),
        text(r),
    );
    lnc_cmp(c, "lnc", "ts-Lnc.txt", k, r, &[], tol::EXPIRY_S);
}

// ---- reply-same-client-port ---------------------------------------------------------------

fn reply_port_cmp(c: &mut Checks, k: &Side, r: &Side) {
    let (ks, rs) = (parse::sections(&k.output), parse::sections(&r.output));
    for (sec, label, id) in [
        ("flow 1:", "first", "flow-1-outcome"),
        ("flow 2:", "second", "flow-2-outcome"),
        ("flow 1 again", "third", "flow-1-again-outcome"),
    ] {
        let show = |x: &[(String, Vec<String>)]| -> Got<String> {
            let b = parse::section(x, sec).ok_or_else(|| format!("no section `### {sec}...`"))?;
            let s = parse::summary(strs(b), label)?;
            let d = parse::dist(strs(b), label)?;
            Ok(format!(
                "answered {} of {}, timeouts {}, by {}",
                s.n("ok")?,
                s.attempted()?,
                s.n("timeout")?,
                parse::fmt_dist(&d)
            ))
        };
        let rule = match label {
            "first" => "client port 5353 -> VIP:53 (rs1:53): answers: equal",
            "second" => {
                "then client port 5353 -> VIP:54 (also rs1:53; replies match two entries): answers: equal"
            }
            _ => "then client port 5353 -> VIP:53 again: answers: equal",
        };
        c.eq(id, rule, show(&ks), show(&rs));
    }
    lnc_cmp(c, "lnc", "rp-Lnc.txt", k, r, &[5353], tol::EXPIRY_S);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Check;

    #[test]
    fn pinning_detects_ports_served_by_two_servers() {
        let mk = |p, res: &str, rs: &str| parse::Conn {
            lport: p,
            result: res.into(),
            rs: rs.into(),
            lat_us: 1,
            t_ms: 0,
        };
        let pinned = [
            mk(1, "ok", "rs1"),
            mk(1, "ok", "rs1"),
            mk(2, "refused", "-"),
            mk(2, "refused", "-"),
        ];
        assert!(pinning(&pinned).0);
        let not = [mk(1, "ok", "rs1"), mk(1, "ok", "rs3")];
        let (p, t) = pinning(&not);
        assert!(!p);
        assert!(t.contains("1{rs1,rs3}"));
    }

    use crate::runner::SideKind;

    fn side(kind: SideKind, output: &str, files: &[(&str, &str)]) -> Side {
        Side {
            kind,
            dir: "/x".into(),
            output: output.to_string(),
            files: files
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
            rc: Some(0),
            wall: std::time::Duration::ZERO,
            log: String::new(),
        }
    }

    /// Runs the comparison of `kind` on the two sides: check id (without the case) -> check.
    fn run(kind: Kind, env: &[(&str, &str)], k: &Side, r: &Side) -> BTreeMap<String, Check> {
        let cs = case("t", kind, Path::new("/s.sh"), env, false, 1);
        compare(&cs, k, r)
            .list
            .into_iter()
            .map(|c| (c.id.trim_start_matches("t/").to_string(), c))
            .collect()
    }

    fn all_agree(v: &BTreeMap<String, Check>) {
        for (id, c) in v {
            assert!(c.ok, "{id} should agree: {c:?}");
        }
    }

    /// `id` exists, fails, and says that `sides` ("kernel", "rvs" or both) lack the data.
    fn missing_on(v: &BTreeMap<String, Check>, id: &str, sides: &[&str]) {
        let c = v
            .get(id)
            .unwrap_or_else(|| panic!("no check {id} in {:?}", v.keys()));
        assert!(!c.ok, "{id} must fail when data is missing: {c:?}");
        for (s, text) in [("kernel", &c.kernel), ("rvs", &c.rvs)] {
            let says = text.starts_with(&format!("MISSING on the {s} side"));
            assert_eq!(says, sides.contains(&s), "{id}, {s} side: {text}");
        }
    }

    fn drop_lines(text: &str, prefix: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with(prefix))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    const LNC: &str = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 01:58  TIME_WAIT   10.0.1.2:40001     10.0.0.100:80      10.0.11.2:80
UDP 00:04  UDP         10.0.1.2:5353      10.0.0.100:53      10.0.11.2:53
";
    const LN: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr persistent 60
  -> 10.0.11.2:80                 Masq    0      0          6
";

    // ---- sched ----

    const SCHED: &str = "\
### scheduler wrr  (VIP 10.0.0.100:8001, weights 1 2 3)
one client, 6 connections, in order:
rs3 rs2 rs1 rs3 rs2 rs3 
12 clients x 1 connections (client -> servers):
  10.0.1.2: rs3 
  10.0.1.3: rs2 
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:8001                     8       48       32     3216     2031
  -> 10.0.11.2:80                        1        6        4      402      253
  -> 10.0.12.2:80                        3       18       12     1206      761
  -> 10.0.13.2:80                        4       24       16     1608     1017
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:8001 wrr
  -> 10.0.11.2:80                 Masq    1      0          1
";

    fn sched(k: &str, r: &str) -> BTreeMap<String, Check> {
        run(
            Kind::Sched("wrr".into()),
            &[],
            &side(SideKind::Kernel, k, &[]),
            &side(SideKind::Rvs, r, &[]),
        )
    }

    #[test]
    fn sched_checks_fail_on_missing_data() {
        all_agree(&sched(SCHED, SCHED));
        // No server names after `one client` on either side: not an agreement.
        let no_seq = SCHED.replace("rs3 rs2 rs1 rs3 rs2 rs3 \n", "\n");
        missing_on(
            &sched(&no_seq, &no_seq),
            "one-client-sequence",
            &["kernel", "rvs"],
        );
        let no_clients = drop_lines(SCHED, "  10.0.1.");
        missing_on(&sched(SCHED, &no_clients), "clients-sequences", &["rvs"]);
        let empty_client = SCHED.replace("  10.0.1.3: rs2 \n", "  10.0.1.3: \n");
        missing_on(
            &sched(&empty_client, &empty_client),
            "clients-sequences",
            &["kernel", "rvs"],
        );
        let no_stats = drop_lines(SCHED, "  -> 10.0.1");
        let no_stats = drop_lines(&no_stats, "TCP  10.0.0.100:8001   ");
        let v = sched(&no_stats, SCHED);
        missing_on(&v, "stats/rows", &["kernel"]);
        assert!(!v.keys().any(|k| k.ends_with("/conns")));
        let no_ln = SCHED.replace("Prot LocalAddress:Port Scheduler Flags", "Prot");
        missing_on(&sched(&no_ln, &no_ln), "ln-text", &["kernel", "rvs"]);
        missing_on(&sched("### other\n", SCHED), "section", &["kernel"]);
    }

    // ---- incident ----

    const INCIDENT: &str = "\
### config 1: reuse=0 nodest=0 death=kill
RESULT cfg=1 reuse=0 nodest=0 death=kill phase=warm attempted=3 ok=3 refused=0 timeout=0 unreach=0 other=0 eaddrnotavail=5 pkts_to_rs2=- ok_max_ms=2.0
ipvsadm -Ln --stats after main:
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                       2       20       10     1000      500
  -> 10.0.11.2:80                        1        5        3      100       50
  -> 10.0.12.2:80                        1       10        3      100       50
ipvsadm -Ln after main (rs2 InActConn>0 means kube-proxy would keep it):
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 10.0.11.2:80                 Masq    1      0          3
  -> 10.0.12.2:80                 Masq    0      0          2
RESULT cfg=1 reuse=0 nodest=0 death=kill phase=main attempted=10 ok=3 refused=7 timeout=0 unreach=0 other=0 eaddrnotavail=0 pkts_to_rs2=14 ok_max_ms=2.5
RESULT cfg=1 reuse=0 nodest=0 death=kill phase=removed attempted=4 ok=1 refused=0 timeout=3 unreach=0 other=0 eaddrnotavail=0 pkts_to_rs2=n/a(deleted) ok_max_ms=3.0
";
    const CONNS: &str = "\
conn i=0 t_ms=0 lport=40000 result=ok lat_us=900 rs=rs1 errno=0
conn i=1 t_ms=50 lport=40001 result=refused lat_us=500 rs=- errno=111
conn i=2 t_ms=100 lport=40001 result=refused lat_us=500 rs=- errno=111
";
    const KILL0: [(&str, &str); 3] = [("DEATHS", "kill"), ("MODES", "0"), ("NODESTS", "0")];

    fn incident(k: (&str, &str), r: (&str, &str)) -> BTreeMap<String, Check> {
        fn f(t: &str) -> Vec<(&str, &str)> {
            if t.is_empty() {
                Vec::new()
            } else {
                vec![("c1-main-conns.txt", t)]
            }
        }
        let (kf, rf) = (f(k.1), f(r.1));
        let ks = side(SideKind::Kernel, k.0, &kf);
        let rs = side(SideKind::Rvs, r.0, &rf);
        run(Kind::Incident, &KILL0, &ks, &rs)
    }

    /// INCIDENT with the RESULT line of `phase` edited by `f`.
    fn result_edit(phase: &str, f: impl Fn(&str) -> String) -> String {
        INCIDENT
            .lines()
            .map(|l| {
                if l.starts_with("RESULT ") && l.contains(&format!("phase={phase} ")) {
                    f(l) + "\n"
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }

    #[test]
    fn incident_checks_fail_on_missing_data() {
        let full = (INCIDENT, CONNS);
        let v = incident(full, full);
        all_agree(&v);
        assert!(v.contains_key("kill-reuse0-nodest0/main/port-pinning"));
        let id = |x: &str| format!("kill-reuse0-nodest0/{x}");
        // The per-connection file missing on both sides (it read as "" before).
        let v = incident((INCIDENT, ""), (INCIDENT, ""));
        missing_on(&v, &id("main/port-pinning"), &["kernel", "rvs"]);
        // pkts_to_rs2 absent on rvs; rs2's --stats row absent on the kernel (the scenario
        // reads 0 then, which must not count as "zero packets").
        let no_p2 = result_edit("main", |l| l.replace("pkts_to_rs2=14 ", ""));
        missing_on(
            &incident(full, (&no_p2, CONNS)),
            &id("main/pkts-to-rs2"),
            &["rvs"],
        );
        let no_row = INCIDENT.replace(
            "  -> 10.0.12.2:80                        1       10        3      100       50\n",
            "",
        );
        missing_on(
            &incident((&no_row, CONNS), full),
            &id("main/pkts-to-rs2"),
            &["kernel"],
        );
        // ok_max_ms absent on both sides (it read as 0 before).
        let no_max = result_edit("main", |l| l.replace(" ok_max_ms=2.5", ""));
        missing_on(
            &incident((&no_max, CONNS), (&no_max, CONNS)),
            &id("main/slow-connects"),
            &["kernel", "rvs"],
        );
        // Outcome counts absent, or not adding up to the attempts.
        let no_refused = result_edit("main", |l| l.replace("refused=7 ", ""));
        let v = incident((&no_refused, CONNS), (&no_refused, CONNS));
        missing_on(&v, &id("main/outcome-kinds"), &["kernel", "rvs"]);
        let short = result_edit("main", |l| l.replace("refused=7", "refused=6"));
        missing_on(
            &incident(full, (&short, CONNS)),
            &id("main/outcome-kinds"),
            &["rvs"],
        );
        // No attempts: nothing to compare, not a share of 0.
        let none = result_edit("main", |l| {
            l.replace("attempted=10 ok=3 refused=7", "attempted=0 ok=0 refused=0")
        });
        let v = incident((&none, CONNS), (&none, CONNS));
        missing_on(&v, &id("main/failure-share"), &["kernel", "rvs"]);
        missing_on(&v, &id("main/conns-per-attempt"), &["kernel", "rvs"]);
        // A phase's RESULT line missing on one side.
        let no_removed = drop_lines(
            INCIDENT,
            "RESULT cfg=1 reuse=0 nodest=0 death=kill phase=removed",
        );
        missing_on(
            &incident((&no_removed, CONNS), full),
            &id("removed/outcome-kinds"),
            &["kernel"],
        );
        // The -Ln after main missing on rvs.
        let no_ln = INCIDENT.replace("ipvsadm -Ln after main", "something else");
        missing_on(
            &incident(full, (&no_ln, CONNS)),
            &id("main/rs2-keeps-entries"),
            &["rvs"],
        );
        // The configuration did not run on rvs; or on neither side.
        let v = incident(full, ("### incident-port-reuse: ...\n", CONNS));
        missing_on(&v, "configs", &["rvs"]);
        missing_on(&v, "kill-reuse0-nodest0", &["rvs"]);
        let v = incident(("### x\n", ""), ("### x\n", ""));
        missing_on(&v, "configs", &["kernel", "rvs"]);
        // Both sides ran a configuration the case did not ask for.
        let other = INCIDENT.replace(
            "### config 1: reuse=0 nodest=0 death=kill",
            "### config 1: reuse=1 nodest=0 death=kill",
        );
        assert!(!incident((&other, CONNS), (&other, CONNS))["configs"].ok);
    }

    #[test]
    fn outpkts_allow_one_more_packet_per_connection_on_the_kernel_side() {
        let row = "TCP  10.0.0.100:8001                     8       48       32     3216     2031";
        let with = |out: i64| {
            let v = sched(
                SCHED,
                &SCHED.replace(row, &row.replace("  32  ", &format!("  {out}  "))),
            );
            v["stats/TCP-10.0.0.100:8001/outpkts"].ok
        };
        // The kernel's 32 against rvs's: kernel − rvs from −3 to Conns (8) + 3.
        assert!(with(32) && with(21) && with(35));
        assert!(!with(20) && !with(36));
    }

    #[test]
    fn failure_share_is_a_number_only_for_refused_connects() {
        let edit = |death: &str, main: &str| {
            result_edit("main", |l| {
                l.replace("attempted=10 ok=3 refused=7 timeout=0", main)
            })
            .replace("death=kill", &format!("death={death}"))
        };
        let share = |death: &str, k: &str, r: &str| {
            let env = [("DEATHS", death), ("MODES", "0"), ("NODESTS", "0")];
            let v = run(
                Kind::Incident,
                &env,
                &side(
                    SideKind::Kernel,
                    &edit(death, k),
                    &[("c1-main-conns.txt", CONNS)],
                ),
                &side(
                    SideKind::Rvs,
                    &edit(death, r),
                    &[("c1-main-conns.txt", CONNS)],
                ),
            );
            let c = &v[&format!("{death}-reuse0-nodest0/main/failure-share")];
            assert!(c.values.is_some());
            c.ok
        };
        // kill: within ±0.12 (measured 0.82 vs 0.86).
        let kill = |k: &str, r: &str| share("kill", k, r);
        assert!(kill(
            "attempted=100 ok=18 refused=82 timeout=0",
            "attempted=100 ok=14 refused=86 timeout=0"
        ));
        assert!(!kill(
            "attempted=100 ok=18 refused=82 timeout=0",
            "attempted=100 ok=35 refused=65 timeout=0"
        ));
        assert!(!kill(
            "attempted=100 ok=18 refused=82 timeout=0",
            "attempted=100 ok=100 refused=0 timeout=0"
        ));
        // drop: both non-zero is enough (measured 6 of 8 vs 6 of 17), zero on one side is not.
        let drop = |k: &str, r: &str| share("drop", k, r);
        assert!(drop(
            "attempted=8 ok=2 refused=0 timeout=6",
            "attempted=17 ok=11 refused=0 timeout=6"
        ));
        assert!(!drop(
            "attempted=8 ok=2 refused=0 timeout=6",
            "attempted=17 ok=17 refused=0 timeout=0"
        ));
    }

    fn incident_verdicts(k: (&str, &str), r: (&str, &str)) -> BTreeMap<String, bool> {
        let full = |main: &str, removed: &str| {
            let f = |s: &str| {
                let g = parse::kv(s);
                let n = |k: &str| g.get(k).cloned().unwrap_or_else(|| "0".into());
                format!(
                    "attempted={} ok={} refused={} timeout={} unreach={} other={}",
                    n("attempted"),
                    n("ok"),
                    n("refused"),
                    n("timeout"),
                    n("unreach"),
                    n("other")
                )
            };
            result_edit("main", |l| {
                l.replace(
                    "attempted=10 ok=3 refused=7 timeout=0 unreach=0 other=0",
                    &f(main),
                )
            })
            .replace(
                "attempted=4 ok=1 refused=0 timeout=3 unreach=0 other=0",
                &f(removed),
            )
        };
        let (ko, ro) = (full(k.0, k.1), full(r.0, r.1));
        incident((&ko, CONNS), (&ro, CONNS))
            .into_iter()
            .map(|(id, c)| (format!("i/{id}"), c.ok))
            .collect()
    }

    #[test]
    fn incident_outcome_kinds_tolerate_chance_successes_only_after_removal() {
        let main = "attempted=10 ok=3 refused=7";
        let kinds = "i/kill-reuse0-nodest0";
        // Removed phase: the kernel's few attempts met one fresh port, rvs's did not: agree.
        let v = incident_verdicts(
            (main, "attempted=4 ok=1 timeout=3"),
            (main, "attempted=3 timeout=3"),
        );
        assert!(v[&format!("{kinds}/removed/outcome-kinds")]);
        assert!(v[&format!("{kinds}/main/outcome-kinds")]);
        // A different failure kind after removal is a difference.
        let v = incident_verdicts(
            (main, "attempted=4 ok=1 timeout=3"),
            (main, "attempted=4 ok=1 refused=3"),
        );
        assert!(!v[&format!("{kinds}/removed/outcome-kinds")]);
        // Failures on one side only, after removal: a difference.
        let v = incident_verdicts(
            (main, "attempted=4 ok=4"),
            (main, "attempted=4 ok=1 timeout=3"),
        );
        assert!(!v[&format!("{kinds}/removed/outcome-kinds")]);
        // In the main phase, successes on one side only are a difference.
        let v = incident_verdicts(
            (main, "attempted=4 timeout=4"),
            ("attempted=10 refused=10", "attempted=4 timeout=4"),
        );
        assert!(!v[&format!("{kinds}/main/outcome-kinds")]);
    }

    // ---- persistence, udp-removed, timeouts, reply port ----

    fn pq_out(eqt: &str) -> String {
        format!(
            "### expire_quiescent_template={eqt}\n\
summary label=eqt={eqt}-before attempted=6 ok=6 refused=0 timeout=0 unreach=0 reset=0 other=0\n\
dist label=eqt={eqt}-before rs1=6\n\
pinned=rs1\n\
summary label=eqt={eqt}-after attempted=6 ok=6 refused=0 timeout=0 unreach=0 reset=0 other=0\n\
dist label=eqt={eqt}-after rs1=6\n"
        )
    }

    fn pq(k: &str, kf: &[(&str, &str)], r: &str, rf: &[(&str, &str)]) -> BTreeMap<String, Check> {
        run(
            Kind::Persistence,
            &[],
            &side(SideKind::Kernel, k, kf),
            &side(SideKind::Rvs, r, rf),
        )
    }

    #[test]
    fn persistence_checks_fail_on_missing_data() {
        let out = pq_out("0") + &pq_out("1");
        let files = [
            ("pq-eqt0-Lnc.txt", LNC),
            ("pq-eqt0-Ln.txt", LN),
            ("pq-eqt1-Lnc.txt", LNC),
            ("pq-eqt1-Ln.txt", LN),
        ];
        all_agree(&pq(&out, &files, &out, &files));
        // Nothing answered: `pinned=` is empty on both sides (it compared "" == "" before).
        let unpinned = out.replace("pinned=rs1", "pinned=");
        missing_on(
            &pq(&unpinned, &files, &unpinned, &files),
            "eqt0/pinned",
            &["kernel", "rvs"],
        );
        // The -Ln file missing on both sides (it read as "" on both before).
        let v = pq(&out, &files[..3], &out, &files[..3]);
        missing_on(&v, "eqt1/ln-persistent-conn", &["kernel", "rvs"]);
        // An error message in place of the -Ln file, on rvs.
        let mut bad = files;
        bad[1].1 = "Can't initialize ipvs: Protocol not available\n";
        missing_on(
            &pq(&out, &files, &out, &bad),
            "eqt0/ln-persistent-conn",
            &["rvs"],
        );
        // The -Lnc file missing on the kernel, or an error message in its place on both.
        let v = pq(&out, &files[1..], &out, &files);
        missing_on(&v, "eqt0/lnc/entries", &["kernel"]);
        assert!(!v.contains_key("eqt0/lnc/expiry"));
        let mut err = files;
        err[0].1 = "Memory allocation problem\n";
        missing_on(
            &pq(&out, &err, &out, &err),
            "eqt0/lnc/entries",
            &["kernel", "rvs"],
        );
        // A dist line missing on the kernel.
        let no_dist = drop_lines(&out, "dist label=eqt=1-after");
        missing_on(
            &pq(&no_dist, &files, &out, &files),
            "eqt1/after",
            &["kernel"],
        );
    }

    const UR: &str = "### expire_nodest_conn=0\n\
summary label=nodest=0-before attempted=10 ok=10 timeout=0 refused=0 other=0\n\
dist label=nodest=0-before rs1=10\n\
served_by=rs1\n\
summary label=nodest=0-after attempted=16 ok=6 timeout=10 refused=0 other=0\n\
dist label=nodest=0-after rs2=6\n\
first_ok_ms=5012\n\
### expire_nodest_conn=1\n\
summary label=nodest=1-before attempted=10 ok=10 timeout=0 refused=0 other=0\n\
dist label=nodest=1-before rs2=10\n\
served_by=rs2\n\
summary label=nodest=1-after attempted=16 ok=16 timeout=0 refused=0 other=0\n\
dist label=nodest=1-after rs1=16\n\
first_ok_ms=0\n";

    fn ur(k: &str, r: &str) -> BTreeMap<String, Check> {
        let f = [("ur-nodest0-Lnc.txt", LNC), ("ur-nodest1-Lnc.txt", LNC)];
        run(
            Kind::UdpRemoved,
            &[],
            &side(SideKind::Kernel, k, &f),
            &side(SideKind::Rvs, r, &f),
        )
    }

    #[test]
    fn udp_removed_checks_fail_on_missing_data() {
        all_agree(&ur(UR, UR));
        // No summary after the removal on either side (it compared -1 with -1 before).
        let no_sum = drop_lines(UR, "summary label=nodest=0-after");
        missing_on(
            &ur(&no_sum, &no_sum),
            "nodest0/after-answered",
            &["kernel", "rvs"],
        );
        // No dist line after the removal (it compared "" with "" before).
        let no_dist = drop_lines(UR, "dist label=nodest=1-after");
        let v = ur(&no_dist, &no_dist);
        missing_on(&v, "nodest1/after-servers", &["kernel", "rvs"]);
        missing_on(&ur(UR, &no_dist), "nodest1/after-servers", &["rvs"]);
        // Never answered again: first_ok_ms is empty.
        let never = UR.replace("first_ok_ms=5012", "first_ok_ms=");
        missing_on(&ur(UR, &never), "nodest0/black-hole-ms", &["rvs"]);
        // An empty dist line is a result (nothing answered), not missing data.
        let none = UR.replace(
            "dist label=nodest=1-after rs1=16",
            "dist label=nodest=1-after",
        );
        let v = ur(&none, &none);
        assert!(v["nodest1/after-servers"].ok);
        assert_eq!(v["nodest1/after-servers"].kernel, "(none)");
    }

    #[test]
    fn timeouts_and_reply_port_checks_fail_on_missing_data() {
        let t = "Timeout (tcp tcpfin udp): 40 30 20\n";
        let files = [("ts-timeout.txt", t), ("ts-Lnc.txt", LNC)];
        let run_ts = |kf: &[(&str, &str)], rf: &[(&str, &str)]| {
            run(
                Kind::Timeouts,
                &[],
                &side(SideKind::Kernel, "### timeouts-set\n", kf),
                &side(SideKind::Rvs, "### timeouts-set\n", rf),
            )
        };
        all_agree(&run_ts(&files, &files));
        // The file missing on both sides (it compared "" with "" before).
        missing_on(
            &run_ts(&files[1..], &files[1..]),
            "timeout-text",
            &["kernel", "rvs"],
        );
        let empty = [("ts-timeout.txt", ""), ("ts-Lnc.txt", LNC)];
        missing_on(&run_ts(&files, &empty), "timeout-text", &["rvs"]);
        missing_on(
            &run_ts(&files[..1], &files[..1]),
            "lnc/entries",
            &["kernel", "rvs"],
        );

        let flow = |sec: &str, label: &str| {
            format!(
                "### {sec}\nsummary label={label} attempted=4 ok=4 timeout=0 refused=0 other=0\n\
                 dist label={label} rs1=4\n"
            )
        };
        let out = flow("flow 1: 10.0.1.2:5353 -> 10.0.0.100:53", "first")
            + &flow("flow 2: 10.0.1.2:5353 -> 10.0.0.100:54", "second")
            + &flow("flow 1 again", "third");
        let f = [("rp-Lnc.txt", LNC)];
        let run_rp = |k: &str, r: &str| {
            run(
                Kind::ReplyPort,
                &[],
                &side(SideKind::Kernel, k, &f),
                &side(SideKind::Rvs, r, &f),
            )
        };
        all_agree(&run_rp(&out, &out));
        let no_timeout = out.replace("attempted=4 ok=4 timeout=0", "attempted=4 ok=4");
        missing_on(&run_rp(&out, &no_timeout), "flow-2-outcome", &["rvs"]);
        let no_dist = drop_lines(&out, "dist label=third");
        missing_on(
            &run_rp(&no_dist, &no_dist),
            "flow-1-again-outcome",
            &["kernel", "rvs"],
        );
    }

    #[test]
    fn suites_have_unique_names() {
        let (k, f) = (Path::new("/k"), Path::new("/f"));
        for v in [ci(k, f), all(k, f)] {
            let names: BTreeSet<_> = v.iter().map(|c| c.name.clone()).collect();
            assert_eq!(names.len(), v.len());
        }
        assert_eq!(all(k, f).len(), 3 + 13 + 4);
    }
}
