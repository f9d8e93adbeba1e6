//! The `net.ipv4.vs.*` knobs (kernel-semantics §1.7), under their kernel names and with the kernel's
//! defaults (golden `sysctl-net.ipv4.vs-defaults.txt`, Linux 6.1).
//!
//! Every knob that changes a forwarding decision acts on the engine. The sync-daemon knobs and
//! the memory-driven defence thresholds are accepted and listed, so scripts written for the
//! kernel keep working, but rvs has no sync daemon yet; [`Sysctls::describe`] says which knobs
//! act and which are only stored.

use serde::{Deserialize, Serialize};

/// All IPVS sysctls of a network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctls {
    /// Drop rate of the `drop_packet` defence in mode 3.
    pub am_droprate: i32,
    /// Available-memory threshold (pages) of the automatic defences.
    pub amemthresh: i32,
    /// Do not process packets while a backup sync daemon runs.
    pub backup_only: i32,
    /// Forward unchanged when no real server is available (fwmark services).
    pub cache_bypass: i32,
    /// Port-reuse handling (kernel-semantics §2.4): 0, 1 (default) or 2.
    pub conn_reuse_mode: i32,
    /// Keep netfilter conntrack entries for IPVS connections (sets NFCT on new connections).
    pub conntrack: i32,
    /// Random connection-entry dropping defence, 0..3 (kernel-semantics §2.12).
    pub drop_entry: i32,
    /// New-connection packet dropping defence, 0..3 (kernel-semantics §2.12).
    pub drop_packet: i32,
    /// Expire connections whose real server was removed (kernel-semantics §2.5).
    pub expire_nodest_conn: i32,
    /// Persistence templates of weight-0 real servers are invalid (kernel-semantics §5.3).
    pub expire_quiescent_template: i32,
    /// Mark packets of unknown protocols so tunnelled payloads are not processed twice.
    pub ignore_tunneled: i32,
    /// lblc cache expiration, seconds.
    pub lblc_expiration: i32,
    /// lblcr set expiration, seconds.
    pub lblcr_expiration: i32,
    /// Answer stray real-server packets with ICMP port unreachable (kernel-semantics §2.8).
    pub nat_icmp_send: i32,
    /// Path MTU discovery for tunnelled packets.
    pub pmtu_disc: i32,
    /// Run the rate estimator (5.16+).
    pub run_estimation: i32,
    /// Schedule new connections from ICMP errors (kernel-semantics §2.9).
    pub schedule_icmp: i32,
    /// The secure TCP state table defence, 0..3 (kernel-semantics §2.12, §3.1.4).
    pub secure_tcp: i32,
    /// Create SCTP connections from non-INIT chunks.
    pub sloppy_sctp: i32,
    /// Create TCP connections from non-SYN segments.
    pub sloppy_tcp: i32,
    /// Re-route NAT replies after SNAT.
    pub snat_reroute: i32,
    /// Sync only templates.
    pub sync_persist_mode: i32,
    /// Number of sync threads/ports.
    pub sync_ports: i32,
    /// Maximum queued sync buffers.
    pub sync_qlen_max: i64,
    /// Resync period for long-lived connections, seconds.
    pub sync_refresh_period: i32,
    /// Resync retries.
    pub sync_retries: i32,
    /// Sync socket buffer size.
    pub sync_sock_size: i32,
    /// Sync threshold and period.
    pub sync_threshold: (i32, i32),
    /// Sync wire format version.
    pub sync_version: i32,
}

