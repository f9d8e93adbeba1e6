//! `rvs daemon`: the TUN device, netlink setup, the packet thread, the admin socket, the HTTP
//! endpoint, signals (SIGHUP reloads, SIGTERM/SIGINT stop and undo the setup).

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Mutex;

use rvs_control::config::{Config, Output};
use rvs_control::proto::{self, Request, Response};
use rvs_core::Engine;
use rvs_core::command::Command;
use rvs_core::profile::Profile;
use rvs_core::service::ServiceKey;

use crate::driver::{Driver, DriverConfig};
use crate::netlink::{self, Net};
use crate::tunloop::{self, CtlHandle, SocketOutput};

/// What `rvs daemon` is started with.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// The config file.
    pub config: PathBuf,
    /// A profile that overrides the file's (at start and on every reload).
    pub profile: Option<Profile>,
    /// Take over from the daemon running with the same admin socket ([`crate::takeover`]).
    pub takeover: Takeover,
    /// After handing over to a new daemon, stay (idle) until SIGTERM or SIGINT instead of
    /// exiting.
    pub stay: bool,
    /// Command-line settings over the file's (at start and on every reload).
    pub overrides: rvs_control::config::Overrides,
}

/// Whether `rvs daemon` takes over from a running daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// Start as usual.
    No,
    /// Take over, or fail.
    Always,
    /// Take over if a daemon answers on the hand-over socket; start as usual otherwise.
    Auto,
}

struct Control {
    ctl: CtlHandle,
    cfg: Mutex<Config>,
    profile: Option<Profile>,
    net: Mutex<Net>,
    /// Services an attached driver owns (a reload leaves them alone).
    owned: std::sync::Mutex<Arc<HashSet<ServiceKey>>>,
    /// The prefixes the packet thread was last told are routed into the TUN.
    routed: std::sync::Mutex<Vec<(std::net::IpAddr, u8)>>,
    /// A driver's batch was applied: the removal of what it no longer needs (a full
    /// reconcile, whose cost grows with the whole table) waits for [`RECONCILE_DELAY`], so
    /// that a stream of changes pays for one.
    reconcile_due: tokio::sync::Notify,
}

/// See [`Control::reconcile_due`]. What a change adds is added before it applies
/// ([`Control::prepare`]); only removals wait.
const RECONCILE_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// A driver started with the daemon (the Kubernetes one): it gets an [`Admin`] handle and
/// runs until it returns (an error stops the daemon) or the daemon stops.
pub type Attach =
    Box<dyn FnOnce(Admin) -> futures::future::BoxFuture<'static, Result<(), String>> + Send>;

/// An attached driver's handle on the daemon: the admin protocol, served as for `rvs adm`
/// (changes go through the same path, VIP routes follow), and its claim on services.
#[derive(Clone)]
pub struct Admin {
    control: Arc<Control>,
}

impl Admin {
    /// One admin request.
    pub async fn call(&self, req: Request) -> Response {
        self.control.handle(req).await
    }

    /// The config the daemon runs with.
    pub async fn config(&self) -> Config {
        self.control.cfg.lock().await.clone()
    }

    /// The services this driver owns: a reload of the config file neither removes nor
    /// edits them.
    pub fn set_owned(&self, keys: HashSet<ServiceKey>) {
        *self.control.owned.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }

    /// The daemon's `/metrics` text.
    pub async fn metrics(&self) -> String {
        match self.control.ctl.call(Request::State).await {
            Response::State(s) => crate::metrics::render(&s),
            _ => String::new(),
        }
    }
}

impl Control {
    /// Before `cmds` are applied: adds what their new services and real servers need
    /// (routes, reply rules), so that the first packets of their flows already find them.
    async fn prepare(&self, cmds: &[Command]) {
        let local = self
            .net
            .lock()
            .await
            .local_addresses()
            .await
            .unwrap_or_default();
        let want = netlink::ahead(&*self.cfg.lock().await, cmds, &local);
        if want.is_empty() {
            return;
        }
        let mut routed = self
            .routed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for o in &want {
            match o {
                netlink::NetObject::Route { dst, prefix, .. } => routed.push((*dst, *prefix)),
                netlink::NetObject::LocalRule { dst, .. } => {
                    routed.push((*dst, if dst.is_ipv4() { 32 } else { 128 }))
                }
                _ => {}
            }
        }
        self.ctl.set_routed(routed);
        if let Err(e) = self.net.lock().await.add_missing(&want).await {
            tracing::error!("netlink before a change: {e}");
        }
    }

