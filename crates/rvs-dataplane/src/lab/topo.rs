//! The standard topology: client — balancer — real servers.
//!
//! ```text
//!  client            lb (rvs daemon, TUN rvs0)                    rsN (N = 1..)
//!  c0 10.1.0.2/24 ── l0 10.1.0.1/24                    lN 10.2.N.1/24 ── e0 10.2.N.2/24
//!     fd01::2/64        fd01::1/64                        fd02:N::1/64      fd02:N::2/64
//!  default via lb                                                        default via lb
//!                                                                        tunl0, ip6tnl0 up with
//!                                                                        the VIPs (tunnel method)
//! ```
//! VIPs: 10.0.0.100 and fd00::100 (routed into the TUN by the daemon).

use std::io;
use std::net::IpAddr;

use super::Lab;

/// IPv4 VIP.
pub const VIP4: &str = "10.0.0.100";
/// IPv6 VIP.
pub const VIP6: &str = "fd00::100";
/// Client addresses.
pub const CLIENT4: &str = "10.1.0.2";
/// Client IPv6 address.
pub const CLIENT6: &str = "fd01::2";

/// IPv4 address of real server `n` (from 1).
pub fn rs4(n: usize) -> String {
    format!("10.2.{n}.2")
}
/// IPv6 address of real server `n` (from 1).
pub fn rs6(n: usize) -> String {
    format!("fd02:{n}::2")
}

/// The namespaces of a standard topology.
pub struct Topology {
    /// The lab (drop it to remove everything).
    pub lab: Lab,
    /// Client namespace.
    pub client: String,
    /// Balancer namespace.
    pub lb: String,
    /// Real-server namespaces, `rs[0]` is rs1.
    pub rs: Vec<String>,
}

impl Topology {
    /// Builds client, lb and `n` real servers.
    pub fn new(tag: &str, n: usize) -> io::Result<Topology> {
        let mut lab = Lab::new(tag)?;
        let client = lab.netns("c")?;
        let lb = lab.netns("lb")?;
        let mut rs = Vec::new();
        for i in 1..=n {
            rs.push(lab.netns(&format!("rs{i}"))?);
        }
        let t = Topology {
            lab,
            client,
            lb,
            rs,
        };
        t.wire()?;
        Ok(t)
    }

