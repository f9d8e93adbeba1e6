//! # rvs-sim: rollouts in virtual time, against the real engine
//!
//! (Crate documentation: see the end of the file's module list; filled in below.)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod balancer;
pub mod builtin;
pub mod chart;
pub mod cli;
pub mod hist;
pub mod ports;
pub mod profile;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod sweep;

pub use cli::{SimArgs, SimCommand, SweepArgs, run, simulate, simulate_one};
pub use profile::ProfileSpec;
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};
pub use sim::RunOptions;
pub use stats::RunResult;