    /// Brings the VIP routes and reply rules in line with the engine's services.
    async fn reconcile(&self) -> Result<(), String> {
        let Response::Services(services) = self.ctl.call(Request::Services).await else {
            return Err("cannot list services".into());
        };
        let local = match self.net.lock().await.local_addresses().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("{e}");
                Default::default()
            }
        };
        let (want, routed) = {
            let cfg = self.cfg.lock().await;
            let want = netlink::desired(&cfg, &services, &local);
            let mut routed = cfg.dataplane.tun_addrs.clone();
            for o in &want {
                match o {
                    netlink::NetObject::Route {
                        dst,
                        prefix,
                        table: 254,
                    } => routed.push((*dst, *prefix)),
                    // Steered into the TUN by a rule: never written back either.
                    netlink::NetObject::LocalRule { dst, .. } => {
                        routed.push((*dst, if dst.is_ipv4() { 32 } else { 128 }))
                    }
                    _ => {}
                }
            }
            (want, routed)
        };
        // Before the routes exist, so that no packet to a new VIP is written back.
        self.ctl.set_routed(routed.clone());
        *self.routed.lock().unwrap_or_else(|e| e.into_inner()) = routed;
        self.net
            .lock()
            .await
            .reconcile(&want)
            .await
            .map_err(|e| e.to_string())
    }

    /// Reloads the config file: validated whole first; applied as a diff; the running state
    /// is untouched on any error.
    async fn reload(&self) -> Response {
        let (path, overrides) = {
            let c = self.cfg.lock().await;
            (c.path.clone(), c.overrides.clone())
        };
        let new = match Config::load(&path) {
            Ok(c) => c.with_overrides(overrides),
            Err(e) => {
                tracing::error!("reload refused: {e}");
                return Response::Error(e.to_string());
            }
        };
        if let Some(e) = new.restart_needed(&*self.cfg.lock().await) {
            tracing::error!("reload refused: {e}");
            return Response::Error(e.to_string());
        }
        let owned = self.owned.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match self.ctl.reload(new.clone(), self.profile, owned).await {
            Ok(lines) => {
                for n in new.inert_sysctls() {
                    tracing::warn!("{n}");
                }
                *self.cfg.lock().await = new;
                for l in &lines {
                    tracing::info!("reload: {l}");
                }
                tracing::info!("reloaded {} ({} changes)", path.display(), lines.len());
                if let Err(e) = self.reconcile().await {
                    return Response::Error(format!("reloaded, but netlink: {e}"));
                }
                Response::Reloaded(lines)
            }
            Err(e) => {
                tracing::error!("reload failed: {e}");
                Response::Error(e)
            }
        }
    }

    async fn handle(&self, req: Request) -> Response {
        match req {
            Request::Reload => self.reload().await,
            req => {
                let mutates = match &req {
                    Request::Apply(c) => {
                        self.prepare(std::slice::from_ref(c)).await;
                        true
                    }
                    Request::Batch(cmds) => {
                        self.prepare(cmds).await;
                        let stale = netlink::may_leave_stale(&*self.cfg.lock().await, cmds);
                        let r = self.ctl.call(req).await;
                        if stale
                            && matches!(&r, Response::Batch(v) if v.iter().any(Option::is_none))
                        {
                            self.reconcile_due.notify_one();
                        }
                        return r;
                    }
                    _ => false,
                };
                let r = self.ctl.call(req).await;
                let applied = match &r {
                    Response::Done => true,
                    Response::Batch(v) => v.iter().any(Option::is_none),
                    _ => false,
                };
                if mutates && applied {
                    if let Err(e) = self.reconcile().await {
                        tracing::error!("netlink after a change: {e}");
                    }
                }
                r
            }
        }
    }
}

