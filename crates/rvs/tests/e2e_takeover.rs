//! A planned restart and upgrade of `rvs daemon` loses no flow (issue 14): a new daemon
//! started with `--takeover` (from another copy of the binary) receives the running one's TUN
//! descriptor and its whole engine state; the old one exits leaving the setup in place.
//! Under load — 200 long-lived TCP flows each sending every 100 ms, short connections, UDP
//! flows — four hand-overs in a row break nothing.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;

const LONG_FLOWS: usize = 200;
const UDP_FLOWS: usize = 20;

fn services() -> String {
    format!(
        "{}\n{}",
        service("tcp", false, 80, "rr", "masq", &[1, 1, 1]),
        service("udp", false, 80, "rr", "masq", &[1, 1, 1])
    )
}

/// Stops the load threads however the test ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Tally {
    short_ok: AtomicU64,
    short_failed: AtomicU64,
    short_slow: AtomicU64,
    long_broken: AtomicU64,
    long_msgs: AtomicU64,
    udp_lost: AtomicU64,
    udp_ok: AtomicU64,
}

/// Starts `rvs daemon --takeover` from `bin` under `label`, waits for the old daemon
/// (`old`) to exit; returns the pause the new daemon reported, in ms.
fn take_over(env: &mut Env, bin: &str, label: &str, old: &str) -> f64 {
    let lb = env.t.lb.clone();
    let cfg = env.cfg.to_string_lossy().to_string();
    env.t
        .lab
        .spawn(
            &lb,
            label,
            &[bin, "daemon", "--config", &cfg, "--takeover"],
            &[("RUST_LOG", "info")],
        )
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while env.t.lab.running(old) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let new_log = env.t.lab.log(label);
    assert!(
        !env.t.lab.running(old),
        "the old daemon did not exit after the takeover\nold log:\n{}\nnew log:\n{new_log}",
        env.t.lab.log(old)
    );
    assert!(
        env.t.lab.log(old).contains("handed over"),
        "old log:\n{}\nnew log:\n{new_log}",
        env.t.lab.log(old)
    );
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let log = env.t.lab.log(label);
        if let Some(p) = log.find("takeover: pause ") {
            let rest = &log[p + "takeover: pause ".len()..];
            let ms = rest.split_whitespace().next().unwrap_or("");
            return ms.parse().unwrap_or_else(|_| panic!("pause in {log}"));
        }
        assert!(Instant::now() < end, "no pause reported:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn takeover_under_load_loses_no_flow() {
    if skip("takeover_under_load_loses_no_flow") {
        return;
    }
    let _g = serial();
    let mut env = Env::start("tko", 3, 80, "safe", &services());
    let vip = Topology::vip(false);
    let to = sa(vip, 80);
    let client = env.t.client.clone();

    // The long-lived flows, opened before any load.
    let mut flows: Vec<TcpStream> = Vec::new();
    for _ in 0..LONG_FLOWS {
        let mut s = env.connect(to).expect("long-lived flow");
        ask(&mut s, "hello").expect("first answer");
        flows.push(s);
    }
    let udp: Vec<UdpSocket> = (0..UDP_FLOWS).map(|_| env.udp(to)).collect();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let mut threads = Vec::new();
    // Long-lived flows: 4 threads of 50 flows, each flow one exchange every 100 ms.
    let per = LONG_FLOWS / 4;
    for _ in 0..4 {
        let mine: Vec<TcpStream> = flows.drain(..per.min(flows.len())).collect();
        let (t, st) = (tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut live: Vec<Option<TcpStream>> = mine.into_iter().map(Some).collect();
            let mut n = 0u64;
            let mut lat_us: Vec<u32> = Vec::new();
            while !st.load(Ordering::Relaxed) {
                let round = Instant::now();
                for s in live.iter_mut() {
                    let Some(c) = s.as_mut() else { continue };
                    n += 1;
                    let msg = format!("m{n}");
                    let t0 = Instant::now();
                    match ask(c, &msg) {
                        Ok(a) if a.ends_with(&msg) => {
                            lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                            t.long_msgs.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            t.long_broken.fetch_add(1, Ordering::Relaxed);
                            *s = None;
                        }
                    }
                }
                let dt = round.elapsed();
                if dt < Duration::from_millis(100) {
                    std::thread::sleep(Duration::from_millis(100) - dt);
                }
            }
            lat_us
        }));
    }
    // Short connections: two loops in the client's namespace.
    for _ in 0..2 {
        let (t, st, ns) = (tally.clone(), stop.clone(), client.clone());
        threads.push(std::thread::spawn(move || {
            let _ = rvs_dataplane::lab::in_netns(&ns, move || {
                while !st.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    match TcpStream::connect_timeout(&to, Duration::from_secs(3)) {
                        Ok(mut c) => {
                            let dt = t0.elapsed();
                            if dt >= Duration::from_millis(900) {
                                t.short_slow.fetch_add(1, Ordering::Relaxed);
                            }
                            if ask(&mut c, "short").is_ok() {
                                t.short_ok.fetch_add(1, Ordering::Relaxed);
                            } else {
                                t.short_failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            t.short_failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            Vec::new()
        }));
    }
    // UDP flows: one request per flow every 100 ms.
    {
        let (t, st) = (tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let round = Instant::now();
                for s in &udp {
                    match udp_ask(s) {
                        Ok(_) => t.udp_ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => t.udp_lost.fetch_add(1, Ordering::Relaxed),
                    };
                }
                let dt = round.elapsed();
                if dt < Duration::from_millis(100) {
                    std::thread::sleep(Duration::from_millis(100) - dt);
                }
            }
            Vec::new()
        }));
    }

    // Four hand-overs: to another copy of the binary (an upgrade), back to the original,
    // and again.
    std::thread::sleep(Duration::from_secs(2));
    let other = env.t.lab.dir().join("rvs-upgraded");
    std::fs::copy(RVS, &other).unwrap();
    let other = other.to_string_lossy().to_string();
    let mut pauses = Vec::new();
    let labels = ["daemon", "daemon2", "daemon3", "daemon4", "daemon5"];
    for (k, pair) in labels.windows(2).enumerate() {
        let bin = if k % 2 == 0 { other.as_str() } else { RVS };
        pauses.push(take_over(&mut env, bin, pair[1], pair[0]));
        std::thread::sleep(Duration::from_millis(1500));
    }
    // The last daemon answers on the same admin socket, with the services and the live flows.
    let o = env.adm(&["-Ln"]);
    assert!(stdout(&o).contains("10.0.0.100:80"), "{}", stdout(&o));
    let o = env.adm(&["-Lnc"]);
    let established = stdout(&o).matches("ESTABLISHED").count();
    assert!(
        established >= LONG_FLOWS,
        "{established} established entries\n{}",
        stdout(&o)
    );
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u32> = Vec::new();
    for t in threads {
        lat.extend(t.join().unwrap_or_default());
    }
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
    };
    let t = &tally;
    let (ok, failed, slow) = (
        t.short_ok.load(Ordering::Relaxed),
        t.short_failed.load(Ordering::Relaxed),
        t.short_slow.load(Ordering::Relaxed),
    );
    let (broken, msgs) = (
        t.long_broken.load(Ordering::Relaxed),
        t.long_msgs.load(Ordering::Relaxed),
    );
    let (udp_ok, udp_lost) = (
        t.udp_ok.load(Ordering::Relaxed),
        t.udp_lost.load(Ordering::Relaxed),
    );
    println!(
        "takeover pauses (ms) {pauses:?}; short connections {ok} ok, {failed} failed, \
         {slow} >= 900 ms; long flows {broken} broken of {LONG_FLOWS} ({msgs} exchanges, \
         latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms); UDP {udp_ok} answered, {udp_lost} lost",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let logs = || {
        labels
            .iter()
            .map(|l| format!("{l}:\n{}\n", env.t.lab.log(l)))
            .collect::<String>()
    };
    assert!(ok > 100, "too few short connections: {ok}\n{}", logs());
    assert_eq!((failed, slow), (0, 0), "failed / slow connects\n{}", logs());
    assert_eq!(broken, 0, "broken long-lived flows\n{}", logs());
    assert!(msgs > LONG_FLOWS as u64 * 20, "{msgs}");
    assert_eq!(udp_lost, 0, "UDP requests without an answer\n{}", logs());
}

#[test]
fn a_state_version_the_new_binary_cannot_read_is_refused_and_the_old_daemon_carries_on() {
    if skip("a_state_version_the_new_binary_cannot_read_is_refused_and_the_old_daemon_carries_on") {
        return;
    }
    let _g = serial();
    let env = Env::start("tkr", 3, 80, "safe", &services());
    let vip = Topology::vip(false);
    let mut flow = env.connect(sa(vip, 80)).unwrap();
    ask(&mut flow, "before").unwrap();
    // A new binary that reads only state version 999 asks to take over.
    let path = rvs_dataplane::takeover::socket_for(&env.sock);
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"RVS-TAKEOVER 1 999\n").unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert!(
        line.starts_with("REFUSE") && line.contains("version 999"),
        "{line}"
    );
    // The running daemon carries on: the flow and new connections work.
    assert!(ask(&mut flow, "after").unwrap().ends_with("after"));
    let _ = curl(&env, vip, 80);
    assert!(env.log().contains("takeover refused"), "{}", env.log());
    // Nothing to take over from: a clear error before anything is touched.
    let dir = env.t.lab.dir().to_path_buf();
    let other = dir.join("other.toml");
    std::fs::write(&other, config_text(&dir.join("nobody.sock"), "safe", "")).unwrap();
    let o = env.rvs(&["daemon", "--config", &other.to_string_lossy(), "--takeover"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no running daemon to take over from"), "{err}");
}
