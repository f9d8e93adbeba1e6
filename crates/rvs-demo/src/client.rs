//! `rvs lab client`: the demo's load generator, one process in the client namespace.
//!
//! Several workers, each making sequential short TCP connections to one address: connect
//! (non-blocking, with a timeout; the kernel picks the source port), send `whoami\n`, read the
//! server's one-line answer (`rs1 10.1.0.2` from `rvs lab serve`: the first word names the
//! real server that answered), and close first, so the client's socket goes to TIME_WAIT and
//! the port is reused later (quickly with `tcp_tw_reuse=1` and a narrow
//! `ip_local_port_range`, as in the incident).
//!
//! A worker starts a connection every `--interval-ms` (start to start; at once when the
//! previous one took longer). When the kernel has no free port (`EADDRNOTAVAIL`, every port
//! of the range busy in TIME_WAIT younger than ~1 s) the worker retries after
//! `--busy-retry-ms`; that is counted in the end line, not as an attempt.
//!
//! Output: one JSON line per attempt ([`Line::Attempt`]) on standard output, written as the
//! attempt ends, and a last [`Line::End`]. Times are wall-clock microseconds since the Unix
//! epoch, so the demo can place attempts against the control-plane events it made.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::{Deserialize, Serialize};

/// Options of `rvs lab client`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientOptions {
    /// Address to connect to (the VIP), e.g. 10.0.0.100:80.
    #[arg(long)]
    pub target: SocketAddr,
    /// Concurrent workers, each making sequential connections.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Milliseconds between the starts of one worker's connections.
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// Connect timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub connect_timeout_ms: u64,
    /// Timeout for the server's answer once connected, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub read_timeout_ms: u64,
    /// Milliseconds to wait before retrying when no local port is free (EADDRNOTAVAIL).
    #[arg(long, default_value_t = 20)]
    pub busy_retry_ms: u64,
    /// Run for this many milliseconds (no new connection starts after that).
    #[arg(long)]
    pub duration_ms: u64,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Connected and the server answered its name.
    Ok,
    /// The connect was refused (TCP RST, or ICMP port unreachable).
    Refused,
    /// The connect timed out (no answer to the SYN and its retransmissions).
    Timeout,
    /// ICMP host or network unreachable (EHOSTUNREACH, ENETUNREACH).
    Unreachable,
    /// Connected, then reset before the answer.
    Reset,
    /// Anything else (EOF before the answer, answer timeout, other errors).
    Other,
}

/// One connection attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Worker number.
    pub w: u16,
    /// Start (just before `connect`), microseconds since the Unix epoch.
    pub t_us: u64,
    /// Local port the kernel chose (0 when connect failed before choosing one).
    pub port: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// Microseconds from the start to the end of the connect (success or failure).
    pub connect_us: u64,
    /// The first word of the server's answer (its name), for `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The error, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A line of the output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Line {
    /// One attempt.
    Attempt(Attempt),
    /// The last line: totals.
    End {
        /// Attempts made.
        attempts: u64,
        /// Times no local port was free (each followed by a retry).
        port_busy: u64,
    },
}

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

struct Shared {
    out: Mutex<io::Stdout>,
    attempts: AtomicU64,
    port_busy: AtomicU64,
}

