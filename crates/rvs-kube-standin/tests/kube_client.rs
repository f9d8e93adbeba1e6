//! The stand-in as kube-rs sees it: the real client and `watcher`, connected through
//! the kubeconfig the stand-in writes, as rvs's Kubernetes driver connects.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use rvs_kube_standin::StandIn;
use serde_json::{Value, json};

const PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";
const HEADLESS: &str = "service.kubernetes.io/headless";

/// The whole test, bounded.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the test took over 60 s");
}

/// A client configured from the stand-in's kubeconfig.
async fn client(api: &StandIn) -> Client {
    Client::try_from(config(api).await).unwrap()
}

/// The client configuration from the stand-in's kubeconfig.
async fn config(api: &StandIn) -> kube::Config {
    let path = std::env::temp_dir().join(format!(
        "kube-standin-{}-{}.yaml",
        std::process::id(),
        api.addr().port()
    ));
    api.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    assert_eq!(
        config.cluster_url.to_string().trim_end_matches('/'),
        api.url()
    );
    config
}

fn service(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "protocol": "TCP"}]},
    })
}

fn slice(ns: &str, name: &str, service: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    })
}

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
}

/// Requests for the services collection: (lists, watches).
fn service_requests(api: &StandIn) -> (usize, usize) {
    let reqs: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/api/v1/services"))
        .collect();
    let watches = reqs.iter().filter(|r| r.contains("watch=true")).count();
    (reqs.len() - watches, watches)
}

/// What a watcher yielded, reduced to what the tests compare.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
    Error(String),
}

fn seen<K: ResourceExt>(r: Result<watcher::Event<K>, watcher::Error>) -> Seen {
    match r {
        Ok(watcher::Event::Init) => Seen::Init,
        Ok(watcher::Event::InitApply(o)) => Seen::InitApply(o.name_any()),
        Ok(watcher::Event::InitDone) => Seen::InitDone,
        Ok(watcher::Event::Apply(o)) => Seen::Apply(o.name_any()),
        Ok(watcher::Event::Delete(o)) => Seen::Delete(o.name_any()),
        Err(e) => Seen::Error(e.to_string()),
    }
}

/// The watcher's next item, within `within`.
async fn next<S, K>(w: &mut S, within: Duration) -> Seen
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
    K: ResourceExt,
{
    match tokio::time::timeout(within, w.next()).await {
        Ok(Some(r)) => seen(r),
        Ok(None) => panic!("the watcher ended"),
        Err(_) => panic!("nothing from the watcher within {within:?}"),
    }
}

/// The next `n` items, each within `within`.
async fn next_n<S, K>(w: &mut S, n: usize, within: Duration) -> Vec<Seen>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
    K: ResourceExt,
{
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(next(w, within).await);
    }
    out
}

/// Polls the watcher (which expects nothing) until the stand-in has `n` open watches:
/// after InitDone, a watcher only sends its watch request when polled again.
async fn until_watching<S, K>(w: &mut S, api: &StandIn, n: usize)
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
    K: ResourceExt,
{
    tokio::select! {
        item = w.next() => panic!("unexpected {:?}", item.map(seen)),
        () = eventually("the watch is open", || api.open_watches() == n) => {}
    }
}

const SOON: Duration = Duration::from_secs(1);

fn init_of(names: &[&str]) -> Vec<Seen> {
    let mut v = vec![Seen::Init];
    v.extend(names.iter().map(|n| Seen::InitApply(n.to_string())));
    v.push(Seen::InitDone);
    v
}

