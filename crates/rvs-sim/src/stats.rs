//! What a run measures, and the result structures the reports and `--json` print.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::hist::{Hist, LatencySummary};

/// How one connection attempt (TCP) or query (UDP) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Connected (TCP) or answered (UDP).
    Ok,
    /// RST, or ICMP port unreachable (ECONNREFUSED).
    Refused,
    /// The application's connect timeout, the kernel's SYN retries, or the resolver's tries.
    Timeout,
    /// ICMP host unreachable (EHOSTUNREACH).
    Unreachable,
}

/// Counters of one window (the whole run, a phase).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Attempts that ended (by their start time).
    pub attempted: u64,
    /// Successes.
    pub ok: u64,
    /// Refused.
    pub refused: u64,
    /// Timed out.
    pub timeout: u64,
    /// Unreachable.
    pub unreach: u64,
    /// Successes that took 1 s or more.
    pub slow: u64,
    /// Attempts with a packet the balancer sent to a real server it had at weight 0.
    pub to_draining: u64,
    /// Attempts with a packet sent to a pod that no longer accepts (listener closed, or gone).
    pub to_gone: u64,
    /// Packets sent to a draining or gone server (the VM's "pkts to rs2").
    pub pkts_to_draining: u64,
    /// No free local port (retried 20 ms later; not an attempt).
    pub eaddrnotavail: u64,
    /// Established connections cut by a reset (not connect failures).
    pub resets: u64,
    /// Latency of successes, µs.
    pub lat_ok: Hist<6>,
    /// Latency of every attempt (a failure counts its time to fail), µs.
    pub lat_all: Hist<6>,
}

impl Counters {
    /// Failures.
    pub fn failed(&self) -> u64 {
        self.refused + self.timeout + self.unreach
    }

    fn record(&mut self, o: Outcome, lat_us: u64, draining: bool, gone: bool) {
        self.attempted += 1;
        match o {
            Outcome::Ok => {
                self.ok += 1;
                self.lat_ok.record(lat_us);
                if lat_us >= 1_000_000 {
                    self.slow += 1;
                }
            }
            Outcome::Refused => self.refused += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::Unreachable => self.unreach += 1,
        }
        self.lat_all.record(lat_us);
        self.to_draining += draining as u64;
        self.to_gone += gone as u64;
    }

    /// The serializable summary.
    pub fn out(&self) -> CountersOut {
        CountersOut {
            attempted: self.attempted,
            ok: self.ok,
            failed: self.failed(),
            refused: self.refused,
            timeout: self.timeout,
            unreach: self.unreach,
            slow: self.slow,
            to_draining: self.to_draining,
            to_gone: self.to_gone,
            pkts_to_draining: self.pkts_to_draining,
            eaddrnotavail: self.eaddrnotavail,
            resets: self.resets,
            connect_ok: self.lat_ok.summary_ms(),
            connect_all: self.lat_all.summary_ms(),
        }
    }
}

/// One time bin.
#[derive(Clone, Debug, Default)]
pub struct Bin {
    /// Attempts started in the bin.
    pub attempted: u64,
    /// Of which failed.
    pub failed: u64,
    /// Of which took ≥ 1 s to succeed.
    pub slow: u64,
    /// Success latency, µs (coarse).
    pub lat: Hist<3>,
}

/// Per client port counters of one window (kept for the first client host when its range has
/// at most [`PORT_TABLE_MAX`] ports: the kernel VM's "by client port" view).
#[derive(Clone, Debug, Default)]
pub struct PortCounts {
    /// Attempts.
    pub attempted: u64,
    /// Successes.
    pub ok: u64,
    /// Refused.
    pub refused: u64,
    /// Timed out.
    pub timeout: u64,
    /// Unreachable.
    pub unreach: u64,
    /// Successes per server (pod index).
    pub served: Vec<(u32, u64)>,
}

impl PortCounts {
    fn record(&mut self, o: Outcome, server: Option<u32>) {
        self.attempted += 1;
        match o {
            Outcome::Ok => {
                self.ok += 1;
                if let Some(pod) = server {
                    match self.served.iter_mut().find(|(p, _)| *p == pod) {
                        Some(e) => e.1 += 1,
                        None => {
                            self.served.push((pod, 1));
                            self.served.sort_unstable();
                        }
                    }
                }
            }
            Outcome::Refused => self.refused += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::Unreachable => self.unreach += 1,
        }
    }
}

/// Largest port range that gets a per-port table.
pub const PORT_TABLE_MAX: u32 = 64;

