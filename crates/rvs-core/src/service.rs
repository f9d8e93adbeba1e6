//! Virtual services, the kernel's `struct ip_vs_service` (kernel-semantics §1.2), and their lookup
//! (kernel-semantics §2.6.1).

use core::fmt;
use core::net::IpAddr;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::addr::Netmask;
use crate::dest::DestId;
use crate::sched::Scheduler;
use crate::stats::Stats;

/// Index of a service in the engine's service arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceId(pub u32);

/// A balanced transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// From an IP protocol number.
    pub fn from_ipproto(p: u8) -> Option<Self> {
        match p {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }
    /// The IP protocol number.
    pub fn ipproto(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
    /// The name ipvsadm and `/proc` print.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What identifies a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKey {
    /// (protocol, virtual address, virtual port); port 0 matches any port (persistent only).
    Addr {
        /// Protocol.
        proto: Protocol,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// A firewall mark (any of TCP, UDP, SCTP) of one address family.
    Fwmark {
        /// IPv6 family (`ipvsadm -6`).
        v6: bool,
        /// The mark (non-zero).
        mark: u32,
    },
}

impl ServiceKey {
    /// Whether the service is of the IPv6 family.
    pub fn is_v6(&self) -> bool {
        match self {
            ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { v6, .. } => *v6,
        }
    }
    /// The service port (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's numeric form: `TCP 10.0.0.1:80`, `UDP [fd00::1]:53`, `FWM 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                proto,
                addr: IpAddr::V4(a),
                port,
            } => write!(f, "{} {a}:{port}", proto.name()),
            ServiceKey::Addr {
                proto,
                addr: IpAddr::V6(a),
                port,
            } => write!(f, "{} [{a}]:{port}", proto.name()),
            ServiceKey::Fwmark { mark, v6 } => {
                write!(f, "FWM {mark}{}", if *v6 { " IPv6" } else { "" })
            }
        }
    }
}

/// Service flags (kernel-semantics §1.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    /// Persistence (`-p`).
    pub const PERSISTENT: u32 = 0x0001;
    /// One-packet scheduling (`-o`, UDP only).
    pub const ONEPACKET: u32 = 0x0004;
    /// Scheduler flag 1: sh-fallback / mh-fallback.
    pub const SCHED1: u32 = 0x0008;
    /// Scheduler flag 2: sh-port / mh-port.
    pub const SCHED2: u32 = 0x0010;
    /// Scheduler flag 3.
    pub const SCHED3: u32 = 0x0020;
    /// The three scheduler flags.
    pub const SCHED_MASK: u32 = Self::SCHED1 | Self::SCHED2 | Self::SCHED3;

    /// Whether all bits of `mask` are set.
    #[inline]
    pub fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }
}

