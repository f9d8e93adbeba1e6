//! The real Linux 6.1 kernel's table for the same kind of scenario, printed next to the demo's
//! rows: the `kill` rows of the measurement in `docs/kernel-6.1-incident.md` (data:
//! `tests/fixtures/kernel-6.1/incident-port-reuse/`), embedded in the binary, or the file named
//! by `$RVS_KERNEL_REFERENCE` when it is set (any file with the same table).

use std::path::PathBuf;

use serde::Serialize;

/// Where the measurements come from.
pub const SOURCE: &str = "docs/kernel-6.1-incident.md in the rvs repository (real IPVS, Debian \
6.1.0-56-amd64 in a QEMU VM; data in tests/fixtures/kernel-6.1/incident-port-reuse/)";

/// The environment variable naming the reference file.
pub const ENV: &str = "RVS_KERNEL_REFERENCE";

/// One measured row (death mode `kill`: the real server's processes killed, its kernel
/// answers RST).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelRow {
    /// `conn_reuse_mode`.
    pub conn_reuse_mode: u8,
    /// `expire_nodest_conn`.
    pub expire_nodest_conn: u8,
    /// Attempts in the 30 s with rs2 at weight 0 and dead.
    pub attempted: u64,
    /// Succeeded.
    pub ok: u64,
    /// Refused.
    pub refused: u64,
    /// Timed out (2 s).
    pub timeout: u64,
    /// Host unreachable.
    pub unreach: u64,
    /// Packets IPVS still sent to the dead rs2 (its InPkts).
    pub pkts_to_dead: u64,
    /// Connect latency p50 / p99 of successes / max of all, as printed (ms).
    pub latency_ms: String,
    /// Failures in the 15 s after rs2 was deleted.
    pub removed_failed: u64,
}

/// The reference table and where it was read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reference {
    /// The file read (`$RVS_KERNEL_REFERENCE`), or `embedded`.
    pub from: String,
    /// What the measurements are.
    pub source: &'static str,
    /// The `kill` rows.
    pub rows: Vec<KernelRow>,
}

/// The embedded copy: the `kill` rows of
/// `tests/fixtures/kernel-6.1/incident-port-reuse/incident-port-reuse.table.md`, as measured (a
/// test checks that they are equal).
const EMBEDDED: &str = "\
| kill | 0 | 0 | 554 | 93 | 461 | 0 | 0 | 461 | 0 | 1.9 / 12.4 / 12.5 | 52 | 46 | 6 |
| kill | 0 | 1 | 304 | 304 | 0 | 0 | 0 | 0 | 567 | 1.7 / 10.1 / 17.8 | 155 | 155 | 0 |
| kill | 1 | 0 | 303 | 303 | 0 | 0 | 0 | 0 | 540 | 1.8 / 15.1 / 16.5 | 153 | 153 | 0 |
| kill | 1 | 1 | 305 | 305 | 0 | 0 | 0 | 0 | 525 | 2.0 / 12.5 / 16.9 | 152 | 152 | 0 |
";

/// Parses the `kill` rows of the file's results table.
pub fn parse(text: &str) -> Vec<KernelRow> {
    text.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            if cells.len() < 14 || cells[0] != "kill" {
                return None;
            }
            let n = |i: usize| cells[i].parse::<u64>().ok();
            Some(KernelRow {
                conn_reuse_mode: cells[1].parse().ok()?,
                expire_nodest_conn: cells[2].parse().ok()?,
                attempted: n(3)?,
                ok: n(4)?,
                refused: n(5)?,
                timeout: n(6)?,
                unreach: n(7)?,
                pkts_to_dead: n(8)?,
                latency_ms: cells[10].to_string(),
                removed_failed: n(13)?,
            })
        })
        .collect()
}

fn candidates() -> Vec<PathBuf> {
    std::env::var_os(ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect()
}

/// The reference: the file named by `$RVS_KERNEL_REFERENCE` if it is readable and has the four
/// `kill` rows, else the embedded copy.
pub fn load() -> Reference {
    for p in candidates() {
        if let Ok(text) = std::fs::read_to_string(&p) {
            let rows = parse(&text);
            if rows.len() >= 4 {
                let from = p.canonicalize().unwrap_or(p).to_string_lossy().into_owned();
                return Reference {
                    from,
                    source: SOURCE,
                    rows,
                };
            }
        }
    }
    Reference {
        from: "embedded".into(),
        source: SOURCE,
        rows: parse(EMBEDDED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rows_parse() {
        let r = parse(EMBEDDED);
        assert_eq!(r.len(), 4);
        assert_eq!((r[0].conn_reuse_mode, r[0].expire_nodest_conn), (0, 0));
        assert_eq!((r[0].attempted, r[0].refused), (554, 461));
        assert_eq!(r[0].latency_ms, "1.9 / 12.4 / 12.5");
        assert_eq!(r[0].removed_failed, 6);
    }

    #[test]
    fn header_and_other_death_modes_are_skipped() {
        let t = "| death | conn_reuse_mode | x |\n|---|---|\n| drop | 0 | 0 | 35 | 20 | 0 | 15 | 0 | 30 | 0 | a | 18 | 10 | 8 |\n";
        assert!(parse(t).is_empty());
    }

    #[test]
    fn the_reference_has_the_four_settings() {
        let r = load();
        let pairs: Vec<_> = r
            .rows
            .iter()
            .map(|k| (k.conn_reuse_mode, k.expire_nodest_conn))
            .collect();
        assert_eq!(pairs, [(0, 0), (0, 1), (1, 0), (1, 1)], "{}", r.from);
    }

    /// The embedded rows are the measurement kept in the repository, and nothing outside the
    /// repository is read unless `$RVS_KERNEL_REFERENCE` asks for it.
    #[test]
    fn embedded_rows_are_the_repository_fixture() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let table = std::fs::read_to_string(
            root.join("tests/fixtures/kernel-6.1/incident-port-reuse/incident-port-reuse.table.md"),
        )
        .expect("the measured table is in the repository");
        assert_eq!(parse(&table), parse(EMBEDDED));
        assert!(root.join("docs/kernel-6.1-incident.md").is_file());
        assert!(SOURCE.starts_with("docs/kernel-6.1-incident.md"));
        let set = std::env::var_os(ENV).is_some_and(|p| !p.is_empty());
        assert_eq!(candidates().len(), usize::from(set));
    }
}
