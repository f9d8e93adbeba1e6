//! The proxier against kube-proxy's IPVS mapping (`../shared`'s kube-proxy reference §1 and
//! the test plan's scenarios 1–14, 19), with objects written as Kubernetes YAML. No cluster,
//! no sockets: events in, engine commands out, applied to a real engine whose listing is
//! then checked.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use rvs_control::config::{EndpointPolicy, KubernetesSection};
use rvs_core::command::Command;
use rvs_core::dest::ForwardMethod;
use rvs_core::profile::Profile;
use rvs_core::service::{Protocol, ServiceFlags, ServiceKey};
use rvs_core::snapshot::ServiceView;
use rvs_core::{Engine, EngineConfig, Instant};
use rvs_kubernetes::store::Event;
use rvs_kubernetes::{Proxier, ProxierConfig};

fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_yaml_ng::from_str(s).unwrap_or_else(|e| panic!("bad test YAML: {e}\n{s}"))
}

/// A proxier on node0 (zone a), node addresses 192.0.2.10 and 198.51.100.7, with an engine.
struct Rig {
    p: Proxier,
    e: Engine,
    applied: Vec<Command>,
}

fn section(policy: EndpointPolicy) -> KubernetesSection {
    KubernetesSection {
        endpoint_policy: policy,
        node_addresses: vec![
            "192.0.2.10".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        ],
        ..KubernetesSection::default()
    }
}

impl Rig {
    fn new(k: KubernetesSection) -> Rig {
        Self::with_fullnat(k, &[])
    }

    fn with_fullnat(k: KubernetesSection, fullnat: &[IpAddr]) -> Rig {
        let mut p = Proxier::new(ProxierConfig::new(&k, "node0".into(), fullnat));
        p.on_node(Event::Init);
        p.on_node(Event::InitApply(yaml::<Node>(
            "metadata: {name: node0, labels: {topology.kubernetes.io/zone: a}}",
        )));
        p.on_node(Event::InitDone);
        Rig {
            p,
            e: Engine::new(EngineConfig {
                profile: Profile::Safe,
                fullnat_addrs: fullnat.to_vec(),
                ..EngineConfig::default()
            }),
            applied: Vec::new(),
        }
    }

    /// Completes both lists with these objects.
    fn list(&mut self, services: &[&str], slices: &[&str]) {
        self.p.on_service(Event::Init);
        for s in services {
            self.p.on_service(Event::InitApply(yaml(s)));
        }
        self.p.on_service(Event::InitDone);
        self.p.on_slice(Event::Init);
        for s in slices {
            self.p.on_slice(Event::InitApply(yaml(s)));
        }
        self.p.on_slice(Event::InitDone);
    }

    fn svc(&mut self, y: &str) {
        self.p.on_service(Event::Apply(yaml(y)));
    }

    fn slice(&mut self, y: &str) {
        self.p.on_slice(Event::Apply(yaml(y)));
    }

    /// One sync, applied to the engine (every command must be accepted); the commands.
    fn sync(&mut self) -> Vec<Command> {
        let running = self.e.services();
        let r = self
            .p
            .sync(self.p.needs_running().then_some(running.as_slice()));
        for c in &r.commands {
            self.e
                .apply(Instant::ZERO, c.clone())
                .unwrap_or_else(|err| panic!("{c:?} refused: {err}"));
        }
        self.applied.extend(r.commands.iter().cloned());
        r.commands
    }

    fn vs(&self, proto: Protocol, addr: &str, port: u16) -> Option<ServiceView> {
        let key = ServiceKey::Addr {
            proto,
            addr: addr.parse().unwrap(),
            port,
        };
        self.e.services().into_iter().find(|v| v.key == key)
    }

    /// `addr:port weight` of a virtual server's real servers, sorted.
    fn rs(&self, proto: Protocol, addr: &str, port: u16) -> Vec<String> {
        let v = self
            .vs(proto, addr, port)
            .unwrap_or_else(|| panic!("no virtual server {addr}:{port}; have {:?}", self.keys()));
        let mut out: Vec<String> = v
            .dests
            .iter()
            .map(|d| format!("{}:{} w{}", d.addr, d.port, d.weight))
            .collect();
        out.sort();
        out
    }

