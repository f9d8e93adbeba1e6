//! `rvs lab decap`: a real server's IP-in-IP decapsulation in user space, for kernels built
//! without the `ipip` and `ip6_tunnel` drivers (no `tunl0`/`ip6tnl0`).
//!
//! Raw sockets receive every IPIP (protocol 4) and IPv6-in-IP (41) packet addressed to the
//! host, over IPv4 and IPv6; the inner packet is written to a TUN device that carries the
//! VIPs, so the local stack delivers it as if it had arrived directly, and replies leave by
//! the normal route, straight to the client. This is exactly what the kernel's tunnel
//! devices do on a real server of the tunnel method.

use std::net::IpAddr;
use std::os::fd::AsRawFd;

use tun_rs::DeviceBuilder;

/// Options of `rvs lab decap`.
#[derive(clap::Args, Debug, Clone)]
pub struct DecapOptions {
    /// TUN device to create.
    #[arg(long, default_value = "rvsdecap")]
    pub tun: String,
    /// Addresses to put on the device (the VIPs).
    #[arg(long = "addr")]
    pub addrs: Vec<IpAddr>,
}

/// Runs the decapsulator (until killed); returns the exit status on setup errors.
pub fn run(o: &DecapOptions) -> i32 {
    let mut b = DeviceBuilder::new().name(&o.tun).packet_information(false);
    for a in &o.addrs {
        match a {
            IpAddr::V4(v) => b = b.ipv4(*v, 32, None),
            IpAddr::V6(v) => b = b.ipv6(*v, 128),
        }
    }
    let dev = match b.build_sync() {
        Ok(d) => std::sync::Arc::new(d),
        Err(e) => {
            eprintln!("rvs lab decap: TUN {}: {e}", o.tun);
            return 1;
        }
    };
    let mut threads = Vec::new();
    for (family, proto) in [
        (libc::AF_INET, 4),
        (libc::AF_INET, 41),
        (libc::AF_INET6, 41),
        (libc::AF_INET6, 4),
    ] {
        let s = match crate::sys::raw_socket(family, proto) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rvs lab decap: raw socket: {e}");
                return 1;
            }
        };
        let dev = dev.clone();
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok(n) = crate::sys::recv(s.as_raw_fd(), &mut buf) else {
                    continue;
                };
                // IPv4 raw sockets see the outer header; IPv6 ones do not.
                let inner = if family == libc::AF_INET {
                    let ihl = (buf.first().copied().unwrap_or(0) & 0x0f) as usize * 4;
                    buf.get(ihl..n)
                } else {
                    buf.get(..n)
                };
                if let Some(p) = inner
                    && !p.is_empty()
                {
                    let _ = dev.send(p);
                }
            }
        }));
    }
    println!("decapsulating into {}", o.tun);
    for t in threads {
        let _ = t.join();
    }
    0
}
