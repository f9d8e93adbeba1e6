//! `rvs lab`: hidden helpers for tests, the benchmark and the demo.

use crate::cli::{LabArgs, LabCmd};

/// Runs a lab helper; returns the exit status.
pub fn run(a: LabArgs) -> i32 {
    match a.cmd {
        LabCmd::Serve(o) => rvs_dataplane::lab::serve::run(&o),
        LabCmd::Udpflood(o) => rvs_dataplane::lab::flood::run(&o),
        LabCmd::Synflood(o) => rvs_dataplane::lab::synflood::run(&o),
        LabCmd::Decap(o) => rvs_dataplane::lab::decap::run(&o),
        LabCmd::Client(o) => rvs_demo::client::run(&o),
    }
}
