//! Shared helpers of the end-to-end tests: a topology with a running daemon, clients, and
//! the `RVS_SKIP_NETNS` rule.
#![allow(dead_code)]

pub mod deb;
pub mod kube;
pub mod load;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use rvs_dataplane::lab::topo::{self, Topology, VIP4, VIP6};

pub const RVS: &str = env!("CARGO_BIN_EXE_rvs");

/// The e2e tests share two cores and measure time (resets within 1 s): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when the test must be skipped (RVS_SKIP_NETNS=1; the skip is recorded for the test
/// command's summary); panics with a clear message when namespaces are unavailable and
/// skipping was not asked for.
pub fn skip(test: &str) -> bool {
    let why = rvs_dataplane::lab::unavailable();
    if std::env::var("RVS_SKIP_NETNS").as_deref() == Ok("1") {
        rvs_dataplane::lab::record_skip(test, "RVS_SKIP_NETNS=1");
        return true;
    }
    if let Some(w) = why {
        panic!(
            "{test} needs root, network namespaces and /dev/net/tun: {w}. Run as root, or set \
             RVS_SKIP_NETNS=1 to skip the end-to-end tests"
        );
    }
    false
}

/// A topology with `rvs daemon` running in the balancer namespace.
pub struct Env {
    pub t: Topology,
    pub sock: PathBuf,
    pub cfg: PathBuf,
}

pub fn config_text(sock: &std::path::Path, profile: &str, extra: &str) -> String {
    config_text_dp(sock, profile, "", extra)
}

/// [`config_text`] with extra `[dataplane]` lines.
pub fn config_text_dp(sock: &std::path::Path, profile: &str, dp: &str, extra: &str) -> String {
    format!(
        r#"[engine]
profile = "{profile}"
conn_max = 65536
fullnat_addrs = ["10.255.1.1", "fd00:255:1::1"]

[dataplane]
admin_socket = "{}"
http_listen = "127.0.0.1:9180"
tun_addrs = ["10.255.255.1/24", "fd72:7673::1/64"]
{dp}

{extra}
"#,
        sock.display()
    )
}

/// One service block with real servers 1..=n (`fwd` for all).
pub fn service(
    proto: &str,
    v6: bool,
    port: u16,
    sched: &str,
    fwd: &str,
    weights: &[u32],
) -> String {
    let vip = if v6 { VIP6 } else { VIP4 };
    let mut s = format!(
        "[[service]]\nproto = \"{proto}\"\nvip = \"{vip}\"\nport = {port}\nscheduler = \"{sched}\"\n"
    );
    for (i, w) in weights.iter().enumerate() {
        let a = if v6 {
            topo::rs6(i + 1)
        } else {
            topo::rs4(i + 1)
        };
        s += &format!(
            "\n[[service.real_server]]\naddr = \"{a}\"\nport = {port}\nweight = {w}\nforward = \"{fwd}\"\n"
        );
    }
    s
}

impl Env {
    /// Builds the topology, starts `rvs lab serve` on every real server (TCP and UDP on
    /// `port`), writes the config and starts the daemon; waits until it answers.
    pub fn start(tag: &str, n_rs: usize, port: u16, profile: &str, services: &str) -> Env {
        Env::start_dp(tag, n_rs, port, profile, "", services)
    }

    /// [`Env::start`] with extra `[dataplane]` lines.
    pub fn start_dp(
        tag: &str,
        n_rs: usize,
        port: u16,
        profile: &str,
        dp: &str,
        services: &str,
    ) -> Env {
        Env::start_config(tag, n_rs, port, |_, sock| {
            config_text_dp(sock, profile, dp, services)
        })
    }

    /// [`Env::start`] with the whole config text, made from the topology and the admin
    /// socket's path (before the daemon starts).
    pub fn start_config(
        tag: &str,
        n_rs: usize,
        port: u16,
        config: impl FnOnce(&Topology, &std::path::Path) -> String,
    ) -> Env {
        let mut t = Topology::new(tag, n_rs).expect("topology");
        t.start_decap(RVS).expect("decapsulators");
        let dir = t.lab.dir().to_path_buf();
        let sock = dir.join("rvs.sock");
        let cfg = dir.join("rvs.toml");
        std::fs::write(&cfg, config(&t, &sock)).unwrap();
        for i in 0..n_rs {
            let ns = t.rs[i].clone();
            let name = format!("rs{}", i + 1);
            let (a4, a6) = (topo::rs4(i + 1), topo::rs6(i + 1));
            let p = port.to_string();
            t.lab
                .spawn(
                    &ns,
                    &name,
                    &[
                        RVS,
                        "lab",
                        "serve",
                        "--name",
                        &name,
                        "--port",
                        &p,
                        "--udp",
                        "--addr",
                        &a4,
                        "--addr",
                        &a6,
                        "--addr",
                        VIP4,
                        "--addr",
                        VIP6,
                        "--max-seconds",
                        "300",
                    ],
                    &[],
                )
                .unwrap();
        }
        let lb = t.lb.clone();
        let c = cfg.to_string_lossy().to_string();
        t.lab
            .spawn(
                &lb,
                "daemon",
                &[RVS, "daemon", "--config", &c],
                &[("RUST_LOG", "info")],
            )
            .unwrap();
        let env = Env { t, sock, cfg };
        env.wait_ready();
        env
    }