    /// Asserts the real servers of a virtual server.
    #[track_caller]
    fn expect(&self, proto: Protocol, addr: &str, port: u16, want: &[&str]) {
        assert_eq!(self.rs(proto, addr, port), want, "{addr}:{port}");
    }

    fn keys(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .e
            .services()
            .iter()
            .map(|s| s.key.to_string())
            .collect();
        v.sort();
        v
    }
}

const WEB: &str = r#"
metadata: {name: web, namespace: ns1, resourceVersion: "1"}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: https, port: 443, protocol: TCP, targetPort: 8443}
"#;

const WEB_SLICE: &str = r#"
metadata:
  name: web-abc
  namespace: ns1
  resourceVersion: "2"
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
- {name: https, port: 8443, protocol: TCP}
endpoints:
- addresses: [10.244.1.5]
  nodeName: node0
  conditions: {ready: true}
- addresses: [10.244.2.6]
  nodeName: node1
  conditions: {ready: true}
"#;

/// Test plan 1: one virtual server per ServicePort, slice ports matched by name; `rr`
/// (kube-proxy's default scheduler), NAT, weight 1.
#[test]
fn multi_port_cluster_ip() {
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    assert!(r.sync().is_empty(), "nothing before the lists complete");
    r.list(&[WEB], &[WEB_SLICE]);
    r.sync();
    r.expect(
        Protocol::Tcp,
        "10.96.0.10",
        80,
        &["10.244.1.5:8080 w1", "10.244.2.6:8080 w1"],
    );
    r.expect(
        Protocol::Tcp,
        "10.96.0.10",
        443,
        &["10.244.1.5:8443 w1", "10.244.2.6:8443 w1"],
    );
    let v = r.vs(Protocol::Tcp, "10.96.0.10", 80).unwrap();
    assert_eq!(v.scheduler, "rr");
    assert!(v.dests.iter().all(|d| d.fwd == ForwardMethod::Masq));
    // Deleting the https port removes its virtual server, and only that.
    r.svc(
        &WEB.replace(
            "  - {name: https, port: 443, protocol: TCP, targetPort: 8443}\n",
            "",
        )
        .replace("\"1\"", "\"3\""),
    );
    let cmds = r.sync();
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert!(matches!(cmds[0], Command::DelService(_)));
    assert!(r.vs(Protocol::Tcp, "10.96.0.10", 443).is_none());
    // Nothing changed: nothing to do.
    assert!(r.sync().is_empty());
}

/// Test plan 2: the same port with two protocols is two virtual servers; dropping one
/// protocol removes its virtual server.
#[test]
fn same_port_two_protocols() {
    let svc = r#"
metadata: {name: dns, namespace: ns1}
spec:
  clusterIP: 10.96.0.53
  ports:
  - {name: tcp-port, port: 80, protocol: TCP}
  - {name: udp-port, port: 80, protocol: UDP}
"#;
    let slice = r#"
metadata: {name: dns-1, namespace: ns1, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports:
- {name: tcp-port, port: 8080, protocol: TCP}
- {name: udp-port, port: 8053, protocol: UDP}
endpoints:
- addresses: [10.244.1.7]
"#;
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[svc], &[slice]);
    r.sync();
    r.expect(Protocol::Tcp, "10.96.0.53", 80, &["10.244.1.7:8080 w1"]);
    r.expect(Protocol::Udp, "10.96.0.53", 80, &["10.244.1.7:8053 w1"]);
    r.svc(&svc.replace("  - {name: udp-port, port: 80, protocol: UDP}\n", ""));
    r.sync();
    assert!(r.vs(Protocol::Udp, "10.96.0.53", 80).is_none());
    assert!(r.vs(Protocol::Tcp, "10.96.0.53", 80).is_some());
}

