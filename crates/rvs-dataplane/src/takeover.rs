//! Hand-over from a running daemon to a new one (`rvs daemon --takeover`, issue 14): a planned
//! restart or an upgrade loses no flow.
//!
//! The running daemon (the *old* one) listens on `<admin socket>.takeover` (mode 0600, root
//! only, and the peer's uid must be ours). The new daemon connects and the two speak lines:
//!
//! ```text
//! new → old   RVS-TAKEOVER 1 <engine state version it reads>
//! old → new   REFUSE <why>                       (and the old daemon carries on), or
//!             FDS tun [http]                     with the descriptors (SCM_RIGHTS): the very
//!                                                TUN file the old one reads, so its queue
//!                                                stays attached and keeps what it holds
//! new → old   READY                              (netlink adopted, sockets ready), or ABORT <why>
//!             the old packet thread stops after its current batch and exports the engine
//! old → new   STATE <bytes> <stopped at, CLOCK_MONOTONIC ns>, then the state
//! new → old   OK, or FAIL <why>                  (the state was refused: the old one resumes)
//! old → new   BYE                                (the old one has let go; the new one starts)
//! ```
//!
//! Until `BYE`, any failure or silence on either side leaves the old daemon forwarding (it
//! resumes its packet loop); after `OK` the new daemon waits for `BYE` before reading the TUN,
//! so two processes never read it at once. Between the old loop's stop and the new loop's
//! start, packets wait in the TUN's queue (`txqueuelen`, 10 000 by default): the pause is
//! reported by the new daemon in its log (`takeover: pause …`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::tunloop::{CtlHandle, Handed};

/// Protocol version of the hand-over conversation.
pub const PROTOCOL: u32 = 1;

/// Largest state accepted (16 M entries of 75 bytes, plus the rest).
const MAX_STATE: u64 = 2 << 30;

/// The hand-over socket next to the admin socket.
pub fn socket_for(admin: &Path) -> PathBuf {
    let mut s = admin.as_os_str().to_owned();
    s.push(".takeover");
    PathBuf::from(s)
}

/// Binds a Unix socket at `path` with mode 0600, replacing whatever is there atomically
/// (bound under a temporary name, then renamed over `path`): clients connecting to `path`
/// reach either the old listener or the new one, never nothing.
pub fn bind_replacing(path: &Path) -> io::Result<UnixListener> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let old = crate::sys::umask(0o077);
    let l = UnixListener::bind(&tmp);
    crate::sys::umask(old);
    let l = l?;
    use std::os::unix::fs::PermissionsExt;
    let r = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(l)
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    let n = r.by_ref().take(4096).read_line(&mut line)?;
    if n == 0 || !line.ends_with('\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the other daemon hung up",
        ));
    }
    line.pop();
    Ok(line)
}

fn peer_is_us(s: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    match getsockopt(&s.as_fd(), PeerCredentials) {
        Ok(c) => c.uid() == nix::unistd::geteuid().as_raw(),
        Err(_) => false,
    }
}

/// What the old daemon hands over besides the state.
pub struct Offer {
    /// A duplicate of the TUN descriptor (the same open file).
    pub tun: OwnedFd,
    /// A duplicate of the HTTP listener, if any.
    pub http: Option<OwnedFd>,
}

