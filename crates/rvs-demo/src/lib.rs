//! # rvs demo: the rolling-update incident, and its fix, with real packets
//!
//! `rvs demo` (as root) shows the Kubernetes rolling-update incident — clients that reuse
//! source ports while the balancer still remembers them, and real servers that are draining
//! or gone — with real kernel TCP stacks on both ends and the rvs data plane in between, once
//! per profile, and prints what the clients saw.
//!
//! ```text
//! sudo rvs demo                          # the four default rows, ~2 minutes
//! sudo rvs demo --profile linux-4.19     # both 4.19 rows
//! sudo rvs demo --quick --json           # the short run of the tests, as JSON
//! ```
//!
//! ## What one row does
//!
//! 1. **Lab.** Fresh network namespaces ([`rvs_dataplane::lab::topo::Topology`]): a client,
//!    a balancer running `rvs daemon` (TUN data plane) with the profile's engine, sysctls and
//!    `netfilter_conntrack`, and 2N server namespaces: N old real servers (`rvs lab serve`)
//!    and N spare ones for the new servers. The service, `10.0.0.100:80`, `rr`, NAT, is
//!    created through the daemon's admin socket with ipvsadm commands (`-A`, `-a`), as
//!    kube-proxy would.
//! 2. **Traffic.** `rvs lab client` ([`client`]) in the client namespace, with
//!    `ip_local_port_range` narrowed to 32 ports and `tcp_tw_reuse=1`: 8 workers, each starting
//!    a short connection every 50 ms (connect with a 2 s timeout, `whoami`, read the answer,
//!    close first so the port sits in TIME_WAIT and is reused ~1 s later, while the balancer
//!    still remembers it for 120 s).
//! 3. **Rollout** (after a 3 s warm-up), as a Deployment with `maxSurge: 1` would do it, for
//!    each old server in turn, every 4 s: start a new server and add it (weight 1); 0.5 s later
//!    set the old one to weight 0 (terminating); 2 s later kill its process (its kernel then
//!    answers SYNs with RST). kube-proxy's graceful termination deletes a weight-0 server once
//!    its ActiveConn + InActConn is 0, checked every 60 s; the demo checks every 2 s (1 s
//!    with `--quick`) until the traffic ends, 6 s after the last step. All of it goes through
//!    the admin socket (`-e ... -w 0`, `-d`).
//!
//! ## The table
//!
//! Per row: attempts; failures by kind (refused, timeout, unreachable, reset/other); connects
//! ≥ 900 ms; p50/p99/max connect latency of successes; **to draining**: successful
//! connections answered by a server whose weight was already 0 when they started (the server
//! names itself in its answer; "already" means the daemon had acknowledged the change);
//! **to gone**: attempts refused, timed out or unreachable that started after a server's
//! process was stopped (in this lab only a stopped server refuses: live servers listen and the
//! balancer always has a weight-1 server — the daemon's "no destination" answers are counted
//! and expected 0 — and the stopped servers' own kernels' TCP counters, read in their
//! namespaces, show the segments that still reached them); **longest drain**: weight 0 to
//! deletion, or `never` when a server was still listed when the traffic ended. Then the real
//! Linux 6.1 kernel's measurements of the same kind of scenario
//! (`docs/kernel-6.1-incident.md` in the rvs repository, embedded in the binary:
//! [`mod@reference`]; `$RVS_KERNEL_REFERENCE` names another file with the same table).
//!
//! ## Profiles
//!
//! [`profiles::ALL`]. The default rows: `safe` (rvs's rules, default sysctls); `linux-5.16`
//! with `conn_reuse_mode=0, expire_nodest_conn=0` (and the 6.1 VM's director settings
//! otherwise: `conntrack=1, expire_quiescent_template=1`, netfilter conntrack on);
//! `linux-4.19/reuse0` with kube-proxy's sysctls on old kernels (`conn_reuse_mode=0,
//! expire_nodest_conn=1, expire_quiescent_template=1, conntrack=1`, netfilter conntrack on);
//! `linux-4.19/reuse1` (the same with `conn_reuse_mode=1`: the 1 s stall). `linux-4.19`
//! selects both 4.19 rows; `linux-5.16/0-1`, `/1-0`, `/1-1` are the other pairs of the 6.1
//! kernel's table, and `linux-5.16/all` runs the four, for a side-by-side with it.
//!
//! ## Cleanup, signals, root
//!
//! Each row's lab is removed when the row ends, also on failure: the lab's `Drop` stops the
//! processes and deletes the namespaces, then the demo checks nothing is left. Ctrl-C or
//! SIGTERM stops the run at the next wait (every wait is bounded and polls the flag) and
//! cleans up; a second Ctrl-C does not interrupt the cleanup (namespaces whose `ip netns del`
//! it killed are deleted again in a process group of their own). A demo killed with SIGKILL
//! leaves namespaces named `rvsdemo<PID>x<N>-*`; the next `rvs demo` removes them. Without
//! root the demo exits with status 2 and says why and what to run instead (`rvs sim
//! incident`, the same incident in virtual time).

