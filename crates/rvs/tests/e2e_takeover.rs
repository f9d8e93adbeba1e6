//! A planned restart and upgrade of `rvs daemon` loses no flow (issue 14): a new daemon
//! started with `--takeover` (from another copy of the binary) receives the running one's TUN
//! descriptor and its whole engine state; the old one exits leaving the setup in place.
//! Under load — 200 long-lived TCP flows each sending every 100 ms, short connections, UDP
//! flows — four hand-overs in a row break nothing. A `kill -9` and a restart break no
//! long-lived flow either (the snapshot the next start adopts, [`rvs_dataplane::recovery`]).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::load::*;
use common::*;

fn services() -> String {
    format!(
        "{}\n{}",
        service("tcp", false, 80, "rr", "masq", &[1, 1, 1]),
        service("udp", false, 80, "rr", "masq", &[1, 1, 1])
    )
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
    let gone = wait_gone(env, old, Duration::from_secs(20));
    let new_log = env.t.lab.log(label);
    assert!(
        gone,
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

/// Waits (at most `limit`) until the lab process `label` has ended; true if it has.
fn wait_gone(env: &mut Env, label: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while env.t.lab.running(label) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    !env.t.lab.running(label)
}

/// `kill -9` of the daemon `label`; returns once it is gone.
fn crash(env: &mut Env, label: &str) {
    env.t.lab.signal(label, "KILL").unwrap();
    assert!(
        wait_gone(env, label, Duration::from_secs(5)),
        "{label} survived SIGKILL"
    );
}

/// Starts `rvs daemon` with the lab's config as `label`; returns once its admin socket
/// answers.
fn restart(env: &mut Env, label: &str) {
    let (lb, c) = (env.t.lb.clone(), env.cfg.to_string_lossy().to_string());
    env.t
        .lab
        .spawn(
            &lb,
            label,
            &[RVS, "daemon", "--config", &c],
            &[("RUST_LOG", "info")],
        )
        .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    while rvs_control::Client::connect(&env.sock).is_err() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lab (3 real servers, TCP and UDP services) with one flow through the VIP answered.
fn start_with_flow(tag: &str) -> (Env, TcpStream) {
    let env = Env::start(tag, 3, 80, "safe", &services());
    let mut flow = env.connect(sa(Topology::vip(false), 80)).unwrap();
    ask(&mut flow, "before").unwrap();
    (env, flow)
}

/// Packets the kernel dropped on their way into the TUN device (no reader, queue full).
fn tun_tx_dropped(env: &Env) -> u64 {
    let o = env
        .t
        .lab
        .exec(
            &env.t.lb,
            &["cat", "/sys/class/net/rvs0/statistics/tx_dropped"],
        )
        .unwrap();
    stdout(&o)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{o:?}"))
}

fn logs(env: &Env, labels: &[&str]) -> String {
    labels
        .iter()
        .map(|l| format!("{l}:\n{}\n", env.t.lab.log(l)))
        .collect()
}

#[test]
fn takeover_under_load_loses_no_flow() {
    if skip("takeover_under_load_loses_no_flow") {
        return;
    }
    let _g = serial();
    let mut env = Env::start("tko", 3, 80, "safe", &services());
    let load = Load::start(&env);
    load.settle();
    let tun_dropped_before = tun_tx_dropped(&env);

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
    let r = load.finish();
    // Nothing the kernel queued for the daemon was dropped by the hand-overs.
    let tun_dropped = tun_tx_dropped(&env) - tun_dropped_before;
    println!("takeover pauses (ms) {pauses:?}; {r}; TUN drops {tun_dropped}");
    assert_eq!(tun_dropped, 0, "packets the TUN device dropped");
    let logs = || logs(&env, &labels);
    assert!(r.ok > 100, "too few short connections: {r}\n{}", logs());
    assert_eq!(
        (r.failed, r.slow),
        (0, 0),
        "failed / slow connects: {r}\n{}",
        logs()
    );
    assert_eq!(r.broken, 0, "broken long-lived flows: {r}\n{}", logs());
    assert!(r.msgs > LONG_FLOWS as u64 * 20, "{r}");
    assert_eq!(
        r.udp_lost,
        0,
        "UDP requests without an answer: {r}\n{}",
        logs()
    );
}

#[test]
fn kill_9_and_restart_breaks_no_long_lived_flow() {
    if skip("kill_9_and_restart_breaks_no_long_lived_flow") {
        return;
    }
    let _g = serial();
    let mut env = Env::start("tkc", 3, 80, "safe", &services());
    let load = Load::start(&env);
    std::thread::sleep(Duration::from_secs(2));
    let lb = env.t.lb.clone();
    let show = |env: &Env, args: &[&str]| stdout(&env.t.lab.exec(&lb, args).unwrap());
    // The crash.
    crash(&mut env, "daemon");
    // The device, its routes and the reply rules outlive the process.
    assert!(show(&env, &["ip", "link", "show", "rvs0"]).contains("rvs0"));
    assert!(show(&env, &["ip", "route"]).contains("10.0.0.100 dev rvs0"));
    assert!(show(&env, &["ip", "rule"]).contains("lookup 7373"));
    std::thread::sleep(Duration::from_millis(200));
    restart(&mut env, "daemon2");
    // What met the gap is over after a few retransmissions; from here on nothing fails.
    std::thread::sleep(Duration::from_secs(3));
    load.settle();
    std::thread::sleep(Duration::from_secs(3));
    let m = metrics(&env);
    let r = load.finish();
    println!(
        "kill -9 and restart: {r}; TUN drops (the gap) {}",
        tun_tx_dropped(&env)
    );
    let logs = || logs(&env, &["daemon", "daemon2"]);
    let log2 = env.t.lab.log("daemon2");
    assert!(
        log2.contains("crash recovery: adopted"),
        "daemon2's log:\n{log2}"
    );
    assert!(
        metric(&m, "rvs_state_recovered_entries") >= LONG_FLOWS as f64,
        "{m}"
    );
    assert!(metric(&m, "rvs_state_snapshots_total") >= 1.0, "{m}");
    assert_eq!(r.broken, 0, "broken long-lived flows: {r}\n{}", logs());
    assert!(r.msgs > LONG_FLOWS as u64 * 20, "{r}");
    assert_eq!(
        (r.failed_settled, r.udp_lost_settled),
        (0, 0),
        "failures after the restart had settled: {r}\n{}",
        logs()
    );
    // A connect in flight at the crash may have lost its entry (opened after the last
    // snapshot) and been reset: at most one per short-connection thread.
    assert!(
        r.failed <= SHORT_THREADS as u64,
        "connects that met the gap: {r}\n{}",
        logs()
    );
    assert!(r.ok > 100, "too few short connections: {r}\n{}", logs());
    // A clean stop now removes everything, the device included.
    assert_eq!(env.t.lab.stop("daemon2", Duration::from_secs(5)), Some(0));
    assert!(!show(&env, &["ip", "link"]).contains("rvs0"));
    assert!(!recovery_file(&env).exists());
}

fn recovery_file(env: &Env) -> std::path::PathBuf {
    rvs_dataplane::recovery::file_for(&env.sock)
}

/// After a `kill -9`, a damaged, foreign or other-version snapshot is refused with a
/// message and counted; the daemon starts with the config file's services and no entry.
#[test]
fn a_bad_snapshot_is_refused_counted_and_the_daemon_starts_empty() {
    if skip("a_bad_snapshot_is_refused_counted_and_the_daemon_starts_empty") {
        return;
    }
    let _g = serial();
    let (mut env, _flow) = start_with_flow("tkb");
    let vip = Topology::vip(false);
    let file = recovery_file(&env);
    let mut label = "daemon".to_string();
    type Spoil = fn(&mut Vec<u8>);
    let spoils: [(&str, Spoil, &str); 4] = [
        ("truncated", |b| b.truncate(b.len() / 2), "truncated"),
        (
            "flipped",
            |b| {
                let i = b.len() - 3;
                b[i] ^= 0x40
            },
            "checksum mismatch",
        ),
        (
            "foreign",
            |b| b[..8].copy_from_slice(b"GARBAGE!"),
            "not an rvs state snapshot",
        ),
        ("old", |b| b[8] = 0, "header version 0"),
    ];
    for (k, (what, spoil, says)) in spoils.iter().enumerate() {
        // Wait for a snapshot with the flow in it, then crash.
        let end = Instant::now() + Duration::from_secs(5);
        while !file.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        crash(&mut env, &label);
        let mut b = std::fs::read(&file).unwrap_or_else(|e| panic!("{what}: {e}"));
        spoil(&mut b);
        std::fs::write(&file, &b).unwrap();
        label = format!("daemon{}", k + 2);
        restart(&mut env, &label);
        let log = env.t.lab.log(&label);
        assert!(
            log.contains("crash recovery: the snapshot was refused") && log.contains(says),
            "{what}: {log}"
        );
        let mut aside = file.as_os_str().to_owned();
        aside.push(".refused");
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            b,
            "{what}: kept aside as it was"
        );
        let m = metrics(&env);
        assert_eq!(
            metric(&m, "rvs_state_recovery_refused_total"),
            1.0,
            "{what}: {m}"
        );
        assert_eq!(
            metric(&m, "rvs_state_recovered_entries"),
            0.0,
            "{what}: {m}"
        );
        // Empty but serving: the file's service, no entry; new connections work.
        let o = env.adm(&["-Lnc"]);
        assert!(
            !stdout(&o).contains("ESTABLISHED"),
            "{what}: {}",
            stdout(&o)
        );
        assert!(!curl(&env, vip, 80).is_empty(), "{what}");
    }
    assert_eq!(env.t.lab.stop(&label, Duration::from_secs(5)), Some(0));
}

#[test]
fn a_state_version_the_new_binary_cannot_read_is_refused_and_the_old_daemon_carries_on() {
    if skip("a_state_version_the_new_binary_cannot_read_is_refused_and_the_old_daemon_carries_on") {
        return;
    }
    let _g = serial();
    let (env, mut flow) = start_with_flow("tkr");
    let vip = Topology::vip(false);
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

/// Kills a process that no lab handle owns (the daemon `--background` left running).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{}", self.0)).exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// systemd's `ExecReload=rvs daemon --takeover --background`: the command returns once the
/// new daemon has taken over, which has told the service manager (`NOTIFY_SOCKET`) that it
/// is the unit's main process now, then `READY=1`; with nothing to take over from it fails.
#[test]
fn takeover_in_the_background_returns_when_done_and_tells_systemd_the_new_main_pid() {
    if skip("takeover_in_the_background_returns_when_done_and_tells_systemd_the_new_main_pid") {
        return;
    }
    let _g = serial();
    let (mut env, mut flow) = start_with_flow("tkn");
    // A stand-in for systemd's notification socket.
    let notify_path = env.t.lab.dir().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (lb, c) = (env.t.lb.clone(), env.cfg.to_string_lossy().to_string());
    let np = notify_path.to_string_lossy().to_string();
    let t0 = Instant::now();
    env.t
        .lab
        .spawn(
            &lb,
            "reload",
            &[RVS, "daemon", "--config", &c, "--takeover", "--background"],
            &[("NOTIFY_SOCKET", np.as_str()), ("RUST_LOG", "info")],
        )
        .unwrap();
    let returned = wait_gone(&mut env, "reload", Duration::from_secs(20));
    let took = t0.elapsed();
    let log = env.t.lab.log("reload");
    assert!(returned, "still running:\n{log}");
    assert!(
        log.contains("took over; the new daemon runs as pid"),
        "{log}"
    );
    let pid: u32 = log
        .split("runs as pid ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    let _kill = KillOnDrop(pid);
    // The old daemon has gone; the new one serves the same flow.
    assert!(
        wait_gone(&mut env, "daemon", Duration::from_secs(5)),
        "{}",
        env.log()
    );
    assert!(ask(&mut flow, "after").unwrap().ends_with("after"));
    // What the service manager heard: the new main pid first, then ready.
    let mut heard = String::new();
    let mut buf = [0u8; 512];
    while !heard.contains("READY=1") {
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{e}; heard {heard:?}\n{log}"));
        heard.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let main = format!("MAINPID={pid}");
    assert!(
        heard
            .find(&main)
            .is_some_and(|i| i < heard.find("READY=1").unwrap()),
        "{heard:?}"
    );
    println!("background takeover returned after {took:?}; systemd heard {heard:?}");

    // Nothing to take over from: exit status 1 at once, with the reason.
    let dir = env.t.lab.dir().to_path_buf();
    let other = dir.join("other.toml");
    std::fs::write(&other, config_text(&dir.join("nobody.sock"), "safe", "")).unwrap();
    let o = env.rvs(&[
        "daemon",
        "--config",
        &other.to_string_lossy(),
        "--takeover",
        "--background",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no running daemon to take over from")
            && err.contains("the takeover did not happen"),
        "{err}"
    );
}

/// A DaemonSet update with `maxSurge: 1` (the rollout the Kubernetes mode will use), replayed
/// with processes: each "pod" runs `rvs daemon --takeover=auto --stay`. The first finds no
/// daemon and starts; each next one takes over while the old one stays, idle, until its
/// pod's SIGTERM, which then touches nothing; a flow opened at the start lives through it all.
#[test]
fn a_daemonset_surge_update_hands_over_with_takeover_auto_and_stay() {
    if skip("a_daemonset_surge_update_hands_over_with_takeover_auto_and_stay") {
        return;
    }
    let _g = serial();
    let (mut env, flow) = start_with_flow("tkd");
    // The lab started a plain daemon; stop it: the first pod starts on an empty node.
    assert_eq!(env.t.lab.stop("daemon", Duration::from_secs(5)), Some(0));
    let (lb, c) = (env.t.lb.clone(), env.cfg.to_string_lossy().to_string());
    let pod = |env: &mut Env, label: &str| {
        env.t
            .lab
            .spawn(
                &lb,
                label,
                &[RVS, "daemon", "--config", &c, "--takeover=auto", "--stay"],
                &[("RUST_LOG", "info")],
            )
            .unwrap();
    };
    pod(&mut env, "pod1");
    let end = Instant::now() + Duration::from_secs(15);
    while rvs_control::Client::connect(&env.sock).is_err() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log1 = env.t.lab.log("pod1");
    assert!(log1.contains("no daemon answers"), "pod1:\n{log1}");
    let mut flow = {
        drop(flow);
        let mut f = env.connect(sa(Topology::vip(false), 80)).unwrap();
        ask(&mut f, "on pod1").unwrap();
        f
    };
    for (old, new) in [("pod1", "pod2"), ("pod2", "pod3")] {
        pod(&mut env, new);
        let end = Instant::now() + Duration::from_secs(15);
        while !env.t.lab.log(old).contains("staying idle") && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            env.t.lab.log(new).contains("takeover: pause"),
            "{}",
            logs(&env, &[old, new])
        );
        // The old pod's container is still running (the kubelet would restart it).
        std::thread::sleep(Duration::from_millis(300));
        let running = env.t.lab.running(old);
        assert!(running, "{}", logs(&env, &[old, new]));
        assert!(
            ask(&mut flow, new).unwrap().ends_with(new),
            "{}",
            logs(&env, &[old, new])
        );
        // The old pod is deleted: SIGTERM; it leaves the new daemon's set-up alone.
        assert_eq!(
            env.t.lab.stop(old, Duration::from_secs(5)),
            Some(0),
            "{}",
            logs(&env, &[old, new])
        );
        let rules = stdout(&env.t.lab.exec(&lb, &["ip", "rule"]).unwrap());
        assert!(
            rules.contains("lookup 7373"),
            "{rules}\n{}",
            logs(&env, &[old, new])
        );
        assert!(
            ask(&mut flow, "after").unwrap().ends_with("after"),
            "{}",
            logs(&env, &[old, new])
        );
        assert!(!curl(&env, Topology::vip(false), 80).is_empty());
    }
    assert_eq!(env.t.lab.stop("pod3", Duration::from_secs(5)), Some(0));
    let rules = stdout(&env.t.lab.exec(&lb, &["ip", "rule"]).unwrap());
    assert!(
        !rules.contains("lookup 7373"),
        "the last pod's stop tears down: {rules}"
    );
}
