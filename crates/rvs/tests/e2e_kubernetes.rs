//! rvs as a Kubernetes node's service proxy (issue 13), with real traffic: the node is a
//! namespace running `rvs daemon` with a `[kubernetes]` section, pods are namespaces running
//! real servers, the API server is the stand-in (`rvs-kube-standin`) reached through a
//! kubeconfig. Every change below is made only through the API objects, as a cluster would.

mod common;

use std::time::{Duration, Instant};

use common::kube::*;
use common::load::*;
use common::*;

fn vs_tcp() -> String {
    format!("TCP  {CLUSTER_IP}:80")
}

/// The rollout the incident is about, driven only through EndpointSlice updates (test plan
/// 9): three pods, a fourth becomes ready, an old one turns terminating for 2 s, then leaves
/// the slice; then a second old one. Clients open short connections that reuse their ports, beside
/// long-lived flows and UDP flows. Under `safe`: no failed short connection and none of
/// 900 ms or more; a terminating pod gets weight 0 within one sync.
#[test]
fn a_rollout_through_endpointslice_updates_loses_no_connection() {
    let _g = serial();
    if skip("a_rollout_through_endpointslice_updates_loses_no_connection") {
        return;
    }
    let objects = format!(
        "{}\n---\n{}",
        web_service(""),
        web_slice(&[(1, Pod::Ready), (2, Pod::Ready), (3, Pod::Ready)])
    );
    let node = Node::start("k8sroll", 4, "safe", &objects);
    let took = node.wait_listing("initial programming", |l| {
        real_servers(l, &vs_tcp()) == ["10.2.1.2:80 1", "10.2.2.2:80 1", "10.2.3.2:80 1"]
    });
    eprintln!("programmed {took:?} after start");
    let load = Load::start_to(&node.env, sa(cluster_ip(), 80));
    std::thread::sleep(Duration::from_secs(1));
    let mut sync_ms = Vec::new();
    let mut step = |pods: &[(usize, Pod)], want: &[&str], hold: Duration| {
        let t0 = Instant::now();
        node.api.apply_yaml(&web_slice(pods)).expect("slice update");
        let w: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        node.wait_listing("slice update", |l| real_servers(l, &vs_tcp()) == w);
        sync_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(hold);
    };
    use Pod::{Ready, Terminating};
    let s = Duration::from_secs(1);
    step(
        &[(1, Ready), (2, Ready), (3, Ready), (4, Ready)],
        &[
            "10.2.1.2:80 1",
            "10.2.2.2:80 1",
            "10.2.3.2:80 1",
            "10.2.4.2:80 1",
        ],
        s,
    );
    step(
        &[(1, Terminating), (2, Ready), (3, Ready), (4, Ready)],
        &[
            "10.2.1.2:80 0",
            "10.2.2.2:80 1",
            "10.2.3.2:80 1",
            "10.2.4.2:80 1",
        ],
        2 * s,
    );
    step(
        &[(2, Ready), (3, Ready), (4, Ready)],
        &["10.2.2.2:80 1", "10.2.3.2:80 1", "10.2.4.2:80 1"],
        s,
    );
    step(
        &[(2, Terminating), (3, Ready), (4, Ready)],
        &["10.2.2.2:80 0", "10.2.3.2:80 1", "10.2.4.2:80 1"],
        2 * s,
    );
    step(
        &[(3, Ready), (4, Ready)],
        &["10.2.3.2:80 1", "10.2.4.2:80 1"],
        s,
    );
    let r = load.finish();
    // The daemon's own account: each sync, from the watch events to the engine's answer.
    let syncs: Vec<f64> = node
        .log()
        .lines()
        .filter_map(|l| {
            l.split(" commands (")
                .nth(1)?
                .split(" in ")
                .nth(1)?
                .split(" ms")
                .next()?
                .parse()
                .ok()
        })
        .collect();
    eprintln!(
        "rollout: {r}; slice update to listing (ms, the test's polling included): {sync_ms:.1?}; \
         the daemon's syncs (ms): {syncs:?}"
    );
    assert!(r.ok > 1000, "{r}");
    assert_eq!(r.failed, 0, "{r}\n{}", node.log());
    assert_eq!(r.slow, 0, "{r}");
    // Long-lived flows on the two removed pods end (their pods are gone: two thirds of
    // them, rr spread them evenly); those on the pod that stays live on.
    assert!(r.broken <= (LONG_FLOWS as u64 * 2).div_ceil(3) + 2, "{r}");
    assert!(r.msgs > LONG_FLOWS as u64 * 20, "{r}");
    let m = node.get("http://127.0.0.1:10249/metrics");
    assert!(
        m.contains("kubeproxy_sync_proxy_rules_duration_seconds_count"),
        "{m}"
    );
    assert!(
        m.contains("rvs_kubernetes_terminating_endpoints_weighted 0"),
        "{m}"
    );
}

