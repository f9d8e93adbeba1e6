//! Helpers shared by the simulator's tests.
#![allow(dead_code)]

use rvs_sim::stats::{CountersOut, ProtoResult, RunResult};
use rvs_sim::{RunOptions, Scenario, profile, simulate};

/// Runs `profiles` (names) of a scenario on two threads.
pub fn runs(sc: &Scenario, profiles: &[&str]) -> Vec<RunResult> {
    let names: Vec<String> = profiles.iter().map(|s| s.to_string()).collect();
    let p = profile::select(sc, &names).expect("known profiles");
    simulate(sc, &p, &RunOptions::default(), 2, false).runs
}

/// Runs one profile (and every variant) of a scenario.
pub fn run1(sc: &Scenario, profile: &str) -> Vec<RunResult> {
    runs(sc, &[profile])
}

/// The TCP results of a run.
pub fn tcp(r: &RunResult) -> &ProtoResult {
    r.tcp.as_ref().expect("TCP clients")
}

/// The UDP results of a run.
pub fn udp(r: &RunResult) -> &ProtoResult {
    r.udp.as_ref().expect("UDP clients")
}

/// A phase's counters.
pub fn phase<'a>(p: &'a ProtoResult, name: &str) -> &'a CountersOut {
    &p.phases
        .iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no phase {name}"))
        .counters
}

/// The run of a variant.
pub fn variant<'a>(rs: &'a [RunResult], label: &str) -> &'a RunResult {
    rs.iter()
        .find(|r| r.variant.as_deref() == Some(label))
        .unwrap_or_else(|| panic!("no variant {label}"))
}

/// A scenario from TOML text.
pub fn toml(src: &str) -> Scenario {
    Scenario::from_toml(src, "<test>").unwrap_or_else(|e| panic!("{e}"))
}