impl Shared {
    fn emit(&self, line: &Line) {
        if let Ok(mut s) = serde_json::to_string(line) {
            s.push('\n');
            let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }
}

/// Runs the client; returns the exit status.
pub fn run(o: &ClientOptions) -> i32 {
    if o.workers == 0 || o.workers > 256 {
        eprintln!("rvs lab client: --workers must be 1..=256");
        return 2;
    }
    let shared = Shared {
        out: Mutex::new(io::stdout()),
        attempts: AtomicU64::new(0),
        port_busy: AtomicU64::new(0),
    };
    let start = Instant::now();
    let end = start + Duration::from_millis(o.duration_ms);
    let failed = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..o.workers)
            .map(|w| {
                let shared = &shared;
                let stagger = Duration::from_millis(o.interval_ms * w as u64 / o.workers as u64);
                sc.spawn(move || worker(o, w as u16, start + stagger, end, shared))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().and_then(|r| r.err()))
            .map(|e| eprintln!("rvs lab client: {e}"))
            .count()
    });
    shared.emit(&Line::End {
        attempts: shared.attempts.load(Ordering::Relaxed),
        port_busy: shared.port_busy.load(Ordering::Relaxed),
    });
    if failed > 0 { 1 } else { 0 }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn worker(o: &ClientOptions, w: u16, first: Instant, end: Instant, sh: &Shared) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4);
    let interval = Duration::from_millis(o.interval_ms);
    let mut next = first;
    // Bounded: one attempt or one busy retry per turn, each turn takes at least 1 ms.
    loop {
        sleep_until(next);
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        match attempt(o, w, &mut poll, &mut events)? {
            Some(a) => {
                sh.attempts.fetch_add(1, Ordering::Relaxed);
                sh.emit(&Line::Attempt(a));
                next = (next + interval).max(now);
            }
            None => {
                sh.port_busy.fetch_add(1, Ordering::Relaxed);
                next = Instant::now() + Duration::from_millis(o.busy_retry_ms.max(1));
            }
        }
    }
}

/// The outcome of a connect error.
pub fn classify(e: &io::Error) -> Outcome {
    match e.kind() {
        ErrorKind::ConnectionRefused => Outcome::Refused,
        ErrorKind::TimedOut => Outcome::Timeout,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Outcome::Unreachable,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Outcome::Reset,
        _ => Outcome::Other,
    }
}

/// One attempt; `None` when no local port was free.
fn attempt(
    o: &ClientOptions,
    w: u16,
    poll: &mut Poll,
    events: &mut Events,
) -> io::Result<Option<Attempt>> {
    const T: Token = Token(0);
    let t_us = now_us();
    let start = Instant::now();
    let fail = |port: u16, outcome: Outcome, e: String| Attempt {
        w,
        t_us,
        port,
        outcome,
        connect_us: start.elapsed().as_micros() as u64,
        server: None,
        error: Some(e),
    };
    let mut s = match TcpStream::connect(o.target) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => return Ok(None),
        Err(e) => return Ok(Some(fail(0, classify(&e), e.to_string()))),
    };
    // The port is chosen by connect() itself (inet_hash_connect), so it is known already.
    let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
    poll.registry().register(&mut s, T, Interest::WRITABLE)?;
    let deadline = start + Duration::from_millis(o.connect_timeout_ms);
    let connected = loop {
        let now = Instant::now();
        if now >= deadline {
            break Err((Outcome::Timeout, "connect timed out".to_string()));
        }
        poll.poll(events, Some(deadline - now))?;
        if events.is_empty() {
            continue;
        }
        match s.take_error() {
            Ok(Some(e)) | Err(e) => break Err((classify(&e), e.to_string())),
            Ok(None) => {}
        }
        match s.peer_addr() {
            Ok(_) => break Ok(()),
            Err(e) if e.kind() == ErrorKind::NotConnected => continue,
            Err(e) => break Err((classify(&e), e.to_string())),
        }
    };
    let connect_us = start.elapsed().as_micros() as u64;
    if let Err((outcome, e)) = connected {
        let _ = poll.registry().deregister(&mut s);
        return Ok(Some(Attempt {
            connect_us,
            ..fail(port, outcome, e)
        }));
    }
    let answer = exchange(o, &mut s, poll, events);
    let _ = poll.registry().deregister(&mut s);
    // Dropping the socket closes it: the client sends the first FIN (TIME_WAIT here).
    drop(s);
    Ok(Some(match answer {
        Ok(server) => Attempt {
            w,
            t_us,
            port,
            outcome: Outcome::Ok,
            connect_us,
            server: Some(server),
            error: None,
        },
        Err((outcome, e)) => Attempt {
            connect_us,
            ..fail(port, outcome, e)
        },
    }))
}