/// Everything the control plane sets on a service (`ipvsadm -A/-E` options).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// The key.
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wlc`, ..., or `none`).
    pub scheduler: String,
    /// Flags: persistence, one-packet, scheduler flags.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (meaningful with PERSISTENT).
    pub timeout: u32,
    /// Persistence granularity.
    pub netmask: Netmask,
    /// Persistence engine name (`sip`); rvs accepts none yet.
    pub pe_name: Option<String>,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults (wlc, not persistent).
    pub fn new(key: ServiceKey) -> Self {
        ServiceConfig {
            netmask: Netmask::full(key.is_v6()),
            key,
            scheduler: "wlc".into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            pe_name: None,
        }
    }
    /// Sets the scheduler.
    pub fn scheduler(mut self, name: &str) -> Self {
        self.scheduler = name.into();
        self
    }
    /// Makes it persistent with `timeout` seconds.
    pub fn persistent(mut self, timeout: u32) -> Self {
        self.flags.0 |= ServiceFlags::PERSISTENT;
        self.timeout = timeout;
        self
    }
    /// Adds flags.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags.0 |= flags;
        self
    }
    /// Whether it is persistent.
    pub fn is_persistent(&self) -> bool {
        self.flags.has(ServiceFlags::PERSISTENT)
    }
}

/// A virtual service.
#[doc(alias = "ip_vs_service")]
pub struct Service {
    /// Configuration.
    pub cfg: ServiceConfig,
    /// Real servers in kernel order: newest first (kernel-semantics §1.3).
    pub dests: Vec<DestId>,
    /// The bound scheduler (`None` for `none`).
    pub sched: Option<Box<dyn Scheduler>>,
    /// Counters and rates.
    pub stats: Stats,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("cfg", &self.cfg)
            .field("dests", &self.dests)
            .finish()
    }
}

/// The service lookup tables.
#[derive(Debug, Default)]
pub struct ServiceTable {
    slots: Vec<Option<Service>>,
    free: Vec<u32>,
    by_addr: HashMap<(Protocol, IpAddr, u16), ServiceId>,
    by_mark: HashMap<(bool, u32), ServiceId>,
    /// Services with port 0, per (protocol, address): the catch-all lookup of
    /// kernel-semantics §2.6.1.
    nullsvc: usize,
    /// Services with port 21 (the FTP data lookup of kernel-semantics §2.6.1).
    ftpsvc: usize,
    /// Order in which services were added, for listing in "hash" order.
    order: Vec<ServiceId>,
    /// Address-service keys packed into integers, for the packet path's "is this addressed to
    /// a virtual service" test (one integer hash instead of an `IpAddr` tuple).
    vip4: hashbrown::HashSet<u64, foldhash::fast::FixedState>,
    vip4_list: Vec<u64>,
    vip6: hashbrown::HashSet<(u128, u32), foldhash::fast::FixedState>,
}

fn vip_key4(proto: Protocol, a: core::net::Ipv4Addr, port: u16) -> u64 {
    (proto.ipproto() as u64) << 48 | (port as u64) << 32 | u32::from(a) as u64
}

fn vip_key6(proto: Protocol, a: core::net::Ipv6Addr, port: u16) -> (u128, u32) {
    (u128::from(a), (proto.ipproto() as u32) << 16 | port as u32)
}

impl ServiceTable {
    /// The service with this key.
    pub fn find_key(&self, key: &ServiceKey) -> Option<ServiceId> {
        match *key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.get(&(proto, addr, port)).copied()
            }
            ServiceKey::Fwmark { v6, mark } => self.by_mark.get(&(v6, mark)).copied(),
        }
    }

    /// The kernel's `ip_vs_service_find` (kernel-semantics §2.6.1): fwmark first, then the exact
    /// address service, then the FTP-data rule, then the port-0 catch-all.
    pub fn lookup(
        &self,
        proto: Protocol,
        vaddr: IpAddr,
        vport: u16,
        mark: u32,
    ) -> Option<ServiceId> {
        if mark != 0 && !self.by_mark.is_empty() {
            if let Some(&id) = self.by_mark.get(&(vaddr.is_ipv6(), mark)) {
                return Some(id);
            }
        }
        if let Some(&id) = self.by_addr.get(&(proto, vaddr, vport)) {
            return Some(id);
        }
        if self.ftpsvc > 0 && proto == Protocol::Tcp && (vport == 20 || vport >= 1024) {
            if let Some(&id) = self.by_addr.get(&(proto, vaddr, 21)) {
                return Some(id);
            }
        }
        if self.nullsvc > 0 {
            if let Some(&id) = self.by_addr.get(&(proto, vaddr, 0)) {
                return Some(id);
            }
        }
        None
    }

    /// Whether `(proto, addr, port)` is an address service's key (the packet is addressed to a
    /// virtual service, so it cannot be a reply of one of its real servers).
    #[inline]
    pub fn is_vip(&self, proto: Protocol, addr: IpAddr, port: u16) -> bool {
        match addr {
            // Few services: a scan of a short vector beats hashing.
            IpAddr::V4(a) if self.vip4_list.len() <= 8 => {
                self.vip4_list.contains(&vip_key4(proto, a, port))
            }
            IpAddr::V4(a) => self.vip4.contains(&vip_key4(proto, a, port)),
            IpAddr::V6(a) => self.vip6.contains(&vip_key6(proto, a, port)),
        }
    }

    fn vip_set(&mut self, proto: Protocol, addr: IpAddr, port: u16, on: bool) {
        match (addr, on) {
            (IpAddr::V4(a), true) => {
                self.vip4.insert(vip_key4(proto, a, port));
                self.vip4_list.push(vip_key4(proto, a, port));
            }
            (IpAddr::V4(a), false) => {
                self.vip4.remove(&vip_key4(proto, a, port));
                self.vip4_list.retain(|&k| k != vip_key4(proto, a, port));
            }
            (IpAddr::V6(a), true) => {
                self.vip6.insert(vip_key6(proto, a, port));
            }
            (IpAddr::V6(a), false) => {
                self.vip6.remove(&vip_key6(proto, a, port));
            }
        }
    }

    /// Inserts a service (the caller checked that the key is free).
    pub fn insert(&mut self, svc: Service) -> ServiceId {
        let key = svc.cfg.key;
        let id = if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(svc);
            ServiceId(i)
        } else {
            self.slots.push(Some(svc));
            ServiceId(self.slots.len() as u32 - 1)
        };
        match key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.insert((proto, addr, port), id);
                self.vip_set(proto, addr, port, true);
                if port == 0 {
                    self.nullsvc += 1;
                }
                if port == 21 {
                    self.ftpsvc += 1;
                }
            }
            ServiceKey::Fwmark { v6, mark } => {
                self.by_mark.insert((v6, mark), id);
            }
        }
        self.order.push(id);
        id
    }

    /// Removes a service.
    pub fn remove(&mut self, id: ServiceId) -> Option<Service> {
        let svc = self.slots.get_mut(id.0 as usize)?.take()?;
        match svc.cfg.key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.remove(&(proto, addr, port));
                self.vip_set(proto, addr, port, false);
                if port == 0 {
                    self.nullsvc -= 1;
                }
                if port == 21 {
                    self.ftpsvc -= 1;
                }
            }
            ServiceKey::Fwmark { v6, mark } => {
                self.by_mark.remove(&(v6, mark));
            }
        }
        self.order.retain(|&s| s != id);
        self.free.push(id.0);
        Some(svc)
    }

    /// A service by id.
    #[inline]
    pub fn get(&self, id: ServiceId) -> Option<&Service> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }
    /// A service by id, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: ServiceId) -> Option<&mut Service> {
        self.slots.get_mut(id.0 as usize).and_then(Option::as_mut)
    }
    /// Services in the order they were added.
    pub fn ids(&self) -> &[ServiceId] {
        &self.order
    }

    /// Services in the order the kernel walks its two 256-bucket service tables
    /// (kernel-semantics §1.2, §8.9): address services by `ip_vs_svc_hashkey`, then fwmark services
    /// by `ip_vs_svc_fwm_hashkey`, newest first within a bucket. This is the order of
    /// `/proc/net/ip_vs` and `ipvsadm -L --nosort`. The kernel mixes the address of its
    /// per-namespace state into the hash; `salt` stands for those bits (8 of them matter).
    pub fn kernel_order(&self, salt: u8) -> Vec<ServiceId> {
        let mut v: Vec<(u8, usize, u8, ServiceId)> = self
            .order
            .iter()
            .enumerate()
            .filter_map(|(seq, &id)| {
                let svc = self.get(id)?;
                let (table, bucket) = match svc.cfg.key {
                    ServiceKey::Addr { proto, addr, port } => {
                        let ahash = crate::addr::fold(addr);
                        let port = port as u32;
                        let h = proto.ipproto() as u32 ^ ahash ^ salt as u32 ^ (port >> 8) ^ port;
                        (0, h as u8)
                    }
                    ServiceKey::Fwmark { mark, .. } => (1, (mark ^ salt as u32) as u8),
                };
                Some((table, usize::MAX - seq, bucket, id))
            })
            .collect();
        v.sort_by_key(|&(table, newest_first, bucket, _)| (table, bucket, newest_first));
        v.into_iter().map(|(.., id)| id).collect()
    }
    /// Number of services.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether there are no services.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(key: ServiceKey) -> Service {
        Service {
            cfg: ServiceConfig::new(key),
            dests: vec![],
            sched: None,
            stats: Stats::default(),
        }
    }

    /// The order of golden `proc-net-ip_vs.txt` (Linux 6.1), reproduced from the kernel's
    /// hash functions with one value of the namespace salt (kernel-semantics §8.9).
    #[test]
    fn kernel_order_matches_golden_proc_order() {
        let a = |p, s: &str, port| ServiceKey::Addr {
            proto: p,
            addr: s.parse().unwrap(),
            port,
        };
        let mut t = ServiceTable::default();
        // Added in the order of examples-formats.sh.
        let keys = [
            a(Protocol::Tcp, "10.0.0.100", 80),
            a(Protocol::Tcp, "10.0.0.100", 443),
            a(Protocol::Udp, "10.0.0.100", 53),
            a(Protocol::Tcp, "10.0.0.101", 8080),
            ServiceKey::Fwmark { v6: false, mark: 1 },
            a(Protocol::Tcp, "10.0.0.102", 80),
            a(Protocol::Udp, "10.0.0.103", 5000),
            a(Protocol::Tcp, "fd00::100", 80),
        ];
        for k in keys {
            t.insert(svc(k));
        }
        let order: Vec<String> = t
            .kernel_order(176)
            .into_iter()
            .map(|id| t.get(id).unwrap().cfg.key.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "TCP 10.0.0.101:8080",
                "UDP 10.0.0.103:5000",
                "TCP 10.0.0.100:443",
                "TCP 10.0.0.102:80",
                "TCP 10.0.0.100:80",
                "TCP [fd00::100]:80",
                "UDP 10.0.0.100:53",
                "FWM 1",
            ]
        );
    }
}