#[tokio::test]
async fn lists_page_and_filter() {
    bounded(async {
        let api = StandIn::start().unwrap();
        for i in 0..1_200 {
            let labels = match i % 4 {
                0 => json!({HEADLESS: ""}),
                1 => json!({PROXY_NAME: "x"}),
                2 => json!({PROXY_NAME: "other", "app": "a"}),
                _ => json!({"app": "a"}),
            };
            api.apply(service(&format!("ns{}", i % 3), &format!("svc-{i:04}"), labels)).unwrap();
        }
        for n in ["n1", "n2", "n3"] {
            api.apply(node(n)).unwrap();
        }
        let c = client(&api).await;
        let services = Api::<Service>::all(c.clone());

        // Three pages of 500, 500 and 200, in (namespace, name) order, at one resourceVersion.
        let mut lp = ListParams::default().limit(500);
        let mut keys = Vec::new();
        let mut pages = Vec::new();
        let mut rvs = BTreeSet::new();
        loop {
            let page = services.list(&lp).await.unwrap();
            pages.push(page.items.len());
            rvs.insert(page.metadata.resource_version.clone().unwrap());
            keys.extend(page.items.iter().map(|s| (s.namespace().unwrap(), s.name_any())));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => lp.continue_token = Some(token),
                None => break,
            }
        }
        assert_eq!(pages, [500, 500, 200]);
        assert_eq!(rvs.into_iter().collect::<Vec<_>>(), [api.resource_version().to_string()]);
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted, "sorted by namespace then name, no duplicates");
        assert_eq!(keys.len(), 1_200);

        // Objects carry what the real server sets.
        let one = Api::<Service>::namespaced(c.clone(), "ns0").get("svc-0000").await.unwrap();
        assert!(one.metadata.uid.is_some() && one.metadata.creation_timestamp.is_some());
        assert_eq!(one.metadata.resource_version.as_deref(), Some("2"), "an empty server is at 1");

        // Label selectors, as rvs sends them.
        let count = |sel: String| {
            let services = services.clone();
            async move { services.list(&ListParams::default().labels(&sel)).await.unwrap().items.len() }
        };
        assert_eq!(count(format!("!{PROXY_NAME},!{HEADLESS}")).await, 300);
        assert_eq!(count(format!("{PROXY_NAME}=x,!{HEADLESS}")).await, 300);
        assert_eq!(count(format!("{PROXY_NAME}!=x")).await, 900);
        assert_eq!(count(format!("{PROXY_NAME} in (x, other)")).await, 600);
        assert_eq!(count(format!("app,{PROXY_NAME} notin (other)")).await, 300);
        let encoded = "labelSelector=%21service.kubernetes.io%2Fservice-proxy-name%2C%21service.kubernetes.io%2Fheadless";
        assert!(api.requests().iter().any(|r| r.contains(encoded)), "{:?}", api.requests().last());

        // A namespace's collection.
        let ns1 = Api::<Service>::namespaced(c.clone(), "ns1").list(&ListParams::default()).await.unwrap();
        assert_eq!(ns1.items.len(), 400);
        assert!(ns1.items.iter().all(|s| s.namespace().as_deref() == Some("ns1")));

        // Field selector on a Node's name.
        let nodes = Api::<Node>::all(c.clone());
        let n2 = nodes.list(&ListParams::default().fields("metadata.name=n2")).await.unwrap();
        assert_eq!(n2.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>(), ["n2"]);
        let others = nodes.list(&ListParams::default().fields("metadata.name!=n2")).await.unwrap();
        assert_eq!(others.items.len(), 2);

        // Errors are Status objects with the real codes.
        let code = |e: kube::Error| match e {
            kube::Error::Api(s) => s.code,
            other => panic!("not an API error: {other}"),
        };
        assert_eq!(code(nodes.get("n9").await.unwrap_err()), 404);
        let bad = services.list(&ListParams::default().labels("a in")).await.unwrap_err();
        assert_eq!(code(bad), 400);
        let bad = nodes.list(&ListParams::default().fields("spec.unschedulable=true")).await.unwrap_err();
        assert_eq!(code(bad), 400);
    })
    .await;
}