async fn serve_conn(c: Arc<Control>, s: UnixStream) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut r).take(proto::MAX_REQUEST_LINE as u64);
        match limited.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            let _ = w
                .write_all(&proto::encode(&Response::Error("request too long".into())))
                .await;
            return;
        }
        let resp = match proto::decode::<Request>(&line) {
            Ok(req) => c.handle(req).await,
            Err(e) => Response::Error(e),
        };
        if w.write_all(&proto::encode(&resp)).await.is_err() {
            return;
        }
    }
}

/// Binds the admin socket with mode 0600 (created under umask 077), refusing to replace the
/// socket of a daemon that still answers.
fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another rvs daemon answers on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let old = crate::sys::umask(0o077);
    let l = UnixListener::bind(path);
    crate::sys::umask(old);
    let l = l?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Runs the daemon until SIGTERM or SIGINT; returns the exit status.
pub fn run(opts: DaemonOptions) -> i32 {
    run_with(opts, Vec::new())
}

/// [`run`], with drivers started once the daemon runs.
pub fn run_with(opts: DaemonOptions, attach: Vec<Attach>) -> i32 {
    let cfg = match Config::load(&opts.config) {
        Ok(c) => c.with_overrides(opts.overrides.clone()),
        Err(e) => {
            eprintln!("rvs daemon: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rvs daemon: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(main(cfg, opts.profile, opts.takeover, opts.stay, attach)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rvs daemon: {e}");
            1
        }
    }
}

async fn main(
    cfg: Config,
    profile: Option<Profile>,
    takeover: Takeover,
    stay: bool,
    attach: Vec<Attach>,
) -> Result<(), String> {
    // Signal handlers first: a SIGTERM during the setup must still lead to the teardown.
    let hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let socket_path = cfg.dataplane.admin_socket.clone();
    let takeover_path = crate::takeover::socket_for(&socket_path);
    let someone = || std::os::unix::net::UnixStream::connect(&takeover_path).is_ok();
    match takeover {
        Takeover::Always => return take_over(cfg, profile, (hup, term, int), stay, attach).await,
        Takeover::Auto if someone() => {
            return take_over(cfg, profile, (hup, term, int), stay, attach).await;
        }
        Takeover::Auto => tracing::info!(
            "--takeover=auto: no daemon answers on {}; starting",
            takeover_path.display()
        ),
        Takeover::No => {}
    }
    if std::os::unix::net::UnixStream::connect(&socket_path).is_ok() {
        return Err(format!(
            "another rvs daemon answers on {} (to replace it, use --takeover)",
            socket_path.display()
        ));
    }
    // After a crash: the predecessor's engine, if its snapshot is sound ([`crate::recovery`]).
    let (recovered, refused) = recover(&cfg, profile);
    let device_was_there = crate::sys::if_index(&cfg.dataplane.tun_name).is_some();
    let dev = tunloop::open_tun(&cfg).map_err(|e| e.to_string())?;
    let ifindex = dev.if_index().map_err(|e| format!("TUN index: {e}"))?;
    let adopt =
        recovered.is_some() && device_was_there && netlink::state_file_for(&socket_path).exists();
    let mut net = if adopt {
        // The device, its addresses, routes and rules outlived the crash: keep them.
        Net::adopt(&cfg, ifindex).await
    } else {
        Net::open(&cfg, ifindex).await
    }
    .map_err(|e| format!("netlink: {e}"))?;
    if !adopt {
        if let Err(e) = net.setup(&cfg).await {
            net.teardown().await;
            return Err(e.to_string());
        }
    }
    let listener = match bind_socket(&socket_path) {
        Ok(l) => l,
        Err(e) => {
            net.teardown().await;
            return Err(format!("admin socket {}: {e}", socket_path.display()));
        }
    };

    let mut driver = if let Some(r) = recovered {
        let mut engine = r.engine;
        engine.preallocate(false);
        tracing::warn!(
            entries = engine.conn_count(),
            generation = engine.generation(),
            age_ms = r.age.as_millis() as u64,
            crashed_pid = r.pid,
            "crash recovery: adopted the state of the daemon that ended without stopping \
             (its services, real servers and connections; `rvs adm --reload` applies the file)"
        );
        let entries = engine.conn_count() as u64;
        let mut d = Driver::with_epoch(engine, driver_config(&cfg), r.epoch);
        d.counters.snapshot.recovered_entries = entries;
        d
    } else {
        let mut engine = Engine::new(cfg.engine_config(profile));
        engine.preallocate(false);
        let mut errors = Vec::new();
        for (cmd, origin) in cfg.commands() {
            if let Err(e) = engine.apply(rvs_core::Instant::ZERO, cmd) {
                errors.push(cfg.error_at(&origin, e.to_string()).to_string());
            }
        }
        if let Err(e) = engine.apply(rvs_core::Instant::ZERO, Command::SetTimeouts(cfg.timeouts)) {
            errors.push(e.to_string());
        }
        if !errors.is_empty() {
            net.teardown().await;
            let _ = std::fs::remove_file(&socket_path);
            return Err(errors.join("; "));
        }
        Driver::new(engine, driver_config(&cfg))
    };
    driver.counters.snapshot.refused = refused;
    let http = match cfg.dataplane.http_listen {
        Some(addr) => match std::net::TcpListener::bind(addr) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!("HTTP admin endpoint {addr}: {e}");
                None
            }
        },
        None => None,
    };
    run_daemon(
        cfg,
        profile,
        stay,
        attach,
        Running {
            dev,
            driver,
            net,
            listener: Some(listener),
            http,
            signals: (hup, term, int),
            start: None,
        },
    )
    .await
}