/// KEP-1669, the one place `compat` and `safe` differ (test plan 10): with only a serving
/// terminating endpoint left, `compat` still sends new connections to it (upstream's
/// "should fallback to terminating endpoints when there are no ready endpoints" e2e test);
/// `safe` refuses them at once (ICMP port unreachable → ECONNREFUSED, no timeout) while
/// the established connection continues.
#[test]
fn only_terminating_endpoints_left_compat_serves_and_safe_refuses() {
    let _g = serial();
    if skip("only_terminating_endpoints_left_compat_serves_and_safe_refuses") {
        return;
    }
    for policy in ["compat", "safe"] {
        let objects = format!(
            "{}\n---\n{}",
            web_service(""),
            web_slice(&[(1, Pod::Ready)])
        );
        let node = Node::start(&format!("k8s{policy}"), 1, policy, &objects);
        node.wait_listing("programmed", |l| {
            real_servers(l, &vs_tcp()) == ["10.2.1.2:80 1"]
        });
        let mut established = node.env.connect(sa(cluster_ip(), 80)).expect("connect");
        assert!(ask(&mut established, "before").unwrap().starts_with("rs1"));
        node.api
            .apply_yaml(&web_slice(&[(1, Pod::Terminating)]))
            .unwrap();
        let want = if policy == "compat" {
            "10.2.1.2:80 1"
        } else {
            "10.2.1.2:80 0"
        };
        node.wait_listing("terminating", |l| real_servers(l, &vs_tcp()) == [want]);
        let t0 = Instant::now();
        let fresh = node.env.connect(sa(cluster_ip(), 80));
        let took = t0.elapsed();
        if policy == "compat" {
            let mut c = fresh.expect("compat: a new connection reaches the terminating pod");
            assert!(ask(&mut c, "new").unwrap().starts_with("rs1"));
        } else {
            let e = fresh.expect_err("safe: no new connection to a terminating pod");
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
            assert!(took < Duration::from_millis(500), "refused in {took:?}");
        }
        assert!(
            ask(&mut established, "after").unwrap().starts_with("rs1"),
            "{policy}: the established connection continues"
        );
    }
}