    fn wait_ready(&self) {
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if let Ok(mut c) = rvs_control::Client::connect(&self.sock) {
                if c.call(&rvs_control::Request::Info).is_ok() {
                    // The servers too.
                    std::thread::sleep(Duration::from_millis(200));
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the daemon did not start; its log:\n{}",
            self.t.lab.log("daemon")
        );
    }

    pub fn log(&self) -> String {
        self.t.lab.log("daemon")
    }

    /// `rvs adm ARGS` (from the root namespace, through the socket).
    pub fn adm(&self, args: &[&str]) -> Output {
        self.adm_stdin(args, "")
    }

    pub fn adm_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut c = Command::new(RVS)
            .arg("adm")
            .args(args)
            .env("RVS_SOCKET", &self.sock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        rvs_dataplane::lab::wait_output(c, Duration::from_secs(20)).unwrap()
    }

    pub fn rvs(&self, args: &[&str]) -> Output {
        let c = Command::new(RVS)
            .args(args)
            .env("RVS_SOCKET", &self.sock)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        rvs_dataplane::lab::wait_output(c, Duration::from_secs(20)).unwrap()
    }

    /// Runs a command in the client namespace (bounded).
    pub fn client(&self, argv: &[&str], limit: Duration) -> Output {
        self.t
            .lab
            .exec_timeout(&self.t.client, argv, limit)
            .unwrap()
    }

    /// A TCP connection from the client namespace.
    pub fn connect(&self, to: SocketAddr) -> std::io::Result<TcpStream> {
        self.t
            .lab
            .in_netns(&self.t.client, move || {
                TcpStream::connect_timeout(&to, Duration::from_secs(3))
            })
            .unwrap()
    }

    /// A UDP socket in the client namespace, connected to `to`.
    pub fn udp(&self, to: SocketAddr) -> UdpSocket {
        self.t
            .lab
            .in_netns(&self.t.client, move || {
                let bind: SocketAddr = if to.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap()
                } else {
                    "[::]:0".parse().unwrap()
                };
                let s = UdpSocket::bind(bind).unwrap();
                s.connect(to).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s
            })
            .unwrap()
    }

    pub fn reload(&self) -> Output {
        self.rvs(&["daemon-reload-via-socket"])
    }
}

/// `curl` from the client namespace; returns the body.
pub fn curl(env: &Env, vip: IpAddr, port: u16) -> String {
    let url = match vip {
        IpAddr::V4(a) => format!("http://{a}:{port}/"),
        IpAddr::V6(a) => format!("http://[{a}]:{port}/"),
    };
    let o = env.client(
        &["curl", "-sS", "--max-time", "3", &url],
        Duration::from_secs(5),
    );
    assert!(
        o.status.success(),
        "curl {url}: {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        env.log()
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// One line exchange on a line-protocol connection: returns the server's answer.
pub fn ask(s: &mut TcpStream, line: &str) -> std::io::Result<String> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut out = String::new();
    r.read_line(&mut out)?;
    if out.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    Ok(out.trim().to_string())
}

/// A UDP request: the server's name.
pub fn udp_ask(s: &UdpSocket) -> std::io::Result<String> {
    s.send(b"hi")?;
    let mut buf = [0u8; 256];
    let n = s.recv(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

pub fn count(names: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for n in names {
        *m.entry(n.clone()).or_insert(0) += 1;
    }
    m
}

pub fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A page of the daemon's HTTP endpoint (fetched with curl inside the balancer's namespace).
pub fn http_get(env: &Env, path: &str) -> Vec<u8> {
    env.t
        .lab
        .exec_timeout(
            &env.t.lb,
            &[
                "curl",
                "-sS",
                "--max-time",
                "3",
                &format!("http://127.0.0.1:9180{path}"),
            ],
            Duration::from_secs(5),
        )
        .map(|o| o.stdout)
        .unwrap_or_default()
}

/// The daemon's `/metrics` text.
pub fn metrics(env: &Env) -> String {
    String::from_utf8_lossy(&http_get(env, "/metrics")).to_string()
}

/// One unlabelled sample of a `/metrics` text (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