impl Default for Sysctls {
    /// The kernel's defaults (6.1).
    fn default() -> Self {
        Sysctls {
            am_droprate: 10,
            amemthresh: 1024,
            backup_only: 0,
            cache_bypass: 0,
            conn_reuse_mode: 1,
            conntrack: 0,
            drop_entry: 0,
            drop_packet: 0,
            expire_nodest_conn: 0,
            expire_quiescent_template: 0,
            ignore_tunneled: 0,
            lblc_expiration: 86400,
            lblcr_expiration: 86400,
            nat_icmp_send: 0,
            pmtu_disc: 1,
            run_estimation: 1,
            schedule_icmp: 0,
            secure_tcp: 0,
            sloppy_sctp: 0,
            sloppy_tcp: 0,
            snat_reroute: 1,
            sync_persist_mode: 0,
            sync_ports: 1,
            sync_qlen_max: 7139,
            sync_refresh_period: 0,
            sync_retries: 0,
            sync_sock_size: 0,
            sync_threshold: (3, 50),
            sync_version: 1,
        }
    }
}

/// Whether a knob acts on the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Changes forwarding decisions or what the engine reports.
    Acts,
    /// Accepted and listed; rvs has no counterpart yet (sync daemon, kernel memory).
    Stored,
}

/// The prefix of every name.
pub const PREFIX: &str = "net.ipv4.vs.";

/// Every knob name, in `/proc/sys` (alphabetical) order, and whether it acts.
pub const NAMES: [(&str, Effect); 29] = [
    ("am_droprate", Effect::Acts),
    ("amemthresh", Effect::Stored),
    ("backup_only", Effect::Stored),
    ("cache_bypass", Effect::Acts),
    ("conn_reuse_mode", Effect::Acts),
    ("conntrack", Effect::Acts),
    ("drop_entry", Effect::Acts),
    ("drop_packet", Effect::Acts),
    ("expire_nodest_conn", Effect::Acts),
    ("expire_quiescent_template", Effect::Acts),
    ("ignore_tunneled", Effect::Stored),
    ("lblc_expiration", Effect::Acts),
    ("lblcr_expiration", Effect::Acts),
    ("nat_icmp_send", Effect::Acts),
    ("pmtu_disc", Effect::Stored),
    ("run_estimation", Effect::Acts),
    ("schedule_icmp", Effect::Acts),
    ("secure_tcp", Effect::Acts),
    ("sloppy_sctp", Effect::Acts),
    ("sloppy_tcp", Effect::Acts),
    ("snat_reroute", Effect::Stored),
    ("sync_persist_mode", Effect::Stored),
    ("sync_ports", Effect::Stored),
    ("sync_qlen_max", Effect::Stored),
    ("sync_refresh_period", Effect::Stored),
    ("sync_retries", Effect::Stored),
    ("sync_sock_size", Effect::Stored),
    ("sync_threshold", Effect::Stored),
    ("sync_version", Effect::Stored),
];

/// Why a knob marked [`Effect::Stored`] does nothing in rvs (`None` for a knob that acts, or an
/// unknown name). `rvs sysctl` prints it when such a knob is set, and the daemon logs it when
/// its configuration sets one to a value other than the default.
pub fn inert_reason(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix(PREFIX).unwrap_or(name);
    let (_, effect) = NAMES.iter().find(|(n, _)| *n == name)?;
    if *effect == Effect::Acts {
        return None;
    }
    Some(match name {
        "amemthresh" => {
            "rvs measures no kernel memory: the automatic modes of drop_entry, drop_packet and \
             secure_tcp look at the connection table's free room (conn_max) instead"
        }
        "pmtu_disc" => {
            "rvs never fragments a forwarded packet itself; an oversized one is handed to the \
             kernel's output path, which applies its own path-MTU rules whatever this says"
        }
        "snat_reroute" => {
            "replies leave through the route the kernel picks for their destination; rvs does \
             not re-route them by their rewritten source"
        }
        "ignore_tunneled" => {
            "the TUN data plane cannot tell a packet that a tunnel decapsulated from any other, \
             so every packet is handled"
        }
        _ => "the connection sync daemon (master/backup) is not implemented yet",
    })
}

fn parse_int(name: &str, v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| format!("{PREFIX}{name}: '{v}' is not an integer"))?;
    if n < lo || n > hi {
        return Err(format!("{PREFIX}{name}: {n} is out of range {lo}..={hi}"));
    }
    Ok(n)
}

