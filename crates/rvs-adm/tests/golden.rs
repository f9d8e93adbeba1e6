//! Byte-exact comparisons with the ipvsadm 1.31 / Linux 6.1 golden outputs.
//!
//! The expected side is always read from the golden file at test time; the state side comes
//! from `common::golden_state` (hand-built for now, engine-driven later).

mod common;

use common::{MemBackend, golden, golden_state, run_cmd, vm_names};
use rvs_adm::render;

/// Runs `cmdline` against the state behind `file` and compares stdout with the file.
fn check(file: &str, cmdline: &str) {
    let mut b = MemBackend::golden(file);
    let (code, out, err) = run_cmd(&mut b, &vm_names(), cmdline, "");
    assert_eq!(err, "", "{file}: unexpected stderr");
    assert_eq!(code, 0, "{file}: exit status");
    let want = golden(file);
    if out != want {
        panic!("{file} differs from `{cmdline}`:\n--- got\n{out}\n--- want\n{want}");
    }
}

#[test]
fn ln() {
    check("ipvsadm-Ln.txt", "ipvsadm -Ln");
}

#[test]
fn ln_stats() {
    check("ipvsadm-Ln-stats.txt", "ipvsadm -Ln --stats");
}

#[test]
fn ln_stats_exact() {
    check("ipvsadm-Ln-stats-exact.txt", "ipvsadm -Ln --stats --exact");
}

#[test]
fn ln_rate() {
    check("ipvsadm-Ln-rate.txt", "ipvsadm -Ln --rate");
}

#[test]
fn ln_rate_exact() {
    check("ipvsadm-Ln-rate-exact.txt", "ipvsadm -Ln --rate --exact");
}

#[test]
fn ln_thresholds() {
    check("ipvsadm-Ln-thresholds.txt", "ipvsadm -Ln --thresholds");
}

#[test]
fn ln_persistent_conn() {
    check(
        "ipvsadm-Ln-persistent-conn.txt",
        "ipvsadm -Ln --persistent-conn",
    );
}

#[test]
fn ln_one_service() {
    check("ipvsadm-Ln-one-service.txt", "ipvsadm -Ln -t 10.0.0.100:80");
}

#[test]
fn ln_fwmark() {
    check("ipvsadm-Ln-fwmark.txt", "ipvsadm -Ln -f 1");
}

#[test]
fn l_names() {
    check("ipvsadm-L-names.txt", "ipvsadm -L");
}

#[test]
fn lnc() {
    check("ipvsadm-Lnc.txt", "ipvsadm -Lnc");
}

#[test]
fn lnc_persistent_conn() {
    check(
        "ipvsadm-Lnc-persistent-conn.txt",
        "ipvsadm -Lnc --persistent-conn",
    );
}

#[test]
fn lnc_after_set() {
    check("ipvsadm-Lnc-after-set.txt", "ipvsadm -Lnc");
}

#[test]
fn save_numeric() {
    check("ipvsadm-S-n.txt", "ipvsadm -S -n");
}

#[test]
fn save_names() {
    check("ipvsadm-S.txt", "ipvsadm -S");
}

#[test]
fn timeout() {
    check("ipvsadm-L-timeout.txt", "ipvsadm -L --timeout");
}

#[test]
fn timeout_after_set() {
    check("ipvsadm-L-timeout-after-set.txt", "ipvsadm -L --timeout");
}

#[test]
fn daemon() {
    check("ipvsadm-L-daemon.txt", "ipvsadm -L --daemon");
}

#[test]
fn version() {
    check("ipvsadm-version.txt", "ipvsadm --version");
}

#[test]
fn stats_after_zero() {
    check("ipvsadm-Ln-stats-after-Z.txt", "ipvsadm -Ln --stats");
}

#[test]
fn after_clear() {
    check("ipvsadm-Ln-after-C.txt", "ipvsadm -Ln");
}

#[test]
fn save_after_restore() {
    check("ipvsadm-S-n-after-R.txt", "ipvsadm -S -n");
}

#[test]
fn proc_ip_vs() {
    let (info, services, _, _) = golden_state("proc-net-ip_vs.txt");
    let got = render::proc_ip_vs::proc_ip_vs(&info, &services, render::proc_ip_vs::HZ);
    assert_eq!(got, golden("proc-net-ip_vs.txt"));
}

#[test]
fn proc_ip_vs_conn() {
    let (_, _, conns, _) = golden_state("proc-net-ip_vs_conn.txt");
    assert_eq!(
        render::proc_conn::proc_ip_vs_conn(&conns),
        golden("proc-net-ip_vs_conn.txt")
    );
}

#[test]
fn proc_ip_vs_conn_sync() {
    let (_, _, conns, _) = golden_state("proc-net-ip_vs_conn_sync.txt");
    assert_eq!(
        render::proc_conn::proc_ip_vs_conn_sync(&conns),
        golden("proc-net-ip_vs_conn_sync.txt")
    );
}

#[test]
fn proc_ip_vs_stats() {
    let (_, _, _, totals) = golden_state("proc-net-ip_vs_stats.txt");
    assert_eq!(
        render::proc_stats::proc_ip_vs_stats(&totals),
        golden("proc-net-ip_vs_stats.txt")
    );
}

/// `ipvsadm-errors.txt`: each command run against the golden state, with its messages and
/// exit status, in the file's own layout.
#[test]
fn errors() {
    let want = golden("ipvsadm-errors.txt");
    let mut b = MemBackend::golden("ipvsadm-errors.txt");
    let mut got = String::new();
    for line in want.lines().filter_map(|l| l.strip_prefix("$ ")) {
        let (code, out, err) = run_cmd(&mut b, &vm_names(), line, "");
        got.push_str(&format!("$ {line}\n{out}{err}[exit {code}]\n"));
    }
    assert_eq!(got, want);
}