/// Everything measured for one protocol.
#[derive(Clone, Debug, Default)]
pub struct ProtoStats {
    /// The whole run.
    pub total: Counters,
    /// Per phase, in scenario order.
    pub phases: Vec<Counters>,
    /// Per time bin.
    pub bins: Vec<Bin>,
    /// Phase windows (ns).
    pub windows: Vec<(u64, u64)>,
    /// Bin width (ns).
    pub bin_ns: u64,
    /// Per port, per window (the whole run first, then the phases), for the first host.
    pub ports: Option<(u16, Vec<Vec<PortCounts>>)>,
}

impl ProtoStats {
    /// Empty statistics for these phase windows and bins.
    pub fn new(windows: Vec<(u64, u64)>, bin_ns: u64, duration_ns: u64) -> Self {
        let nbins = duration_ns.div_ceil(bin_ns).max(1) as usize;
        ProtoStats {
            total: Counters::default(),
            phases: vec![Counters::default(); windows.len()],
            bins: vec![Bin::default(); nbins],
            windows,
            bin_ns,
            ports: None,
        }
    }

    /// Keeps per-port counters of the first host (`lo`: its first port; `n` ports).
    pub fn track_ports(&mut self, lo: u16, n: u32) {
        let w = self.windows.len() + 1;
        self.ports = Some((lo, vec![vec![PortCounts::default(); n as usize]; w]));
    }

    /// Records the per-port outcome of the first host.
    #[inline]
    pub fn record_port(&mut self, start: u64, port: u32, o: Outcome, server: Option<u32>) {
        let Some((_, tabs)) = &mut self.ports else {
            return;
        };
        tabs[0][port as usize].record(o, server);
        for (i, &(a, b)) in self.windows.iter().enumerate() {
            if start >= a && start < b {
                tabs[i + 1][port as usize].record(o, server);
            }
        }
    }

    /// Records an ended attempt that started at `start`.
    #[inline]
    pub fn record(&mut self, start: u64, o: Outcome, lat_us: u64, draining: bool, gone: bool) {
        self.total.record(o, lat_us, draining, gone);
        for (i, &(a, b)) in self.windows.iter().enumerate() {
            if start >= a && start < b {
                self.phases[i].record(o, lat_us, draining, gone);
            }
        }
        let bi = ((start / self.bin_ns) as usize).min(self.bins.len() - 1);
        let bin = &mut self.bins[bi];
        bin.attempted += 1;
        match o {
            Outcome::Ok => {
                bin.lat.record(lat_us);
                if lat_us >= 1_000_000 {
                    bin.slow += 1;
                }
            }
            _ => bin.failed += 1,
        }
    }

    /// Counts something that is not an attempt, at time `at`.
    #[inline]
    pub fn count(&mut self, at: u64, f: impl Fn(&mut Counters)) {
        f(&mut self.total);
        for (i, &(a, b)) in self.windows.iter().enumerate() {
            if at >= a && at < b {
                f(&mut self.phases[i]);
            }
        }
    }

    /// The serializable summary (`server_name` names a pod).
    pub fn out(&self, phase_names: &[String], server_name: &dyn Fn(u32) -> String) -> ProtoResult {
        let ports = self.ports.as_ref().map(|(lo, tabs)| {
            let names = std::iter::once("all".to_string()).chain(phase_names.iter().cloned());
            names
                .zip(tabs)
                .map(|(name, rows)| PortTable {
                    window: name,
                    rows: rows
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.attempted > 0)
                        .map(|(i, c)| PortRow {
                            port: lo + i as u16,
                            attempted: c.attempted,
                            ok: c.ok,
                            refused: c.refused,
                            timeout: c.timeout,
                            unreach: c.unreach,
                            served_by: c
                                .served
                                .iter()
                                .map(|(p, n)| (server_name(*p), *n))
                                .collect(),
                        })
                        .collect(),
                })
                .collect()
        });
        ProtoResult {
            ports,
            total: self.total.out(),
            phases: phase_names
                .iter()
                .zip(&self.phases)
                .map(|(n, c)| PhaseResult {
                    name: n.clone(),
                    counters: c.out(),
                })
                .collect(),
            timeline: Timeline {
                bin_s: self.bin_ns as f64 / 1e9,
                attempted: self.bins.iter().map(|b| b.attempted).collect(),
                failed: self.bins.iter().map(|b| b.failed).collect(),
                slow: self.bins.iter().map(|b| b.slow).collect(),
                p99_ms: self
                    .bins
                    .iter()
                    .map(|b| b.lat.quantile(0.99).map(|v| v as f64 / 1000.0))
                    .collect(),
            },
        }
    }
}

