//! A cluster of many Services on one node (issue 13's speed): 2,000 Services × 5 endpoints
//! by default (`RVS_K8S_SERVICES=N`, up to 11,000, for a larger run), listed from the stand-in API
//! server. Every Service is programmed; then one endpoint change at a time is applied by a
//! sync that recomputes that one Service and sends only its commands, whatever the
//! cluster's size. The times are printed (the daemon's own account of each sync), not
//! asserted: the machine is shared.

mod common;

use std::time::{Duration, Instant};

use common::kube::*;
use common::*;

#[test]
fn a_large_cluster_is_programmed_and_one_change_costs_one_service() {
    let _g = serial();
    if skip("a_large_cluster_is_programmed_and_one_change_costs_one_service") {
        return;
    }
    let n: usize = std::env::var("RVS_K8S_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        .clamp(1, 11_000);
    let mut objs = String::new();
    for i in 0..n {
        let (a, b) = (i / 250, i % 250 + 1);
        objs += &format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{clusterIP: 10.{}.{a}.{b}, ports: [{{name: tcp, port: 80}}]}}\n",
            97 + a / 250
        );
        let eps: String = (0..5)
            .map(|k| {
                let x = i * 5 + k;
                // In the pod network (`reply_prefixes`): one steering rule for all of them.
                format!("- addresses: [10.2.{}.{}]\n", 10 + x / 250, x % 250 + 1)
            })
            .collect();
        objs += &format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s{i}-1, namespace: default, labels: {{kubernetes.io/service-name: s{i}}}}}\naddressType: IPv4\nports: [{{name: tcp, port: 80}}]\nendpoints:\n{eps}"
        );
    }
    let objects = format!(
        "{}\n---\n{}\n{objs}",
        web_service(""),
        web_slice(&[(1, Pod::Ready), (2, Pod::Ready)])
    );
    let node = Node::start("k8sscale", 2, "safe", &objects);
    let took = node.wait_listing_long("every Service", |l| {
        l.lines().filter(|x| x.starts_with("TCP  10.9")).count() == n + 1
    });
    let vs = format!("TCP  {CLUSTER_IP}:80");
    let mut seen = Vec::new();
    for round in 0..6 {
        let (pods, w) = if round % 2 == 0 {
            ([(1, Pod::Ready), (2, Pod::Terminating)], "10.2.2.2:80 0")
        } else {
            ([(1, Pod::Ready), (2, Pod::Ready)], "10.2.2.2:80 1")
        };
        let t = Instant::now();
        node.api.apply_yaml(&web_slice(&pods)).unwrap();
        node.wait_listing("one change", |l| {
            real_servers(l, &vs).contains(&w.to_string())
        });
        seen.push(t.elapsed());
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = node.log();
    let syncs: Vec<&str> = log.lines().filter(|l| l.contains("sync: ")).collect();
    eprintln!(
        "{n} Services x 5: listed in the engine {took:?} after the daemon answered; changes seen \
         in the listing after {seen:.0?} (the listing of {n} Services included); the daemon's \
         syncs:\n{}",
        syncs.join("\n")
    );
    let first = syncs.first().expect("a first sync");
    assert!(
        first.contains(&format!("{} Services recomputed", n + 1)),
        "{first}"
    );
    let changes = &syncs[syncs.len() - 6..];
    for s in changes {
        assert!(
            s.contains(" 1 Services recomputed, 2 commands (0 refused)"),
            "one change, one Service, its two commands: {s}"
        );
    }
}