    fn wire(&self) -> io::Result<()> {
        let (lab, c, lb) = (&self.lab, &self.client, &self.lb);
        lab.ip(&[
            "-n", c, "link", "add", "c0", "type", "veth", "peer", "name", "l0", "netns", lb,
        ])?;
        lab.ip(&["-n", c, "addr", "add", "10.1.0.2/24", "dev", "c0"])?;
        lab.ip(&["-n", c, "addr", "add", "fd01::2/64", "dev", "c0", "nodad"])?;
        lab.ip(&["-n", c, "link", "set", "c0", "up"])?;
        lab.ip(&["-n", c, "route", "add", "default", "via", "10.1.0.1"])?;
        lab.ip(&["-n", c, "-6", "route", "add", "default", "via", "fd01::1"])?;
        lab.ip(&["-n", lb, "addr", "add", "10.1.0.1/24", "dev", "l0"])?;
        lab.ip(&["-n", lb, "addr", "add", "fd01::1/64", "dev", "l0", "nodad"])?;
        lab.ip(&["-n", lb, "link", "set", "l0", "up"])?;
        lab.sysctl(lb, "net.ipv4.ip_forward", "1")?;
        lab.sysctl(lb, "net.ipv6.conf.all.forwarding", "1")?;
        for (i, ns) in self.rs.iter().enumerate() {
            let n = i + 1;
            let l = format!("l{n}");
            lab.ip(&[
                "-n", lb, "link", "add", &l, "type", "veth", "peer", "name", "e0", "netns", ns,
            ])?;
            lab.ip(&[
                "-n",
                lb,
                "addr",
                "add",
                &format!("10.2.{n}.1/24"),
                "dev",
                &l,
            ])?;
            lab.ip(&[
                "-n",
                lb,
                "addr",
                "add",
                &format!("fd02:{n}::1/64"),
                "dev",
                &l,
                "nodad",
            ])?;
            lab.ip(&["-n", lb, "link", "set", &l, "up"])?;
            lab.ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", rs4(n)),
                "dev",
                "e0",
            ])?;
            lab.ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/64", rs6(n)),
                "dev",
                "e0",
                "nodad",
            ])?;
            lab.ip(&["-n", ns, "link", "set", "e0", "up"])?;
            lab.ip(&[
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &format!("10.2.{n}.1"),
            ])?;
            lab.ip(&[
                "-n",
                ns,
                "-6",
                "route",
                "add",
                "default",
                "via",
                &format!("fd02:{n}::1"),
            ])?;
            // The tunnel method: the fallback ipip / ip6tnl devices decapsulate, and the VIPs
            // are local so the inner packets are delivered; replies go straight to the client.
            // Kernels without those drivers get `rvs lab decap` (see `start_decap`).
            if lab.ip(&["-n", ns, "link", "set", "tunl0", "up"]).is_ok() {
                lab.ip(&[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{VIP4}/32"),
                    "dev",
                    "tunl0",
                ])?;
                lab.ip(&["-n", ns, "link", "set", "ip6tnl0", "up"])?;
                lab.ip(&[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{VIP6}/128"),
                    "dev",
                    "ip6tnl0",
                    "nodad",
                ])?;
                lab.sysctl(ns, "net.ipv4.conf.tunl0.rp_filter", "0")?;
            }
            for k in ["all", "default", "e0"] {
                lab.sysctl(ns, &format!("net.ipv4.conf.{k}.rp_filter"), "0")?;
            }
        }
        self.wait_links_up()
    }

    /// Waits (at most 5 s) until every veth end of the lab is operationally up. The kernel
    /// attaches a device's real queueing discipline in its link-watch work, which may run up
    /// to a second (more on a loaded machine) after `ip link set up`; until then the device
    /// has the `noop` qdisc and drops what it is given, so a lab's first SYN or ARP request
    /// could be lost and a connect take a 1 s retransmission.
    fn wait_links_up(&self) -> io::Result<()> {
        let mut ends = vec![(self.client.clone(), "c0".to_string())];
        ends.push((self.lb.clone(), "l0".to_string()));
        for (i, ns) in self.rs.iter().enumerate() {
            ends.push((self.lb.clone(), format!("l{}", i + 1)));
            ends.push((ns.clone(), "e0".to_string()));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for (ns, dev) in &ends {
            loop {
                let o = self
                    .lab
                    .exec(ns, &["cat", &format!("/sys/class/net/{dev}/operstate")])?;
                if String::from_utf8_lossy(&o.stdout).trim() == "up" {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(io::Error::other(format!(
                        "{ns}: link {dev} is not up after 5 s (operstate {})",
                        String::from_utf8_lossy(&o.stdout).trim()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Whether the kernel decapsulates IP-in-IP itself (has `tunl0`).
    pub fn kernel_ipip(&self) -> bool {
        self.rs
            .first()
            .is_some_and(|ns| self.lab.ip(&["-n", ns, "link", "show", "tunl0"]).is_ok())
    }

    /// On kernels without the ipip / ip6_tunnel drivers, starts `BIN lab decap` on every
    /// real server (a user-space decapsulator feeding a TUN device that carries the VIPs)
    /// and waits (bounded) until its device is up.
    pub fn start_decap(&mut self, bin: &str) -> io::Result<()> {
        if self.kernel_ipip() {
            return Ok(());
        }
        for (i, ns) in self.rs.clone().iter().enumerate() {
            let label = format!("decap{}", i + 1);
            self.lab.spawn(
                ns,
                &label,
                &[
                    bin, "lab", "decap", "--tun", "rvsdecap", "--addr", VIP4, "--addr", VIP6,
                ],
                &[],
            )?;
            let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while self
                .lab
                .ip(&["-n", ns, "link", "show", "rvsdecap"])
                .is_err()
            {
                if std::time::Instant::now() > end {
                    return Err(io::Error::other(format!(
                        "decapsulator in {ns} did not start: {}",
                        self.lab.log(&label)
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            self.lab
                .sysctl(ns, "net.ipv4.conf.rvsdecap.rp_filter", "0")?;
        }
        Ok(())
    }

    /// The IPv4 or IPv6 VIP.
    pub fn vip(v6: bool) -> IpAddr {
        let s = if v6 { VIP6 } else { VIP4 };
        s.parse().unwrap_or(IpAddr::from([0u8; 4]))
    }
}