impl Sysctls {
    /// The value of a knob as `/proc/sys` prints it (`sync_threshold` as `3 50`).
    pub fn get(&self, name: &str) -> Option<String> {
        let name = name.strip_prefix(PREFIX).unwrap_or(name);
        let v = match name {
            "am_droprate" => self.am_droprate.into(),
            "amemthresh" => self.amemthresh.into(),
            "backup_only" => self.backup_only.into(),
            "cache_bypass" => self.cache_bypass.into(),
            "conn_reuse_mode" => self.conn_reuse_mode.into(),
            "conntrack" => self.conntrack.into(),
            "drop_entry" => self.drop_entry.into(),
            "drop_packet" => self.drop_packet.into(),
            "expire_nodest_conn" => self.expire_nodest_conn.into(),
            "expire_quiescent_template" => self.expire_quiescent_template.into(),
            "ignore_tunneled" => self.ignore_tunneled.into(),
            "lblc_expiration" => self.lblc_expiration.into(),
            "lblcr_expiration" => self.lblcr_expiration.into(),
            "nat_icmp_send" => self.nat_icmp_send.into(),
            "pmtu_disc" => self.pmtu_disc.into(),
            "run_estimation" => self.run_estimation.into(),
            "schedule_icmp" => self.schedule_icmp.into(),
            "secure_tcp" => self.secure_tcp.into(),
            "sloppy_sctp" => self.sloppy_sctp.into(),
            "sloppy_tcp" => self.sloppy_tcp.into(),
            "snat_reroute" => self.snat_reroute.into(),
            "sync_persist_mode" => self.sync_persist_mode.into(),
            "sync_ports" => self.sync_ports.into(),
            "sync_qlen_max" => self.sync_qlen_max,
            "sync_refresh_period" => self.sync_refresh_period.into(),
            "sync_retries" => self.sync_retries.into(),
            "sync_sock_size" => self.sync_sock_size.into(),
            "sync_threshold" => {
                return Some(format!(
                    "{} {}",
                    self.sync_threshold.0, self.sync_threshold.1
                ));
            }
            "sync_version" => self.sync_version.into(),
            _ => return None,
        };
        Some(v.to_string())
    }

