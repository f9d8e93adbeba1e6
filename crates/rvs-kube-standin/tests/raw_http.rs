//! The stand-in on the wire, with HTTP/1.1 written by hand over a std `TcpStream`, from
//! plain (non-async) tests.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rvs_kube_standin::StandIn;
use serde_json::{Value, json};

/// Sends a GET and returns the connection, to read the answer from.
fn get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

/// Reads until `done` holds for what was read, the peer closes, or `within` passes.
fn read_until(s: &mut TcpStream, within: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline && !done(&String::from_utf8_lossy(&got)) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A whole (non-streaming) answer: status code and JSON body.
fn fetch(api: &StandIn, path: &str) -> (u16, Value) {
    let mut s = get(api.addr(), path);
    let text = read_until(&mut s, Duration::from_secs(5), |_| false);
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole answer");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (
        code,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// The JSON lines of a chunked watch body read so far (complete lines only), after the
/// head if `text` starts with it.
fn events(text: &str) -> Vec<Value> {
    let body = match text.split_once("\r\n\r\n") {
        Some((_, body)) if text.starts_with("HTTP/") => body,
        _ => text,
    };
    body.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}})
}

#[test]
fn bookmarks_arrive() {
    let api = StandIn::start().unwrap();
    let rv = api.apply(service("a")).unwrap();
    let path = format!("/api/v1/services?watch=true&allowWatchBookmarks=true&resourceVersion={rv}");
    let mut s = get(api.addr(), &path);
    let text = read_until(&mut s, Duration::from_secs(2), |t| t.contains("BOOKMARK"));
    let head = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let bookmark = json!({
        "type": "BOOKMARK",
        "object": {"kind": "Service", "apiVersion": "v1", "metadata": {"resourceVersion": rv}},
    });
    assert_eq!(events(&text), [bookmark]);

    // EndpointSlices' bookmarks name their kind, and come at the interval set.
    api.set_bookmark_interval(Duration::from_millis(100));
    let path = "/apis/discovery.k8s.io/v1/endpointslices?watch=1&allowWatchBookmarks=true&resourceVersion=1";
    let mut s = get(api.addr(), path);
    let text = read_until(&mut s, Duration::from_secs(2), |t| {
        t.matches("BOOKMARK").count() >= 3
    });
    let got = events(&text);
    assert_eq!(got.len(), 3, "{text}");
    assert_eq!(got[0]["object"]["kind"], "EndpointSlice");
    assert_eq!(got[0]["object"]["apiVersion"], "discovery.k8s.io/v1");
}

#[test]
fn watch_replays_then_streams_live_events() {
    let api = StandIn::start().unwrap();
    let start = api.resource_version();
    api.apply(service("a")).unwrap();
    let mut s = get(
        api.addr(),
        &format!("/api/v1/namespaces/default/services?watch=true&resourceVersion={start}"),
    );
    let text = read_until(&mut s, Duration::from_secs(2), |t| t.contains("\"a\""));
    assert_eq!(events(&text).len(), 1);
    let t0 = Instant::now();
    api.apply(service("b")).unwrap();
    api.delete("Service", "default", "a").unwrap();
    let text = read_until(&mut s, Duration::from_secs(2), |t| t.contains("DELETED"));
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "live events come at once"
    );
    let got: Vec<(String, String)> = events(&text)
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["object"]["metadata"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [("ADDED", "b"), ("DELETED", "a")].map(|(t, n)| (t.to_string(), n.to_string()));
    assert_eq!(got, want);
    let deleted = &events(&text)[1]["object"];
    assert_eq!(deleted["kind"], "Service");
    assert_eq!(
        deleted["metadata"]["resourceVersion"],
        api.resource_version().to_string()
    );
    assert_eq!(api.open_watches(), 1);
    api.end_watches();
    let text = read_until(&mut s, Duration::from_secs(2), |t| t.ends_with("0\r\n\r\n"));
    assert!(
        text.ends_with("0\r\n\r\n"),
        "the chunked body ends cleanly: {text:?}"
    );
}

#[test]
fn watch_timeout_ends_the_stream() {
    let api = StandIn::start().unwrap();
    let t0 = Instant::now();
    let mut s = get(api.addr(), "/api/v1/nodes?watch=true&timeoutSeconds=1");
    let text = read_until(&mut s, Duration::from_secs(5), |t| t.ends_with("0\r\n\r\n"));
    assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
    assert!(t0.elapsed() >= Duration::from_millis(900) && t0.elapsed() < Duration::from_secs(3));

    api.set_max_watch_duration(Duration::from_millis(300));
    let t0 = Instant::now();
    let mut s = get(api.addr(), "/api/v1/nodes?watch=true&timeoutSeconds=100");
    let text = read_until(&mut s, Duration::from_secs(5), |t| t.ends_with("0\r\n\r\n"));
    assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the server-wide cap wins"
    );
}