/// Serializable counters of a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CountersOut {
    /// Attempts (connections or queries) started in the window that ended.
    pub attempted: u64,
    /// Successes.
    pub ok: u64,
    /// refused + timeout + unreach.
    pub failed: u64,
    /// RST or ICMP port unreachable.
    pub refused: u64,
    /// Timed out.
    pub timeout: u64,
    /// ICMP host unreachable.
    pub unreach: u64,
    /// Successes that took ≥ 1 s.
    pub slow: u64,
    /// Attempts with a packet sent to a weight-0 real server.
    pub to_draining: u64,
    /// Attempts with a packet sent to a pod that no longer accepts.
    pub to_gone: u64,
    /// Packets sent to draining or gone servers.
    pub pkts_to_draining: u64,
    /// Local port exhaustion (retried after 20 ms).
    pub eaddrnotavail: u64,
    /// Established connections reset.
    pub resets: u64,
    /// Latency of successes.
    pub connect_ok: LatencySummary,
    /// Latency of all attempts (failures: time to fail).
    pub connect_all: LatencySummary,
}

/// A phase's counters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseResult {
    /// Phase name.
    pub name: String,
    /// Counters.
    #[serde(flatten)]
    pub counters: CountersOut,
}

/// Time series (by attempt start).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// Bin width in seconds.
    pub bin_s: f64,
    /// Attempts per bin.
    pub attempted: Vec<u64>,
    /// Failures per bin.
    pub failed: Vec<u64>,
    /// Slow successes per bin.
    pub slow: Vec<u64>,
    /// p99 success latency per bin (coarse, ±12 %).
    pub p99_ms: Vec<Option<f64>>,
}

/// One client port's counters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortRow {
    /// The local port.
    pub port: u16,
    /// Attempts from it.
    pub attempted: u64,
    /// Successes.
    pub ok: u64,
    /// Refused.
    pub refused: u64,
    /// Timed out.
    pub timeout: u64,
    /// Unreachable.
    pub unreach: u64,
    /// Successes per server address.
    pub served_by: BTreeMap<String, u64>,
}

/// The per-port view of one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortTable {
    /// `all` or the phase name.
    pub window: String,
    /// Ports used in it.
    pub rows: Vec<PortRow>,
}

/// One protocol's results.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProtoResult {
    /// Per client port, for the first host of a range of at most 64 ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortTable>>,
    /// Whole run.
    pub total: CountersOut,
    /// Per phase.
    pub phases: Vec<PhaseResult>,
    /// Time series.
    pub timeline: Timeline,
}

/// One real server's drain: from weight 0 (or deletion) to deletion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Drain {
    /// Real server address.
    pub server: String,
    /// `tcp` or `udp` service.
    pub service: &'static str,
    /// Virtual time the weight went to 0.
    pub start_s: f64,
    /// Virtual time it was deleted (`None`: still listed at the end).
    pub end_s: Option<f64>,
    /// Its (ActiveConn, InActConn) at the end, if still listed.
    pub counts_at_end: Option<(u32, u32)>,
}

/// Longest drain of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrainSummary {
    /// The longest finished drain, seconds.
    pub longest_finished_s: Option<f64>,
    /// Drains still running at the end (the #81775 signature when their server is gone).
    pub unfinished: usize,
    /// Age of the oldest unfinished drain at the end, seconds.
    pub oldest_unfinished_s: Option<f64>,
}

impl DrainSummary {
    /// "never" when a drain did not finish, else the longest, else "-".
    pub fn text(&self) -> String {
        if self.unfinished > 0 {
            "never".into()
        } else if let Some(s) = self.longest_finished_s {
            format!("{s:.0}s")
        } else {
            "-".into()
        }
    }
}

/// Engine-side facts of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EngineFacts {
    /// Connections created (scheduling decisions).
    pub conns_created: u64,
    /// New-connection packets rescheduled on an old entry.
    pub reuse_rescheduled: u64,
    /// Packets rescheduled because their server was removed.
    pub nodest_rescheduled: u64,
    /// Drops by reason (non-zero only).
    pub drops: BTreeMap<String, u64>,
    /// Packets the engine sent on its own (resets towards removed servers).
    pub synthesized: u64,
}

/// The result of one run (one profile, one variant).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunResult {
    /// Profile row label.
    pub profile: String,
    /// Variant label.
    pub variant: Option<String>,
    /// TCP clients' results.
    pub tcp: Option<ProtoResult>,
    /// UDP clients' results.
    pub udp: Option<ProtoResult>,
    /// Every drain.
    pub drains: Vec<Drain>,
    /// Longest drain.
    pub longest_drain: DrainSummary,
    /// Engine facts.
    pub engine: EngineFacts,
    /// Attempts still in progress when the run ended (not counted above).
    pub unfinished_attempts: u64,
    /// Events processed.
    pub events: u64,
}
