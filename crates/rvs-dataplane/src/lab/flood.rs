//! `rvs lab udpflood`: small UDP datagrams as fast as the kernel takes them, over several
//! flows (one connected socket each, so each flow has its own source port), with
//! sendmmsg(2) batches of 64. Bounded by `--seconds`.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Options of `rvs lab udpflood`.
#[derive(clap::Args, Debug, Clone)]
pub struct FloodOptions {
    /// Destination.
    #[arg(long)]
    pub dst: SocketAddr,
    /// Number of flows (source ports).
    #[arg(long, default_value_t = 64)]
    pub flows: usize,
    /// UDP payload bytes (18 makes a 46-byte IPv4 packet, a 60-byte frame).
    #[arg(long, default_value_t = 18)]
    pub size: usize,
    /// How long to send.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
}

/// Runs the flood; prints `sent N packets in S s (P pps), E errors`; returns the status.
pub fn run(o: &FloodOptions) -> i32 {
    let bind: SocketAddr = if o.dst.is_ipv4() {
        SocketAddr::from(([0u8; 4], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let mut socks = Vec::new();
    for _ in 0..o.flows.clamp(1, 4096) {
        let s = match UdpSocket::bind(bind).and_then(|s| s.connect(o.dst).map(|_| s)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rvs lab udpflood: {e}");
                return 1;
            }
        };
        let _ = s.set_nonblocking(true);
        socks.push(s);
    }
    let payload = vec![0x5au8; o.size.min(1400)];
    let limit = Duration::from_secs_f64(o.seconds.clamp(0.1, 600.0));
    let start = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    'outer: loop {
        for s in &socks {
            match crate::sys::sendmmsg_copies(s.as_raw_fd(), &payload, 64) {
                Ok(n) => sent += n as u64,
                Err(_) => errors += 1,
            }
        }
        if start.elapsed() >= limit {
            break 'outer;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} packets in {secs:.2} s ({:.0} pps), {errors} errors",
        sent as f64 / secs
    );
    0
}
