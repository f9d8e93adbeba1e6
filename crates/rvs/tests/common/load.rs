//! The load of the hand-over and rollout tests, through a VIP: long-lived TCP flows (one
//! exchange every 100 ms each), short connections from a small pool of reused client ports,
//! and UDP flows; each failure and each connect of 900 ms or more is counted.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Env, Topology, ask, sa, udp_ask};

/// Long-lived TCP flows of a [`Load`].
pub const LONG_FLOWS: usize = 200;
/// UDP flows of a [`Load`].
pub const UDP_FLOWS: usize = 20;

/// Stops the load threads however the test ends.
pub struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Tally {
    pub short_ok: AtomicU64,
    pub short_failed: AtomicU64,
    pub short_slow: AtomicU64,
    /// Short connections that failed after [`Load::settle`].
    pub short_failed_settled: AtomicU64,
    /// Source ports the client's own kernel would not bind (not the balancer's doing).
    pub short_bind_busy: AtomicU64,
    pub long_broken: AtomicU64,
    pub long_msgs: AtomicU64,
    pub udp_lost: AtomicU64,
    pub udp_ok: AtomicU64,
    /// UDP requests unanswered after [`Load::settle`].
    pub udp_lost_settled: AtomicU64,
    pub settled: AtomicBool,
}

/// Short connections per thread, each from its own pool of client ports, reused in turn.
pub const SHORT_THREADS: usize = 4;
pub const PORTS_PER_THREAD: u16 = 64;

/// The load through the VIP: long-lived TCP flows (one exchange every 100 ms
/// each), short connections from a small pool of reused client ports (each closed with a
/// reset, so the port is free at once and its next SYN meets the balancer's closed entry),
/// and UDP flows (one request every 100 ms each).
pub struct Load {
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    _guard: StopOnDrop,
    threads: Vec<std::thread::JoinHandle<Vec<u32>>>,
    started: Instant,
}

pub struct Report {
    pub ok: u64,
    pub failed: u64,
    pub slow: u64,
    pub failed_settled: u64,
    pub bind_busy: u64,
    pub per_s: f64,
    pub broken: u64,
    pub msgs: u64,
    pub udp_ok: u64,
    pub udp_lost: u64,
    pub udp_lost_settled: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Load {
    /// The load against the VIP's port 80 (the services of [`super::service`]).
    pub fn start(env: &Env) -> Load {
        Load::start_to(env, sa(Topology::vip(false), 80))
    }

    /// The load against `to` (TCP and UDP).
    pub fn start_to(env: &Env, to: SocketAddr) -> Load {
        let client = env.t.client.clone();
        let mut flows: Vec<TcpStream> = Vec::new();
        for _ in 0..LONG_FLOWS {
            let mut s = env.connect(to).expect("long-lived flow");
            ask(&mut s, "hello").expect("first answer");
            flows.push(s);
        }
        let udp: Vec<UdpSocket> = (0..UDP_FLOWS).map(|_| env.udp(to)).collect();
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
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
        // Short connections, in the client's namespace, as fast as they go.
        for k in 0..SHORT_THREADS {
            let (t, st, ns) = (tally.clone(), stop.clone(), client.clone());
            let base = 20_000 + k as u16 * PORTS_PER_THREAD;
            threads.push(std::thread::spawn(move || {
                let _ = rvs_dataplane::lab::in_netns(&ns, move || {
                    let mut i = 0u16;
                    while !st.load(Ordering::Relaxed) {
                        let port = base + i % PORTS_PER_THREAD;
                        i = i.wrapping_add(1);
                        short_connection(&t, port, to);
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
                            Err(_) => {
                                if t.settled.load(Ordering::Relaxed) {
                                    t.udp_lost_settled.fetch_add(1, Ordering::Relaxed);
                                }
                                t.udp_lost.fetch_add(1, Ordering::Relaxed)
                            }
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
        Load {
            tally,
            _guard: StopOnDrop(stop.clone()),
            stop,
            threads,
            started: Instant::now(),
        }
    }

    /// From now on, a failure is counted as one that did not meet a gap.
    pub fn settle(&self) {
        self.tally.settled.store(true, Ordering::Relaxed);
    }

    pub fn finish(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let mut lat: Vec<u32> = Vec::new();
        for t in self.threads {
            lat.extend(t.join().unwrap_or_default());
        }
        lat.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        };
        let t = &self.tally;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ok = ld(&t.short_ok);
        Report {
            ok,
            failed: ld(&t.short_failed),
            slow: ld(&t.short_slow),
            failed_settled: ld(&t.short_failed_settled),
            bind_busy: ld(&t.short_bind_busy),
            per_s: ok as f64 / secs,
            broken: ld(&t.long_broken),
            msgs: ld(&t.long_msgs),
            udp_ok: ld(&t.udp_ok),
            udp_lost: ld(&t.udp_lost),
            udp_lost_settled: ld(&t.udp_lost_settled),
            p50: pct(0.5),
            p99: pct(0.99),
            max: pct(1.0),
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "short connections {} ok ({:.0}/s), {} failed ({} after settling), {} >= 900 ms, \
             {} client ports busy; long flows {} broken of {LONG_FLOWS} ({} exchanges, latency \
             p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms); UDP {} answered, {} lost ({} after \
             settling)",
            self.ok,
            self.per_s,
            self.failed,
            self.failed_settled,
            self.slow,
            self.bind_busy,
            self.broken,
            self.msgs,
            self.p50,
            self.p99,
            self.max,
            self.udp_ok,
            self.udp_lost,
            self.udp_lost_settled
        )
    }
}

/// One short connection from client port `port`: connect, one exchange, close with a reset.
pub fn short_connection(t: &Tally, port: u16, to: std::net::SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let fail = || {
        t.short_failed.fetch_add(1, Ordering::Relaxed);
        if t.settled.load(Ordering::Relaxed) {
            t.short_failed_settled.fetch_add(1, Ordering::Relaxed);
        }
    };
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let _ = s.set_reuse_address(true);
    let from = sa(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port);
    if s.bind(&from.into()).is_err() {
        t.short_bind_busy.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let t0 = Instant::now();
    if s.connect_timeout(&to.into(), Duration::from_secs(3))
        .is_err()
    {
        fail();
        return;
    }
    if t0.elapsed() >= Duration::from_millis(900) {
        t.short_slow.fetch_add(1, Ordering::Relaxed);
    }
    let _ = s.set_linger(Some(Duration::ZERO));
    let mut c: TcpStream = s.into();
    if ask(&mut c, "short").is_ok() {
        t.short_ok.fetch_add(1, Ordering::Relaxed);
    } else {
        fail();
    }
}