#[test]
fn expired_resource_version_gets_410() {
    let api = StandIn::start().unwrap();
    let first = api.apply(service("a")).unwrap();
    api.apply(service("b")).unwrap();
    api.compact();
    let current = api.resource_version();
    let mut s = get(
        api.addr(),
        &format!("/api/v1/services?watch=true&resourceVersion={first}"),
    );
    let text = read_until(&mut s, Duration::from_secs(2), |t| t.ends_with("0\r\n\r\n"));
    let want = json!({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {first} ({})", current + 1),
            "reason": "Expired", "code": 410,
        },
    });
    assert_eq!(events(&text), [want]);
    // A list moves on to a resourceVersion that can be watched from.
    let (code, list) = fetch(&api, "/api/v1/services");
    assert_eq!(code, 200);
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(list_rv, (current + 1).to_string());
    let mut s = get(
        api.addr(),
        &format!("/api/v1/services?watch=true&resourceVersion={list_rv}"),
    );
    api.apply(service("c")).unwrap();
    let text = read_until(&mut s, Duration::from_secs(2), |t| t.contains("\"c\""));
    assert_eq!(events(&text)[0]["type"], "ADDED");

    // A small history cap expires old resourceVersions too.
    api.set_history_limit(2);
    let old = api.resource_version();
    for n in ["d", "e", "f"] {
        api.apply(service(n)).unwrap();
    }
    let mut s = get(
        api.addr(),
        &format!("/api/v1/services?watch=true&resourceVersion={old}"),
    );
    let text = read_until(&mut s, Duration::from_secs(2), |t| t.ends_with("0\r\n\r\n"));
    assert_eq!(events(&text)[0]["object"]["code"], 410);
}

#[test]
fn lists_gets_and_errors() {
    let api = StandIn::start().unwrap();
    let yaml = "
apiVersion: v1
kind: Node
metadata:
  name: n1
---
# a comment-only document is skipped
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: s2, namespace: b}}
- {apiVersion: v1, kind: Service, metadata: {name: s1, namespace: b}}
- {apiVersion: v1, kind: Service, metadata: {name: s9, namespace: a}}
";
    assert_eq!(api.apply_yaml(yaml).unwrap(), ["2", "3", "4", "5"]);
    assert!(
        api.apply_yaml("kind: Service\nmetadata: {name: x}\n")
            .is_err(),
        "no namespace"
    );
    assert!(api.apply_yaml("kind: Pod\nmetadata: {name: x}\n").is_err());
    assert!(api.apply_yaml(": : :").is_err());
    assert_eq!(api.resource_version(), 5, "nothing written by the failures");

    let (code, list) = fetch(&api, "/api/v1/services");
    assert_eq!(code, 200);
    assert_eq!(
        (&list["kind"], &list["apiVersion"]),
        (&json!("ServiceList"), &json!("v1"))
    );
    assert_eq!(list["metadata"], json!({"resourceVersion": "5"}));
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s9", "s1", "s2"], "by namespace, then name");
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind, as on the real server"
    );

    // Paging by hand: a token, then the last page without one.
    let (_, page) = fetch(&api, "/api/v1/services?limit=2");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let (_, last) = fetch(&api, &format!("/api/v1/services?limit=2&continue={token}"));
    assert_eq!(last["items"][0]["metadata"]["name"], "s2");
    assert!(last["metadata"].get("continue").is_none());
    assert_eq!(last["metadata"]["resourceVersion"], "5");

    let (code, node) = fetch(&api, "/api/v1/nodes/n1");
    assert_eq!((code, &node["kind"]), (200, &json!("Node")));
    assert!(
        node["metadata"]["uid"].is_string() && node["metadata"]["creationTimestamp"].is_string()
    );
    assert_eq!(api.get("Node", "ignored", "n1").unwrap(), node);
    let (code, status) = fetch(&api, "/api/v1/namespaces/b/services/nope");
    assert_eq!((code, &status["reason"]), (404, &json!("NotFound")));
    assert_eq!(status["message"], "services \"nope\" not found");

    for (path, want) in [
        ("/api/v1/pods", 404),
        ("/healthz", 404),
        ("/api/v1/services?labelSelector=a%20in", 400),
        ("/api/v1/services?fieldSelector=spec.x%3D1", 400),
        ("/api/v1/services?limit=x", 400),
        ("/api/v1/services?continue=zz", 400),
        ("/api/v1/services?watch=true&resourceVersion=abc", 400),
        ("/api/v1/services?watch=maybe", 400),
    ] {
        let (code, status) = fetch(&api, path);
        assert_eq!(code, want, "{path}");
        assert_eq!(
            (&status["kind"], &status["code"]),
            (&json!("Status"), &json!(want)),
            "{path}"
        );
    }

    api.set_unavailable(true);
    let (code, status) = fetch(&api, "/api/v1/nodes");
    assert_eq!(
        (code, &status["reason"]),
        (503, &json!("ServiceUnavailable"))
    );
    api.set_unavailable(false);
    assert_eq!(fetch(&api, "/api/v1/nodes").0, 200);

    let log = api.requests();
    assert_eq!(log.first().map(String::as_str), Some("/api/v1/services"));
    assert!(log.contains(&"/api/v1/services?labelSelector=a%20in".to_string()));
    api.clear_requests();
    assert!(api.requests().is_empty());

    assert_eq!(api.delete("Node", "", "n1").unwrap(), "6");
    assert!(api.delete("Node", "", "n1").is_err());
    assert!(api.delete("Pod", "", "n1").is_err());
    assert_eq!(fetch(&api, "/api/v1/nodes/n1").0, 404);
}

#[test]
fn serves_on_a_given_listener_and_stops_when_dropped() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let api = StandIn::serve(listener).unwrap();
    assert_eq!(api.url(), format!("http://{addr}"));
    let copy = api.clone();
    drop(api);
    assert_eq!(
        fetch(&copy, "/api/v1/nodes").0,
        200,
        "a clone keeps it running"
    );
    let mut s = get(addr, "/api/v1/nodes?watch=true");
    read_until(&mut s, Duration::from_secs(2), |t| t.contains("\r\n\r\n"));
    assert_eq!(copy.open_watches(), 1);
    drop(copy);
    let text = read_until(&mut s, Duration::from_secs(2), |_| false);
    assert!(text.ends_with("0\r\n\r\n") || text.is_empty(), "{text:?}");
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}