/// Test plan 3: headless, ExternalName and other proxies' Services get nothing; toggling
/// the proxy-name label removes and restores the virtual server. With
/// `service_proxy_name`, only Services labelled for rvs.
#[test]
fn ignored_services_and_label_toggling() {
    let headless =
        "metadata: {name: h, namespace: ns1}\nspec: {clusterIP: None, ports: [{port: 80}]}";
    let external = "metadata: {name: x, namespace: ns1}\nspec: {type: ExternalName, externalName: example.com, clusterIP: 10.96.0.99, ports: [{port: 80}]}";
    let other = "metadata: {name: o, namespace: ns1, labels: {service.kubernetes.io/service-proxy-name: foo-bar}}\nspec: {clusterIP: 10.96.0.98, ports: [{port: 80}]}";
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[headless, external, other, WEB], &[WEB_SLICE]);
    r.sync();
    assert_eq!(r.keys(), ["TCP 10.96.0.10:443", "TCP 10.96.0.10:80"]);
    // Label added: gone; removed: back.
    r.svc(&WEB.replace(
        "namespace: ns1,",
        "namespace: ns1, labels: {service.kubernetes.io/service-proxy-name: foo-bar},",
    ));
    r.sync();
    assert!(r.keys().is_empty());
    r.svc(WEB);
    r.sync();
    assert_eq!(r.keys().len(), 2);

    let mut k = section(EndpointPolicy::Safe);
    k.service_proxy_name = Some("rvs".into());
    let mut r = Rig::new(k);
    let mine = other.replace("foo-bar", "rvs");
    r.list(&[&mine, WEB], &[]);
    r.sync();
    assert_eq!(r.keys(), ["TCP 10.96.0.98:80"]);
}

/// Test plan 5: a Service without endpoints has its virtual server with no real server
/// (the engine then answers new connections with ICMP port unreachable, kernel-semantics
/// §2.6.4: refused, not black-holed).
#[test]
fn no_endpoints_keeps_an_empty_virtual_server() {
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[WEB], &[]);
    r.sync();
    assert!(r.rs(Protocol::Tcp, "10.96.0.10", 80).is_empty());
}

const NODEPORT: &str = r#"
metadata: {name: np, namespace: ns1}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  ports: [{name: "", port: 80, nodePort: 30080, protocol: TCP}]
"#;

const NP_SLICE: &str = r#"
metadata: {name: np-1, namespace: ns1, labels: {kubernetes.io/service-name: np}}
addressType: IPv4
ports: [{name: "", port: 8080, protocol: TCP}]
endpoints:
- {addresses: [10.244.1.5], nodeName: node0}
- {addresses: [10.244.2.6], nodeName: node1}
"#;

/// Test plan 6: NodePorts on every node address (never loopback), or only on those inside
/// `node_port_addresses`; external traffic with `Cluster` policy is full NAT when the
/// engine has a full-NAT address (kube-proxy masquerades it).
#[test]
fn node_ports() {
    let mut r = Rig::with_fullnat(
        section(EndpointPolicy::Safe),
        &["192.0.2.10".parse().unwrap()],
    );
    r.list(&[NODEPORT], &[NP_SLICE]);
    r.sync();
    assert_eq!(
        r.keys(),
        [
            "TCP 10.96.0.20:80",
            "TCP 192.0.2.10:30080",
            "TCP 198.51.100.7:30080"
        ]
    );
    let np = r.vs(Protocol::Tcp, "192.0.2.10", 30080).unwrap();
    assert!(np.dests.iter().all(|d| d.fwd == ForwardMethod::FullNat));
    let cip = r.vs(Protocol::Tcp, "10.96.0.20", 80).unwrap();
    assert!(cip.dests.iter().all(|d| d.fwd == ForwardMethod::Masq));

    let mut k = section(EndpointPolicy::Safe);
    k.node_port_addresses = vec![("192.0.2.0".parse().unwrap(), 24)];
    let mut r = Rig::new(k);
    r.list(&[NODEPORT], &[NP_SLICE]);
    r.sync();
    assert_eq!(r.keys(), ["TCP 10.96.0.20:80", "TCP 192.0.2.10:30080"]);
    // Without a full-NAT address: NAT.
    let np = r.vs(Protocol::Tcp, "192.0.2.10", 30080).unwrap();
    assert!(np.dests.iter().all(|d| d.fwd == ForwardMethod::Masq));
}

