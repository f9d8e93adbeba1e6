//! Malformed packets for robustness tests: IP headers the kernel accepts and forwards
//! (addressed to a VIP, so they are routed into the daemon's TUN) around truncated,
//! inconsistent or random transport headers.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Sends up to `count` malformed packets from `src` to `dst` (within `limit`); returns how
/// many were sent. Run it inside the sender's namespace ([`super::in_netns`]).
pub fn send_junk(
    src: IpAddr,
    dst: IpAddr,
    count: u64,
    seed: u64,
    limit: Duration,
) -> io::Result<u64> {
    let family = if dst.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let s = crate::sys::raw_socket(family, libc::IPPROTO_RAW)?;
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = Instant::now();
    let mut sent = 0;
    let mut pkt = [0u8; 120];
    for _ in 0..count {
        if start.elapsed() > limit {
            break;
        }
        let proto = [6u8, 17, 1, 58, 132][(rnd() % 5) as usize];
        let l4 = (rnd() % 48) as usize;
        let hl = if dst.is_ipv4() { 20 } else { 40 };
        let len = hl + l4;
        for b in pkt[hl..len].iter_mut() {
            *b = rnd() as u8;
        }
        match (src, dst) {
            (IpAddr::V4(s4), IpAddr::V4(d4)) => {
                pkt[0] = 0x45;
                pkt[1] = 0;
                pkt[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                pkt[4..8].copy_from_slice(&[0, 0, 0x40, 0]);
                pkt[8] = 64;
                pkt[9] = if proto == 58 { 1 } else { proto };
                pkt[10..12].copy_from_slice(&[0, 0]);
                pkt[12..16].copy_from_slice(&s4.octets());
                pkt[16..20].copy_from_slice(&d4.octets());
            }
            (IpAddr::V6(s6), IpAddr::V6(d6)) => {
                pkt[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
                pkt[4..6].copy_from_slice(&(l4 as u16).to_be_bytes());
                pkt[6] = if proto == 1 { 58 } else { proto };
                pkt[7] = 64;
                pkt[8..24].copy_from_slice(&s6.octets());
                pkt[24..40].copy_from_slice(&d6.octets());
            }
            _ => return Err(io::Error::other("address families differ")),
        }
        if crate::sys::raw_send(s.as_raw_fd(), &pkt[..len], dst).is_ok() {
            sent += 1;
        }
    }
    Ok(sent)
}
