//! `sweep` finds, per profile and port range, the lowest rate that fails or stalls.

use rvs_sim::cli::SweepArgs;
use rvs_sim::{RunOptions, Scenario, profile, sweep};

#[test]
fn sweep_finds_the_boundaries() {
    let mut sc = Scenario::incident();
    sc.duration_s = 150.0;
    let p = profile::select(
        &sc,
        &[
            "safe".into(),
            "linux-4.19-reuse1".into(),
            "linux-5.16".into(),
        ],
    )
    .unwrap();
    let args = SweepArgs {
        scenario: "incident".into(),
        rates: vec![1.0, 20.0, 100.0, 400.0],
        ports: vec![1024, 28232],
    };
    let r = sweep::sweep(&sc, &p, &args, &RunOptions::default(), 2, false).unwrap();
    let line = |prof: &str, ports: u32| {
        r.lines
            .iter()
            .find(|l| l.profile == prof && l.ports == ports)
            .unwrap()
    };
    for ports in [1024, 28232] {
        assert_eq!(line("safe", ports).boundary, None);
        assert_eq!(line("linux-5.16", ports).boundary, None);
    }
    // With fewer ports the stall starts at a lower rate.
    let small = line("linux-4.19-reuse1", 1024).boundary.unwrap();
    let large = line("linux-4.19-reuse1", 28232).boundary.unwrap();
    assert!(small < large, "{small} {large}");
    assert!(line("linux-4.19-reuse1", 1024).points.last().unwrap().slow > 0);
    let text = sweep::text(&sc, &r);
    assert!(text.contains("P/120s"), "{text}");
    assert!(text.contains(">400"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&sweep::json(&r)).unwrap();
    assert_eq!(json["lines"].as_array().unwrap().len(), 6);
}
