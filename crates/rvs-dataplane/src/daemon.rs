//! `rvs daemon`: the TUN device, netlink setup, the packet thread, the admin socket, the HTTP
//! endpoint, signals (SIGHUP reloads, SIGTERM/SIGINT stop and undo the setup).

use std::io;
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
}

struct Control {
    ctl: CtlHandle,
    cfg: Mutex<Config>,
    profile: Option<Profile>,
    net: Mutex<Net>,
}

impl Control {
    /// Brings the VIP routes and reply rules in line with the engine's services.
    async fn reconcile(&self) -> Result<(), String> {
        let Response::Services(services) = self.ctl.call(Request::Services).await else {
            return Err("cannot list services".into());
        };
        let (want, routed) = {
            let cfg = self.cfg.lock().await;
            let want = netlink::desired(&cfg, &services);
            let mut routed = cfg.dataplane.tun_addrs.clone();
            for o in &want {
                if let netlink::NetObject::Route {
                    dst,
                    prefix,
                    table: 254,
                } = o
                {
                    routed.push((*dst, *prefix));
                }
            }
            (want, routed)
        };
        // Before the routes exist, so that no packet to a new VIP is written back.
        self.ctl.set_routed(routed);
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
        let path = self.cfg.lock().await.path.clone();
        let new = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload refused: {e}");
                return Response::Error(e.to_string());
            }
        };
        if let Some(e) = new.restart_needed(&*self.cfg.lock().await) {
            tracing::error!("reload refused: {e}");
            return Response::Error(e.to_string());
        }
        match self.ctl.reload(new.clone(), self.profile).await {
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
                let mutates = matches!(req, Request::Apply(_));
                let r = self.ctl.call(req).await;
                if mutates && r == Response::Done {
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
    let cfg = match Config::load(&opts.config) {
        Ok(c) => c,
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
    match rt.block_on(main(cfg, opts.profile)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rvs daemon: {e}");
            1
        }
    }
}

async fn main(cfg: Config, profile: Option<Profile>) -> Result<(), String> {
    // Signal handlers first: a SIGTERM during the setup must still lead to the teardown.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let dev = tunloop::open_tun(&cfg).map_err(|e| e.to_string())?;
    let ifindex = dev.if_index().map_err(|e| format!("TUN index: {e}"))?;
    let mut net = Net::open(&cfg, ifindex)
        .await
        .map_err(|e| format!("netlink: {e}"))?;
    if let Err(e) = net.setup(&cfg).await {
        net.teardown().await;
        return Err(e.to_string());
    }
    let socket_path = cfg.dataplane.admin_socket.clone();
    let listener = match bind_socket(&socket_path) {
        Ok(l) => l,
        Err(e) => {
            net.teardown().await;
            return Err(format!("admin socket {}: {e}", socket_path.display()));
        }
    };

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
    let driver = Driver::new(
        engine,
        DriverConfig {
            tunnel_src: cfg.dataplane.tunnel_src.clone(),
            tunnel_mtu: cfg.dataplane.tunnel_mtu,
            routed: cfg.dataplane.tun_addrs.clone(),
        },
    );
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
    let thread = std::thread::Builder::new()
        .name("rvs-packets".into())
        .spawn(move || tunloop::run(dev, driver, rx, wake, batch, mtu, output))
        .map_err(|e| e.to_string())?;
    let resolver = want.map(|w| tokio::spawn(crate::nexthop::run_resolver(w, ctl.clone(), mark)));

    let http = cfg.dataplane.http_listen;
    let control = Arc::new(Control {
        ctl: ctl.clone(),
        cfg: Mutex::new(cfg),
        profile,
        net: Mutex::new(net),
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
    if let Some(addr) = http {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let app = crate::metrics::router(ctl.clone());
                http_task = Some(tokio::spawn(async move {
                    let _ = axum::serve(l, app).await;
                }));
                tracing::info!("HTTP admin endpoint on http://{addr}/metrics");
            }
            Err(e) => tracing::error!("HTTP admin endpoint {addr}: {e}"),
        }
    }
    tracing::info!("rvs daemon running: admin socket {}", socket_path.display());
    for n in control.cfg.lock().await.inert_sysctls() {
        tracing::warn!("{n}");
    }

    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut result = Ok(());
    loop {
        tokio::select! {
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
    if let Some(t) = resolver {
        t.abort();
    }
    if let Some(t) = http_task {
        t.abort();
    }
    ctl.stop();
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    control.net.lock().await.teardown().await;
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("rvs daemon stopped");
    result
}