/// kube-proxy's faces and the watch protocol's rough edges (test plan 12, 13, 19): the
/// health and metrics ports; the health-check node port's 200 → 503 when the only local
/// endpoint terminates; a taint makes `/healthz` fail but not `/livez`; a relist after 410
/// Gone changes nothing and keeps established flows; an unreachable API server keeps the
/// programmed state and `/healthz` reports the staleness; invalid objects are skipped and
/// counted while everything else works; a Service with no endpoint refuses; a reload of the
/// config file leaves the Kubernetes services alone.
#[test]
fn health_metrics_relists_outages_and_bad_objects() {
    let _g = serial();
    if skip("health_metrics_relists_outages_and_bad_objects") {
        return;
    }
    let lb = r#"
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-1, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: http, port: 80}]
endpoints: [{addresses: [10.2.1.2], nodeName: node0, conditions: {ready: true}}]
"#;
    let objects = format!(
        "{}\n---\n{}\n---\n{lb}",
        web_service(""),
        web_slice(&[(1, Pod::Ready), (2, Pod::Ready)])
    );
    let node = Node::start("k8shealth", 2, "safe", &objects);
    node.wait_listing("programmed", |l| {
        real_servers(l, &vs_tcp()).len() == 2 && l.contains("TCP  10.96.0.20:80")
    });

    // Health and metrics ports.
    let h = node.get("http://127.0.0.1:10256/healthz");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert!(
        h.contains("\"healthy\":true") && h.contains("\"nodeEligible\":true"),
        "{h}"
    );
    assert!(
        node.get("http://127.0.0.1:10256/livez")
            .starts_with("HTTP/1.1 200")
    );
    let pm = node.get("http://127.0.0.1:10249/proxyMode");
    assert!(
        pm.starts_with("HTTP/1.1 200") && pm.trim_end().ends_with("ipvs"),
        "{pm}"
    );
    let m = node.get("http://127.0.0.1:10249/metrics");
    for name in [
        "kubeproxy_sync_proxy_rules_duration_seconds_bucket",
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
        "kubeproxy_sync_proxy_rules_endpoint_changes_total",
        "kubeproxy_sync_proxy_rules_service_changes_total",
        "rvs_kubernetes_virtual_servers",
        "rvs_real_server_weight",
    ] {
        assert!(m.contains(name), "{name} missing:\n{m}");
    }

    // The health-check node port: one ready local endpoint, then none.
    let hc = node.get("http://127.0.0.1:32000/anything");
    assert!(hc.starts_with("HTTP/1.1 200"), "{hc}");
    assert!(
        hc.to_ascii_lowercase()
            .contains("x-load-balancing-endpoint-weight: 1"),
        "{hc}"
    );
    assert!(hc.contains("\"localEndpoints\": 1"), "{hc}");
    node.api
        .apply_yaml(&lb.split("---").nth(1).unwrap().replace(
            "{ready: true}",
            "{ready: false, serving: true, terminating: true}",
        ))
        .unwrap();
    let hc = node.get_until("http://127.0.0.1:32000/", "HTTP/1.1 503");
    assert!(
        hc.starts_with("HTTP/1.1 503") && hc.contains("\"localEndpoints\": 0"),
        "{hc}"
    );

    // A taint: /healthz fails, /livez does not (KEP-3836).
    node.api
        .apply_yaml(&NODE0.replace(
            "status:",
            "spec: {taints: [{key: ToBeDeletedByClusterAutoscaler, effect: NoSchedule}]}\nstatus:",
        ))
        .unwrap();
    let h = node.get_until("http://127.0.0.1:10256/healthz", "HTTP/1.1 503");
    assert!(
        h.starts_with("HTTP/1.1 503") && h.contains("\"nodeEligible\":false"),
        "{h}"
    );
    assert!(
        node.get("http://127.0.0.1:10256/livez")
            .starts_with("HTTP/1.1 200")
    );
    node.api.apply_yaml(NODE0).unwrap();

    // 410 Gone: the watches relist; nothing changes, the established flow continues.
    let mut flow = node.env.connect(sa(cluster_ip(), 80)).expect("connect");
    assert!(ask(&mut flow, "x").is_ok());
    let lists_before = node
        .api
        .requests()
        .iter()
        .filter(|r| !r.contains("watch="))
        .count();
    let before = node.listing();
    node.api.compact();
    node.api.end_watches();
    let end = Instant::now() + Duration::from_secs(10);
    while node
        .api
        .requests()
        .iter()
        .filter(|r| !r.contains("watch="))
        .count()
        < lists_before + 2
    {
        assert!(
            Instant::now() < end,
            "no relist after 410; requests: {:?}",
            node.api.requests()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        real_servers(&node.listing(), &vs_tcp()),
        real_servers(&before, &vs_tcp())
    );
    assert!(
        ask(&mut flow, "after relist").is_ok(),
        "the flow survives a relist"
    );
    assert!(
        node.api.requests().iter().any(|r| r.contains(
            "labelSelector=%21service.kubernetes.io%2Fservice-proxy-name%2C%21service.kubernetes.io%2Fheadless"
        )),
        "kube-proxy's label selector: {:?}",
        node.api.requests()
    );

    // The API server goes away: the state stays, /healthz tells.
    node.api.set_unreachable(true);
    std::thread::sleep(Duration::from_secs(3));
    assert!(ask(&mut flow, "during outage").is_ok());
    let h = node.get("http://127.0.0.1:10256/healthz");
    assert!(h.contains("\"stale\":true"), "{h}");
    assert_eq!(real_servers(&node.listing(), &vs_tcp()).len(), 2);
    node.api.set_unreachable(false);
    node.api
        .apply_yaml(&web_slice(&[(1, Pod::Ready), (2, Pod::Terminating)]))
        .unwrap();
    node.wait_listing("a change after the outage", |l| {
        real_servers(l, &vs_tcp()) == ["10.2.1.2:80 1", "10.2.2.2:80 0"]
    });
    assert!(
        node.get("http://127.0.0.1:10256/healthz")
            .contains("\"stale\":false")
    );

    // Invalid objects: skipped and counted; the rest keeps working. A Service without
    // endpoints refuses.
    node.api
        .apply_yaml(
            r#"
apiVersion: v1
kind: Service
metadata: {name: bad, namespace: default}
spec:
  clusterIP: 10.96.0.30
  ports: [{name: a, port: 0}, {name: b, port: 81, protocol: ICMP}, {name: c, port: 82}]
"#,
        )
        .unwrap();
    node.wait_listing("the valid part of a bad Service", |l| {
        l.contains("TCP  10.96.0.30:82")
    });
    assert!(!node.listing().contains("10.96.0.30:81"));
    let m = node.get("http://127.0.0.1:10249/metrics");
    assert!(
        m.contains("rvs_kubernetes_invalid_total{reason=\"bad_port\"}"),
        "{m}"
    );
    assert!(
        m.contains("rvs_kubernetes_invalid_total{reason=\"bad_protocol\"}"),
        "{m}"
    );
    let t0 = Instant::now();
    let e = node
        .env
        .connect(sa("10.96.0.30".parse().unwrap(), 82))
        .expect_err("no endpoint: refused");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert!(ask(&mut flow, "still").is_ok());

    // A reload of the config file leaves the Kubernetes services alone.
    let o = node.env.adm(&["--reload"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        real_servers(&node.listing(), &vs_tcp()),
        ["10.2.1.2:80 1", "10.2.2.2:80 0"]
    );
    // Changed behind the driver's back: the periodic full sync (every 2 s here) repairs it.
    let o = node
        .env
        .adm(&["-d", "-t", &format!("{CLUSTER_IP}:80"), "-r", "10.2.1.2:80"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    node.wait_listing("repaired by the periodic sync", |l| {
        real_servers(l, &vs_tcp()) == ["10.2.1.2:80 1", "10.2.2.2:80 0"]
    });
    // Every request rvs made is a list or a watch the ClusterRole grants.
    for r in node.api.requests() {
        let path = r.split('?').next().unwrap_or("");
        let ok = rvs_kubernetes_access(path);
        assert!(ok, "request outside the ClusterRole: {r}");
    }
}

/// Whether a request path is a collection rvs is granted (list and watch are GETs of the
/// collection; rvs never reads one object).
fn rvs_kubernetes_access(path: &str) -> bool {
    let tail = path.rsplit('/').next().unwrap_or("");
    let group_ok = |g: &str| {
        if g.is_empty() {
            path.starts_with("/api/v1/")
        } else {
            path.starts_with(&format!("/apis/{g}/"))
        }
    };
    rvs_kubernetes::driver::API_ACCESS
        .iter()
        .any(|(g, res, verbs)| *res == tail && group_ok(g) && verbs.contains(&"list"))
}

/// NodePorts on the node's own address (test plan 6 and 15): an external client reaches
/// `10.1.0.1:30080`. With `externalTrafficPolicy: Cluster` the pod sees the node's full-NAT
/// address (kube-proxy masquerades, so replies come back through the node); with `Local`
/// it sees the client's own address, and only this node's pod serves. The ClusterIP works
/// beside them, from pods on this node and another, and from the node itself. Deleting the Service releases the port (connection refused by the node).
#[test]
fn node_ports_on_the_node_address_with_both_traffic_policies() {
    let _g = serial();
    if skip("node_ports_on_the_node_address_with_both_traffic_policies") {
        return;
    }
    let svc = |name: &str, np: u16, policy: &str| {
        format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  type: NodePort
  externalTrafficPolicy: {policy}
  internalTrafficPolicy: {policy}
  clusterIP: 10.96.0.{}
  ports: [{{name: tcp, port: 80, protocol: TCP, nodePort: {np}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: tcp, port: 80, protocol: TCP}}]
endpoints:
- {{addresses: [10.2.1.2], nodeName: node0}}
- {{addresses: [10.2.2.2], nodeName: node1}}
"#,
            np - 30000
        )
    };
    let objects = format!(
        "{}\n---\n{}",
        svc("cluster", 30080, "Cluster"),
        svc("local", 30081, "Local")
    );
    let node = Node::start("k8snp", 2, "safe", &objects);
    node.wait_listing("node ports", |l| {
        real_servers(l, "TCP  10.1.0.1:30080").len() == 2
            && real_servers(l, "TCP  10.1.0.1:30081") == ["10.2.1.2:80 1"]
    });
    let whoami = |port: u16| -> Vec<String> {
        (0..4)
            .map(|_| {
                let mut c = node
                    .env
                    .connect(sa("10.1.0.1".parse().unwrap(), port))
                    .unwrap_or_else(|e| panic!("NodePort {port}: {e}\n{}", node.log()));
                ask(&mut c, "whoami").expect("answer")
            })
            .collect()
    };
    let cluster = whoami(30080);
    assert!(
        cluster.iter().all(|a| a.ends_with(" 10.255.1.1")),
        "Cluster: the pods see the node's full-NAT address: {cluster:?}"
    );
    assert_eq!(
        count(
            &cluster
                .iter()
                .map(|a| a.split(' ').next().unwrap().to_string())
                .collect::<Vec<_>>()
        )
        .len(),
        2
    );
    let local = whoami(30081);
    assert!(
        local.iter().all(|a| a == &format!("rs1 {}", topo::CLIENT4)),
        "Local: this node's pod, the client's address: {local:?}"
    );
    // The ClusterIP beside them (internalTrafficPolicy Local: only rs1): from a pod on
    // another node (the client), from a pod on this node (rs2), from the node itself (its
    // replies come back through the rules placed before the local table), and from rs1
    // itself (hairpin: it sees the node's full-NAT address, upstream's "should allow pods
    // to hairpin back to themselves through services").
    let cip = sa("10.96.0.81".parse().unwrap(), 80);
    let from = |ns: &str| -> String {
        node.env
            .t
            .lab
            .in_netns(ns, move || {
                let mut s = std::net::TcpStream::connect_timeout(&cip, Duration::from_secs(3))?;
                ask(&mut s, "whoami")
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("ClusterIP from {ns}: {e}\n{}", node.log()))
    };
    assert_eq!(from(&node.env.t.client), format!("rs1 {}", topo::CLIENT4));
    assert_eq!(from(&node.env.t.rs[1]), format!("rs1 {}", topo::rs4(2)));
    let host = from(&node.env.t.lb);
    assert!(host.starts_with("rs1 "), "host-network client: {host}");
    assert_eq!(from(&node.env.t.rs[0]), "rs1 10.255.1.1", "hairpin");
    // Deleted: the rule goes with it, the node's kernel refuses the port.
    node.api.delete("Service", "default", "local").unwrap();
    node.wait_listing("service deleted", |l| !l.contains("30081"));
    std::thread::sleep(Duration::from_millis(300));
    let e = node
        .env
        .connect(sa("10.1.0.1".parse().unwrap(), 30081))
        .expect_err("released");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

/// A restart of rvs itself on a Kubernetes node loses nothing (issue 14 with issue 13): a
/// new daemon takes over the running one under load (`--takeover`, as a DaemonSet update
/// with `--takeover=auto --stay` does), its driver lists the API again and its first sync
/// finds the adopted state right: no command. The health port moves to the new daemon, and
/// it applies the next change.
#[test]
fn a_takeover_on_a_kubernetes_node_keeps_every_flow_and_reprograms_nothing() {
    let _g = serial();
    if skip("a_takeover_on_a_kubernetes_node_keeps_every_flow_and_reprograms_nothing") {
        return;
    }
    let objects = format!(
        "{}\n---\n{}",
        web_service(""),
        web_slice(&[(1, Pod::Ready), (2, Pod::Ready), (3, Pod::Ready)])
    );
    let mut node = Node::start("k8stake", 3, "safe", &objects);
    node.wait_listing("programmed", |l| real_servers(l, &vs_tcp()).len() == 3);
    let load = Load::start_to(&node.env, sa(cluster_ip(), 80));
    std::thread::sleep(Duration::from_secs(1));
    let lb = node.env.t.lb.clone();
    let cfg = node.env.cfg.to_string_lossy().to_string();
    node.env
        .t
        .lab
        .spawn(
            &lb,
            "daemon2",
            &[rvs_bin(), "daemon", "--config", &cfg, "--takeover"],
            &[("RUST_LOG", "info")],
        )
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while node.env.t.lab.running("daemon") {
        assert!(
            Instant::now() < end,
            "the old daemon did not hand over:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The new daemon's first sync.
    let end = Instant::now() + Duration::from_secs(10);
    let first_sync = loop {
        let log = node.env.t.lab.log("daemon2");
        if let Some(l) = log.lines().find(|l| l.contains("sync: ")) {
            break l.to_string();
        }
        assert!(Instant::now() < end, "no sync in the new daemon:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(first_sync.contains(" 0 commands"), "{first_sync}");
    let h = node.get_until("http://127.0.0.1:10256/healthz", "HTTP/1.1 200");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    node.api
        .apply_yaml(&web_slice(&[
            (1, Pod::Ready),
            (2, Pod::Ready),
            (3, Pod::Terminating),
        ]))
        .unwrap();
    node.wait_listing("a change applied by the new daemon", |l| {
        real_servers(l, &vs_tcp()) == ["10.2.1.2:80 1", "10.2.2.2:80 1", "10.2.3.2:80 0"]
    });
    std::thread::sleep(Duration::from_secs(1));
    let r = load.finish();
    eprintln!("takeover on a Kubernetes node: {r}\nfirst sync: {first_sync}");
    assert_eq!((r.failed, r.slow, r.broken), (0, 0, 0), "{r}");
    assert_eq!(r.udp_lost, 0, "{r}");
}

/// LoadBalancer IPs and externalIPs routed to the node (test plan 7): the ingress IP with
/// `ipMode: VIP` serves, `ipMode: Proxy` gets nothing, an externalIP serves; and
/// `loadBalancerSourceRanges` is enforced: a client outside the ranges is dropped (as
/// kube-proxy's firewall chain drops it), counted, while the externalIP still serves it.
#[test]
fn load_balancer_ips_external_ips_and_source_ranges() {
    let _g = serial();
    if skip("load_balancer_ips_external_ips_and_source_ranges") {
        return;
    }
    let lb = |ranges: &str| {
        format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: lb, namespace: default}}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.90
  externalIPs: [203.0.113.9]
  loadBalancerSourceRanges: [{ranges}]
  ports: [{{name: tcp, port: 80, protocol: TCP, nodePort: 30090}}]
status:
  loadBalancer:
    ingress: [{{ip: 203.0.113.5}}, {{ip: 203.0.113.6, ipMode: Proxy}}]
"#
        )
    };
    let slice = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-1, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: tcp, port: 80, protocol: TCP}]
endpoints: [{addresses: [10.2.1.2], nodeName: node0}]
"#;
    let node = Node::start(
        "k8slb",
        1,
        "safe",
        &format!("{}\n---\n{slice}", lb("10.1.0.0/24")),
    );
    node.wait_listing("LoadBalancer", |l| {
        l.contains("TCP  203.0.113.5:80") && l.contains("TCP  203.0.113.9:80")
    });
    assert!(
        !node.listing().contains("203.0.113.6"),
        "ipMode Proxy: no virtual server"
    );
    let try_connect = |ip: &str| {
        let to = sa(ip.parse().unwrap(), 80);
        node.env
            .t
            .lab
            .in_netns(&node.env.t.client, move || {
                let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(1))?;
                ask(&mut s, "x")
            })
            .unwrap()
    };
    assert!(try_connect("203.0.113.5").unwrap().starts_with("rs1"));
    assert!(try_connect("203.0.113.9").unwrap().starts_with("rs1"));
    // The client is now outside the ranges.
    node.api.apply_yaml(&lb("192.0.2.0/24")).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match try_connect("203.0.113.5") {
            // The SYN is dropped: the connect times out (not refused).
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            // A connection made just before the filter changed loses its later packets.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("dropped, not refused: {e}"),
            Ok(_) => {}
        }
        assert!(Instant::now() < end, "the ranges were not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        try_connect("203.0.113.9").unwrap().starts_with("rs1"),
        "externalIPs have no ranges"
    );
    let m = metrics(&node.env);
    assert!(
        m.contains("rvs_dataplane_dropped_packets_total{reason=\"source_range\"}"),
        "{m}"
    );
}

/// Session affinity (test plan 8, upstream's "should have session affinity work for service
/// with type clusterIP" and "should be able to switch session affinity"): with
/// `sessionAffinity: ClientIP` 15 connections in a row reach one pod; switched to `None`,
/// several pods answer; back to `ClientIP`, one again.
#[test]
fn session_affinity_sticks_and_switches() {
    let _g = serial();
    if skip("session_affinity_sticks_and_switches") {
        return;
    }
    let sticky = "  sessionAffinity: ClientIP\n";
    let objects = format!(
        "{}\n---\n{}",
        web_service(sticky),
        web_slice(&[(1, Pod::Ready), (2, Pod::Ready), (3, Pod::Ready)])
    );
    let node = Node::start("k8saff", 3, "safe", &objects);
    let persistent = |l: &str| {
        l.lines()
            .any(|x| x.starts_with(&vs_tcp()) && x.contains("persistent 10800"))
    };
    node.wait_listing("affinity", |l| {
        persistent(l) && real_servers(l, &vs_tcp()).len() == 3
    });
    let pods = || -> std::collections::BTreeSet<String> {
        (0..15)
            .map(|_| {
                let mut c = node.env.connect(sa(cluster_ip(), 80)).expect("connect");
                let a = ask(&mut c, "x").expect("answer");
                a.split(' ').next().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(pods().len(), 1, "ClientIP: one pod for 15 connections");
    node.api.apply_yaml(&web_service("")).unwrap();
    node.wait_listing("affinity off", |l| !persistent(l));
    assert!(pods().len() >= 2, "None: several pods");
    node.api.apply_yaml(&web_service(sticky)).unwrap();
    node.wait_listing("affinity on", persistent);
    assert_eq!(pods().len(), 1, "ClientIP again");
}
