//! The demo's profiles: an engine profile plus the sysctls of the node it stands for.

use rvs_core::profile::Profile;
use serde::Serialize;

/// One row of the demo: which kernel's decisions the daemon reproduces, with which knobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DemoProfile {
    /// The name `--profile` accepts (`safe`, `linux-5.16`, `linux-4.19/reuse0`, ...).
    pub name: &'static str,
    /// The label of the table row.
    pub label: &'static str,
    /// The engine profile.
    #[serde(serialize_with = "ser_profile")]
    pub engine: Profile,
    /// `[sysctl]` of the daemon's config (name, value); knobs not listed keep their defaults.
    pub sysctls: &'static [(&'static str, &'static str)],
    /// `[engine] netfilter_conntrack`: netfilter tracks the director's flows (a kube-proxy
    /// node with its iptables rules).
    pub netfilter_conntrack: bool,
    /// What the row stands for, in one sentence.
    pub about: &'static str,
    /// What the row is expected to show (a kernel fact, not a measurement).
    pub expect: &'static str,
}

fn ser_profile<S: serde::Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// kube-proxy's IPVS sysctls (kubernetes `pkg/proxy/ipvs/proxier.go`, `NewProxier`) with
/// `conn_reuse_mode=0`, as it set them on kernels 4.1–5.8.
const KUBE_PROXY_REUSE0: &[(&str, &str)] = &[
    ("conn_reuse_mode", "0"),
    ("expire_nodest_conn", "1"),
    ("expire_quiescent_template", "1"),
    ("conntrack", "1"),
];

/// The same with `conn_reuse_mode` at its default, 1 (kube-proxy leaves it on kernels ≥ 5.9,
/// and on pre-4.1 version strings such as CentOS 7's backport).
const KUBE_PROXY_REUSE1: &[(&str, &str)] = &[
    ("conn_reuse_mode", "1"),
    ("expire_nodest_conn", "1"),
    ("expire_quiescent_template", "1"),
    ("conntrack", "1"),
];

/// The 6.1 VM's director (`docs/kernel-6.1-incident.md`): conntrack on, quiescent templates
/// expired, kube-proxy's iptables rules (netfilter conntrack on); the rows vary
/// `conn_reuse_mode` / `expire_nodest_conn`.
const VM_0_0: &[(&str, &str)] = &[
    ("conn_reuse_mode", "0"),
    ("expire_nodest_conn", "0"),
    ("expire_quiescent_template", "1"),
    ("conntrack", "1"),
];
const VM_0_1: &[(&str, &str)] = &[
    ("conn_reuse_mode", "0"),
    ("expire_nodest_conn", "1"),
    ("expire_quiescent_template", "1"),
    ("conntrack", "1"),
];
const VM_1_0: &[(&str, &str)] = &[
    ("conn_reuse_mode", "1"),
    ("expire_nodest_conn", "0"),
    ("expire_quiescent_template", "1"),
    ("conntrack", "1"),
];
const VM_1_1: &[(&str, &str)] = KUBE_PROXY_REUSE1;

/// Every profile the demo knows, default rows first.
pub const ALL: &[DemoProfile] = &[
    DemoProfile {
        name: "safe",
        label: "safe",
        engine: Profile::Safe,
        sysctls: &[],
        netfilter_conntrack: false,
        about: "rvs's own rules, default sysctls",
        expect: "no failures, no stalls: a reused port's SYN is scheduled afresh, never sent to a weight-0 or stopped server",
    },
    DemoProfile {
        name: "linux-5.16",
        label: "linux-5.16 0/0",
        engine: Profile::Linux5_16,
        sysctls: VM_0_0,
        netfilter_conntrack: true,
        about: "Linux >= 5.16 (6.1 measured in docs/kernel-6.1-incident.md) with conn_reuse_mode=0, expire_nodest_conn=0; the VM's director settings otherwise (conntrack=1, expire_quiescent_template=1, netfilter conntrack on)",
        expect: "a reused port's SYN follows its old entry to the weight-0 server, then is refused once that server is stopped; the server never drains (6.1: 461 of 554 refused)",
    },
    DemoProfile {
        name: "linux-4.19/reuse0",
        label: "linux-4.19 reuse0",
        engine: Profile::Linux4_19,
        sysctls: KUBE_PROXY_REUSE0,
        netfilter_conntrack: true,
        about: "Linux 4.19 with kube-proxy's sysctls on old kernels: conn_reuse_mode=0, expire_nodest_conn=1, expire_quiescent_template=1, conntrack=1, netfilter conntrack on",
        expect: "reused ports stick to their old server through weight 0 and after it is stopped (kubernetes#81775); the server never drains",
    },
    DemoProfile {
        name: "linux-4.19/reuse1",
        label: "linux-4.19 reuse1",
        engine: Profile::Linux4_19,
        sysctls: KUBE_PROXY_REUSE1,
        netfilter_conntrack: true,
        about: "Linux 4.19 with conn_reuse_mode=1 and the same conntrack settings",
        expect: "a reused port's first SYN is dropped and retransmitted 1 s later: connects of ~1 s (kubernetes#70747)",
    },
    DemoProfile {
        name: "linux-5.16/0-1",
        label: "linux-5.16 0/1",
        engine: Profile::Linux5_16,
        sysctls: VM_0_1,
        netfilter_conntrack: true,
        about: "Linux >= 5.16 with conn_reuse_mode=0, expire_nodest_conn=1 (VM director settings otherwise)",
        expect: "clean: since c95c07836fa4 (5.16) a SYN whose entry points to a weight-0 server is rescheduled when expire_nodest_conn=1, whatever conn_reuse_mode (6.1: 304 of 304 ok)",
    },
    DemoProfile {
        name: "linux-5.16/1-0",
        label: "linux-5.16 1/0",
        engine: Profile::Linux5_16,
        sysctls: VM_1_0,
        netfilter_conntrack: true,
        about: "Linux >= 5.16 with conn_reuse_mode=1, expire_nodest_conn=0 (VM director settings otherwise)",
        expect: "clean: a SYN on a TIME_WAIT entry is rescheduled, not dropped, since the SYN's conntrack is unconfirmed (5.9, f0a5e4d7a594) (6.1: 303 of 303 ok)",
    },
    DemoProfile {
        name: "linux-5.16/1-1",
        label: "linux-5.16 1/1",
        engine: Profile::Linux5_16,
        sysctls: VM_1_1,
        netfilter_conntrack: true,
        about: "Linux >= 5.16 with kube-proxy's sysctls on kernels >= 5.9 (conn_reuse_mode left at 1, expire_nodest_conn=1, expire_quiescent_template=1, conntrack=1, netfilter conntrack on)",
        expect: "clean (6.1: 305 of 305 ok)",
    },
];