    /// Sets a knob from its text value, with the kernel's validation. On error nothing changes
    /// and the message names the knob and the problem.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let name = name.strip_prefix(PREFIX).unwrap_or(name);
        let int = |lo: i64, hi: i64| parse_int(name, value, lo, hi);
        let i32max = i32::MAX as i64;
        let bool01 = || parse_int(name, value, 0, 1).map(|v| v as i32);
        match name {
            "am_droprate" => self.am_droprate = int(0, i32max)? as i32,
            "amemthresh" => self.amemthresh = int(0, i32max)? as i32,
            "backup_only" => self.backup_only = bool01()?,
            "cache_bypass" => self.cache_bypass = bool01()?,
            "conn_reuse_mode" => self.conn_reuse_mode = int(0, 3)? as i32,
            "conntrack" => self.conntrack = bool01()?,
            "drop_entry" => self.drop_entry = int(0, 3)? as i32,
            "drop_packet" => self.drop_packet = int(0, 3)? as i32,
            "expire_nodest_conn" => self.expire_nodest_conn = bool01()?,
            "expire_quiescent_template" => self.expire_quiescent_template = bool01()?,
            "ignore_tunneled" => self.ignore_tunneled = bool01()?,
            "lblc_expiration" => self.lblc_expiration = int(1, 2_678_400)? as i32,
            "lblcr_expiration" => self.lblcr_expiration = int(1, 2_678_400)? as i32,
            "nat_icmp_send" => self.nat_icmp_send = bool01()?,
            "pmtu_disc" => self.pmtu_disc = bool01()?,
            "run_estimation" => self.run_estimation = bool01()?,
            "schedule_icmp" => self.schedule_icmp = bool01()?,
            "secure_tcp" => self.secure_tcp = int(0, 3)? as i32,
            "sloppy_sctp" => self.sloppy_sctp = bool01()?,
            "sloppy_tcp" => self.sloppy_tcp = bool01()?,
            "snat_reroute" => self.snat_reroute = bool01()?,
            "sync_persist_mode" => self.sync_persist_mode = bool01()?,
            "sync_ports" => {
                let v = int(1, 64)?;
                if v & (v - 1) != 0 {
                    return Err(format!("{PREFIX}sync_ports: {v} is not a power of 2"));
                }
                self.sync_ports = v as i32
            }
            "sync_qlen_max" => self.sync_qlen_max = int(0, i64::MAX)?,
            "sync_refresh_period" => self.sync_refresh_period = int(0, i32max)? as i32,
            "sync_retries" => self.sync_retries = int(0, 3)? as i32,
            "sync_sock_size" => self.sync_sock_size = int(0, i32max)? as i32,
            "sync_threshold" => {
                let mut it = value.split_whitespace();
                let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
                    return Err(format!(
                        "{PREFIX}sync_threshold: expected two integers, got '{value}'"
                    ));
                };
                let t = parse_int(name, a, 0, i32max)?;
                let p = parse_int(name, b, 0, i32max)?;
                if p != 0 && t >= p {
                    return Err(format!(
                        "{PREFIX}sync_threshold: threshold {t} must be below period {p}"
                    ));
                }
                self.sync_threshold = (t as i32, p as i32)
            }
            "sync_version" => self.sync_version = bool01()?,
            _ => return Err(format!("unknown sysctl '{PREFIX}{name}'")),
        }
        Ok(())
    }

    /// `sysctl -a` style lines: `net.ipv4.vs.NAME = VALUE`.
    pub fn list(&self) -> Vec<(String, String)> {
        NAMES
            .iter()
            .map(|(n, _)| (format!("{PREFIX}{n}"), self.get(n).unwrap_or_default()))
            .collect()
    }

    /// Whether a knob acts on the engine, by name.
    pub fn describe(name: &str) -> Option<Effect> {
        let name = name.strip_prefix(PREFIX).unwrap_or(name);
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stored-only knob says why it does nothing; no acting knob claims to be inert.
    #[test]
    fn inert_knobs_say_why() {
        for (name, effect) in NAMES {
            let why = inert_reason(name);
            assert_eq!(why.is_some(), effect == Effect::Stored, "{name}");
            assert_eq!(
                inert_reason(&format!("{PREFIX}{name}")),
                why,
                "{name} with prefix"
            );
        }
        assert!(inert_reason("pmtu_disc").unwrap().contains("fragment"));
        assert!(
            inert_reason("sync_version")
                .unwrap()
                .contains("sync daemon")
        );
        assert_eq!(inert_reason("no_such_knob"), None);
    }

    /// The defaults, listed as the kernel lists them (golden sysctl-net.ipv4.vs-defaults.txt).
    #[test]
    fn defaults_match_golden_spec_1_7() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/kernel-6.1/ipvsadm-golden/sysctl-net.ipv4.vs-defaults.txt"
        );
        let golden =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let ours: String = Sysctls::default()
            .list()
            .into_iter()
            .map(|(n, v)| format!("{n} = {v}\n"))
            .collect();
        assert_eq!(ours, golden);
    }

    #[test]
    fn set_validates_and_keeps_state_on_error() {
        let mut s = Sysctls::default();
        s.set("net.ipv4.vs.conn_reuse_mode", "0").unwrap();
        assert_eq!(s.conn_reuse_mode, 0);
        let before = s.clone();
        assert!(
            s.set("conn_reuse_mode", "7")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            s.set("expire_nodest_conn", "x")
                .unwrap_err()
                .contains("not an integer")
        );
        assert!(s.set("nope", "1").unwrap_err().contains("unknown sysctl"));
        assert!(s.set("sync_threshold", "50 3").is_err());
        assert!(s.set("sync_ports", "3").is_err());
        assert_eq!(s, before);
        s.set("sync_threshold", "4 60").unwrap();
        assert_eq!(s.get("sync_threshold").unwrap(), "4 60");
    }
}
