//! The `rvs sim` surface: argument parsing, overrides, errors.

use clap::Parser;
use rvs_sim::{SimArgs, SimCommand, run};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

fn parse(argv: &[&str]) -> SimArgs {
    let mut a = vec!["rvs-sim"];
    a.extend_from_slice(argv);
    Cli::try_parse_from(a).unwrap_or_else(|e| panic!("{e}")).sim
}

fn out(argv: &[&str]) -> anyhow::Result<String> {
    let mut o = Vec::new();
    let args = parse(argv);
    assert_eq!(run(&args, &mut o)?, 0);
    Ok(String::from_utf8(o).unwrap())
}

#[test]
fn parses_every_subcommand() {
    assert_eq!(parse(&["incident"]).command, SimCommand::Incident);
    assert_eq!(parse(&["vm-incident"]).command, SimCommand::VmIncident);
    let a = parse(&[
        "run",
        "x.toml",
        "--profile",
        "safe",
        "--profile",
        "linux-5.16",
        "--json",
    ]);
    assert!(matches!(a.command, SimCommand::Run { .. }));
    assert_eq!(a.profiles, ["safe", "linux-5.16"]);
    assert!(a.json);
    let SimCommand::Sweep(s) = parse(&["sweep", "--rates", "1,10", "--ports", "512"]).command
    else {
        panic!()
    };
    assert_eq!(
        (s.rates, s.ports, s.scenario.as_str()),
        (vec![1.0, 10.0], vec![512], "incident")
    );
}

#[test]
fn connections_cap_and_profile_choice() {
    let text = out(&[
        "incident",
        "--profile",
        "linux-5.16",
        "--connections",
        "5000",
        "--json",
    ])
    .unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["profile"], "linux-5.16");
    let n = runs[0]["tcp"]["total"]["attempted"].as_u64().unwrap();
    assert!((4990..=5000).contains(&n), "{n}");
}

#[test]
fn text_report_has_the_issue_columns() {
    let t = out(&["incident", "--duration", "60", "--profile", "safe"]).unwrap();
    for col in [
        "attempted",
        "failed",
        "≥1s",
        "p50 ms",
        "p99 ms",
        "p99.9ms",
        "max ms",
        "to-drain",
        "drain",
    ] {
        assert!(t.contains(col), "{col} missing:\n{t}");
    }
    let v = out(&["vm-incident", "--profile", "linux-5.16"]).unwrap();
    assert!(v.contains("measured on Linux 6.1"), "{v}");
    assert_eq!(
        v.matches("\nkill ").count(),
        8,
        "4 simulated + 4 measured kill rows:\n{v}"
    );
}

#[test]
fn run_file_and_errors() {
    let f = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/lifecycle.toml");
    let t = out(&["run", f, "--profile", "safe", "--duration", "40"]).unwrap();
    assert!(t.starts_with("scenario lifecycle:"), "{t}");
    let e = out(&["run", "/no/such.toml"]).unwrap_err();
    assert!(e.to_string().contains("/no/such.toml"), "{e}");
    let e = out(&["incident", "--profile", "linux-2.6"]).unwrap_err();
    assert!(e.to_string().contains("unknown profile 'linux-2.6'"), "{e}");
    let e = out(&["incident", "--duration=-1"]).unwrap_err();
    assert!(e.to_string().contains("--duration"), "{e}");
}
