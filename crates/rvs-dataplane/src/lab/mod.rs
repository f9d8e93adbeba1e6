//! Network-namespace labs for the end-to-end tests, the benchmark and the demo.
//!
//! A [`Lab`] creates namespaces with names unique to the process and the lab (so tests run in
//! parallel), runs commands in them (`ip netns exec`), starts processes whose output goes to
//! files, and in `Drop` (also when a test panics) stops every process it started (SIGTERM,
//! then SIGKILL after 2 s) and deletes every namespace, which takes the veth pairs, tunnel
//! devices, routes and rules inside with it. Every wait is bounded.
//!
//! [`topo::Topology`] builds the standard picture: a client, a balancer and real servers,
//! with IPv4 and IPv6 addresses and the tunnel devices real servers need.

pub mod decap;
pub mod flood;
pub mod junk;
pub mod serve;
pub mod synflood;
pub mod topo;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static LABS: AtomicU32 = AtomicU32::new(0);

/// Why a lab cannot run here, or `None` if it can (root, `ip`, `/dev/net/tun`).
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("not running as root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("the `ip` command (iproute2) is missing".into()),
    }
    None
}

/// Reports a test that was skipped on request (`RVS_SKIP_NETNS=1` and the like): a `SKIPPED:`
/// line, and a line appended to the file named by `$RVS_SKIP_LOG`, which
/// `scripts/test-all.sh` counts and lists in its summary (the test harness hides the output
/// of tests that pass, so the line alone would never be seen).
pub fn record_skip(test: &str, why: &str) {
    eprintln!("SKIPPED: {test}: {why}");
    if let Some(path) = std::env::var_os("RVS_SKIP_LOG") {
        let line = format!("{test}: {why}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        if let Err(e) = written {
            panic!("cannot record the skip of {test} in RVS_SKIP_LOG: {e}");
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A set of namespaces and processes, removed on drop.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Lab {
    /// A new lab; `tag` (a few letters) goes into the namespace names.
    pub fn new(tag: &str) -> io::Result<Lab> {
        if let Some(why) = unavailable() {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("rvs{tag}{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir)?;
        Ok(Lab {
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
            dir,
        })
    }

    /// A directory for this lab's files (configs, logs); removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates namespace `<prefix>-<name>` with its loopback up; returns its full name.
    pub fn netns(&mut self, name: &str) -> io::Result<String> {
        let full = format!("{}-{name}", self.prefix);
        run_ok(Command::new("ip").args(["netns", "add", &full]))?;
        self.namespaces.push(full.clone());
        run_ok(Command::new("ip").args(["-n", &full, "link", "set", "lo", "up"]))?;
        // No duplicate address detection: link-local addresses are usable at once (a
        // tentative one delays neighbour discovery, and the first packets of a test).
        for k in ["all", "default"] {
            let key = format!("net.ipv6.conf.{k}.accept_dad=0");
            run_ok(Command::new("ip").args(["netns", "exec", &full, "sysctl", "-qw", &key]))?;
        }
        Ok(full)
    }

    /// Runs `ip ARGS...` (use `-n NS` to act in a namespace).
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        run_ok(Command::new("ip").args(args))
    }

    /// Runs a command in a namespace and waits for it (no time bound: use for short commands).
    pub fn exec(&self, ns: &str, argv: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .output()
    }

    /// Runs a command in a namespace with a time bound; kills it when the time is up.
    pub fn exec_timeout(&self, ns: &str, argv: &[&str], limit: Duration) -> io::Result<Output> {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        wait_output(child, limit)
    }

    /// Runs a shell command in a namespace, failing with its output if it fails.
    pub fn sh(&self, ns: &str, cmd: &str) -> io::Result<()> {
        run_ok(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", cmd]))
    }

    /// Sets a sysctl in a namespace.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) -> io::Result<()> {
        run_ok(Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ]))
    }

    /// Starts a process in a namespace with extra environment; its standard output and error
    /// go to `<dir>/<label>.log`. Returns the pid.
    pub fn spawn(
        &mut self,
        ns: &str,
        label: &str,
        argv: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<u32> {
        let log = self.dir.join(format!("{label}.log"));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn()?;
        let pid = child.id();
        self.children.push((label.to_string(), child));
        Ok(pid)
    }

    /// The log of a process started with [`Lab::spawn`].
    pub fn log(&self, label: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{label}.log"))).unwrap_or_default()
    }

    /// Sends SIGTERM to a process started with [`Lab::spawn`] and waits up to `limit` for it
    /// to exit; returns its exit status code (None if it had to be killed).
    pub fn stop(&mut self, label: &str, limit: Duration) -> Option<i32> {
        let i = self.children.iter().position(|(l, _)| l == label)?;
        let (_, mut child) = self.children.remove(i);
        terminate(&mut child, limit)
    }

    /// The pid of a process started with [`Lab::spawn`].
    pub fn pid(&self, label: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, c)| c.id())
    }

    /// Sends a signal (`"HUP"`, `"KILL"`, ...) to a process started with [`Lab::spawn`].
    pub fn signal(&self, label: &str, sig: &str) -> io::Result<()> {
        let pid = self
            .pid(label)
            .ok_or_else(|| io::Error::other(format!("no process {label}")))?;
        run_ok(Command::new("kill").args([format!("-{sig}"), pid.to_string()]))
    }

    /// Whether a process started with [`Lab::spawn`] is still running.
    pub fn running(&mut self, label: &str) -> bool {
        self.children
            .iter_mut()
            .find(|(l, _)| l == label)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    /// Runs `f` on a new thread inside namespace `ns` and returns its result. Sockets created
    /// there stay in that namespace when used from other threads afterwards.
    pub fn in_netns<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        in_netns(ns, f)
    }
}

/// Runs `f` on a new thread inside namespace `ns` (see [`Lab::in_netns`]).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let path = Path::new("/var/run/netns").join(ns);
    std::thread::spawn(move || -> io::Result<T> {
        let file = File::open(&path)?;
        crate::sys::setns_net(file.as_raw_fd())?;
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

fn terminate(child: &mut Child, limit: Duration) -> Option<i32> {
    crate::sys::kill_term(child.id());
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Waits for a child's output, killing it after `limit`.
pub fn wait_output(mut child: Child, limit: Duration) -> io::Result<Output> {
    let end = Instant::now() + limit;
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let ho = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = io::Read::read_to_end(s, &mut v);
        }
        v
    });
    let he = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = se.as_mut() {
            let _ = io::Read::read_to_end(s, &mut v);
        }
        v
    });
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: ho.join().unwrap_or_default(),
        stderr: he.join().unwrap_or_default(),
    })
}

fn run_ok(c: &mut Command) -> io::Result<()> {
    let o = c.stdin(Stdio::null()).output()?;
    if o.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&o.stderr).trim()
    )))
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Stop everything at once, then wait (bounded) for each.
        for (_, c) in &mut self.children {
            crate::sys::kill_term(c.id());
        }
        for (_, mut c) in self.children.drain(..) {
            terminate(&mut c, Duration::from_secs(2));
        }
        for ns in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if std::env::var_os("RVS_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
