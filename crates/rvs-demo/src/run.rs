//! One profile's run: the lab, the daemon, the servers, the client and the rollout.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rvs_control::client::{AdmBackend, Client};
use rvs_control::proto::{Request, Response};
use rvs_core::service::ServiceKey;
use rvs_core::snapshot::{ConnView, DestView, ServiceView};
use rvs_dataplane::lab::topo::{self, Topology, VIP4};
use serde::Serialize;

use crate::client::{Attempt, Line, now_us};
use crate::profiles::DemoProfile;

/// The service port.
pub const PORT: u16 = 80;

/// The timing and shape of a run (see [`Plan::full`] and [`Plan::quick`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Old real servers at the start (rs1..rsN); as many new ones replace them
    /// (rsN+1..rs2N).
    pub servers: usize,
    /// Traffic before the rollout starts, ms.
    pub warm_ms: u64,
    /// From adding a new server to setting the old one to weight 0 (the new pod becomes
    /// ready, the old one starts terminating), ms.
    pub surge_ms: u64,
    /// From weight 0 to stopping the old server's process (its termination grace), ms.
    pub grace_ms: u64,
    /// From the start of one replacement to the start of the next, ms.
    pub step_ms: u64,
    /// Traffic after the last replacement step, ms.
    pub tail_ms: u64,
    /// Period of the graceful-termination check (kube-proxy: 60 s), ms.
    pub check_ms: u64,
    /// Client `ip_local_port_range`, first port.
    pub port_lo: u16,
    /// Client `ip_local_port_range`, last port.
    pub port_hi: u16,
    /// Client workers.
    pub workers: usize,
    /// Start-to-start interval of one worker's connections, ms.
    pub interval_ms: u64,
    /// Client connect timeout, ms.
    pub connect_timeout_ms: u64,
}

impl Plan {
    /// The full demo: 3 old servers replaced one by one, ~21 s of traffic per profile.
    pub fn full() -> Plan {
        Plan {
            servers: 3,
            warm_ms: 3000,
            surge_ms: 500,
            grace_ms: 2000,
            step_ms: 4000,
            tail_ms: 6000,
            check_ms: 2000,
            port_lo: 40000,
            port_hi: 40031,
            workers: 8,
            interval_ms: 50,
            connect_timeout_ms: 2000,
        }
    }

    /// The short demo of the tests: 2 old servers, ~10 s of traffic per profile.
    pub fn quick() -> Plan {
        Plan {
            servers: 2,
            warm_ms: 2000,
            surge_ms: 300,
            grace_ms: 1500,
            step_ms: 2500,
            tail_ms: 3500,
            check_ms: 1000,
            ..Plan::full()
        }
    }

    /// Traffic duration, ms.
    pub fn traffic_ms(&self) -> u64 {
        self.warm_ms + self.servers as u64 * self.step_ms + self.tail_ms
    }

    /// Checks the plan is consistent (each step fits, at least one server).
    pub fn check(&self) -> Result<(), String> {
        if self.servers == 0 || self.servers > 8 {
            return Err("--servers must be 1..=8".into());
        }
        if self.surge_ms + self.grace_ms >= self.step_ms {
            return Err("a replacement step must be longer than surge + grace".into());
        }
        if self.port_lo > self.port_hi || self.port_lo < 1024 {
            return Err("the client port range must be within 1024..=65535".into());
        }
        Ok(())
    }
}

/// Why a run stopped early.
#[derive(Debug)]
pub enum DemoError {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Something failed (the message says what, with the log that explains it).
    Failed(String),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Interrupted => f.write_str("interrupted"),
            DemoError::Failed(m) => f.write_str(m),
        }
    }
}

fn failed(m: impl Into<String>) -> DemoError {
    DemoError::Failed(m.into())
}

/// What the run needs from its caller.
pub struct Ctx<'a> {
    /// The `rvs` binary (daemon, lab servers, client).
    pub bin: &'a Path,
    /// Set by Ctrl-C / SIGTERM.
    pub stop: &'a AtomicBool,
    /// Progress lines (stderr; a no-op with `--json`).
    pub progress: &'a dyn Fn(&str),
}