#[tokio::test]
async fn watcher_sees_changes_and_selector_transitions() {
    bounded(async {
        let api = StandIn::start().unwrap();
        api.apply(service("default", "a", json!({}))).unwrap();
        api.apply(service("default", "b", json!({}))).unwrap();
        api.apply(service("default", "headless", json!({HEADLESS: ""})))
            .unwrap();
        let c = client(&api).await;
        let cfg = watcher::Config::default().labels(&format!("!{PROXY_NAME},!{HEADLESS}"));
        let mut w = watcher(Api::<Service>::all(c.clone()), cfg)
            .default_backoff()
            .boxed();
        assert_eq!(
            next_n(&mut w, 4, Duration::from_secs(5)).await,
            init_of(&["a", "b"])
        );

        api.apply(service("default", "c", json!({}))).unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("c".into()));
        api.apply(service("default", "a", json!({"app": "web"})))
            .unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("a".into()));
        api.delete("Service", "default", "b").unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Delete("b".into()));
        // Leaving and entering the selection.
        api.apply(service("default", "a", json!({HEADLESS: ""})))
            .unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Delete("a".into()));
        api.apply(service("default", "headless", json!({})))
            .unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("headless".into()));
        // Changes outside the selection are not seen at all.
        api.apply(service("default", "a", json!({HEADLESS: "", "x": "y"})))
            .unwrap();
        api.delete("Service", "default", "a").unwrap();
        api.apply(service("default", "d", json!({}))).unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("d".into()));

        // EndpointSlices (the discovery.k8s.io group) and Nodes by field selector.
        api.apply(slice("default", "d-1", "d", "10.0.0.1")).unwrap();
        let slices = Api::<EndpointSlice>::all(c.clone());
        let mut ws = watcher(slices, watcher::Config::default())
            .default_backoff()
            .boxed();
        assert_eq!(
            next_n(&mut ws, 3, Duration::from_secs(5)).await,
            init_of(&["d-1"])
        );
        api.apply(slice("default", "d-1", "d", "10.0.0.2")).unwrap();
        assert_eq!(next(&mut ws, SOON).await, Seen::Apply("d-1".into()));
        api.apply(node("other")).unwrap();
        let cfg = watcher::Config::default().fields("metadata.name=mine");
        let mut wn = watcher(Api::<Node>::all(c), cfg).default_backoff().boxed();
        assert_eq!(
            next_n(&mut wn, 2, Duration::from_secs(5)).await,
            init_of(&[])
        );
        api.apply(node("other")).unwrap();
        api.apply(node("mine")).unwrap();
        assert_eq!(next(&mut wn, SOON).await, Seen::Apply("mine".into()));
        api.delete("Node", "", "mine").unwrap();
        assert_eq!(next(&mut wn, SOON).await, Seen::Delete("mine".into()));
    })
    .await;
}

#[tokio::test]
async fn streaming_list_watcher() {
    bounded(async {
        let api = StandIn::start().unwrap();
        api.apply(service("default", "a", json!({}))).unwrap();
        let c = client(&api).await;
        let cfg = watcher::Config::default().streaming_lists();
        let mut w = watcher(Api::<Service>::all(c), cfg)
            .default_backoff()
            .boxed();
        assert_eq!(
            next_n(&mut w, 3, Duration::from_secs(5)).await,
            init_of(&["a"])
        );
        api.apply(service("default", "b", json!({}))).unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("b".into()));
        assert_eq!(service_requests(&api), (0, 1), "no list at all");
    })
    .await;
}

/// Polls a condition every 10 ms for up to 5 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn rewatch_after_end_and_relist_after_compaction() {
    bounded(async {
        let api = StandIn::start().unwrap();
        api.apply(service("default", "a", json!({}))).unwrap();
        api.apply(service("default", "gone", json!({}))).unwrap();
        let c = client(&api).await;
        let mut w = watcher(Api::<Service>::all(c), watcher::Config::default())
            .default_backoff()
            .boxed();
        assert_eq!(
            next_n(&mut w, 4, Duration::from_secs(5)).await,
            init_of(&["a", "gone"])
        );
        until_watching(&mut w, &api, 1).await;
        assert_eq!(service_requests(&api), (1, 1));

        // The stream ends: the watcher watches again from where it was, without a list,
        // and misses nothing written in between.
        api.end_watches();
        eventually("the watch ended", || api.open_watches() == 0).await;
        api.apply(service("default", "b", json!({}))).unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("b".into()));
        assert_eq!(service_requests(&api), (1, 2), "a re-watch and no list");

        // The stream ends again and, before the watcher is back, an object is deleted and
        // the history compacted: the re-watch gets 410 Expired and the watcher relists,
        // without the deleted object.
        api.end_watches();
        eventually("the watch ended", || api.open_watches() == 0).await;
        api.delete("Service", "default", "gone").unwrap();
        api.compact();
        match next(&mut w, SOON).await {
            Seen::Error(e) => assert!(e.contains("too old resource version"), "{e}"),
            other => panic!("expected the 410 error, got {other:?}"),
        }
        let relisted = next_n(&mut w, 4, Duration::from_secs(5)).await;
        assert_eq!(relisted, init_of(&["a", "b"]));
        assert_eq!(service_requests(&api), (2, 3), "one relist");
        // And it goes on watching.
        api.apply(service("default", "c", json!({}))).unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("c".into()));
        assert_eq!(service_requests(&api), (2, 4));
    })
    .await;
}

