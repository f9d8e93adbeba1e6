//! The built-in scenarios, kept as TOML files under `crates/rvs-sim/scenarios/` so that they are
//! also the schema's worked examples.

/// `incident`: the seed incident (see `scenarios/incident.toml`).
pub const INCIDENT: &str = include_str!("../scenarios/incident.toml");

/// `vm-incident`: the scenario measured on a real Linux 6.1 in a VM (see
/// `scenarios/vm-incident.toml` and `docs/kernel-6.1-incident.md`).
pub const VM_INCIDENT: &str = include_str!("../scenarios/vm-incident.toml");

/// The measured Linux 6.1 table of `docs/kernel-6.1-incident.md` (main and removed phases; the
/// data are in `tests/fixtures/kernel-6.1/incident-port-reuse/`), for the
/// `vm` report to print beside the simulated `linux-5.16` rows: death, conn_reuse_mode,
/// expire_nodest_conn, main attempted / ok / refused / timeout / unreach / pkts to rs2 /
/// eaddrnotavail, connect p50 / p99 ok / max all (ms), removed attempted / ok / failed.
#[allow(clippy::type_complexity)]
pub const VM_MEASURED: [(&str, u8, u8, [u32; 7], [f64; 3], [u32; 3]); 12] = [
    (
        "kill",
        0,
        0,
        [554, 93, 461, 0, 0, 461, 0],
        [1.9, 12.4, 12.5],
        [52, 46, 6],
    ),
    (
        "kill",
        0,
        1,
        [304, 304, 0, 0, 0, 0, 567],
        [1.7, 10.1, 17.8],
        [155, 155, 0],
    ),
    (
        "kill",
        1,
        0,
        [303, 303, 0, 0, 0, 0, 540],
        [1.8, 15.1, 16.5],
        [153, 153, 0],
    ),
    (
        "kill",
        1,
        1,
        [305, 305, 0, 0, 0, 0, 525],
        [2.0, 12.5, 16.9],
        [152, 152, 0],
    ),
    (
        "drop",
        0,
        0,
        [35, 20, 0, 15, 0, 30, 0],
        [2.2, 10.0, 2004.7],
        [18, 10, 8],
    ),
    (
        "drop",
        0,
        1,
        [303, 303, 0, 0, 0, 0, 545],
        [1.7, 9.3, 10.7],
        [154, 154, 0],
    ),
    (
        "drop",
        1,
        0,
        [303, 303, 0, 0, 0, 0, 557],
        [1.7, 6.7, 28.4],
        [155, 155, 0],
    ),
    (
        "drop",
        1,
        1,
        [304, 304, 0, 0, 0, 0, 513],
        [2.1, 12.5, 18.1],
        [160, 160, 0],
    ),
    (
        "linkdown",
        0,
        0,
        [40, 21, 0, 10, 9, 30, 0],
        [4.2, 15.5, 2005.9],
        [14, 6, 8],
    ),
    (
        "linkdown",
        0,
        1,
        [305, 305, 0, 0, 0, 0, 569],
        [1.7, 7.6, 11.5],
        [157, 157, 0],
    ),
    (
        "linkdown",
        1,
        0,
        [307, 307, 0, 0, 0, 0, 566],
        [1.8, 10.0, 16.1],
        [153, 153, 0],
    ),
    (
        "linkdown",
        1,
        1,
        [302, 302, 0, 0, 0, 0, 567],
        [1.8, 11.6, 13.5],
        [152, 152, 0],
    ),
];