/// Reads the snapshot a crashed daemon left, if crash recovery is on: the engine to adopt,
/// and 1 if a snapshot was there but refused (logged; the daemon starts empty).
fn recover(cfg: &Config, profile: Option<Profile>) -> (Option<crate::recovery::Recovered>, u64) {
    if cfg.dataplane.snapshot_ms == 0 {
        return (None, 0);
    }
    let path = crate::recovery::file_for(&cfg.dataplane.admin_socket);
    match crate::recovery::load(&path, cfg.engine_config(profile), &cfg.dataplane.tun_name) {
        Ok(r) => (r, 0),
        Err(e) => {
            tracing::error!(
                file = %path.display(),
                "crash recovery: the snapshot was refused: {e}; starting with the config file's \
                 services and no connection (the file is kept as {}.refused; \
                 rvs_state_recovery_refused_total)",
                path.display()
            );
            (None, 1)
        }
    }
}

/// Tells systemd (Type=notify), if it started us; a failure is logged, never fatal.
fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify: {e}");
    }
}

/// The environment variable naming the descriptor on which a daemon started by
/// [`run_background`] says `OK` once it runs.
const READY_FD: &str = "RVS_READY_FD";

/// The write end of [`run_background`]'s pipe, if this daemon was started by it. (The
/// variable stays in the environment: the daemon starts no other program.)
fn ready_pipe() -> Option<std::fs::File> {
    let fd: i32 = std::env::var(READY_FD).ok()?.parse().ok()?;
    crate::sys::inherited_fd(fd).map(std::fs::File::from)
}

/// `rvs daemon … --takeover --background`: runs the same command (without `--background`)
/// as a child and returns once it has taken over (0), or with 1 if it ended first (refused,
/// or failed: its reason is on the shared standard error). The child runs on.
pub fn run_background(args: &[std::ffi::OsString]) -> i32 {
    use std::io::Read;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("rvs daemon: cannot find this binary: {e}");
            return 1;
        }
    };
    // A pipe whose write end (only) the child inherits.
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rvs daemon: pipe: {e}");
            return 1;
        }
    };
    if let Err(e) = nix::fcntl::fcntl(
        &w,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    ) {
        eprintln!("rvs daemon: pipe: {e}");
        return 1;
    }
    let child = std::process::Command::new(&exe)
        .args(args)
        .env(READY_FD, w.as_raw_fd().to_string())
        .stdin(std::process::Stdio::null())
        .spawn();
    drop(w);
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvs daemon: cannot start {}: {e}", exe.display());
            return 1;
        }
    };
    let mut said = String::new();
    let _ = std::fs::File::from(r).take(64).read_to_string(&mut said);
    if said.starts_with("OK") {
        eprintln!(
            "rvs daemon: took over; the new daemon runs as pid {}",
            child.id()
        );
        return 0;
    }
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    eprintln!("rvs daemon: the takeover did not happen ({status}); the running daemon carries on");
    1
}