impl Ctx<'_> {
    fn check_stop(&self) -> Result<(), DemoError> {
        if self.stop.load(Ordering::SeqCst) {
            Err(DemoError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Sleeps until `t`, waking every 20 ms for the stop flag.
    fn sleep_until(&self, t: Instant) -> Result<(), DemoError> {
        loop {
            self.check_stop()?;
            let now = Instant::now();
            if now >= t {
                return Ok(());
            }
            std::thread::sleep((t - now).min(Duration::from_millis(20)));
        }
    }

    /// Polls `f` until it is true, for at most `limit`.
    fn wait_for(&self, limit: Duration, mut f: impl FnMut() -> bool) -> Result<bool, DemoError> {
        let end = Instant::now() + limit;
        loop {
            self.check_stop()?;
            if f() {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A real server of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerRecord {
    /// `rsN`.
    pub name: String,
    /// Its address.
    pub addr: String,
    /// `old` (there at the start) or `new` (added by the rollout).
    pub role: &'static str,
    /// When it was added to the service (µs since the epoch; the start for old servers).
    pub added_us: Option<u64>,
    /// When the daemon acknowledged its weight 0.
    pub weight0_us: Option<u64>,
    /// When its server process was confirmed stopped.
    pub stopped_us: Option<u64>,
    /// When the graceful-termination check deleted it.
    pub deleted_us: Option<u64>,
    /// ActiveConn, InActConn at the last check (or at deletion: 0, 0).
    pub last_conns: (u32, u32),
    /// TCP segments its kernel received after its process was stopped (`/proc/net/snmp`
    /// `Tcp: InSegs`, read in its namespace).
    pub segs_after_stop: Option<u64>,
    /// RSTs its kernel sent after its process was stopped (`Tcp: OutRsts`).
    pub rsts_after_stop: Option<u64>,
    /// The daemon's counters of it at the end (None once deleted).
    pub final_view: Option<DestView>,
    /// The daemon's connection entries still pointing to it at the end, by state (why it
    /// did not drain).
    pub entries_at_end: Vec<EntryGroup>,
}

/// Connection entries of one real server in one state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EntryGroup {
    /// IPVS state (`TIME_WAIT`, `CLOSE`, ...).
    pub state: String,
    /// Entries.
    pub count: u64,
    /// Their client ports.
    pub ports: Vec<u16>,
    /// The longest time one of them still has before it expires, ms.
    pub max_expires_ms: u64,
}

/// Groups the entries pointing to `addr` by state.
pub fn entry_groups(conns: &[ConnView], addr: IpAddr) -> Vec<EntryGroup> {
    let mut m: std::collections::BTreeMap<&str, EntryGroup> = Default::default();
    for c in conns.iter().filter(|c| c.daddr == addr && !c.template) {
        let g = m.entry(c.state.as_str()).or_insert_with(|| EntryGroup {
            state: c.state.clone(),
            ..Default::default()
        });
        g.count += 1;
        g.ports.push(c.cport);
        g.max_expires_ms = g.max_expires_ms.max(c.expires_ms);
    }
    m.into_values()
        .map(|mut g| {
            g.ports.sort_unstable();
            g
        })
        .collect()
}

/// Everything one profile's run produced (raw, for [`crate::report`]).
#[derive(Debug)]
pub struct ProfileRun {
    /// Start of traffic, µs since the epoch.
    pub t0_us: u64,
    /// End of the rollout's last step (weight 0 and stop of the last old server), µs.
    pub rollout_end_us: u64,
    /// Start of the rollout (first new server added), µs.
    pub rollout_start_us: u64,
    /// Every attempt.
    pub attempts: Vec<Attempt>,
    /// EADDRNOTAVAIL retries.
    pub port_busy: u64,
    /// The real servers.
    pub servers: Vec<ServerRecord>,
    /// The daemon's ICMP-unreachable answers for "no real server available" (a refusal that
    /// did not come from a real server; expected 0).
    pub no_dest_unreachable: u64,
    /// Setup time, ms.
    pub setup_ms: u64,
    /// Wall time of the whole profile, ms (set by the caller after cleanup).
    pub wall_ms: u64,
    /// The namespaces the run created (all gone afterwards).
    pub namespaces: Vec<String>,
    /// The pids of the processes the run started.
    pub pids: Vec<u32>,
}

/// A connection to the daemon's admin socket for `rvs adm` commands and listings.
struct Daemon {
    sock: PathBuf,
    adm: AdmBackend,
    query: Client,
}

impl Daemon {
    fn connect(sock: &Path) -> Result<Daemon, String> {
        let adm = AdmBackend::new(Client::connect(sock).map_err(|e| e.to_string())?);
        let query = Client::connect(sock).map_err(|e| e.to_string())?;
        Ok(Daemon {
            sock: sock.into(),
            adm,
            query,
        })
    }

    /// `rvs adm ARGS` through the socket, as an operator or kube-proxy would run it.
    fn adm(&mut self, args: &[&str]) -> Result<(), DemoError> {
        let mut argv = vec!["rvs adm".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let names = rvs_adm::resolve::StaticResolver::empty();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = rvs_adm::run_with(
            &argv,
            &mut self.adm,
            &names,
            &mut std::io::empty(),
            &mut out,
            &mut err,
        );
        if let Some(e) = self.adm.error.take() {
            return Err(failed(format!("rvs adm {}: {e}", args.join(" "))));
        }
        if code != 0 {
            return Err(failed(format!(
                "rvs adm {} failed ({code}): {}",
                args.join(" "),
                String::from_utf8_lossy(&err).trim()
            )));
        }
        Ok(())
    }

    fn service(&mut self) -> Result<ServiceView, DemoError> {
        let key = ServiceKey::Addr {
            proto: rvs_core::service::Protocol::Tcp,
            addr: VIP4.parse().map_err(|_| failed("VIP"))?,
            port: PORT,
        };
        match self.query.call(&Request::Services) {
            Ok(Response::Services(v)) => v
                .into_iter()
                .find(|s| s.key == key)
                .ok_or_else(|| failed("the demo's service is gone from the daemon")),
            Ok(other) => Err(failed(format!(
                "unexpected answer from the daemon at {}: {other:?}",
                self.sock.display()
            ))),
            Err(e) => Err(failed(e.to_string())),
        }
    }

    fn conns(&mut self) -> Vec<ConnView> {
        match self.query.call(&Request::Conns) {
            Ok(Response::Conns(v)) => v,
            _ => Vec::new(),
        }
    }

    fn no_dest_unreachable(&mut self) -> u64 {
        match self.query.call(&Request::State) {
            Ok(Response::State(s)) => s.counters.no_dest_unreachable,
            _ => 0,
        }
    }
}

fn config_text(p: &DemoProfile, sock: &Path) -> String {
    let mut s = format!(
        "# rvs demo: profile {} ({})\n[engine]\nprofile = \"{}\"\nconn_max = 65536\nnetfilter_conntrack = {}\n\n[sysctl]\n",
        p.name,
        p.about,
        p.engine.name(),
        p.netfilter_conntrack
    );
    for (k, v) in p.sysctls {
        s += &format!("{k} = {v}\n");
    }
    s += &format!(
        "\n[dataplane]\nadmin_socket = \"{}\"\nhttp_listen = \"\"\ntun_addrs = [\"10.255.255.1/24\", \"fd72:7673::1/64\"]\n",
        sock.display()
    );
    s
}

/// `Tcp: InSegs` and `OutRsts` of a namespace's kernel.
fn tcp_snmp(t: &Topology, ns: &str) -> Option<(u64, u64)> {
    let o = t
        .lab
        .exec_timeout(ns, &["cat", "/proc/net/snmp"], Duration::from_secs(3))
        .ok()?;
    parse_snmp(&String::from_utf8_lossy(&o.stdout))
}

/// Parses `InSegs` and `OutRsts` from the text of `/proc/net/snmp`.
pub fn parse_snmp(text: &str) -> Option<(u64, u64)> {
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let head: Vec<&str> = tcp.next()?.split_whitespace().collect();
    let vals: Vec<&str> = tcp.next()?.split_whitespace().collect();
    let get = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.parse().ok())
    };
    Some((get("InSegs")?, get("OutRsts")?))
}

/// What the rollout does, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// Start new server `i` (index into the servers) and add it with weight 1.
    Add(usize),
    /// Set old server `i` to weight 0 and hand it to the graceful-termination check.
    Weight0(usize),
    /// Stop old server `i`'s process.
    Stop(usize),
}

fn schedule(plan: &Plan) -> Vec<(u64, Action)> {
    let mut v = Vec::new();
    for k in 0..plan.servers {
        let at = plan.warm_ms + k as u64 * plan.step_ms;
        v.push((at, Action::Add(plan.servers + k)));
        v.push((at + plan.surge_ms, Action::Weight0(k)));
        v.push((at + plan.surge_ms + plan.grace_ms, Action::Stop(k)));
    }
    v
}

/// Runs one profile in a fresh lab; the lab (namespaces, processes) is removed when this
/// returns, also on error. `label` prefixes the progress lines.
pub fn run_profile(
    p: &DemoProfile,
    plan: &Plan,
    ctx: &Ctx,
    label: &str,
) -> Result<ProfileRun, DemoError> {
    let t_setup = Instant::now();
    let n = plan.servers;
    let mut t = Topology::new("demo", 2 * n).map_err(|e| failed(format!("lab: {e}")))?;
    let mut namespaces = vec![t.client.clone(), t.lb.clone()];
    namespaces.extend(t.rs.iter().cloned());
    let bin = ctx.bin.to_string_lossy().to_string();
    // The result is built while the lab exists; the lab is dropped (cleaned) on every return.
    let r = (|| -> Result<ProfileRun, DemoError> {
        ctx.check_stop()?;
        let lab_err = |e: std::io::Error| failed(format!("lab: {e}"));
        t.lab
            .sysctl(
                &t.client,
                "net.ipv4.ip_local_port_range",
                &format!("{} {}", plan.port_lo, plan.port_hi),
            )
            .map_err(lab_err)?;
        t.lab
            .sysctl(&t.client, "net.ipv4.tcp_tw_reuse", "1")
            .map_err(lab_err)?;
        let sock = t.lab.dir().join("rvs.sock");
        let cfg = t.lab.dir().join("rvs.toml");
        std::fs::write(&cfg, config_text(p, &sock)).map_err(|e| failed(e.to_string()))?;
        let lb = t.lb.clone();
        let c = cfg.to_string_lossy().to_string();
        let mut pids = vec![
            t.lab
                .spawn(
                    &lb,
                    "daemon",
                    &[&bin, "daemon", "--config", &c],
                    &[("RUST_LOG", "warn")],
                )
                .map_err(lab_err)?,
        ];
        let mut servers: Vec<ServerRecord> = (1..=2 * n)
            .map(|i| ServerRecord {
                name: format!("rs{i}"),
                addr: topo::rs4(i),
                role: if i <= n { "old" } else { "new" },
                ..Default::default()
            })
            .collect();
        // Old servers start with the lab.
        for i in 0..n {
            pids.push(start_server(&mut t, ctx, &bin, i)?);
        }
        let ready = ctx.wait_for(Duration::from_secs(15), || {
            Client::connect(&sock)
                .ok()
                .is_some_and(|mut c| c.call(&Request::Info).is_ok())
        })?;
        let mut daemon = match ready.then(|| Daemon::connect(&sock)) {
            Some(Ok(d)) => d,
            _ => {
                return Err(failed(format!(
                    "the rvs daemon did not start; its log:\n{}",
                    t.lab.log("daemon")
                )));
            }
        };
        let vip = format!("{VIP4}:{PORT}");
        daemon.adm(&["-A", "-t", &vip, "-s", "rr"])?;
        let now = now_us();
        for s in servers.iter_mut().take(n) {
            let rs = format!("{}:{PORT}", s.addr);
            daemon.adm(&["-a", "-t", &vip, "-r", &rs, "-m", "-w", "1"])?;
            s.added_us = Some(now);
        }
        let setup_ms = t_setup.elapsed().as_millis() as u64;
        (ctx.progress)(&format!(
            "{label}: lab ready in {:.1} s ({} namespaces, rvs daemon pid {}, old servers: {})",
            setup_ms as f64 / 1000.0,
            2 * n + 2,
            pids[0],
            (1..=n)
                .map(|i| format!("rs{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));

        // Traffic.
        let client_ns = t.client.clone();
        let args = [
            bin.clone(),
            "lab".into(),
            "client".into(),
            "--target".into(),
            vip.clone(),
            "--workers".into(),
            plan.workers.to_string(),
            "--interval-ms".into(),
            plan.interval_ms.to_string(),
            "--connect-timeout-ms".into(),
            plan.connect_timeout_ms.to_string(),
            "--duration-ms".into(),
            plan.traffic_ms().to_string(),
        ];
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        pids.push(
            t.lab
                .spawn(&client_ns, "client", &argv, &[])
                .map_err(lab_err)?,
        );
        let start = Instant::now();
        let t0_us = now_us();
        (ctx.progress)(&format!(
            "{label}: traffic: {} workers, a connection every {} ms each, client ports {}-{}, tcp_tw_reuse=1; warm-up {:.1} s",
            plan.workers,
            plan.interval_ms,
            plan.port_lo,
            plan.port_hi,
            plan.warm_ms as f64 / 1000.0
        ));

        let sched = schedule(plan);
        let mut next_action = 0;
        let mut pending: Vec<usize> = Vec::new(); // weight 0, not yet deleted
        let check = Duration::from_millis(plan.check_ms);
        let mut next_check: Option<Instant> = None;
        let end = start + Duration::from_millis(plan.traffic_ms());
        let mut snmp_at_stop: Vec<Option<(u64, u64)>> = vec![None; 2 * n];
        let mut rollout_start_us = 0;
        let mut rollout_end_us = 0;
        // Bounded: every turn sleeps until the next due action, check or the end.
        while Instant::now() < end {
            ctx.check_stop()?;
            let now = Instant::now();
            while next_action < sched.len()
                && start + Duration::from_millis(sched[next_action].0) <= now
            {
                let (_, a) = sched[next_action];
                next_action += 1;
                match a {
                    Action::Add(i) => {
                        pids.push(start_server(&mut t, ctx, &bin, i)?);
                        let rs = format!("{}:{PORT}", servers[i].addr);
                        daemon.adm(&["-a", "-t", &vip, "-r", &rs, "-m", "-w", "1"])?;
                        servers[i].added_us = Some(now_us());
                        if rollout_start_us == 0 {
                            rollout_start_us = now_us();
                        }
                    }
                    Action::Weight0(i) => {
                        let rs = format!("{}:{PORT}", servers[i].addr);
                        daemon.adm(&["-e", "-t", &vip, "-r", &rs, "-m", "-w", "0"])?;
                        servers[i].weight0_us = Some(now_us());
                        pending.push(i);
                        next_check.get_or_insert(Instant::now() + check);
                    }
                    Action::Stop(i) => {
                        let label_i = servers[i].name.clone();
                        let _ = t.lab.signal(&label_i, "KILL");
                        t.lab.stop(&label_i, Duration::from_secs(2));
                        servers[i].stopped_us = Some(now_us());
                        snmp_at_stop[i] = tcp_snmp(&t, &t.rs[i]);
                        rollout_end_us = now_us();
                        let s = &servers[i];
                        let new = &servers[n + i];
                        let rel = |us: Option<u64>| {
                            us.map_or(0.0, |u| u.saturating_sub(t0_us) as f64 / 1e6)
                        };
                        (ctx.progress)(&format!(
                            "{label}: step {}/{n}: {} added (+{:.1} s), {} weight 0 (+{:.1} s), {} stopped (+{:.1} s)",
                            i + 1,
                            new.name,
                            rel(new.added_us),
                            s.name,
                            rel(s.weight0_us),
                            s.name,
                            rel(s.stopped_us),
                        ));
                        if i + 1 == n {
                            (ctx.progress)(&format!(
                                "{label}: rollout done; {:.1} s more traffic, graceful-termination check every {:.1} s",
                                end.saturating_duration_since(Instant::now()).as_secs_f64(),
                                plan.check_ms as f64 / 1000.0
                            ));
                        }
                    }
                }
            }
            if next_check.is_some_and(|c| c <= Instant::now()) {
                graceful_check(&mut daemon, &vip, &mut servers, &mut pending)?;
                next_check = Some(Instant::now() + check);
            }
            let mut wake = end;
            if let Some(&(ms, _)) = sched.get(next_action) {
                wake = wake.min(start + Duration::from_millis(ms));
            }
            if let Some(c) = next_check {
                wake = wake.min(c);
            }
            ctx.sleep_until(wake)?;
        }
        // A last check at the end of traffic (the deadline of the drain).
        graceful_check(&mut daemon, &vip, &mut servers, &mut pending)?;

        // The client ends on its own; wait for its last attempts (bounded).
        let limit = Duration::from_millis(plan.connect_timeout_ms * 2 + 3000);
        let done = ctx.wait_for(limit, || t.lab.log("client").contains("\"type\":\"end\""))?;
        let log = t.lab.log("client");
        if !done {
            return Err(failed(format!(
                "the client did not finish in time; its output ends with:\n{}",
                tail(&log, 5)
            )));
        }
        let (attempts, port_busy) = parse_client(&log)?;

        // The stopped servers' kernels: what reached them after the stop.
        for i in 0..n {
            if let (Some((seg0, rst0)), Some((seg1, rst1))) =
                (snmp_at_stop[i], tcp_snmp(&t, &t.rs[i]))
            {
                servers[i].segs_after_stop = Some(seg1.saturating_sub(seg0));
                servers[i].rsts_after_stop = Some(rst1.saturating_sub(rst0));
            }
        }
        let svc = daemon.service()?;
        for s in servers.iter_mut() {
            s.final_view = svc
                .dests
                .iter()
                .find(|d| d.addr.to_string() == s.addr)
                .cloned();
        }
        let conns = daemon.conns();
        for s in servers
            .iter_mut()
            .filter(|s| s.weight0_us.is_some() && s.deleted_us.is_none())
        {
            if let Ok(a) = s.addr.parse() {
                s.entries_at_end = entry_groups(&conns, a);
            }
        }
        let no_dest_unreachable = daemon.no_dest_unreachable();
        Ok(ProfileRun {
            t0_us,
            rollout_start_us,
            rollout_end_us,
            attempts,
            port_busy,
            servers,
            no_dest_unreachable,
            setup_ms,
            wall_ms: 0,
            namespaces: namespaces.clone(),
            pids,
        })
    })();
    drop(t);
    cleanup_check(
        &namespaces,
        r.as_ref().map(|r| r.pids.as_slice()).unwrap_or(&[]),
    )?;
    r
}

fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// Parses the client's output: attempts and EADDRNOTAVAIL retries.
pub fn parse_client(log: &str) -> Result<(Vec<Attempt>, u64), DemoError> {
    let mut attempts = Vec::new();
    let mut busy = 0;
    for l in log.lines().filter(|l| l.starts_with('{')) {
        match serde_json::from_str::<Line>(l) {
            Ok(Line::Attempt(a)) => attempts.push(a),
            Ok(Line::End { port_busy, .. }) => busy = port_busy,
            Err(e) => return Err(failed(format!("client output: {e}: {l}"))),
        }
    }
    Ok((attempts, busy))
}

/// Starts `rvs lab serve` for server `i` (0-based) and waits until it listens.
fn start_server(t: &mut Topology, ctx: &Ctx, bin: &str, i: usize) -> Result<u32, DemoError> {
    let name = format!("rs{}", i + 1);
    let ns = t.rs[i].clone();
    let pid = t
        .lab
        .spawn(
            &ns,
            &name,
            &[
                bin,
                "lab",
                "serve",
                "--name",
                &name,
                "--port",
                &PORT.to_string(),
                "--max-seconds",
                "600",
            ],
            &[],
        )
        .map_err(|e| failed(format!("lab: {e}")))?;
    if !ctx.wait_for(Duration::from_secs(5), || {
        t.lab.log(&name).contains("serving")
    })? {
        return Err(failed(format!(
            "server {name} did not start: {}",
            t.lab.log(&name)
        )));
    }
    Ok(pid)
}

/// kube-proxy's graceful termination (`pkg/proxy/ipvs/graceful_termination.go`), with a shorter
/// period: every weight-0 TCP real server is deleted once its ActiveConn + InActConn is 0.
fn graceful_check(
    d: &mut Daemon,
    vip: &str,
    servers: &mut [ServerRecord],
    pending: &mut Vec<usize>,
) -> Result<(), DemoError> {
    if pending.is_empty() {
        return Ok(());
    }
    let svc = d.service()?;
    let mut still = Vec::new();
    for &i in pending.iter() {
        let addr: IpAddr = servers[i].addr.parse().map_err(|_| failed("address"))?;
        let Some(v) = svc.dests.iter().find(|v| v.addr == addr) else {
            continue;
        };
        servers[i].last_conns = (v.activeconns, v.inactconns);
        if v.activeconns + v.inactconns == 0 {
            let rs = format!("{}:{PORT}", servers[i].addr);
            d.adm(&["-d", "-t", vip, "-r", &rs])?;
            servers[i].deleted_us = Some(now_us());
        } else {
            still.push(i);
        }
    }
    *pending = still;
    Ok(())
}

/// After the lab is dropped: no namespace of the run is left (a second Ctrl-C can kill an
/// `ip netns del` of the lab's cleanup; delete what is left, in a process group of its own so
/// the terminal's signals cannot interrupt it) and no process it started still runs.
fn cleanup_check(namespaces: &[String], pids: &[u32]) -> Result<(), DemoError> {
    let left = netns_left(namespaces);
    for ns in &left {
        delete_netns(ns);
    }
    let left = netns_left(namespaces);
    let running: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| Path::new(&format!("/proc/{p}")).exists() && !is_zombie(*p))
        .collect();
    if !left.is_empty() || !running.is_empty() {
        return Err(failed(format!(
            "cleanup incomplete: namespaces left {left:?}, processes running {running:?}"
        )));
    }
    Ok(())
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Namespaces of `names` that still exist.
pub fn netns_left(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| Path::new("/var/run/netns").join(n).exists())
        .cloned()
        .collect()
}

/// `ip netns del NS` in a process group of its own (bounded).
pub fn delete_netns(ns: &str) {
    use std::os::unix::process::CommandExt;
    if let Ok(child) = Command::new("ip")
        .args(["netns", "del", ns])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        let _ = rvs_dataplane::lab::wait_output(child, Duration::from_secs(5));
    }
}

/// Removes what a demo killed with SIGKILL left: namespaces `rvsdemo<PID>x<N>-*` whose PID is
/// not running (their processes are killed first) and their lab directories. Returns how
/// many namespaces were removed.
pub fn remove_stale() -> usize {
    let Ok(o) = Command::new("ip")
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
    else {
        return 0;
    };
    let mut removed = 0;
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let ns = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = demo_pid(ns) else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(p) = Command::new("ip")
            .args(["netns", "pids", ns])
            .stdin(Stdio::null())
            .output()
        {
            for p in String::from_utf8_lossy(&p.stdout).split_whitespace() {
                if let Ok(p) = p.parse::<u32>() {
                    let _ = Command::new("kill")
                        .args(["-KILL", &p.to_string()])
                        .stdin(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        delete_netns(ns);
        if let Some((prefix, _)) = ns.split_once('-') {
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(prefix));
        }
        removed += 1;
    }
    removed
}

/// The demo pid in a namespace name `rvsdemo<PID>x<N>-<name>`.
pub fn demo_pid(ns: &str) -> Option<u32> {
    let rest = ns.strip_prefix("rvsdemo")?;
    let (pid, rest) = rest.split_once('x')?;
    let (n, _) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Writes a line to stderr (progress).
pub fn eprint_line(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{s}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_tcp_counters_are_read_by_name() {
        let t = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\nTcp: 1 200 120000 -1 0 5 0 0 0 42 40 0 0 7 0\n";
        assert_eq!(parse_snmp(t), Some((42, 7)));
        assert_eq!(parse_snmp("Ip: 1\n"), None);
    }

    #[test]
    fn the_schedule_replaces_each_old_server_in_turn() {
        let p = Plan::full();
        let s = schedule(&p);
        assert_eq!(s.len(), 3 * p.servers);
        assert_eq!(s[0], (p.warm_ms, Action::Add(3)));
        assert_eq!(s[1], (p.warm_ms + p.surge_ms, Action::Weight0(0)));
        assert_eq!(s[2], (p.warm_ms + p.surge_ms + p.grace_ms, Action::Stop(0)));
        assert!(s.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(s.last().unwrap().0 < p.traffic_ms());
        p.check().unwrap();
        Plan::quick().check().unwrap();
    }

    #[test]
    fn demo_namespaces_name_their_pid() {
        assert_eq!(demo_pid("rvsdemo1234x0-lb"), Some(1234));
        assert_eq!(demo_pid("rvsdemo1234x10-rs3"), Some(1234));
        assert_eq!(demo_pid("rvsn41234x0-lb"), None);
        assert_eq!(demo_pid("rvsdemox-lb"), None);
    }

    #[test]
    fn the_config_has_the_profile_and_its_sysctls() {
        let p = crate::profiles::select("linux-4.19/reuse1").unwrap()[0];
        let dir = std::env::temp_dir().join(format!("rvs-demo-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("rvs.toml");
        std::fs::write(&f, config_text(p, &dir.join("s.sock"))).unwrap();
        let c = rvs_control::Config::load(&f).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(c.engine.profile, rvs_core::profile::Profile::Linux4_19);
        assert!(c.engine.netfilter_conntrack);
        assert_eq!(c.sysctls.get("conn_reuse_mode").as_deref(), Some("1"));
        assert_eq!(c.sysctls.get("conntrack").as_deref(), Some("1"));
        assert!(c.dataplane.http_listen.is_none());
    }
}
