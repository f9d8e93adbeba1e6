//! The same seed gives byte-identical text, JSON and SVG, whatever the number of threads; a
//! different seed gives different, still valid, results.

use clap::Parser;
use rvs_sim::{SimArgs, run};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

fn sim(argv: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!(
        "rvs-sim-det-{}-{}",
        std::process::id(),
        argv.join("_").replace(['/', ' '], "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("chart.svg");
    let mut args = vec!["rvs-sim"];
    args.extend_from_slice(argv);
    let svg_s = svg.to_str().unwrap().to_string();
    args.extend_from_slice(&["--svg", &svg_s, "--no-progress"]);
    let cli = Cli::try_parse_from(&args).unwrap();
    let mut out = Vec::new();
    assert_eq!(run(&cli.sim, &mut out).unwrap(), 0);
    let chart = std::fs::read(&svg).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (out, chart)
}

#[test]
fn same_seed_same_bytes() {
    for fmt in [&[][..], &["--json"][..]] {
        let mut a = vec!["incident", "--duration", "120", "--jobs", "2"];
        a.extend_from_slice(fmt);
        let mut b = vec!["incident", "--duration", "120", "--jobs", "1"];
        b.extend_from_slice(fmt);
        let (t1, s1) = sim(&a);
        let (t2, s2) = sim(&b);
        assert!(!t1.is_empty() && s1.starts_with(b"<svg"));
        assert_eq!(t1, t2, "output differs between runs");
        assert_eq!(s1, s2, "SVG differs between runs");
    }
    let (v1, _) = sim(&["vm-incident", "--json"]);
    let (v2, _) = sim(&["vm-incident", "--json"]);
    assert_eq!(v1, v2);
}

#[test]
fn another_seed_other_results_still_valid() {
    let (a, _) = sim(&["incident", "--duration", "120", "--json", "--seed", "1"]);
    let (b, _) = sim(&["incident", "--duration", "120", "--json", "--seed", "2"]);
    assert_ne!(a, b);
    let ja: serde_json::Value = serde_json::from_slice(&a).unwrap();
    let jb: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(jb["scenario"]["seed"], 2);
    for j in [&ja, &jb] {
        let runs = j["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 5);
        let safe = &runs[0]["tcp"]["total"];
        assert_eq!(runs[0]["profile"], "safe");
        assert_eq!(safe["failed"], 0);
        assert_eq!(safe["slow"], 0);
        let n = safe["attempted"].as_u64().unwrap();
        assert!((64_000..=80_000).contains(&n), "{n}");
        assert!(runs[1]["tcp"]["total"]["failed"].as_u64().unwrap() > 0);
    }
}