fn driver_config(cfg: &Config) -> DriverConfig {
    DriverConfig {
        tunnel_src: cfg.dataplane.tunnel_src.clone(),
        tunnel_mtu: cfg.dataplane.tunnel_mtu,
        routed: cfg.dataplane.tun_addrs.clone(),
    }
}

type Signals = (
    tokio::signal::unix::Signal,
    tokio::signal::unix::Signal,
    tokio::signal::unix::Signal,
);

/// What a started daemon runs with.
struct Running {
    dev: tun_rs::SyncDevice,
    driver: Driver,
    net: Net,
    /// `None` when taking over: bound once the old daemon has let go.
    listener: Option<UnixListener>,
    http: Option<std::net::TcpListener>,
    signals: Signals,
    /// Taking over: the old daemon waits for this to let go; the packet loop starts after.
    start: Option<(crate::takeover::Taker, u64, std::time::Instant)>,
}

/// `rvs daemon --takeover`: receives the running daemon's TUN descriptor, adopts its netlink
/// setup, receives and imports its engine state, then runs. Until the old daemon has let go,
/// every failure leaves it running and nothing here is torn down.
async fn take_over(
    cfg: Config,
    profile: Option<Profile>,
    signals: Signals,
    stay: bool,
    attach: Vec<Attach>,
) -> Result<(), String> {
    let socket_path = cfg.dataplane.admin_socket.clone();
    let mut taker = crate::takeover::Taker::connect(&socket_path)?;
    let Some(fd) = taker.tun.take() else {
        taker.abort("no TUN descriptor");
        return Err("takeover: the running daemon sent no TUN descriptor".into());
    };
    let dev = match crate::sys::tun_from_fd(fd) {
        Ok(d) => d,
        Err(e) => {
            taker.abort(&e.to_string());
            return Err(format!("takeover: {e}"));
        }
    };
    match dev.name() {
        Ok(n) if n == cfg.dataplane.tun_name => {}
        other => {
            let m = format!(
                "the running daemon's TUN device is {other:?}, the config names {}",
                cfg.dataplane.tun_name
            );
            taker.abort(&m);
            return Err(format!("takeover refused: {m}"));
        }
    }
    let ifindex = match dev.if_index() {
        Ok(i) => i,
        Err(e) => {
            taker.abort("TUN index");
            return Err(format!("TUN index: {e}"));
        }
    };
    let net = match Net::adopt(&cfg, ifindex).await {
        Ok(n) => n,
        Err(e) => {
            taker.abort("netlink");
            return Err(format!("netlink: {e}"));
        }
    };
    let http = taker.http.take().map(std::net::TcpListener::from);
    let epoch = std::time::Instant::now();
    // The old packet loop stops here.
    let received = taker.ready()?;
    let t = std::time::Instant::now();
    let now = rvs_core::Instant::from_nanos(epoch.elapsed().as_nanos() as u64);
    let mut engine = match Engine::import_state(cfg.engine_config(profile), now, &received.bytes) {
        Ok(e) => e,
        Err(e) => {
            taker.fail(&e.to_string());
            return Err(format!(
                "takeover refused: {e}; the running daemon carries on"
            ));
        }
    };
    engine.preallocate(false);
    let import_ns = t.elapsed().as_nanos() as u64;
    tracing::info!(
        entries = engine.conn_count(),
        bytes = received.bytes.len(),
        import_us = import_ns / 1000,
        generation = engine.generation(),
        "takeover: state imported"
    );
    let driver = Driver::with_epoch(engine, driver_config(&cfg), epoch);
    // The admin socket is bound (over the old daemon's) once it has let go (run_daemon).
    run_daemon(
        cfg,
        profile,
        stay,
        attach,
        Running {
            dev,
            driver,
            net,
            listener: None,
            http,
            signals,
            start: Some((taker, received.stopped_ns, epoch)),
        },
    )
    .await
}