/// Test plan 7: LoadBalancer ingress IPs with `ipMode: VIP` (or unset) get a virtual
/// server, `ipMode: Proxy` does not; externalIPs do.
#[test]
fn load_balancer_and_external_ips() {
    let lb = r#"
metadata: {name: lb, namespace: ns1}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.30
  externalIPs: [198.51.100.7, 203.0.113.9]
  ports: [{port: 80, nodePort: 30081}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.5}, {ip: 203.0.113.6, ipMode: Proxy}]
"#;
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[lb], &[]);
    r.sync();
    assert_eq!(
        r.keys(),
        [
            "TCP 10.96.0.30:80",
            "TCP 192.0.2.10:30081",
            "TCP 198.51.100.7:30081",
            "TCP 198.51.100.7:80",
            "TCP 203.0.113.5:80",
            "TCP 203.0.113.9:80"
        ]
    );
}

/// `loadBalancerSourceRanges` become the source filter of the LoadBalancer IPs only (not
/// the ClusterIP, externalIPs or NodePorts); sent when they change, and emptied when the
/// Service goes.
#[test]
fn load_balancer_source_ranges() {
    let lb = r#"
metadata: {name: lb, namespace: ns1}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.30
  externalIPs: [203.0.113.9]
  loadBalancerSourceRanges: [10.0.0.0/8, "bad"]
  ports: [{port: 80, nodePort: 30081}]
status: {loadBalancer: {ingress: [{ip: 203.0.113.5}]}}
"#;
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[lb], &[]);
    let res = r.p.sync(Some(&[]));
    assert!(res.problems.iter().any(|(_, p)| p.reason == "bad_field"));
    let ranges = r.p.take_source_ranges().expect("first sync sends them");
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0].0.to_string(), "TCP 203.0.113.5:80");
    assert_eq!(ranges[0].1, [("10.0.0.0".parse().unwrap(), 8)]);
    assert!(
        r.p.take_source_ranges().is_none(),
        "unchanged: nothing to send"
    );
    r.p.on_service(Event::Delete(yaml(lb)));
    r.p.sync(None);
    assert_eq!(r.p.take_source_ranges(), Some(vec![]));
}

/// Test plan 8: `sessionAffinity: ClientIP` is persistence with the API's default timeout
/// (10800 s) or the given one; switching it off edits the virtual server in place.
#[test]
fn session_affinity() {
    let aff = WEB.replace(
        "  clusterIPs: [10.96.0.10]\n",
        "  clusterIPs: [10.96.0.10]\n  sessionAffinity: ClientIP\n",
    );
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[&aff], &[WEB_SLICE]);
    r.sync();
    let v = r.vs(Protocol::Tcp, "10.96.0.10", 80).unwrap();
    assert!(v.flags.has(ServiceFlags::PERSISTENT));
    assert_eq!(v.timeout, 10800);
    r.svc(&aff.replace(
        "sessionAffinity: ClientIP\n",
        "sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 125}}\n",
    ));
    let cmds = r.sync();
    assert!(
        cmds.iter().all(|c| matches!(c, Command::EditService(_))),
        "{cmds:?}"
    );
    assert_eq!(r.vs(Protocol::Tcp, "10.96.0.10", 80).unwrap().timeout, 125);
    r.svc(WEB);
    r.sync();
    assert!(
        !r.vs(Protocol::Tcp, "10.96.0.10", 80)
            .unwrap()
            .flags
            .has(ServiceFlags::PERSISTENT)
    );
}

fn slice_with(conds: &str) -> String {
    format!(
        r#"
metadata: {{name: web-abc, namespace: ns1, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}, {{name: https, port: 8443}}]
endpoints:
- addresses: [10.244.1.5]
  nodeName: node1
  conditions: {conds}
- addresses: [10.244.2.6]
  nodeName: node0
  conditions: {{ready: true}}
"#
    )
}

