//! The CI subset of the fidelity suite: one test per case, each running the case on the
//! kernel (VM) and on rvs and failing on any difference not listed in
//! tests/fidelity/known-differences.toml (or on a listed one that disappeared), with both
//! sides printed. Cases run one at a time (the VM and the timings need the two cores).
//!
//! Needs root, network namespaces, /dev/net/tun, and tests/kernel-vm's VM (its run.sh installs
//! QEMU and the rest with apt-get on first use). RVS_SKIP_VM=1 or RVS_SKIP_NETNS=1 skip these
//! tests, each recorded for the test command's summary; anything else missing is a failure with the reason.

use std::sync::{Mutex, MutexGuard, OnceLock};

use rvs_fidelity::{Setup, cases, known, report, runner};

static SERIAL: Mutex<()> = Mutex::new(());
static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(name: &str) {
    if let Some(why) = rvs_fidelity::skip_reason() {
        rvs_fidelity::record_skip(name, &why);
        return;
    }
    if let Some(why) = rvs_fidelity::unavailable() {
        panic!(
            "fidelity {name} cannot run here: {why}. Run as root on a machine with network \
             namespaces and /dev/net/tun (QEMU is installed by tests/kernel-vm/run.sh), or set \
             RVS_SKIP_VM=1 to skip the fidelity suite"
        );
    }
    let _g = serial();
    let root = runner::repo_root();
    let setup = SETUP
        .get_or_init(|| {
            let out = root.join(format!("target/fidelity/ci-{}", std::process::id()));
            Setup::new(out, true)
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("fidelity setup failed: {e}"));
    let case = cases::ci(&setup.kipvs, &setup.fidelity)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no CI case {name}"));
    let known = known::load(&rvs_fidelity::known_file(&root)).expect("known-differences.toml");
    let r = rvs_fidelity::run_case(setup, &case);
    let (text, t) = report::case_report(&r, &known);
    let _ = std::fs::write(setup.out.join(name).join("report.txt"), &text);
    println!("{text}");
    assert!(
        t.pass(),
        "fidelity case {name}: {} difference(s) between the kernel and rvs, {} stale \
         known-differences entr(y/ies):\n{text}",
        t.differ,
        t.stale
    );
}

#[test]
fn fidelity_incident_kill() {
    run("incident-kill");
}

#[test]
fn fidelity_sched_wrr() {
    run("sched-wrr");
}

#[test]
fn fidelity_sched_wlc() {
    run("sched-wlc");
}

#[test]
fn fidelity_sched_sh() {
    run("sched-sh");
}

#[test]
fn fidelity_sched_mh() {
    run("sched-mh");
}

#[test]
fn fidelity_persistence_quiescent() {
    run("persistence-quiescent");
}

#[test]
fn fidelity_udp_removed() {
    run("udp-removed");
}

#[test]
fn fidelity_timeouts_set() {
    run("timeouts-set");
}

#[test]
fn fidelity_reply_same_client_port() {
    run("reply-same-client-port");
}

#[test]
fn every_ci_case_has_a_test() {
    let src = include_str!("ci.rs");
    let root = runner::repo_root();
    let kipvs = root.join("tests/kernel-vm");
    for c in cases::ci(&kipvs, &root.join("tests/fidelity")) {
        assert!(
            src.contains(&format!("run(\"{}\")", c.name)),
            "CI case {} has no #[test] in tests/ci.rs",
            c.name
        );
    }
}