async fn run_daemon(
    cfg: Config,
    profile: Option<Profile>,
    stay: bool,
    attach: Vec<Attach>,
    r: Running,
) -> Result<(), String> {
    let Running {
        dev,
        driver,
        net,
        listener,
        http,
        signals: (mut hup, mut term, mut int),
        start,
    } = r;
    let socket_path = cfg.dataplane.admin_socket.clone();
    let takeover_path = crate::takeover::socket_for(&socket_path);
    let (ctl, rx, wake) = CtlHandle::new().map_err(|e| e.to_string())?;
    let (batch, mtu) = (cfg.dataplane.batch, cfg.dataplane.tun_mtu);
    let mark = cfg.dataplane.output_mark;
    let (output, want) = match cfg.dataplane.output {
        Output::Tun => (None, None),
        Output::Raw => (
            Some(SocketOutput {
                mark,
                next_hops: None,
            }),
            None,
        ),
        Output::Packet => {
            let (tx, want) = tokio::sync::mpsc::unbounded_channel();
            let next_hops = Some(crate::nexthop::Lookup::new(tx));
            (Some(SocketOutput { mark, next_hops }), Some(want))
        }
    };
    // What a later takeover gets: the same open TUN file and HTTP listener.
    let offer = crate::takeover::Offer {
        tun: dev
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("TUN descriptor: {e}"))?,
        http: http
            .as_ref()
            .and_then(|l| l.as_fd().try_clone_to_owned().ok()),
    };
    if let Some((taker, stopped_ns, _)) = start {
        // Under systemd this process becomes the unit's main one before the old one exits
        // (NotifyAccess=all); back to the old one if it does not let go.
        let old_pid = taker.peer_pid;
        notify(&[sd_notify::NotifyState::MainPid(std::process::id())]);
        // The old daemon lets go of the TUN; then, and only then, this one reads it.
        if let Err(e) = taker.commit() {
            if let Some(pid) = old_pid {
                notify(&[sd_notify::NotifyState::MainPid(pid)]);
            }
            return Err(format!("{e}; not starting (the old daemon may carry on)"));
        }
        let pause_ns = crate::sys::monotonic_ns().saturating_sub(stopped_ns);
        tracing::info!(
            pause_us = pause_ns / 1000,
            "takeover: pause {:.3} ms (from the old packet loop's stop to this one's start)",
            pause_ns as f64 / 1e6
        );
    }
    // Crash recovery: the device outlives the process, and the engine is written out
    // regularly ([`crate::recovery`]). A clean stop undoes both.
    let snap_path = crate::recovery::file_for(&socket_path);
    let persist_fd = dev.as_fd().try_clone_to_owned().ok();
    let mut snap = None;
    if cfg.dataplane.snapshot_ms > 0 {
        let r = persist_fd
            .as_ref()
            .ok_or_else(|| io::Error::other("no descriptor"))
            .and_then(|fd| crate::sys::tun_set_persist(fd.as_raw_fd(), true))
            .and_then(|()| {
                crate::recovery::Snapshotter::new(
                    snap_path.clone(),
                    cfg.dataplane.snapshot_ms,
                    &cfg.dataplane.tun_name,
                )
            });
        match r {
            Ok(s) => snap = Some(s),
            Err(e) => tracing::error!("crash recovery is off: {e}"),
        }
    }
    let thread = std::thread::Builder::new()
        .name("rvs-packets".into())
        .spawn(move || {
            let opts = tunloop::LoopOptions {
                batch,
                mtu,
                output,
                snapshots: snap,
            };
            tunloop::run(dev, driver, rx, wake, opts)
        })
        .map_err(|e| e.to_string())?;
    let resolver = want.map(|w| tokio::spawn(crate::nexthop::run_resolver(w, ctl.clone(), mark)));
    let listener = match listener {
        Some(l) => l,
        None => crate::takeover::bind_replacing(&socket_path)
            .and_then(|l| {
                l.set_nonblocking(true)?;
                UnixListener::from_std(l)
            })
            .map_err(|e| format!("admin socket {}: {e}", socket_path.display()))?,
    };
    // The hand-over socket, for the next upgrade.
    let (handed_tx, mut handed_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    match crate::takeover::bind_replacing(&takeover_path) {
        Ok(l) => {
            let ctl = ctl.clone();
            let spawned = std::thread::Builder::new()
                .name("rvs-takeover".into())
                .spawn(move || {
                    crate::takeover::serve(l, offer, ctl, move || {
                        let _ = handed_tx.send(());
                    })
                });
            if let Err(e) = spawned {
                tracing::error!("takeover socket: {e}");
            }
        }
        Err(e) => tracing::error!("takeover socket {}: {e}", takeover_path.display()),
    }

    let control = Arc::new(Control {
        ctl: ctl.clone(),
        cfg: Mutex::new(cfg),
        profile,
        net: Mutex::new(net),
        owned: std::sync::Mutex::new(Arc::new(HashSet::new())),
        routed: std::sync::Mutex::new(Vec::new()),
        reconcile_due: tokio::sync::Notify::new(),
    });
    if let Err(e) = control.reconcile().await {
        tracing::error!("netlink: {e}");
    }

    let accept = {
        let c = control.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((s, _)) => {
                        tokio::spawn(serve_conn(c.clone(), s));
                    }
                    Err(e) => tracing::warn!("admin socket: {e}"),
                }
            }
        })
    };
    let mut http_task = None;
    if let Some(l) = http {
        let addr = l.local_addr().ok();
        match l
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(l))
        {
            Ok(l) => {
                let app = crate::metrics::router(ctl.clone());
                http_task = Some(tokio::spawn(async move {
                    let _ = axum::serve(l, app).await;
                }));
                if let Some(addr) = addr {
                    tracing::info!("HTTP admin endpoint on http://{addr}/metrics");
                }
            }
            Err(e) => tracing::error!("HTTP admin endpoint: {e}"),
        }
    }
    tracing::info!("rvs daemon running: admin socket {}", socket_path.display());
    notify(&[sd_notify::NotifyState::Ready]);
    if let Some(mut w) = ready_pipe() {
        // `rvs daemon --takeover --background` waits for this line.
        let _ = std::io::Write::write_all(&mut w, b"OK\n");
    }
    for n in control.cfg.lock().await.inert_sysctls() {
        tracing::warn!("{n}");
    }

    let reconciler = {
        let c = control.clone();
        tokio::spawn(async move {
            loop {
                c.reconcile_due.notified().await;
                tokio::time::sleep(RECONCILE_DELAY).await;
                if let Err(e) = c.reconcile().await {
                    tracing::error!("netlink after a change: {e}");
                }
            }
        })
    };
    let (driver_tx, mut driver_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let drivers: Vec<_> = attach
        .into_iter()
        .map(|a| {
            let (f, tx) = (
                a(Admin {
                    control: control.clone(),
                }),
                driver_tx.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = f.await {
                    let _ = tx.send(e);
                }
            })
        })
        .collect();

    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut result = Ok(());
    let mut handed_over = false;
    loop {
        tokio::select! {
            biased;
            _ = handed_rx.recv() => { handed_over = true; break; }
            Some(e) = driver_rx.recv() => {
                tracing::error!("{e}: stopping");
                result = Err(e);
                break;
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = control.reload().await;
            }
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = tick.tick() => {
                if thread.is_finished() {
                    result = Err("the packet thread stopped".to_string());
                    break;
                }
            }
        }
    }
    accept.abort();
    for d in drivers {
        d.abort();
    }
    reconciler.abort();
    if let Some(t) = resolver {
        t.abort();
    }
    if let Some(t) = http_task {
        t.abort();
    }
    if handed_over {
        // The new daemon owns the TUN, the routes, the rules and the sockets' paths now.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        if stay {
            tracing::info!("rvs daemon handed over: staying idle until SIGTERM (--stay)");
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        tracing::info!("rvs daemon handed over: exiting, the setup stays");
        return Ok(());
    }
    ctl.stop();
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    // A clean stop: no snapshot to adopt, and the device goes with this process.
    crate::recovery::remove(&snap_path);
    if let Some(fd) = &persist_fd {
        if let Err(e) = crate::sys::tun_set_persist(fd.as_raw_fd(), false) {
            tracing::warn!("TUN device: clearing IFF_PERSIST: {e}");
        }
    }
    control.net.lock().await.teardown().await;
    let _ = std::fs::remove_file(&socket_path);
    let _ = std::fs::remove_file(&takeover_path);
    tracing::info!("rvs daemon stopped");
    result
}