/// Test plan 9, the core of `safe`: an endpoint that turns terminating gets weight 0 in
/// the same sync (an edit: its established flows continue); coming back ready restores
/// weight 1 by an edit, never a delete and re-add (kube-proxy deletes and re-adds, which
/// kills its connections); leaving the slice deletes it.
#[test]
fn terminating_endpoint_drains_and_flaps_back_without_reset() {
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[WEB], &[&slice_with("{ready: true}")]);
    r.sync();
    r.slice(&slice_with(
        "{ready: false, serving: true, terminating: true}",
    ));
    let cmds = r.sync();
    assert!(
        cmds.iter().all(|c| matches!(c, Command::EditDest(..))),
        "{cmds:?}"
    );
    r.expect(
        Protocol::Tcp,
        "10.96.0.10",
        80,
        &["10.244.1.5:8080 w0", "10.244.2.6:8080 w1"],
    );
    r.slice(&slice_with("{ready: true}"));
    let cmds = r.sync();
    assert!(
        cmds.iter().all(|c| matches!(c, Command::EditDest(..))),
        "{cmds:?}"
    );
    r.expect(
        Protocol::Tcp,
        "10.96.0.10",
        80,
        &["10.244.1.5:8080 w1", "10.244.2.6:8080 w1"],
    );
    // Gone from the slice: deleted (the safe profile ends its flows fast).
    let only_b = r#"
metadata: {name: web-abc, namespace: ns1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
endpoints: [{addresses: [10.244.2.6], nodeName: node0}]
"#;
    r.slice(only_b);
    let cmds = r.sync();
    assert!(
        cmds.iter().all(|c| matches!(c, Command::DelDest(..))),
        "{cmds:?}"
    );
    r.expect(Protocol::Tcp, "10.96.0.10", 80, &["10.244.2.6:8080 w1"]);
}