/// The rows `rvs demo` runs without `--profile`.
pub const DEFAULT: [&str; 4] = [
    "safe",
    "linux-5.16",
    "linux-4.19/reuse0",
    "linux-4.19/reuse1",
];

/// The help text listing the names `--profile` accepts.
pub const HELP: &str = "safe, linux-5.16 (= linux-5.16/0-0), linux-4.19/reuse0, \
linux-4.19/reuse1, linux-4.19 (both 4.19 rows), linux-5.16/0-1, linux-5.16/1-0, linux-5.16/1-1 \
(= linux-5.16/kube-proxy), linux-5.16/all (the four 5.16 rows, as in the 6.1 kernel's table)";

/// The profiles a `--profile` value selects (`linux-4.19` selects both 4.19 rows).
pub fn select(name: &str) -> Result<Vec<&'static DemoProfile>, String> {
    let n = name.trim();
    let alias = match n {
        "linux-4.19" => vec!["linux-4.19/reuse0", "linux-4.19/reuse1"],
        "linux-5.16/0-0" => vec!["linux-5.16"],
        "linux-5.16/kube-proxy" => vec!["linux-5.16/1-1"],
        "linux-5.16/all" => vec![
            "linux-5.16",
            "linux-5.16/0-1",
            "linux-5.16/1-0",
            "linux-5.16/1-1",
        ],
        other => vec![other],
    };
    alias
        .into_iter()
        .map(|a| {
            ALL.iter()
                .find(|p| p.name == a)
                .ok_or_else(|| format!("unknown demo profile '{name}' (expected one of: {HELP})"))
        })
        .collect()
}

/// The profiles of a command line: the default rows when none is given, else each selection
/// in order, without repeats.
pub fn resolve(names: &[String]) -> Result<Vec<&'static DemoProfile>, String> {
    let mut out: Vec<&'static DemoProfile> = Vec::new();
    let names: Vec<String> = if names.is_empty() {
        DEFAULT.iter().map(|s| s.to_string()).collect()
    } else {
        names
            .iter()
            .flat_map(|n| n.split(',').map(str::to_string))
            .collect()
    };
    for n in &names {
        for p in select(n)? {
            if !out.iter().any(|q| q.name == p.name) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_four_rows_of_the_issue() {
        let v = resolve(&[]).unwrap();
        let names: Vec<_> = v.iter().map(|p| p.name).collect();
        assert_eq!(names, DEFAULT);
    }

    #[test]
    fn linux_4_19_selects_both_variants_and_repeats_are_dropped() {
        let v = resolve(&[
            "linux-4.19".into(),
            "linux-4.19/reuse1".into(),
            "safe".into(),
        ])
        .unwrap();
        let names: Vec<_> = v.iter().map(|p| p.name).collect();
        assert_eq!(names, ["linux-4.19/reuse0", "linux-4.19/reuse1", "safe"]);
        let v = resolve(&["safe,linux-5.16".into()]).unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let e = resolve(&["linux-3.10".into()]).unwrap_err();
        assert!(e.contains("linux-4.19/reuse0"), "{e}");
    }

    #[test]
    fn every_sysctl_is_a_known_knob() {
        for p in ALL {
            let mut s = rvs_core::sysctl::Sysctls::default();
            for (k, v) in p.sysctls {
                s.set(k, v)
                    .unwrap_or_else(|e| panic!("{}: {k}={v}: {e}", p.name));
            }
        }
    }
}
