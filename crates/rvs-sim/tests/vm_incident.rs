//! The `vm-incident` scenario against what the real Linux 6.1 kernel did
//! (`docs/kernel-6.1-incident.md`): the simulated `linux-5.16` rows must show the same kinds of
//! outcome, row by row, and the same orders of magnitude.

mod common;
use common::*;
use rvs_sim::Scenario;
use rvs_sim::scenario::Action;

const DEATHS: [&str; 3] = ["kill", "drop", "linkdown"];
const OTHER_ROWS: [&str; 3] = ["0 1", "1 0", "1 1"];

fn linux_5_16() -> Vec<rvs_sim::RunResult> {
    run1(&Scenario::vm_incident(), "linux-5.16")
}

/// Measured kill/0/0: 461 of 554 refused, every refused SYN one packet to rs2.
#[test]
fn kill_0_0_refuses_most_connections() {
    let rs = linux_5_16();
    let m = phase(tcp(variant(&rs, "kill 0 0")), "main");
    assert!((400..=750).contains(&m.attempted), "{m:?}");
    assert!(m.refused * 10 >= m.attempted * 6, "most refused: {m:?}");
    assert!(m.ok > 0);
    assert_eq!((m.timeout, m.unreach), (0, 0));
    assert_eq!(m.pkts_to_draining, m.refused, "one SYN to rs2 per refusal");
    assert_eq!(m.eaddrnotavail, 0, "refused ports are free at once");
}

/// Measured: "the failing ports stay failing for the whole 30 s … ports that happened to map
/// to rs1/rs3 are pinned to that server"; and 6.1 prefers even ports.
#[test]
fn kill_0_0_pins_reused_ports() {
    let rs = linux_5_16();
    let t = tcp(variant(&rs, "kill 0 0"));
    let main = t
        .ports
        .as_ref()
        .expect("a per-port table for a 10-port range")
        .iter()
        .find(|w| w.window == "main")
        .unwrap();
    let mut failing = 0;
    for row in &main.rows {
        assert_eq!(row.port % 2, 0, "only even ports: {row:?}");
        if row.ok == 0 {
            assert_eq!(row.refused, row.attempted, "{row:?}");
            failing += 1;
        } else {
            assert_eq!(row.ok, row.attempted, "a served port never fails: {row:?}");
            assert_eq!(row.served_by.len(), 1, "pinned to one server: {row:?}");
            assert!(!row.served_by.contains_key("10.0.12.2"));
        }
    }
    assert!(failing >= 1, "{main:?}");
}

/// Measured drop/0/0: 15 of 35 timed out, 30 packets to rs2 (SYN + retransmission).
#[test]
fn drop_0_0_times_out() {
    let rs = linux_5_16();
    let m = phase(tcp(variant(&rs, "drop 0 0")), "main");
    assert!((20..=60).contains(&m.attempted), "{m:?}");
    assert!((5..=30).contains(&m.timeout), "{m:?}");
    assert_eq!((m.refused, m.unreach), (0, 0));
    // SYN + one retransmission each (the last one's retransmission may fall after the
    // phase's end).
    assert!(
        (2 * m.timeout - 1..=2 * m.timeout).contains(&m.pkts_to_draining),
        "{m:?}"
    );
    assert_eq!(
        m.connect_all.max_ms,
        Some(2000.0),
        "the 2 s connect timeout"
    );
}

/// Measured linkdown/0/0: 10 timeouts and 9 unreachable of 40.
#[test]
fn linkdown_0_0_times_out_and_gets_unreachable() {
    let rs = linux_5_16();
    let m = phase(tcp(variant(&rs, "linkdown 0 0")), "main");
    assert!((20..=70).contains(&m.attempted), "{m:?}");
    assert!(m.timeout >= 3 && m.unreach >= 3, "{m:?}");
    assert_eq!(m.refused, 0);
}

/// Measured: every row but 0/0 is clean in the main phase, port-starved at ~10 conn/s.
#[test]
fn every_other_row_is_clean() {
    let rs = linux_5_16();
    for death in DEATHS {
        for row in OTHER_ROWS {
            let label = format!("{death} {row}");
            let t = tcp(variant(&rs, &label));
            let m = phase(t, "main");
            assert_eq!(m.failed, 0, "{label}: {m:?}");
            assert_eq!(m.pkts_to_draining, 0, "{label}: nothing reaches rs2");
            assert_eq!(m.slow, 0, "{label}: no 1 s delay on 6.1");
            assert!((250..=350).contains(&m.attempted), "{label}: {m:?}");
            assert!(m.eaddrnotavail > 100, "{label}: port-starved: {m:?}");
            let r = phase(t, "removed");
            assert_eq!(r.failed, 0, "{label} removed: {r:?}");
        }
    }
}

