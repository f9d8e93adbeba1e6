//! The command line (`rvs sim ...`) and the runner that spreads runs over threads.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::profile::{self, ProfileSpec};
use crate::report::{self, Report, ScenarioInfo};
use crate::scenario::{Scenario, ns};
use crate::sim::{self, RunOptions};
use crate::stats::RunResult;
use crate::sweep;

/// `rvs sim`: simulate rollouts against the real engine, in virtual time.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct SimArgs {
    /// What to simulate.
    #[command(subcommand)]
    pub command: SimCommand,
    /// Profile rows to run (repeatable): safe, linux-4.19-reuse0, linux-4.19-reuse1,
    /// linux-4.19 (both), linux-5.9, linux-5.16, or a custom profile of the scenario.
    /// Default: the scenario's list.
    #[arg(long = "profile", global = true, value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Also write an SVG chart of failures and p99 latency over time.
    #[arg(long, global = true, value_name = "PATH")]
    pub svg: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// Stop starting connections after this many attempts per run.
    #[arg(long, global = true, value_name = "N")]
    pub connections: Option<u64>,
    /// Override the scenario's duration (seconds of virtual time).
    #[arg(long, global = true, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Never draw a progress bar (it is drawn on stderr only when stderr is a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Worker threads (default: the machine's cores). Results do not depend on it.
    #[arg(long, global = true, value_name = "N")]
    pub jobs: Option<usize>,
}

/// What to simulate.
#[derive(clap::Subcommand, Clone, Debug, PartialEq)]
pub enum SimCommand {
    /// The built-in seed incident: short connections to a 3-replica upstream during a
    /// rolling restart, kube-proxy graceful termination.
    Incident,
    /// The incident scenario measured on a real Linux 6.1 (docs/kernel-6.1-incident.md), row by
    /// row.
    VmIncident,
    /// A scenario from a TOML file.
    Run {
        /// The scenario file.
        file: PathBuf,
    },
    /// At which connection rate per client does each profile start failing?
    Sweep(SweepArgs),
}

/// `rvs sim sweep`.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct SweepArgs {
    /// The scenario: `incident`, `vm-incident`, or a TOML file. Its TCP clients get the rate
    /// (open loop) and port range of each grid point.
    #[arg(long, default_value = "incident")]
    pub scenario: String,
    /// Connection rates per client to try, ascending (connections per second).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,5,10,20,50,100,200,500,1000"
    )]
    pub rates: Vec<f64>,
    /// Client port-range sizes to try.
    #[arg(long, value_delimiter = ',', default_value = "1024,4096,28232")]
    pub ports: Vec<u32>,
}

/// Loads the scenario a command names.
pub fn load(name: &str) -> anyhow::Result<Scenario> {
    Ok(match name {
        "incident" => Scenario::incident(),
        "vm-incident" => Scenario::vm_incident(),
        path => Scenario::from_file(std::path::Path::new(path))?,
    })
}

/// Runs `rvs sim` and writes its output to `out`; returns the exit status.
pub fn run(args: &SimArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut sc = match &args.command {
        SimCommand::Incident => Scenario::incident(),
        SimCommand::VmIncident => Scenario::vm_incident(),
        SimCommand::Run { file } => Scenario::from_file(file)?,
        SimCommand::Sweep(s) => load(&s.scenario)?,
    };
    if let Some(seed) = args.seed {
        sc.seed = seed;
    }
    if let Some(d) = args.duration {
        anyhow::ensure!(d > 0.0 && d.is_finite(), "--duration must be positive");
        sc.duration_s = d;
    }
    let profiles = profile::select(&sc, &args.profiles).map_err(anyhow::Error::msg)?;
    let opts = RunOptions {
        max_connections: args.connections,
        duration_s: None,
        stub_engine: false,
    };
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let progress = !args.no_progress && std::io::stderr().is_terminal();
    if let SimCommand::Sweep(sw) = &args.command {
        let res = sweep::sweep(&sc, &profiles, sw, &opts, jobs, progress)?;
        if args.json {
            out.write_all(sweep::json(&res).as_bytes())?;
        } else {
            out.write_all(sweep::text(&sc, &res).as_bytes())?;
        }
        return Ok(0);
    }
    let rep = simulate(&sc, &profiles, &opts, jobs, progress);
    if let Some(path) = &args.svg {
        let svg = crate::chart::svg(&rep)?;
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        out.write_all(report::json(&rep).as_bytes())?;
    } else {
        out.write_all(report::text(&sc, &rep).as_bytes())?;
    }
    Ok(0)
}

/// The machine's cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs every (profile, variant) of a scenario on `jobs` threads; the report lists them
/// profile-major, in order, whatever the threads did.
pub fn simulate(
    sc: &Scenario,
    profiles: &[ProfileSpec],
    opts: &RunOptions,
    jobs: usize,
    progress: bool,
) -> Report {
    let variants: Vec<Option<usize>> = if sc.variants.is_empty() {
        vec![None]
    } else {
        (0..sc.variants.len()).map(Some).collect()
    };
    let tasks: Vec<(usize, Option<usize>)> = (0..profiles.len())
        .flat_map(|p| variants.iter().map(move |v| (p, *v)))
        .collect();
    let duration = opts.duration_s.unwrap_or(sc.duration_s);
    let results = run_tasks(
        tasks.len(),
        jobs,
        progress.then(|| ns(duration) * tasks.len() as u64),
        |i, prog| {
            let (p, v) = tasks[i];
            sim::run(
                sc,
                &profiles[p],
                v.map(|v| &sc.variants[v]),
                opts,
                Some(prog),
            )
        },
    );
    Report {
        scenario: ScenarioInfo {
            name: sc.name.clone(),
            description: sc.description.clone(),
            seed: sc.seed,
            duration_s: duration,
            max_connections: opts.max_connections,
        },
        profiles: profiles.to_vec(),
        runs: results,
    }
}

/// Runs `n` tasks on `jobs` threads, results in task order. With `progress_total` (virtual
/// nanoseconds over all tasks), draws a bar on stderr.
pub(crate) fn run_tasks<T: Send>(
    n: usize,
    jobs: usize,
    progress_total: Option<u64>,
    f: impl Fn(usize, &AtomicU64) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let prog = AtomicU64::new(0);
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(n).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = f(i, &prog);
                    if let Ok(mut v) = slots.lock() {
                        v[i] = Some(r);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        if let Some(total) = progress_total {
            let bar = indicatif::ProgressBar::new(total / 1_000_000);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} simulating [{bar:40}] {percent:>3}% ({elapsed})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            while done.load(Ordering::Relaxed) < n {
                bar.set_position(prog.load(Ordering::Relaxed) / 1_000_000);
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        }
    });
    slots
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.expect("every task ran"))
        .collect()
}

/// Runs one scenario and returns its results (for tests and embedding).
pub fn simulate_one(sc: &Scenario, profile: &str, opts: &RunOptions) -> anyhow::Result<RunResult> {
    let p = profile::select(sc, &[profile.to_string()]).map_err(anyhow::Error::msg)?;
    let first = p.first().context("no profile")?;
    Ok(sim::run(sc, first, None, opts, None))
}