pub mod client;
pub mod profiles;
pub mod reference;
pub mod report;
pub mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use report::{DemoReport, Summary};
use run::{Ctx, DemoError, Plan};

/// Exit status when the demo cannot run here (not root, no TUN, no `ip`).
pub const EXIT_UNAVAILABLE: i32 = 2;
/// Exit status after Ctrl-C / SIGTERM (cleanup done).
pub const EXIT_INTERRUPTED: i32 = 130;

/// The long help after the options.
pub const AFTER_HELP: &str = "\
Each row builds a fresh lab of network namespaces: a client, a balancer running `rvs daemon` with
the row's profile and sysctls, and the real servers (`rvs lab serve`). The client makes short
connections (8 workers, one every 50 ms each, 2 s connect timeout) from 32 source ports with
tcp_tw_reuse=1, so ports are reused while the balancer still remembers them. After 3 s the old
servers are replaced one by one, every 4 s: a new server is added (weight 1), 0.5 s later the old
one gets weight 0, 2 s later its process is killed; a kube-proxy-style check deletes a weight-0
server once ActiveConn+InActConn == 0, every 2 s (kube-proxy: 60 s), until the traffic ends 6 s
after the last step. Everything goes through the daemon's admin socket.

Profiles (--profile, repeatable or comma-separated; the first four are the default rows):
  safe                   rvs's own rules, default sysctls
  linux-5.16             Linux >= 5.16 with conn_reuse_mode=0 expire_nodest_conn=0 (= linux-5.16/0-0)
  linux-4.19/reuse0      kube-proxy's sysctls on old kernels: conn_reuse_mode=0
                         expire_nodest_conn=1 expire_quiescent_template=1 conntrack=1,
                         netfilter conntrack on
  linux-4.19/reuse1      the same with conn_reuse_mode=1 (the 1 s SYN-drop stall)
  linux-4.19             both 4.19 rows
  linux-5.16/0-1, /1-0, /1-1
                         the other conn_reuse_mode/expire_nodest_conn pairs (1-1 is kube-proxy
                         on >= 5.9, also linux-5.16/kube-proxy)
  linux-5.16/all         the four 5.16 rows, side by side with the 6.1 kernel's table
The linux-5.16 rows use the 6.1 VM's director settings otherwise (conntrack=1,
expire_quiescent_template=1, netfilter conntrack on).

Columns: attempts; refused, timeout (2 s), unreach(able), reset/other: failures by kind; >=900ms:
successful connects that took >= 900 ms (a dropped first SYN retransmitted after 1 s);
p50/p99/max: connect latency of successes; to draining: connections answered by a server whose
weight was already 0 when they started; to gone: attempts refused, timed out or unreachable after
a server's process was stopped (only a stopped server refuses here; its own kernel's TCP counters
confirm what reached it); longest drain: weight 0 until deleted, never = still listed when the
traffic ended. Then the real Linux 6.1 kernel's table for the same kind of scenario
(docs/kernel-6.1-incident.md in the rvs repository, embedded; $RVS_KERNEL_REFERENCE names another
file with the same table).

Needs root (network namespaces, veth, /dev/net/tun); without it, run `rvs sim incident`. Ctrl-C
stops and removes every namespace and process. Exit status: 0 done, 1 failed, 2 cannot run here,
130 interrupted.";

/// Options of `rvs demo`.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(
    about = "The rolling-update incident and its fix, with real packets (as root)",
    long_about = "Runs the Kubernetes rolling-update incident (client source-port reuse vs. \
draining and removed real servers) through the rvs data plane with real kernel TCP stacks in \
network namespaces, once per profile, and prints what the clients saw next to the real 6.1 \
kernel's measurements.",
    after_help = AFTER_HELP
)]
pub struct DemoArgs {
    /// Run only these profiles (repeatable, or comma-separated); see the list below.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// The short run of the tests: 2 old servers, ~10 s of traffic per profile.
    #[arg(long)]
    pub quick: bool,
    /// Print the results as JSON on standard output (no progress on standard error).
    #[arg(long)]
    pub json: bool,
    /// Number of old real servers to replace (1..=8).
    #[arg(long, value_name = "N")]
    pub servers: Option<usize>,
}