/// Test plan 10 (KEP-1669): only serving terminating endpoints left. `compat` gives them
/// weight 1 (upstream's four "fallback to terminating endpoints" e2e tests); `safe`
/// deliberately does not: weight 0, so new connections are refused while established ones
/// continue.
#[test]
fn only_terminating_left_compat_vs_safe() {
    let only_terminating = r#"
metadata: {name: web-abc, namespace: ns1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
endpoints:
- addresses: [10.244.1.5]
  nodeName: node1
  conditions: {ready: false, serving: true, terminating: true}
"#;
    for (policy, w) in [(EndpointPolicy::Compat, 1), (EndpointPolicy::Safe, 0)] {
        let mut r = Rig::new(section(policy));
        r.list(&[WEB], &[only_terminating]);
        r.sync();
        assert_eq!(
            r.rs(Protocol::Tcp, "10.96.0.10", 80),
            [format!("10.244.1.5:8080 w{w}")],
            "{policy:?}"
        );
        assert_eq!(r.p.terminating_weighted(), if w == 1 { 2 } else { 0 });
    }
    // Not serving: nobody takes it, in either policy (test plan 11).
    let not_serving = only_terminating.replace("serving: true", "serving: false");
    for policy in [EndpointPolicy::Compat, EndpointPolicy::Safe] {
        let mut r = Rig::new(section(policy));
        r.list(&[WEB], &[&not_serving]);
        r.sync();
        r.expect(Protocol::Tcp, "10.96.0.10", 80, &["10.244.1.5:8080 w0"]);
    }
}

/// Test plan 14: `internalTrafficPolicy: Local` keeps only this node's endpoints on the
/// ClusterIP; with none here, no real server (refused), and the ClusterIP of a NodePort
/// Service does not fall back to cluster endpoints (kube-proxy's IPVS quirk, k/k#97081).
/// `externalTrafficPolicy: Local` keeps the client's address (NAT) and local endpoints.
#[test]
fn traffic_policy_local() {
    let local = NODEPORT.replace(
        "  type: NodePort\n",
        "  type: NodePort\n  internalTrafficPolicy: Local\n  externalTrafficPolicy: Local\n",
    );
    let mut r = Rig::with_fullnat(
        section(EndpointPolicy::Safe),
        &["192.0.2.10".parse().unwrap()],
    );
    r.list(&[&local], &[NP_SLICE]);
    r.sync();
    r.expect(Protocol::Tcp, "10.96.0.20", 80, &["10.244.1.5:8080 w1"]);
    let np = r.vs(Protocol::Tcp, "192.0.2.10", 30080).unwrap();
    assert_eq!(np.dests.len(), 1);
    assert_eq!(
        np.dests[0].fwd,
        ForwardMethod::Masq,
        "Local keeps the source"
    );
    // Only node1's endpoint: nothing local.
    r.slice(&NP_SLICE.replace("- {addresses: [10.244.1.5], nodeName: node0}\n", ""));
    r.sync();
    assert!(r.rs(Protocol::Tcp, "10.96.0.20", 80).is_empty());
    assert!(r.rs(Protocol::Tcp, "192.0.2.10", 30080).is_empty());
    assert_eq!(r.p.no_local_endpoints(), [1, 1]);
}

/// Topology: with zone hints on every ready endpoint and one for this node's zone, only
/// the endpoints hinted for it take new connections (`trafficDistribution: PreferClose`).
#[test]
fn topology_zone_hints() {
    let hinted = r#"
metadata: {name: web-abc, namespace: ns1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
endpoints:
- {addresses: [10.244.1.5], zone: a, hints: {forZones: [{name: a}]}}
- {addresses: [10.244.2.6], zone: b, hints: {forZones: [{name: b}]}}
"#;
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[WEB], &[hinted]);
    r.sync();
    r.expect(
        Protocol::Tcp,
        "10.96.0.10",
        80,
        &["10.244.1.5:8080 w1", "10.244.2.6:8080 w0"],
    );
    // One endpoint without hints: no topology.
    r.slice(&hinted.replace(", hints: {forZones: [{name: b}]}", ""));
    r.sync();
    r.expect(
        Protocol::Tcp,
        "10.96.0.10",
        80,
        &["10.244.1.5:8080 w1", "10.244.2.6:8080 w1"],
    );
}

/// A per-Service scheduler by annotation (beyond kube-proxy), validated: a bad one is
/// reported and the node's default used.
#[test]
fn scheduler_annotation() {
    let mh = WEB.replace(
        "namespace: ns1,",
        "namespace: ns1, annotations: {rvs.io/scheduler: mh, rvs.io/scheduler-flags: \"mh-port\"},",
    );
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[&mh], &[WEB_SLICE]);
    r.sync();
    let v = r.vs(Protocol::Tcp, "10.96.0.10", 80).unwrap();
    assert_eq!(v.scheduler, "mh");
    assert_eq!(v.flags.0 & ServiceFlags::SCHED2, ServiceFlags::SCHED2);
    r.svc(&WEB.replace(
        "namespace: ns1,",
        "namespace: ns1, annotations: {rvs.io/scheduler: fastest},",
    ));
    let res = r.p.sync(None);
    assert!(
        res.problems
            .iter()
            .any(|(_, p)| p.reason == "bad_annotation")
    );
    for c in res.commands {
        r.e.apply(Instant::ZERO, c).unwrap();
    }
    assert_eq!(
        r.vs(Protocol::Tcp, "10.96.0.10", 80).unwrap().scheduler,
        "rr"
    );
}

/// Bad input: a bad port, protocol, address or an oversized slice is skipped with a
/// counted reason; the rest of the Service and every other Service keep working.
#[test]
fn bad_fields_are_skipped_and_counted() {
    let bad = r#"
metadata: {name: bad, namespace: ns1}
spec:
  clusterIP: 10.96.0.40
  ports:
  - {name: a, port: 0}
  - {name: b, port: 81, protocol: ICMP}
  - {name: c, port: 82}
"#;
    let bad_slice = r#"
metadata: {name: bad-1, namespace: ns1, labels: {kubernetes.io/service-name: bad}}
addressType: IPv4
ports: [{name: c, port: 8082}]
endpoints:
- addresses: [not-an-ip]
- addresses: [10.244.9.9]
"#;
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[bad, WEB], &[bad_slice, WEB_SLICE]);
    r.sync();
    r.expect(Protocol::Tcp, "10.96.0.40", 82, &["10.244.9.9:8082 w1"]);
    assert_eq!(r.keys().len(), 3);
    let inv = &r.p.counters().invalid;
    for reason in ["bad_port", "bad_protocol", "bad_endpoint"] {
        assert!(
            inv.get(reason).copied().unwrap_or(0) > 0,
            "{reason}: {inv:?}"
        );
    }
    let huge = format!(
        "metadata: {{name: huge, namespace: ns1, labels: {{kubernetes.io/service-name: web}}}}\naddressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints:\n{}",
        (0..1001)
            .map(|i| format!("- addresses: [10.250.{}.{}]\n", i / 250, i % 250 + 1))
            .collect::<String>()
    );
    r.slice(&huge);
    r.sync();
    assert_eq!(
        r.rs(Protocol::Tcp, "10.96.0.10", 80).len(),
        2,
        "the huge slice is skipped"
    );
}

