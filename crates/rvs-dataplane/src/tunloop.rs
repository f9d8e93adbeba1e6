//! The TUN device and the packet thread's loop.
//!
//! One thread owns the [`Driver`] (and so the engine) and the TUN file descriptor. It reads
//! up to `batch` packets with non-blocking `read(2)`s, processes each in place and queues the
//! result in a [`SocketSink`] (frames to resolved next hops and raw-socket packets, sent in
//! order with one `sendmmsg(2)` per run at the end of the batch) or writes it back to the TUN
//! with one `write(2)` (`output = "tun"`); then it runs due engine timers and serves control
//! messages that arrived on its channel. When the device has nothing to read it sleeps in
//! `poll(2)` on the TUN descriptor and an eventfd that control threads signal, with a timeout
//! at the engine's next deadline. The engine is never behind a lock: the control threads
//! reach it only through messages.
//!
//! Per packet this costs one `read` system call, no allocation, and one copy each way between
//! the kernel and user space; the output's system calls are one `sendmmsg` per batch.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use rvs_control::Config;
use rvs_control::config::{Running, describe, diff};
use rvs_control::proto::{Request, Response};
use rvs_core::profile::Profile;
use rvs_core::service::ServiceKey;
use tokio::sync::oneshot;
use tun_rs::{DeviceBuilder, SyncDevice};

use crate::driver::{Driver, Sink};
use crate::sys::{EventFd, poll2};

/// Read buffer size per packet slot for a TUN MTU: the MTU rounded up to 2 KiB (the kernel
/// hands the TUN no packet larger than its MTU: no offloads are enabled). Small contiguous
/// slots keep a batch's buffers in a few pages (64 scattered 64 KiB buffers cost measurable
/// cache and TLB misses on every read).
pub fn slot_size(mtu: u32) -> usize {
    (mtu as usize + 64).div_ceil(2048) * 2048
}

/// Creates the TUN device (`IFF_TUN | IFF_NO_PI`, single queue, no offloads): name, MTU and
/// transmit queue length from the config. Addresses and routes are set by [`crate::netlink`].
pub fn open_tun(cfg: &Config) -> io::Result<SyncDevice> {
    let dp = &cfg.dataplane;
    let txq = dp.txqueuelen;
    DeviceBuilder::new()
        .name(&dp.tun_name)
        .mtu(dp.tun_mtu.min(65535) as u16)
        .packet_information(false)
        .with(|b| {
            b.tx_queue_len(txq);
        })
        .build_sync()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create TUN device {}: {e} (is /dev/net/tun there, and are we root?)",
                    dp.tun_name
                ),
            )
        })
}

/// A message to the packet thread.
pub enum CtlMsg {
    /// An admin request and where to send its response.
    Request(Request, oneshot::Sender<Response>),
    /// Apply a validated config as a diff.
    Reload {
        /// The new file.
        cfg: Box<Config>,
        /// The profile given on the command line (overrides the file's).
        profile: Option<Profile>,
        /// Services another driver owns, which the file's diff leaves alone.
        owned: Arc<HashSet<ServiceKey>>,
        /// Lines describing what changed, or an error.
        reply: oneshot::Sender<Result<Vec<String>, String>>,
    },
    /// The prefixes now routed into the TUN (see `DriverConfig::routed`).
    SetRouted(Vec<(std::net::IpAddr, u8)>),
    /// A fresh next-hop table from the resolver (`output = "packet"`).
    SetNextHops(Arc<crate::nexthop::NextHops>),
    /// Hand the engine to a new daemon ([`crate::takeover`]): stop reading, export the
    /// state to `reply`, then wait for the verdict: `true` leaves the loop for good, `false`
    /// (or a dropped sender) resumes it.
    Handover {
        /// Where the state goes.
        reply: std::sync::mpsc::Sender<Handed>,
        /// Whether the new daemon took it.
        verdict: Receiver<bool>,
    },
    /// Leave the loop.
    Stop,
}

/// The engine state handed over by the packet thread.
pub struct Handed {
    /// [`rvs_core::Engine::export_state`].
    pub bytes: Vec<u8>,
    /// When the loop stopped reading (CLOCK_MONOTONIC ns).
    pub stopped_ns: u64,
    /// How long the export took.
    pub export_ns: u64,
    /// Entries in the table.
    pub entries: usize,
}

