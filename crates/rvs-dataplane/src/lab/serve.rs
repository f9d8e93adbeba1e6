//! `rvs lab serve`: a small real server for tests and the demo.
//!
//! TCP (always, on `[::]:PORT`, which also takes IPv4): a request that starts like HTTP
//! (`GET`, `HEAD`, `POST`) is answered `HTTP/1.0 200 OK` with the body `NAME\n` and the
//! connection closed (with `--http-keepalive`, `HTTP/1.1` answers on the same connection until
//! the client closes); anything else is a line protocol: each line `L` is answered
//! `NAME L\n` (and `whoami` with `NAME PEER-ADDRESS`), until the client closes (long-lived flows for drain and reset tests).
//! UDP (with `--udp`): each datagram is answered `NAME\n`. Bind the UDP socket to the
//! addresses clients use (`--addr`, repeatable) when replies must come from one of them
//! (the tunnel method: the real server answers from the VIP).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Options of `rvs lab serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeOptions {
    /// The name answered to every request.
    #[arg(long)]
    pub name: String,
    /// Port (TCP, and UDP with --udp).
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    /// Also serve UDP.
    #[arg(long)]
    pub udp: bool,
    /// Accepted for symmetry: the TCP socket is dual-stack.
    #[arg(long)]
    pub v6: bool,
    /// Bind UDP to these addresses instead of the wildcard (replies then come from the
    /// address the client used).
    #[arg(long = "addr")]
    pub addrs: Vec<IpAddr>,
    /// Answer HTTP/1.1 keep-alive requests on one connection (for wrk).
    #[arg(long)]
    pub http_keepalive: bool,
    /// Exit after this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub max_seconds: u64,
}

/// Runs the server; returns the exit status.
pub fn run(o: &ServeOptions) -> i32 {
    let tcp = match TcpListener::bind(SocketAddr::from(([0u16; 8], o.port)))
        .or_else(|_| TcpListener::bind(SocketAddr::from(([0u8; 4], o.port))))
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rvs lab serve: TCP port {}: {e}", o.port);
            return 1;
        }
    };
    if o.udp {
        let mut socks = Vec::new();
        if o.addrs.is_empty() {
            match UdpSocket::bind(SocketAddr::from(([0u16; 8], o.port)))
                .or_else(|_| UdpSocket::bind(SocketAddr::from(([0u8; 4], o.port))))
            {
                Ok(s) => socks.push(s),
                Err(e) => {
                    eprintln!("rvs lab serve: UDP port {}: {e}", o.port);
                    return 1;
                }
            }
        }
        for a in &o.addrs {
            match UdpSocket::bind(SocketAddr::new(*a, o.port)) {
                Ok(s) => socks.push(s),
                Err(e) => {
                    eprintln!("rvs lab serve: UDP {a}:{}: {e}", o.port);
                    return 1;
                }
            }
        }
        for s in socks {
            let name = o.name.clone();
            std::thread::spawn(move || udp_loop(s, &name));
        }
    }
    if o.max_seconds > 0 {
        let limit = Duration::from_secs(o.max_seconds);
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            std::process::exit(0);
        });
    }
    println!("serving {} on port {}", o.name, o.port);
    let _ = io::stdout().flush();
    for c in tcp.incoming() {
        let Ok(c) = c else { continue };
        let name = o.name.clone();
        let ka = o.http_keepalive;
        std::thread::spawn(move || {
            let _ = tcp_conn(c, &name, ka);
        });
    }
    0
}

fn udp_loop(s: UdpSocket, name: &str) {
    let reply = format!("{name}\n");
    let mut buf = [0u8; 2048];
    loop {
        if let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(reply.as_bytes(), from);
        }
    }
}

fn tcp_conn(c: TcpStream, name: &str, keepalive: bool) -> io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(120)))?;
    c.set_nodelay(true)?;
    let mut w = c.try_clone()?;
    let mut r = BufReader::new(c);
    let first = r.fill_buf()?;
    let http = [&b"GET "[..], b"HEAD", b"POST"]
        .iter()
        .any(|m| first.starts_with(m));
    if http {
        let body = format!("{name}\n");
        let started = Instant::now();
        loop {
            // Read the request head (bounded).
            let mut head = Vec::new();
            loop {
                let mut line = Vec::new();
                if r.by_ref().take(8192).read_until(b'\n', &mut line)? == 0 {
                    return Ok(());
                }
                head.extend_from_slice(&line);
                if line == b"\r\n" || line == b"\n" || head.len() > 65536 {
                    break;
                }
            }
            if keepalive {
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                    body.len()
                );
                w.write_all(resp.as_bytes())?;
                if started.elapsed() > Duration::from_secs(3600) {
                    return Ok(());
                }
            } else {
                let resp = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                w.write_all(resp.as_bytes())?;
                return Ok(());
            }
        }
    }
    let peer = w
        .peer_addr()
        .map(|a| a.ip().to_canonical().to_string())
        .unwrap_or_default();
    let mut line = String::new();
    loop {
        line.clear();
        if r.by_ref().take(65536).read_line(&mut line)? == 0 {
            return Ok(());
        }
        let l = line.trim_end();
        let answer = if l == "whoami" {
            format!("{name} {peer}\n")
        } else {
            format!("{name} {l}\n")
        };
        w.write_all(answer.as_bytes())?;
    }
}