/// Measured: after `ipvsadm -d`, 6–8 failures in 15 s in the 0/0 rows (entries of the
/// deleted server black-hole until they expire), none elsewhere.
#[test]
fn removed_phase_fails_a_little_in_0_0_rows_only() {
    let rs = linux_5_16();
    for death in DEATHS {
        let r = phase(tcp(variant(&rs, &format!("{death} 0 0"))), "removed");
        assert!((1..=20).contains(&r.failed), "{death}: {r:?}");
        assert_eq!(r.failed, r.timeout, "{death}: silent drops: {r:?}");
        assert!(r.ok > 0);
    }
}

/// Measured: "rs2 keeps InActConn>0 (or ActiveConn>0) throughout", so kube-proxy's
/// graceful termination would never delete it. Without the deletion, rs2 is still listed
/// with connections at the end in the 0/0 rows, and empty in the others.
#[test]
fn rs2_never_drains_in_0_0_rows() {
    let mut sc = Scenario::vm_incident();
    sc.events.retain(|e| e.action != Action::Delete);
    sc.duration_s = 37.5;
    sc.phases.truncate(2);
    let rs = run1(&sc, "linux-5.16");
    for r in &rs {
        let label = r.variant.clone().unwrap();
        let d = r
            .drains
            .iter()
            .find(|d| d.server == "10.0.12.2")
            .expect("rs2 went to weight 0");
        assert_eq!(d.end_s, None);
        let (a, i) = d.counts_at_end.unwrap();
        if label.ends_with("0 0") {
            assert!(a + i > 0, "{label}: ({a}, {i})");
            assert_eq!(r.longest_drain.text(), "never");
        } else {
            assert_eq!(a + i, 0, "{label}: ({a}, {i})");
        }
    }
}

/// Before 5.16 (P3), `expire_nodest_conn=1` does not rescue `conn_reuse_mode=0`: the 0/1 rows
/// fail like 0/0 on linux-5.9; on 4.19 mode 1 stalls each reused port 1 s (P1).
#[test]
fn older_kernels_differ_where_the_history_says() {
    let sc = Scenario::vm_incident();
    let rs = run1(&sc, "linux-5.9");
    let m = phase(tcp(variant(&rs, "kill 0 1")), "main");
    assert!(m.refused > m.attempted / 2, "{m:?}");
    let rs = run1(&sc, "linux-4.19");
    let m = phase(tcp(variant(&rs, "kill 1 1")), "main");
    assert_eq!(m.failed, 0);
    assert_eq!(m.slow, m.ok, "every reused port stalls 1 s: {m:?}");
    assert!(m.connect_ok.p50_ms.unwrap() >= 1000.0);
}

/// The measured table the `vm` report prints is the one kept in the repository
/// (`tests/fixtures/kernel-6.1/incident-port-reuse/`, explained in `docs/kernel-6.1-incident.md`):
/// every row of `rvs_sim::builtin::VM_MEASURED` equals the fixture's row, cell by cell.
#[test]
fn measured_table_is_the_repository_fixture() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let table = std::fs::read_to_string(
        root.join("tests/fixtures/kernel-6.1/incident-port-reuse/incident-port-reuse.table.md"),
    )
    .expect("the measured table is in the repository");
    let rows: Vec<Vec<String>> = table
        .lines()
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|c| c.len() == 14 && ["kill", "drop", "linkdown"].contains(&c[0].as_str()))
        .collect();
    assert_eq!(rows.len(), rvs_sim::builtin::VM_MEASURED.len(), "{table}");
    for (row, (death, mode, nodest, main, lat, removed)) in
        rows.iter().zip(rvs_sim::builtin::VM_MEASURED)
    {
        let ms = |v: f64| format!("{v:.1}");
        let mut want = vec![death.to_string(), mode.to_string(), nodest.to_string()];
        want.extend(main.iter().map(|v| v.to_string()));
        want.push(format!("{} / {} / {}", ms(lat[0]), ms(lat[1]), ms(lat[2])));
        want.extend(removed.iter().map(|v| v.to_string()));
        assert_eq!(row, &want, "row {death} {mode} {nodest}");
    }
    let doc = std::fs::read_to_string(root.join("docs/kernel-6.1-incident.md")).unwrap();
    assert!(doc.contains("| kill | 0 | 0 | 554 | 93 | 461 |"));
}