/// Why `rvs demo` cannot run here, with what to run instead; `None` if it can.
pub fn unavailable_message() -> Option<String> {
    let why = rvs_dataplane::lab::unavailable()?;
    Some(format!(
        "rvs demo cannot run here: {why}.\n\
It builds network namespaces with veth pairs (CAP_SYS_ADMIN, CAP_NET_ADMIN) and runs the rvs data \
plane on a TUN device (/dev/net/tun), so it needs root: run `sudo rvs demo`.\n\
Without root, `rvs sim incident` shows the same incident simulated in virtual time (no privileges \
needed)."
    ))
}

/// Installs the Ctrl-C / SIGTERM handlers: they only set the returned flag (so a second
/// Ctrl-C cannot kill the process while it cleans up).
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
    flag
}

/// Runs the demo with `bin` as the `rvs` binary; returns the exit status.
pub fn run(args: &DemoArgs, bin: &Path) -> i32 {
    let selected = match profiles::resolve(&args.profiles) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("rvs demo: {e}");
            return 2;
        }
    };
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(n) = args.servers {
        plan.servers = n;
    }
    if let Err(e) = plan.check() {
        eprintln!("rvs demo: {e}");
        return 2;
    }
    if let Some(m) = unavailable_message() {
        eprintln!("{m}");
        return EXIT_UNAVAILABLE;
    }
    let stop = stop_flag();
    let json = args.json;
    let progress = move |s: &str| {
        if !json {
            run::eprint_line(s);
        }
    };
    let stale = run::remove_stale();
    if stale > 0 {
        progress(&format!(
            "removed {stale} namespaces left by an earlier demo that was killed"
        ));
    }
    let started = Instant::now();
    let per_profile = plan.traffic_ms() as f64 / 1000.0 + 3.0;
    progress(&format!(
        "rvs demo: {} profile{} ({}), about {:.0} s each, {:.0} s in all; Ctrl-C stops and cleans up",
        selected.len(),
        if selected.len() == 1 { "" } else { "s" },
        selected
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", "),
        per_profile,
        per_profile * selected.len() as f64
    ));
    let ctx = Ctx {
        bin,
        stop: &stop,
        progress: &progress,
    };
    let mut rows: Vec<Summary> = Vec::new();
    for (i, p) in selected.iter().enumerate() {
        let label = format!("[{}/{}] {}", i + 1, selected.len(), p.label);
        let t = Instant::now();
        match run::run_profile(p, &plan, &ctx, &label) {
            Ok(mut r) => {
                r.wall_ms = t.elapsed().as_millis() as u64;
                let s = report::summarize(p, &r);
                progress(&format!(
                    "{label}: done in {:.1} s: {} attempts, {} failed, {} connects >= 900 ms, {} to draining, {} to gone, longest drain {}",
                    s.wall_s,
                    s.attempts,
                    s.failures,
                    s.slow,
                    s.to_draining,
                    s.to_gone,
                    report::drain_text(&s)
                ));
                rows.push(s);
            }
            Err(DemoError::Interrupted) => {
                eprintln!("rvs demo: interrupted; the lab's namespaces and processes are removed");
                return EXIT_INTERRUPTED;
            }
            Err(DemoError::Failed(m)) => {
                if stop.load(Ordering::SeqCst) {
                    eprintln!(
                        "rvs demo: interrupted; the lab's namespaces and processes are removed"
                    );
                    return EXIT_INTERRUPTED;
                }
                eprintln!("rvs demo: {label} failed: {m}");
                return 1;
            }
        }
    }
    let rep = DemoReport {
        plan,
        profiles: rows,
        kernel_6_1: reference::load(),
        wall_s: started.elapsed().as_secs_f64(),
        definitions: report::definitions(),
    };
    if json {
        match serde_json::to_string_pretty(&rep) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("rvs demo: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", report::text(&rep));
    }
    0
}

/// The `rvs` binary to run the lab's processes with: the current executable.
pub fn current_bin() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rvs"))
}