/// The control side's handle on the packet thread.
#[derive(Clone)]
pub struct CtlHandle {
    tx: Sender<CtlMsg>,
    wake: Arc<EventFd>,
}

impl CtlHandle {
    /// A channel to a packet thread and the eventfd that wakes it.
    pub fn new() -> io::Result<(CtlHandle, Receiver<CtlMsg>, Arc<EventFd>)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let wake = Arc::new(EventFd::new()?);
        Ok((
            CtlHandle {
                tx,
                wake: wake.clone(),
            },
            rx,
            wake,
        ))
    }

    fn send(&self, m: CtlMsg) -> bool {
        let ok = self.tx.send(m).is_ok();
        self.wake.notify();
        ok
    }

    /// Sends a request and waits for the response.
    pub async fn call(&self, req: Request) -> Response {
        let (tx, rx) = oneshot::channel();
        if !self.send(CtlMsg::Request(req, tx)) {
            return Response::Error("the packet thread has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Response::Error("the packet thread has stopped".into()))
    }

    /// Asks the packet thread to apply `cfg`.
    pub async fn reload(
        &self,
        cfg: Config,
        profile: Option<Profile>,
        owned: Arc<HashSet<ServiceKey>>,
    ) -> Result<Vec<String>, String> {
        let (tx, rx) = oneshot::channel();
        let msg = CtlMsg::Reload {
            cfg: Box::new(cfg),
            profile,
            owned,
            reply: tx,
        };
        if !self.send(msg) {
            return Err("the packet thread has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the packet thread has stopped".into()))
    }

    /// Tells the packet thread which prefixes are routed into the TUN.
    pub fn set_routed(&self, routed: Vec<(std::net::IpAddr, u8)>) {
        self.send(CtlMsg::SetRouted(routed));
    }

    /// Hands the packet thread a next-hop table; `false` once the thread is gone.
    pub fn set_next_hops(&self, t: Arc<crate::nexthop::NextHops>) -> bool {
        self.send(CtlMsg::SetNextHops(t))
    }

    /// Asks the packet thread to hand its engine over (see [`CtlMsg::Handover`]); `false`
    /// once the thread is gone.
    pub fn handover(
        &self,
        reply: std::sync::mpsc::Sender<Handed>,
        verdict: Receiver<bool>,
    ) -> bool {
        self.send(CtlMsg::Handover { reply, verdict })
    }

    /// Asks the packet thread to stop.
    pub fn stop(&self) {
        self.send(CtlMsg::Stop);
    }
}

/// Where one queued packet goes.
#[derive(Clone, Copy)]
enum Queued {
    /// Raw IPv4 / IPv6 socket, to this destination.
    Raw(std::net::IpAddr),
    /// A frame out of this interface (the header is in the slot's headroom).
    Frame(u32),
}

impl Queued {
    /// Packets of the same class go out in one sendmmsg run.
    fn class(self) -> u8 {
        match self {
            Queued::Raw(d) if d.is_ipv4() => 0,
            Queued::Raw(_) => 1,
            Queued::Frame(_) => 2,
        }
    }
}

/// Room in front of each queued packet for an Ethernet header.
const HEADROOM: usize = 14;

/// Output through sockets, batched with sendmmsg(2), instead of writes to the TUN.
///
/// Packets go on raw `IPPROTO_RAW` sockets: the kernel sends them as locally generated
/// (output routing, neighbour, device), which skips the second IP input and forwarding pass a
/// TUN write costs, and takes a whole batch per system call. With a next-hop table
/// (`output = "packet"`, see [`crate::nexthop`]), packets whose next hop the kernel has
/// resolved go instead as Ethernet frames on an `AF_PACKET` socket, straight to the egress
/// device. Packets are copied into an output arena (they may come from the scratch buffer)
/// and sent at [`SocketSink::flush`], in the order they were queued.
pub struct SocketSink {
    fd4: std::os::fd::OwnedFd,
    fd6: std::os::fd::OwnedFd,
    l2: Option<(std::os::fd::OwnedFd, crate::nexthop::Lookup)>,
    arena: Vec<u8>,
    slot: usize,
    lens: Vec<usize>,
    queued: Vec<Queued>,
    n: usize,
    /// Packets the kernel refused.
    pub failed: u64,
    /// Packets sent as frames.
    pub frames: u64,
}

impl SocketSink {
    /// Raw IPv4 and IPv6 sockets marked `mark` (`SO_MARK`: the rule `fwmark MARK lookup main`
    /// keeps what they send out of the TUN), an `AF_PACKET` socket when `next_hops` is given,
    /// and room for `cap` packets of `slot` bytes.
    pub fn new(
        cap: usize,
        slot: usize,
        mark: u32,
        next_hops: Option<crate::nexthop::Lookup>,
    ) -> io::Result<SocketSink> {
        let fd4 = crate::sys::raw_socket(libc::AF_INET, libc::IPPROTO_RAW)?;
        let fd6 = crate::sys::raw_socket(libc::AF_INET6, libc::IPPROTO_RAW)?;
        crate::sys::set_mark(fd4.as_raw_fd(), mark)?;
        crate::sys::set_mark(fd6.as_raw_fd(), mark)?;
        let l2 = match next_hops.map(|lk| (crate::sys::packet_socket(), lk)) {
            Some((Ok(fd), lk)) => {
                crate::sys::set_mark(fd.as_raw_fd(), mark)?;
                Some((fd, lk))
            }
            Some((Err(e), _)) => {
                tracing::warn!("AF_PACKET socket: {e}; sending through the raw sockets only");
                None
            }
            None => None,
        };
        let slot = slot + HEADROOM;
        Ok(SocketSink {
            fd4,
            fd6,
            l2,
            arena: vec![0u8; cap * slot],
            slot,
            lens: vec![0; cap],
            queued: vec![Queued::Frame(0); cap],
            n: 0,
            failed: 0,
            frames: 0,
        })
    }

    /// Takes a next-hop table the resolver published.
    pub fn set_next_hops(&mut self, t: Arc<crate::nexthop::NextHops>) {
        if let Some((_, lk)) = self.l2.as_mut() {
            lk.set(t, std::time::Instant::now());
        }
    }

    /// Once per batch: see [`crate::nexthop::Lookup::check`] (reads the clock only in
    /// packet mode).
    pub fn check_next_hops(&mut self) {
        if let Some((_, lk)) = self.l2.as_mut() {
            lk.check(std::time::Instant::now());
        }
    }

    /// Sends what is queued, in order: each run of packets of one class in one sendmmsg.
    pub fn flush(&mut self) {
        let (arena, lens, queued, slot) = (&self.arena, &self.lens, &self.queued, self.slot);
        let mut start = 0;
        while start < self.n {
            let class = queued[start].class();
            let end = (start..self.n)
                .find(|&k| queued[k].class() != class)
                .unwrap_or(self.n);
            let run = start..end;
            self.failed += match class {
                2 => {
                    let fd = self.l2.as_ref().map_or(-1, |(fd, _)| fd.as_raw_fd());
                    let n = run.len();
                    let failed = crate::sys::packet_sendmmsg(
                        fd,
                        run.map(|k| match queued[k] {
                            Queued::Frame(ifx) => (&arena[k * slot..k * slot + lens[k]], ifx),
                            Queued::Raw(_) => unreachable!("a run holds one class"),
                        }),
                    );
                    self.frames += (n - failed) as u64;
                    failed
                }
                c => {
                    let fd = if c == 0 { &self.fd4 } else { &self.fd6 };
                    crate::sys::raw_sendmmsg(
                        fd.as_raw_fd(),
                        run.map(|k| match queued[k] {
                            Queued::Raw(dst) => (
                                &arena[k * slot + HEADROOM..k * slot + HEADROOM + lens[k]],
                                dst,
                            ),
                            Queued::Frame(_) => unreachable!("a run holds one class"),
                        }),
                    )
                }
            } as u64;
            start = end;
        }
        self.n = 0;
    }
}

fn dst_of(pkt: &[u8]) -> Option<std::net::IpAddr> {
    match pkt.first()? >> 4 {
        4 => {
            let b: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            Some(std::net::IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            Some(std::net::IpAddr::from(b))
        }
        _ => None,
    }
}

impl Sink for SocketSink {
    #[inline]
    fn send(&mut self, pkt: &[u8]) -> bool {
        let Some(dst) = dst_of(pkt) else {
            return false;
        };
        if pkt.len() + HEADROOM > self.slot {
            // Too big for a slot: after what is queued, straight out of the raw socket.
            self.flush();
            let fd = if dst.is_ipv4() { &self.fd4 } else { &self.fd6 };
            return crate::sys::raw_sendmmsg(fd.as_raw_fd(), [(pkt, dst)]) == 0;
        }
        let route = match self.l2.as_mut() {
            Some((_, lk)) => lk.route(dst, pkt.len()),
            None => crate::nexthop::Route::Raw,
        };
        if self.n == self.lens.len() {
            self.flush();
        }
        let k = self.n;
        let base = k * self.slot;
        self.arena[base + HEADROOM..base + HEADROOM + pkt.len()].copy_from_slice(pkt);
        match route {
            crate::nexthop::Route::Frame(nh) => {
                self.arena[base..base + HEADROOM].copy_from_slice(&nh.header);
                self.lens[k] = pkt.len() + HEADROOM;
                self.queued[k] = Queued::Frame(nh.ifindex);
            }
            crate::nexthop::Route::Raw => {
                self.lens[k] = pkt.len();
                self.queued[k] = Queued::Raw(dst);
            }
        }
        self.n += 1;
        true
    }
}

struct TunSink<'a>(&'a SyncDevice);

impl Sink for TunSink<'_> {
    #[inline]
    fn send(&mut self, pkt: &[u8]) -> bool {
        loop {
            match self.0.send(pkt) {
                Ok(_) => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Applies a config as a diff (on the packet thread, between batches).
pub fn apply_config(
    d: &mut Driver,
    cfg: &Config,
    profile: Option<Profile>,
    owned: &HashSet<ServiceKey>,
) -> Result<Vec<String>, String> {
    let now = d.now();
    let e = &mut d.engine;
    let services = e.services();
    let cmds = diff(
        &Running {
            services: &services,
            timeouts: e.timeouts(),
            sysctls: e.sysctls(),
            owned_elsewhere: owned,
        },
        cfg,
    );
    let mut lines = Vec::new();
    let p = profile.unwrap_or(cfg.engine.profile);
    if e.profile() != p {
        e.set_profile(p);
        lines.push(format!("profile {p}"));
    }
    if e.netfilter_conntrack() != cfg.engine.netfilter_conntrack {
        e.set_netfilter_conntrack(cfg.engine.netfilter_conntrack);
        lines.push(format!(
            "netfilter_conntrack {}",
            cfg.engine.netfilter_conntrack
        ));
    }
    for cmd in cmds {
        let line = describe(&cmd);
        e.apply(now, cmd)
            .map_err(|err| format!("{}: {line}: {err}", cfg.path.display()))?;
        lines.push(line);
    }
    Ok(lines)
}

/// Serves one control message; `false` means stop.
fn serve(d: &mut Driver, sink: Option<&mut SocketSink>, m: CtlMsg) -> bool {
    match m {
        CtlMsg::Request(req, reply) => {
            let _ = reply.send(d.request(req));
            true
        }
        CtlMsg::Reload {
            cfg,
            profile,
            owned,
            reply,
        } => {
            let _ = reply.send(apply_config(d, &cfg, profile, &owned));
            true
        }
        CtlMsg::SetRouted(r) => {
            d.set_routed(r);
            true
        }
        CtlMsg::SetNextHops(t) => {
            if let Some(s) = sink {
                s.set_next_hops(t);
            }
            true
        }
        CtlMsg::Handover { reply, verdict } => {
            let stopped_ns = crate::sys::monotonic_ns();
            let t = std::time::Instant::now();
            let entries = d.engine.conn_count();
            let now = d.now();
            let bytes = d.engine.export_state(now);
            let export_ns = t.elapsed().as_nanos() as u64;
            let h = Handed {
                bytes,
                stopped_ns,
                export_ns,
                entries,
            };
            if reply.send(h).is_err() {
                return true;
            }
            // Not reading the TUN until the verdict: packets wait in its queue.
            match verdict.recv() {
                Ok(true) => false,
                _ => {
                    tracing::warn!("takeover did not complete: forwarding again");
                    true
                }
            }
        }
        CtlMsg::Stop => false,
    }
}

/// How the packet thread sends, when not by writes to the TUN.
pub struct SocketOutput {
    /// `SO_MARK` of the raw sockets.
    pub mark: u32,
    /// The next-hop lookup, for frames (`output = "packet"`).
    pub next_hops: Option<crate::nexthop::Lookup>,
}

/// How the packet thread reads, writes and keeps its state.
pub struct LoopOptions {
    /// Packets read per batch.
    pub batch: usize,
    /// The TUN device's MTU.
    pub mtu: u32,
    /// Output sockets (`None`: write back to the TUN).
    pub output: Option<SocketOutput>,
    /// Crash-recovery snapshots ([`crate::recovery`]), if on.
    pub snapshots: Option<crate::recovery::Snapshotter>,
}

/// The packet thread: runs until [`CtlHandle::stop`] or until every handle is dropped.
pub fn run(
    dev: SyncDevice,
    mut d: Driver,
    rx: Receiver<CtlMsg>,
    wake: Arc<EventFd>,
    opts: LoopOptions,
) {
    let LoopOptions {
        batch,
        mtu,
        output,
        snapshots: mut snap,
    } = opts;
    if let Err(e) = dev.set_nonblocking(true) {
        tracing::error!("TUN: cannot set non-blocking mode: {e}");
        return;
    }
    let batch = batch.max(1);
    let slot = slot_size(mtu);
    let mut arena = vec![0u8; slot * batch];
    let mut lens = vec![0usize; batch];
    let tun_fd = dev.as_raw_fd();
    let mut logged_read_error = false;
    let mut busy = 0u32;
    let mut raw = if let Some(o) = output {
        match SocketSink::new(batch * 2, slot, o.mark, o.next_hops) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("output sockets: {e}; writing to the TUN instead");
                None
            }
        }
    } else {
        None
    };
    loop {
        let mut n = 0;
        while n < batch {
            match dev.recv(&mut arena[n * slot..(n + 1) * slot]) {
                Ok(len) => {
                    lens[n] = len;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !logged_read_error {
                        tracing::error!("TUN read: {e}");
                        logged_read_error = true;
                    }
                    break;
                }
            }
        }
        let now = d.now();
        let mut tun_sink = TunSink(&dev);
        let sink: &mut dyn Sink = match raw.as_mut() {
            Some(r) => r,
            None => &mut tun_sink,
        };
        if n > 0 {
            d.counters.rx_batches += 1;
            for (buf, &len) in arena.chunks_exact_mut(slot).zip(&lens).take(n) {
                d.packet(now, &mut buf[..len], sink);
            }
        }
        // Under load every handle_packet already runs due timers; read the deadline only
        // when the queue ran dry (or every 64 full batches).
        busy = if n == batch { busy + 1 } else { 0 };
        if busy % 64 == 0 {
            d.timers(now, sink);
        }
        if let Some(r) = raw.as_mut() {
            r.flush();
            r.check_next_hops();
            if r.failed > 0 {
                d.counters.dropped[crate::driver::DpDrop::WriteFailed as usize] += r.failed;
                r.failed = 0;
            }
            d.counters.frames_sent += std::mem::take(&mut r.frames);
        }
        loop {
            match rx.try_recv() {
                Ok(m) => {
                    if !serve(&mut d, raw.as_mut(), m) {
                        return;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if let Some(sn) = snap.as_mut() {
            sn.poll(&mut d);
        }
        if n == 0 {
            let mut due = d.engine.poll_timeout().nanos_since(d.now());
            if let Some(sn) = &snap {
                due = due.min(sn.due_in());
            }
            let ms = (due / 1_000_000 + 1).min(1000) as i32;
            let r = poll2(tun_fd, wake.as_raw_fd(), ms);
            if r.b {
                wake.drain();
            }
        }
    }
}
