//! `rvs demo --quick`: the short demo sees the incident, and leaves nothing behind.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn row<'a>(v: &'a Value, profile: &str) -> &'a Value {
    v["profiles"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["profile"] == profile))
        .unwrap_or_else(|| panic!("no row for {profile} in {v:#}"))
}

fn num(r: &Value, k: &str) -> u64 {
    r[k].as_u64()
        .unwrap_or_else(|| panic!("no number {k} in {r:#}"))
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            v.push(format!("{name}: {cmd}"));
        }
    }
    v
}

#[test]
fn quick_demo_shows_the_incident_and_cleans_up() {
    if skip("quick_demo_shows_the_incident_and_cleans_up") {
        return;
    }
    let _g = serial();
    let started = Instant::now();
    let child = Command::new(RVS)
        .args([
            "demo",
            "--quick",
            "--json",
            "--profile",
            "safe,linux-5.16,linux-4.19/reuse1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rvs demo");
    let pid = child.id();
    let out = rvs_dataplane::lab::wait_output(child, Duration::from_secs(150)).unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "rvs demo --quick failed ({:?}) after {took:?}:\n{stderr}",
        out.status
    );
    assert!(
        stderr.trim().is_empty(),
        "no progress with --json, got:\n{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let summary: Vec<String> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}: attempts {} failures {} (refused {}) >=900ms {} to_draining {} to_gone {}",
                r["profile"],
                r["attempts"],
                r["failures"],
                r["refused"],
                r["slow"],
                r["to_draining"],
                r["to_gone"]
            )
        })
        .collect();
    println!("rvs demo --quick took {took:.1?}:\n{}", summary.join("\n"));

    // safe: nothing fails, nothing stalls.
    let safe = row(&v, "safe");
    assert!(num(safe, "attempts") > 50, "{safe:#}");
    assert_eq!(num(safe, "failures"), 0, "safe has no failures: {safe:#}");
    assert_eq!(
        num(safe, "slow"),
        0,
        "safe has no connects >= 900 ms: {safe:#}"
    );
    assert_eq!(
        num(safe, "to_draining") + num(safe, "to_gone"),
        0,
        "{safe:#}"
    );

    // linux-5.16 with conn_reuse_mode=0, expire_nodest_conn=0: reused ports are refused by
    // the stopped servers, as on the real 6.1 kernel.
    let k516 = row(&v, "linux-5.16");
    assert!(num(k516, "failures") > 0, "linux-5.16 0/0 fails: {k516:#}");
    assert!(num(k516, "refused") > 0, "{k516:#}");
    assert!(
        num(k516, "gone_segments") > 0,
        "the stopped servers' kernels saw the SYNs: {k516:#}"
    );

    // linux-4.19 with conn_reuse_mode=1 and conntrack: the dropped first SYN, 1 s stalls.
    let k419 = row(&v, "linux-4.19/reuse1");
    assert!(
        num(k419, "slow") > 0,
        "linux-4.19 reuse1 has connects >= 900 ms: {k419:#}"
    );

    // Nothing of the demo is left: its namespaces are named rvsdemo<PID>x<N>-*, its lab
    // directory (in every daemon's --config path) /tmp/rvsdemo<PID>x<N>.
    let prefix = format!("rvsdemo{pid}x");
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let ns = String::from_utf8_lossy(&ns.stdout);
    let left: Vec<&str> = ns.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let procs = processes_with(&prefix);
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let dirs: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(dirs.is_empty(), "lab directories left: {dirs:?}");
    // Lab servers and clients of this binary (no other test of this file runs meanwhile).
    let lab = processes_with(&format!("{RVS} lab "));
    assert!(lab.is_empty(), "lab processes left: {lab:?}");
}

#[test]
fn without_root_it_says_why_and_what_to_run_instead() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    // As root, drop to nobody with setpriv (util-linux), running a copy of the binary from a
    // folder nobody can enter (the checkout may sit below a private home or a 0700 temporary
    // folder); as another user, run it directly.
    let copy_dir = std::env::temp_dir().join(format!("rvs-demo-nobody-{}", std::process::id()));
    let mut cmd = if is_root {
        use std::os::unix::fs::PermissionsExt;
        let setpriv = Command::new("setpriv").arg("--version").output();
        assert!(
            setpriv.is_ok_and(|o| o.status.success()),
            "this test drops root with setpriv (util-linux), which is missing"
        );
        std::fs::create_dir_all(&copy_dir).unwrap();
        let bin = copy_dir.join("rvs");
        std::fs::copy(RVS, &bin).unwrap();
        for p in [&copy_dir, &bin] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        Command::new(RVS)
    };
    let o = cmd.args(["demo", "--quick"]).stdin(Stdio::null()).output();
    let _ = std::fs::remove_dir_all(&copy_dir);
    let o = o.unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "exit status 2: {err}");
    assert!(err.contains("root"), "says why: {err}");
    assert!(
        err.contains("rvs sim incident"),
        "says what to run instead: {err}"
    );
    assert!(o.stdout.is_empty(), "nothing on stdout");
}