/// Test plan 19: a relist that returns the same objects changes nothing; one that misses
/// an object deletes what it had, and touches nothing else.
#[test]
fn relist_diffs_and_never_flushes() {
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[WEB, NODEPORT], &[WEB_SLICE, NP_SLICE]);
    r.sync();
    r.list(&[WEB, NODEPORT], &[WEB_SLICE, NP_SLICE]);
    assert!(r.sync().is_empty());
    r.list(&[WEB], &[WEB_SLICE, NP_SLICE]);
    let cmds = r.sync();
    assert!(!cmds.is_empty());
    assert!(cmds.iter().all(|c| matches!(c, Command::DelService(k) if k.to_string().contains("10.96.0.20") || k.to_string().contains(":30080"))), "{cmds:?}");
}

/// A new daemon (takeover or crash) adopts the engine's state: its first sync diffs against
/// the listing, so unchanged virtual servers are not touched, a weight 0 left behind for a
/// ready endpoint is set back to 1 (k/k#92019), and what no Service wants is removed.
#[test]
fn first_sync_adopts_the_running_state() {
    let mut old = Rig::new(section(EndpointPolicy::Safe));
    old.list(
        &[WEB, NODEPORT],
        &[&slice_with("{ready: false, terminating: true}"), NP_SLICE],
    );
    old.sync();
    let mut new = Rig::new(section(EndpointPolicy::Safe));
    new.e = old.e;
    // Meanwhile: the endpoint is ready again, and the NodePort Service was deleted.
    new.list(&[WEB], &[&slice_with("{ready: true}"), NP_SLICE]);
    let cmds = new.sync();
    let edits = cmds
        .iter()
        .filter(|c| matches!(c, Command::EditDest(..)))
        .count();
    let dels = cmds
        .iter()
        .filter(|c| matches!(c, Command::DelService(..)))
        .count();
    assert_eq!((edits, dels, cmds.len()), (2, 3, 5), "{cmds:?}");
    new.expect(
        Protocol::Tcp,
        "10.96.0.10",
        80,
        &["10.244.1.5:8080 w1", "10.244.2.6:8080 w1"],
    );
}

/// Two Services that claim the same virtual server: the first keeps it, the second is
/// reported; when the first lets go, the second gets it.
#[test]
fn conflicting_virtual_servers() {
    let a = "metadata: {name: a, namespace: ns1}\nspec: {clusterIP: 10.96.0.50, externalIPs: [203.0.113.50], ports: [{port: 80}]}";
    let b = "metadata: {name: b, namespace: ns1}\nspec: {clusterIP: 10.96.0.51, externalIPs: [203.0.113.50], ports: [{port: 80}]}";
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[a, b], &[]);
    r.sync();
    assert_eq!(r.keys().len(), 3);
    assert_eq!(r.p.counters().conflicts, 1);
    r.p.on_service(Event::Delete(yaml(a)));
    r.sync();
    r.sync();
    assert_eq!(r.keys(), ["TCP 10.96.0.51:80", "TCP 203.0.113.50:80"]);
}

