//! rvs-fidelity: the differential fidelity suite.
//!
//! The same scenario scripts run through the real Linux IPVS (Debian's 6.1 kernel in a VM,
//! `tests/kernel-vm/run.sh`) and through rvs (its real data plane, on this machine,
//! profile `linux-5.16`: `tests/fidelity/host-run.sh`, which gives the scenarios the helper
//! API of the VM's `guest/lib.sh` with the rvs daemon as the director). Both sides use the
//! same client and server programs (`tcpclient`, `tcpserver`, `udpflow`) and the same
//! topology and addresses. Then every case is compared by explicit rules ([`cases`]), and
//! each difference is a failing check that prints both sides, unless it is listed in
//! `tests/fidelity/known-differences.toml` ([`known`]).
//!
//! Entry points: `cargo run -p rvs-fidelity --release -- all` (the whole suite, with a
//! report in `target/fidelity/<time>/report.txt`), and `cargo test -p rvs-fidelity` (the CI
//! subset, one test per case). See `tests/fidelity/README.md`.

pub mod cases;
pub mod check;
pub mod known;
pub mod parse;
pub mod report;
pub mod runner;

use std::path::Path;

pub use cases::Case;
pub use check::Check;
pub use runner::{Setup, Side};

/// One case, run on both sides and compared.
#[derive(Debug)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// The kernel's run.
    pub kernel: Side,
    /// rvs's run.
    pub rvs: Side,
    /// The comparisons.
    pub checks: Vec<Check>,
}

/// Runs `case` on both sides (into `setup.out/<case name>/{kernel,rvs}`) and compares.
pub fn run_case(setup: &Setup, case: &Case) -> CaseResult {
    let dir = setup.out.join(&case.name);
    let (kernel, rvs) = runner::run_both(setup, &case.spec, &dir);
    let checks = cases::compare(case, &kernel, &rvs).list;
    CaseResult {
        case: case.clone(),
        kernel,
        rvs,
        checks,
    }
}

/// The known-differences file of the repository.
pub fn known_file(root: &Path) -> std::path::PathBuf {
    root.join("tests/fidelity/known-differences.toml")
}

/// `Some(reason)` when the suite must be skipped: `RVS_SKIP_VM=1` (no VM wanted) or
/// `RVS_SKIP_NETNS=1` (no namespaces wanted; the rvs side needs them).
pub fn skip_reason() -> Option<String> {
    for v in ["RVS_SKIP_VM", "RVS_SKIP_NETNS"] {
        if std::env::var(v).as_deref() == Ok("1") {
            return Some(format!("{v}=1"));
        }
    }
    None
}

/// Reports a case skipped on request: a `SKIPPED:` line, and a line appended to the file named
/// by `$RVS_SKIP_LOG`, which `scripts/test-all.sh` counts in its summary. (The same few lines
/// as `rvs_dataplane::lab::record_skip`: this crate depends on no rvs crate, so that the
/// kernel side of a comparison never links the code under test.)
pub fn record_skip(case: &str, why: &str) {
    eprintln!("SKIPPED: fidelity {case}: {why}");
    if let Some(path) = std::env::var_os("RVS_SKIP_LOG") {
        let line = format!("fidelity {case}: {why}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        if let Err(e) = written {
            panic!("cannot record the skip of {case} in RVS_SKIP_LOG: {e}");
        }
    }
}

/// Why the suite cannot run here (checked unless skipping was asked for).
pub fn unavailable() -> Option<String> {
    runner::host_unavailable().or_else(|| runner::vm_unavailable(&runner::repo_root()))
}
