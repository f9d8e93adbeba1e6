//! A node of a Kubernetes cluster in the namespace lab: the balancer namespace is the node
//! (`node0`, address 10.1.0.1) running `rvs daemon` with a `[kubernetes]` section; the
//! real-server namespaces are pods (rs1 = 10.2.1.2 …); the client namespace is a pod on
//! another node or an external client. The API server is the stand-in of
//! `rvs-kube-standin`, listening on the node's loopback (bound inside its namespace); rvs
//! reaches it through a kubeconfig, with the client code it uses against a real cluster.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rvs_kube_standin::StandIn;

use super::{Env, RVS, Topology, config_text_dp, stdout, topo};

/// The ClusterIP of the test Service.
pub const CLUSTER_IP: &str = "10.96.0.10";

/// A node with its API server.
pub struct Node {
    pub env: Env,
    pub api: StandIn,
}

/// The node's config: the common engine and data plane, plus `[kubernetes]`. The pods'
/// replies are steered by one rule for the pod network (10.2.0.0/16), as on a real node.
fn config(sock: &std::path::Path, kubeconfig: &std::path::Path, policy: &str) -> String {
    config_text_dp(
        sock,
        "safe",
        "reply_prefixes = [\"10.2.0.0/16\"]",
        &format!(
            r#"[kubernetes]
kubeconfig = "{}"
node_name = "node0"
endpoint_policy = "{policy}"
node_addresses = ["10.1.0.1"]
healthz_listen = "127.0.0.1:10256"
metrics_listen = "127.0.0.1:10249"
sync_period = 2
"#,
            kubeconfig.display()
        ),
    )
}

impl Node {
    /// Builds the lab with `pods` real servers (TCP and UDP on port 80), starts the
    /// stand-in API server with this node's Node object and `objects` (YAML), then the
    /// daemon.
    pub fn start(tag: &str, pods: usize, policy: &str, objects: &str) -> Node {
        let mut api = None;
        let env = Env::start_config(tag, pods, 80, |t: &Topology, sock| {
            let l = t
                .lab
                .in_netns(&t.lb, || std::net::TcpListener::bind("127.0.0.1:0"))
                .expect("namespace")
                .expect("bind the API server");
            let s = StandIn::serve(l).expect("stand-in API server");
            s.apply_yaml(NODE0).expect("node object");
            if !objects.trim().is_empty() {
                s.apply_yaml(objects).expect("objects");
            }
            let kc = t.lab.dir().join("kubeconfig");
            s.write_kubeconfig(&kc).expect("kubeconfig");
            api = Some(s);
            config(sock, &kc, policy)
        });
        Node {
            env,
            api: api.expect("the API server started"),
        }
    }

    /// `rvs adm -Ln` output.
    pub fn listing(&self) -> String {
        stdout(&self.env.adm(&["-Ln"]))
    }

    /// Waits (at most 10 s) until `pred` holds for the listing; panics with it otherwise.
    pub fn wait_listing(&self, what: &str, pred: impl Fn(&str) -> bool) -> Duration {
        self.wait_listing_for(what, Duration::from_secs(10), pred)
    }

    /// [`Node::wait_listing`] for a while longer (a large cluster's first programming).
    pub fn wait_listing_long(&self, what: &str, pred: impl Fn(&str) -> bool) -> Duration {
        self.wait_listing_for(what, Duration::from_secs(120), pred)
    }

    fn wait_listing_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Duration {
        let t0 = Instant::now();
        let end = t0 + limit;
        loop {
            let l = self.listing();
            if pred(&l) {
                return t0.elapsed();
            }
            if Instant::now() > end {
                panic!(
                    "{what}: not reached in {limit:?}; listing:\n{l}\ndaemon log:\n{}",
                    self.env.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An HTTP GET inside the node (curl -i): status line, headers and body.
    pub fn get(&self, url: &str) -> String {
        let o = self
            .env
            .t
            .lab
            .exec_timeout(
                &self.env.t.lb,
                &["curl", "-sS", "-i", "--max-time", "3", url],
                Duration::from_secs(5),
            )
            .expect("curl");
        stdout(&o)
    }

    /// GETs `url` until the answer starts with `status` (at most 5 s); the last answer.
    pub fn get_until(&self, url: &str, status: &str) -> String {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let a = self.get(url);
            if a.starts_with(status) || Instant::now() > end {
                return a;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        self.env.log()
    }
}

/// This node's Node object.
pub const NODE0: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: node0
  labels: {topology.kubernetes.io/zone: a, kubernetes.io/hostname: node0}
status:
  addresses: [{type: InternalIP, address: 10.1.0.1}]
"#;

/// The test Service: `web` in `default`, TCP and UDP port 80 on [`CLUSTER_IP`].
pub fn web_service(extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  clusterIP: {CLUSTER_IP}
  clusterIPs: [{CLUSTER_IP}]
  selector: {{app: web}}
  ports:
  - {{name: tcp, port: 80, protocol: TCP, targetPort: 80}}
  - {{name: udp, port: 80, protocol: UDP, targetPort: 80}}
{extra_spec}"#
    )
}

/// The state of one pod in a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pod {
    Ready,
    Terminating,
    /// Terminating and no longer serving.
    Stopping,
}

/// The EndpointSlice of `web` with pods `(n, state)` (rsN's address); pod 1 runs on this
/// node, the others elsewhere.
pub fn web_slice(pods: &[(usize, Pod)]) -> String {
    let mut eps = String::new();
    for (n, st) in pods {
        let (ready, serving, term) = match st {
            Pod::Ready => (true, true, false),
            Pod::Terminating => (false, true, true),
            Pod::Stopping => (false, false, true),
        };
        let node = if *n == 1 { "node0" } else { "node1" };
        eps += &format!(
            "- addresses: [{}]\n  nodeName: {node}\n  conditions: {{ready: {ready}, serving: {serving}, terminating: {term}}}\n",
            topo::rs4(*n)
        );
    }
    format!(
        r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports:
- {{name: tcp, port: 80, protocol: TCP}}
- {{name: udp, port: 80, protocol: UDP}}
endpoints:
{}"#,
        if eps.is_empty() {
            "[]\n".to_string()
        } else {
            eps
        }
    )
}

/// The real servers of a virtual server in an `ipvsadm -Ln` listing, as `addr:port weight`
/// (after the line of `vs`, e.g. `TCP  10.96.0.10:80`).
pub fn real_servers(listing: &str, vs: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in listing.lines() {
        if l.starts_with("TCP")
            || l.starts_with("UDP")
            || l.starts_with("SCTP")
            || l.starts_with("FWM")
        {
            inside = l.split_whitespace().take(2).collect::<Vec<_>>().join("  ") == vs;
            continue;
        }
        if inside && l.trim_start().starts_with("->") {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 4 && f[1] != "RemoteAddress:Port" {
                out.push(format!("{} {}", f[1], f[3]));
            }
        }
    }
    out.sort();
    out
}

/// The ClusterIP as an address.
pub fn cluster_ip() -> IpAddr {
    CLUSTER_IP.parse().unwrap()
}

/// The binary, for tests that need it.
pub fn rvs_bin() -> &'static str {
    RVS
}