/// Dual stack: one set of virtual servers per family, each from the slices of its
/// address type.
#[test]
fn dual_stack() {
    let svc = r#"
metadata: {name: ds, namespace: ns1}
spec:
  clusterIP: 10.96.0.60
  clusterIPs: [10.96.0.60, "fd00:96::60"]
  ipFamilies: [IPv4, IPv6]
  ports: [{name: "", port: 80}]
"#;
    let v4 = "metadata: {name: ds-4, namespace: ns1, labels: {kubernetes.io/service-name: ds}}\naddressType: IPv4\nports: [{name: \"\", port: 8080}]\nendpoints: [{addresses: [10.244.1.60]}]";
    let v6 = "metadata: {name: ds-6, namespace: ns1, labels: {kubernetes.io/service-name: ds}}\naddressType: IPv6\nports: [{name: \"\", port: 8080}]\nendpoints: [{addresses: [\"fd00:244::60\"]}]";
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[svc], &[v4, v6]);
    r.sync();
    r.expect(Protocol::Tcp, "10.96.0.60", 80, &["10.244.1.60:8080 w1"]);
    r.expect(Protocol::Tcp, "fd00:96::60", 80, &["fd00:244::60:8080 w1"]);
}

/// The health-check node port counts distinct ready local endpoint addresses; a
/// terminating local endpoint is not counted (kube-proxy's `LocalReadyEndpoints`).
#[test]
fn health_check_node_port_counts_ready_local_endpoints() {
    let lb = r#"
metadata: {name: lb, namespace: ns1}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  clusterIP: 10.96.0.70
  ports: [{name: http, port: 80, nodePort: 30070}, {name: https, port: 443, nodePort: 30071}]
"#;
    let slice = r#"
metadata: {name: lb-1, namespace: ns1, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: http, port: 80}, {name: https, port: 443}]
endpoints: [{addresses: [10.244.1.5], nodeName: node0, conditions: {ready: true}}]
"#;
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[lb], &[slice]);
    r.sync();
    let hc: Vec<_> = r.p.health_checks().values().cloned().collect();
    assert_eq!(hc.len(), 1);
    assert_eq!((hc[0].port, hc[0].local_endpoints), (32000, 1));
    r.slice(&slice.replace(
        "{ready: true}",
        "{ready: false, serving: true, terminating: true}",
    ));
    r.sync();
    assert_eq!(
        r.p.health_checks().values().next().unwrap().local_endpoints,
        0
    );
    assert_eq!(
        rvs_kubernetes::health::health_check_body(
            &rvs_kubernetes::store::ObjKey::new("default", "wp-nginx-service"),
            1,
            true
        )
        .len(),
        127,
        "kube-proxy's body for default/wp-nginx-service is 127 bytes"
    );
}

/// The Node: the `ToBeDeletedByClusterAutoscaler` taint or a deletion timestamp makes it
/// ineligible (KEP-3836); a changed zone recomputes every Service.
#[test]
fn node_eligibility_and_zone() {
    let mut r = Rig::new(section(EndpointPolicy::Safe));
    r.list(&[WEB], &[WEB_SLICE]);
    r.sync();
    assert!(r.p.node_eligible());
    r.p.on_node(Event::Apply(yaml(
        "metadata: {name: node0, labels: {topology.kubernetes.io/zone: a}}\nspec: {taints: [{key: ToBeDeletedByClusterAutoscaler, effect: NoSchedule}]}",
    )));
    assert!(!r.p.node_eligible());
    r.p.on_node(Event::Apply(yaml(
        "metadata: {name: node0, labels: {topology.kubernetes.io/zone: b}}",
    )));
    assert!(r.p.node_eligible());
    assert!(r.p.pending());
    assert_eq!(r.p.sync(None).recomputed, 1);
}

/// The watches' label selector: kube-proxy's by default; with a proxy name, only the
/// Services labelled for it (headless ones still excluded).
#[test]
fn label_selector_of_the_watches() {
    let mut k = KubernetesSection::default();
    assert_eq!(
        rvs_kubernetes::driver::label_selector(&k),
        "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
    );
    k.service_proxy_name = Some("rvs".into());
    assert_eq!(
        rvs_kubernetes::driver::label_selector(&k),
        "service.kubernetes.io/service-proxy-name=rvs,!service.kubernetes.io/headless"
    );
}