/// The old daemon's side: serves hand-over requests on `listener` until one succeeds; then
/// calls `done` (before the packet thread is let go) and returns.
pub fn serve(listener: UnixListener, offer: Offer, ctl: CtlHandle, done: impl FnOnce()) {
    for s in listener.incoming() {
        let Ok(s) = s else { continue };
        if !peer_is_us(&s) {
            tracing::warn!("takeover: refused a peer that is not our user");
            continue;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
        match give(s, &offer, &ctl) {
            Ok(Some(verdict)) => {
                done();
                let _ = verdict.0.send(true);
                if let Err(e) = (&verdict.1).write_all(b"BYE\n") {
                    tracing::warn!("takeover: BYE: {e}");
                }
                tracing::info!("takeover: handed over; this daemon exits");
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("takeover failed, carrying on: {e}"),
        }
    }
}

/// One hand-over attempt. `Ok(Some)`: the new daemon took the state; the caller commits.
#[allow(clippy::type_complexity)]
fn give(
    s: UnixStream,
    offer: &Offer,
    ctl: &CtlHandle,
) -> io::Result<Option<(std::sync::mpsc::Sender<bool>, UnixStream)>> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let hello = read_line(&mut r)?;
    let mut it = hello.split_whitespace();
    let (Some("RVS-TAKEOVER"), Some(proto), Some(ver)) = (it.next(), it.next(), it.next()) else {
        w.write_all(b"REFUSE not a takeover request\n")?;
        return Ok(None);
    };
    if proto != PROTOCOL.to_string() {
        w.write_all(
            format!("REFUSE takeover protocol {proto}, this daemon speaks {PROTOCOL}\n").as_bytes(),
        )?;
        return Ok(None);
    }
    if ver != rvs_core::STATE_VERSION.to_string() {
        let m = format!(
            "REFUSE the running daemon writes engine state version {}, the new binary reads version {ver}\n",
            rvs_core::STATE_VERSION
        );
        w.write_all(m.as_bytes())?;
        tracing::warn!("takeover refused: {}", m.trim_end());
        return Ok(None);
    }
    let mut fds = vec![offer.tun.as_raw_fd()];
    let mut line = String::from("FDS tun");
    if let Some(h) = &offer.http {
        fds.push(h.as_raw_fd());
        line.push_str(" http");
    }
    line.push('\n');
    let iov = [io::IoSlice::new(line.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(w.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(io::Error::from)?;
    let ready = read_line(&mut r)?;
    if ready != "READY" {
        tracing::warn!("takeover: the new daemon gave up: {ready}");
        return Ok(None);
    }
    // Stop the packet thread and take its state.
    let (htx, hrx) = std::sync::mpsc::channel::<Handed>();
    let (vtx, vrx) = std::sync::mpsc::channel::<bool>();
    if !ctl.handover(htx, vrx) {
        return Err(io::Error::other("the packet thread has stopped"));
    }
    let handed = hrx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| io::Error::other("the packet thread did not hand its state"))?;
    // From here on, any error drops `vtx`: the packet thread resumes.
    let head = format!("STATE {} {}\n", handed.bytes.len(), handed.stopped_ns);
    w.write_all(head.as_bytes())?;
    w.write_all(&handed.bytes)?;
    w.flush()?;
    tracing::info!(
        entries = handed.entries,
        bytes = handed.bytes.len(),
        export_us = handed.export_ns / 1000,
        "takeover: state sent"
    );
    let verdict = read_line(&mut r)?;
    if verdict != "OK" {
        tracing::error!("takeover: the new daemon refused the state: {verdict}");
        let _ = vtx.send(false);
        return Ok(None);
    }
    Ok(Some((vtx, w)))
}

/// The new daemon's side of a hand-over in progress.
pub struct Taker {
    r: BufReader<UnixStream>,
    w: UnixStream,
    /// The TUN device of the old daemon.
    pub tun: Option<OwnedFd>,
    /// Its HTTP listener, if it had one.
    pub http: Option<OwnedFd>,
    /// The old daemon's pid (`SO_PEERCRED`).
    pub peer_pid: Option<u32>,
}

/// The state as received.
pub struct Received {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// When the old packet loop stopped (CLOCK_MONOTONIC ns).
    pub stopped_ns: u64,
}

impl Taker {
    /// Connects to the daemon running with this admin socket and receives its descriptors.
    pub fn connect(admin: &Path) -> Result<Taker, String> {
        let path = socket_for(admin);
        let s = UnixStream::connect(&path).map_err(|e| {
            format!(
                "no running daemon to take over from at {}: {e}",
                path.display()
            )
        })?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let peer_pid = {
            use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
            getsockopt(&s.as_fd(), PeerCredentials)
                .ok()
                .and_then(|c| u32::try_from(c.pid()).ok())
        };
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        w.write_all(format!("RVS-TAKEOVER {PROTOCOL} {}\n", rvs_core::STATE_VERSION).as_bytes())
            .map_err(|e| e.to_string())?;
        // The answer carries the descriptors: read it with recvmsg.
        let mut buf = [0u8; 512];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let (n, raw) = {
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(
                s.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(|e| format!("takeover: {e}"))?;
            let mut raw = Vec::new();
            if let Ok(it) = msg.cmsgs() {
                for c in it {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        raw.extend(fds);
                    }
                }
            }
            (msg.bytes, raw)
        };
        let fds = crate::sys::owned_fds(&raw);
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let line = text.lines().next().unwrap_or("").to_string();
        if let Some(why) = line.strip_prefix("REFUSE ") {
            return Err(format!("the running daemon refused the takeover: {why}"));
        }
        let names: Vec<&str> = line.split_whitespace().collect();
        if names.first() != Some(&"FDS") || names.len() - 1 != fds.len() || !text.ends_with('\n') {
            return Err(format!("takeover: unexpected answer {line:?}"));
        }
        let mut tun = None;
        let mut http = None;
        for (name, fd) in names[1..].iter().zip(fds) {
            match *name {
                "tun" => tun = Some(fd),
                "http" => http = Some(fd),
                _ => {}
            }
        }
        Ok(Taker {
            r: BufReader::new(s),
            w,
            tun,
            http,
            peer_pid,
        })
    }

    /// Says READY and receives the state (the old packet loop has stopped when this returns).
    pub fn ready(&mut self) -> Result<Received, String> {
        self.w
            .write_all(b"READY\n")
            .map_err(|e| format!("takeover: {e}"))?;
        let head = read_line(&mut self.r).map_err(|e| format!("takeover: {e}"))?;
        let mut it = head.split_whitespace();
        let (Some("STATE"), Some(len), Some(at)) = (it.next(), it.next(), it.next()) else {
            return Err(format!("takeover: unexpected answer {head:?}"));
        };
        let len: u64 = len
            .parse()
            .map_err(|_| format!("takeover: bad length {len}"))?;
        let stopped_ns: u64 = at.parse().unwrap_or(0);
        if len > MAX_STATE {
            return Err(format!("takeover: a state of {len} bytes is too large"));
        }
        let mut bytes = vec![0u8; len as usize];
        self.r
            .read_exact(&mut bytes)
            .map_err(|e| format!("takeover: reading the state: {e}"))?;
        Ok(Received { bytes, stopped_ns })
    }

    /// Tells the old daemon that the state was refused (it resumes).
    pub fn fail(mut self, why: &str) {
        let _ = self
            .w
            .write_all(format!("FAIL {}\n", why.replace('\n', " ")).as_bytes());
    }

    /// Says ABORT before the state was asked for (the old daemon carries on).
    pub fn abort(mut self, why: &str) {
        let _ = self
            .w
            .write_all(format!("ABORT {}\n", why.replace('\n', " ")).as_bytes());
    }

    /// Accepts the state and waits for the old daemon to let go.
    pub fn commit(mut self) -> Result<(), String> {
        self.w
            .write_all(b"OK\n")
            .map_err(|e| format!("takeover: {e}"))?;
        match read_line(&mut self.r) {
            Ok(l) if l == "BYE" => Ok(()),
            Ok(l) => Err(format!("takeover: unexpected answer {l:?}")),
            Err(e) => Err(format!("takeover: the old daemon did not let go: {e}")),
        }
    }
}
