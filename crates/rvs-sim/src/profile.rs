//! Profile rows: which engine profile, with which sysctls, a run uses.
//!
//! The built-in rows are the issue's: `safe`, `linux-4.19` with `conn_reuse_mode` 0 (what
//! kube-proxy sets on 4.1 ≤ kernel < 5.9) and 1 (a node where it is left at the default, e.g. a
//! vendor kernel skipped by kube-proxy's version check), `linux-5.9` and `linux-5.16` (where
//! kube-proxy leaves `conn_reuse_mode` at 1). Every row carries kube-proxy's other sysctls
//! (kubernetes `pkg/proxy/ipvs/proxier.go`, `NewProxier`): `conntrack=1`, `expire_nodest_conn=1`,
//! `expire_quiescent_template=1`, and netfilter conntrack tracking the flows (kube-proxy's
//! iptables rules register its hooks). A scenario's `[engine]` and `[[variants]]` sysctls are
//! applied on top.

use rvs_core::Profile;
use serde::Serialize;

use crate::scenario::Scenario;

/// One row: an engine profile and its settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProfileSpec {
    /// Row label.
    pub label: String,
    /// The engine profile.
    #[serde(serialize_with = "ser_profile")]
    pub profile: Profile,
    /// Sysctls, in the order they are applied.
    #[serde(serialize_with = "ser_pairs")]
    pub sysctls: Vec<(String, String)>,
    /// Whether netfilter conntrack tracks the flows.
    pub netfilter_conntrack: bool,
}

fn ser_pairs<S: serde::Serializer>(v: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, val) in v {
        m.serialize_entry(k, val)?;
    }
    m.end()
}

fn ser_profile<S: serde::Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// kube-proxy's IPVS sysctls, with `conn_reuse_mode` as given (`None`: left at the default).
pub fn kube_proxy_sysctls(conn_reuse_mode: Option<i32>) -> Vec<(String, String)> {
    let mut v = vec![("conntrack".to_string(), "1".to_string())];
    if let Some(m) = conn_reuse_mode {
        v.push(("conn_reuse_mode".into(), m.to_string()));
    }
    v.push(("expire_nodest_conn".into(), "1".into()));
    v.push(("expire_quiescent_template".into(), "1".into()));
    v
}

/// The five built-in rows, in report order.
pub fn builtins() -> Vec<ProfileSpec> {
    let row = |label: &str, profile, mode| ProfileSpec {
        label: label.to_string(),
        profile,
        sysctls: kube_proxy_sysctls(mode),
        netfilter_conntrack: true,
    };
    vec![
        row("safe", Profile::Safe, None),
        row("linux-4.19-reuse0", Profile::Linux4_19, Some(0)),
        row("linux-4.19-reuse1", Profile::Linux4_19, Some(1)),
        row("linux-5.9", Profile::Linux5_9, None),
        row("linux-5.16", Profile::Linux5_16, None),
    ]
}

/// Every row a scenario can name: the built-ins, then its custom profiles.
pub fn available(sc: &Scenario) -> Vec<ProfileSpec> {
    let mut all = builtins();
    for c in &sc.custom_profiles {
        let mut sysctls = kube_proxy_sysctls(None);
        sysctls.extend(c.sysctls.iter().map(|(k, v)| (k.clone(), v.to_string())));
        all.push(ProfileSpec {
            label: c.label.clone(),
            profile: c.kernel.parse().unwrap_or(Profile::Safe),
            sysctls,
            netfilter_conntrack: c.netfilter_conntrack.unwrap_or(true),
        });
    }
    all
}

/// The rows to run: `requested` (command line) if not empty, else the scenario's `profiles`,
/// else the five built-ins. A name matches a row's label; `linux-4.19` matches both 4.19 rows.
/// The `vm` report runs per kernel (its variants set the sysctls), so there the built-in names
/// `linux-4.19-reuse0/1` collapse into one `linux-4.19` row.
pub fn select(sc: &Scenario, requested: &[String]) -> Result<Vec<ProfileSpec>, String> {
    let names: Vec<String> = if !requested.is_empty() {
        requested.to_vec()
    } else if !sc.profiles.is_empty() {
        sc.profiles.clone()
    } else {
        builtins().into_iter().map(|p| p.label).collect()
    };
    let all = available(sc);
    let mut out: Vec<ProfileSpec> = Vec::new();
    for n in &names {
        let found: Vec<&ProfileSpec> = all
            .iter()
            .filter(|p| {
                p.label == *n || (n == "linux-4.19" && p.label.starts_with("linux-4.19-reuse"))
            })
            .collect();
        if found.is_empty() {
            let labels: Vec<&str> = all.iter().map(|p| p.label.as_str()).collect();
            return Err(format!(
                "unknown profile '{n}' (expected one of: {}, linux-4.19)",
                labels.join(", ")
            ));
        }
        for p in found {
            if !out.iter().any(|q| q.label == p.label) {
                out.push(p.clone());
            }
        }
    }
    if sc.report == crate::scenario::ReportStyle::Vm {
        let mut per_kernel: Vec<ProfileSpec> = Vec::new();
        for p in out {
            if per_kernel.iter().any(|q| q.profile == p.profile) {
                continue;
            }
            let label = if p.label.starts_with("linux-4.19-reuse") {
                "linux-4.19".to_string()
            } else {
                p.label.clone()
            };
            per_kernel.push(ProfileSpec { label, ..p });
        }
        out = per_kernel;
    }
    Ok(out)
}