/// Sends `whoami` and reads one line; returns its first word.
fn exchange(
    o: &ClientOptions,
    s: &mut TcpStream,
    poll: &mut Poll,
    events: &mut Events,
) -> Result<String, (Outcome, String)> {
    let io_err = |e: io::Error| {
        let k = match classify(&e) {
            Outcome::Reset => Outcome::Reset,
            _ => Outcome::Other,
        };
        (k, e.to_string())
    };
    poll.registry()
        .reregister(s, Token(0), Interest::READABLE)
        .map_err(io_err)?;
    // A fresh socket's send buffer takes 7 bytes at once.
    match s.write(b"whoami\n") {
        Ok(7) => {}
        Ok(n) => return Err((Outcome::Other, format!("short write ({n} bytes)"))),
        Err(e) => return Err(io_err(e)),
    }
    let deadline = Instant::now() + Duration::from_millis(o.read_timeout_ms);
    let mut got = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Err((Outcome::Other, "closed before answering".into())),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.contains(&b'\n') || got.len() > 4096 {
                    let line = String::from_utf8_lossy(&got);
                    let name = line.split_whitespace().next().unwrap_or("").to_string();
                    return Ok(name);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let now = Instant::now();
                if now >= deadline {
                    return Err((Outcome::Other, "no answer in time".into()));
                }
                poll.poll(events, Some(deadline - now)).map_err(io_err)?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let a = Line::Attempt(Attempt {
            w: 1,
            t_us: 5,
            port: 40001,
            outcome: Outcome::Refused,
            connect_us: 300,
            server: None,
            error: Some("Connection refused".into()),
        });
        let s = serde_json::to_string(&a).unwrap();
        assert!(s.contains("\"type\":\"attempt\""), "{s}");
        assert!(s.contains("\"outcome\":\"refused\""), "{s}");
        assert_eq!(serde_json::from_str::<Line>(&s).unwrap(), a);
        let e = Line::End {
            attempts: 3,
            port_busy: 1,
        };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Line>(&s).unwrap(), e);
    }

    #[test]
    fn errors_are_classified_by_kind() {
        let k = |k: ErrorKind| classify(&io::Error::from(k));
        assert_eq!(k(ErrorKind::ConnectionRefused), Outcome::Refused);
        assert_eq!(k(ErrorKind::TimedOut), Outcome::Timeout);
        assert_eq!(k(ErrorKind::HostUnreachable), Outcome::Unreachable);
        assert_eq!(k(ErrorKind::NetworkUnreachable), Outcome::Unreachable);
        assert_eq!(k(ErrorKind::ConnectionReset), Outcome::Reset);
        assert_eq!(k(ErrorKind::PermissionDenied), Outcome::Other);
    }

    #[test]
    fn a_local_server_is_answered_and_a_closed_port_refused() {
        use std::io::{BufRead, BufReader};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().take(1) {
                let c = c.unwrap();
                let mut w = c.try_clone().unwrap();
                let mut line = String::new();
                BufReader::new(c).read_line(&mut line).unwrap();
                w.write_all(b"rs9 127.0.0.1\n").unwrap();
            }
        });
        let o = ClientOptions {
            target: addr,
            workers: 1,
            interval_ms: 10,
            connect_timeout_ms: 2000,
            read_timeout_ms: 2000,
            busy_retry_ms: 20,
            duration_ms: 0,
        };
        let mut poll = Poll::new().unwrap();
        let mut ev = Events::with_capacity(4);
        let a = attempt(&o, 0, &mut poll, &mut ev).unwrap().unwrap();
        assert_eq!(a.outcome, Outcome::Ok, "{a:?}");
        assert_eq!(a.server.as_deref(), Some("rs9"));
        assert_ne!(a.port, 0);
        // A port nobody listens on (bound, then released).
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let o2 = ClientOptions {
            target: closed,
            ..o
        };
        let b = attempt(&o2, 0, &mut poll, &mut ev).unwrap().unwrap();
        assert_eq!(b.outcome, Outcome::Refused, "{b:?}");
    }
}