#[tokio::test]
async fn unavailable_then_recovered() {
    bounded(async {
        let api = StandIn::start().unwrap();
        api.apply(service("default", "a", json!({}))).unwrap();
        // kube-rs retries 503 answers itself (15 times, backing off from 5 ms) unless
        // told not to: without that, the watcher would not see the errors for minutes.
        let mut cfg = config(&api).await;
        cfg.default_retry = false;
        let services = Api::<Service>::all(Client::try_from(cfg).unwrap());
        let mut w = watcher(services.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        assert_eq!(
            next_n(&mut w, 3, Duration::from_secs(5)).await,
            init_of(&["a"])
        );
        until_watching(&mut w, &api, 1).await;

        api.set_unavailable(true);
        match services.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (503, "ServiceUnavailable"))
            }
            other => panic!("expected a 503, got {other:?}"),
        }
        match next(&mut w, Duration::from_secs(3)).await {
            Seen::Error(e) => assert!(e.contains("failed to start watching"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(api.open_watches(), 0);
        api.apply(service("default", "b", json!({}))).unwrap();
        api.set_unavailable(false);
        // The backoff delays the next attempt (0.8 s and more); then the watcher catches
        // up from its resourceVersion, without a relist.
        assert_eq!(
            next(&mut w, Duration::from_secs(10)).await,
            Seen::Apply("b".into())
        );
        assert_eq!(
            service_requests(&api).0,
            2,
            "the watcher's list and the one above"
        );
        api.apply(service("default", "c", json!({}))).unwrap();
        assert_eq!(next(&mut w, SOON).await, Seen::Apply("c".into()));
    })
    .await;
}

#[tokio::test]
async fn short_outage_is_retried_by_the_default_client() {
    bounded(async {
        let api = StandIn::start().unwrap();
        let c = client(&api).await;
        let mut w = watcher(Api::<Service>::all(c), watcher::Config::default())
            .default_backoff()
            .boxed();
        assert_eq!(
            next_n(&mut w, 2, Duration::from_secs(5)).await,
            init_of(&[])
        );
        until_watching(&mut w, &api, 1).await;
        api.set_unavailable(true);
        api.apply(service("default", "b", json!({}))).unwrap();
        let back = api.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            back.set_unavailable(false);
        });
        // No error: the client's own retries outlast the outage.
        assert_eq!(
            next(&mut w, Duration::from_secs(10)).await,
            Seen::Apply("b".into())
        );
        let (lists, watches) = service_requests(&api);
        assert_eq!(lists, 1);
        assert!(
            watches > 2,
            "the re-watch was retried ({watches} watch requests)"
        );
    })
    .await;
}

#[tokio::test]
async fn unreachable_is_reported_at_once_then_recovered() {
    bounded(async {
        let api = StandIn::start().unwrap();
        let c = client(&api).await;
        let services = Api::<Service>::all(c);
        let mut w = watcher(services.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        assert_eq!(
            next_n(&mut w, 2, Duration::from_secs(5)).await,
            init_of(&[])
        );
        until_watching(&mut w, &api, 1).await;

        api.set_unreachable(true);
        assert!(services.list(&ListParams::default()).await.is_err());
        // The broken watch stream, then the failing re-watch: errors within a second
        // (the broken stream may also just end, which is no error).
        match next(&mut w, SOON).await {
            Seen::Error(_) => {}
            other => panic!("expected an error, got {other:?}"),
        }
        api.apply(service("default", "b", json!({}))).unwrap();
        api.set_unreachable(false);
        let mut after = next(&mut w, Duration::from_secs(10)).await;
        while matches!(after, Seen::Error(_)) {
            after = next(&mut w, Duration::from_secs(10)).await;
        }
        assert_eq!(after, Seen::Apply("b".into()), "caught up without a relist");
        assert_eq!(
            service_requests(&api).0,
            1,
            "only the first list reached the server"
        );
    })
    .await;
}

#[tokio::test]
async fn shutdown_ends_watches_and_the_server() {
    bounded(async {
        let api = StandIn::start().unwrap();
        let c = client(&api).await;
        let services = Api::<Service>::all(c);
        let mut w = watcher(services.clone(), watcher::Config::default()).boxed();
        assert_eq!(
            next_n(&mut w, 2, Duration::from_secs(5)).await,
            init_of(&[])
        );
        until_watching(&mut w, &api, 1).await;
        let copy = api.clone();
        tokio::task::spawn_blocking(move || copy.shutdown())
            .await
            .unwrap();
        assert_eq!(api.open_watches(), 0);
        assert!(services.list(&ListParams::default()).await.is_err());
        assert!(std::net::TcpStream::connect(api.addr()).is_err());
    })
    .await;
}
