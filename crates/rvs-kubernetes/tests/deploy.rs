//! `deploy/kubernetes/`: every manifest parses into its `k8s-openapi` type, the ClusterRole
//! grants exactly what the driver requests ([`rvs_kubernetes::driver::API_ACCESS`]), and
//! the ConfigMap's `rvs.toml` is a valid config with the service proxy on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every YAML document of every manifest, with its kind.
fn documents() -> Vec<(String, serde_yaml_ng::Value)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("deploy/kubernetes")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for d in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = serde_yaml_ng::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let kind = v["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no kind", f.display()));
            out.push((kind.to_string(), v));
        }
    }
    out
}

fn parse<T: serde::de::DeserializeOwned>(v: &serde_yaml_ng::Value) -> T {
    serde_yaml_ng::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v:?}"))
}

#[test]
fn manifests_parse_and_the_cluster_role_grants_what_the_code_requests() {
    let docs = documents();
    let kinds: BTreeSet<&str> = docs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "ServiceAccount"
        ])
    );
    let mut granted = BTreeSet::new();
    for (kind, v) in &docs {
        match kind.as_str() {
            "ServiceAccount" => {
                let _: ServiceAccount = parse(v);
            }
            "ClusterRoleBinding" => {
                let b: ClusterRoleBinding = parse(v);
                assert_eq!(b.role_ref.name, "rvs");
            }
            "ClusterRole" => {
                let r: ClusterRole = parse(v);
                for rule in r.rules.unwrap_or_default() {
                    for g in rule.api_groups.unwrap_or_default() {
                        for res in rule.resources.clone().unwrap_or_default() {
                            for verb in &rule.verbs {
                                granted.insert((g.clone(), res.clone(), verb.clone()));
                            }
                        }
                    }
                }
            }
            "ConfigMap" => {
                let c: ConfigMap = parse(v);
                let text = c
                    .data
                    .unwrap_or_default()
                    .remove("rvs.toml")
                    .expect("rvs.toml");
                let cfg = rvs_control::Config::parse(Path::new("configmap.yaml:rvs.toml"), &text)
                    .unwrap_or_else(|e| panic!("{e}"));
                let k = cfg.kubernetes.expect("[kubernetes] section");
                assert_eq!(k.healthz_listen.unwrap().port(), 10256);
                assert_eq!(cfg.dataplane.admin_socket, Path::new("/run/rvs/rvs.sock"));
            }
            "DaemonSet" => {
                let d: DaemonSet = parse(v);
                let spec = d.spec.unwrap().template.spec.unwrap();
                assert_eq!(spec.host_network, Some(true));
                assert_eq!(spec.service_account_name.as_deref(), Some("rvs"));
                let c = &spec.containers[0];
                let cmd = c.command.clone().unwrap().join(" ");
                assert!(
                    cmd.contains("--takeover=auto") && cmd.contains("--stay"),
                    "{cmd}"
                );
                let caps = c.security_context.clone().unwrap().capabilities.unwrap();
                assert_eq!(caps.add.unwrap(), ["NET_ADMIN", "NET_RAW"]);
                assert!(c.env.clone().unwrap().iter().any(|e| e.name == "NODE_NAME"));
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    let wanted: BTreeSet<(String, String, String)> = rvs_kubernetes::driver::API_ACCESS
        .iter()
        .flat_map(|(g, r, verbs)| {
            verbs
                .iter()
                .map(move |v| (g.to_string(), r.to_string(), v.to_string()))
        })
        .collect();
    assert_eq!(
        granted, wanted,
        "the ClusterRole grants exactly what the driver requests"
    );
}
