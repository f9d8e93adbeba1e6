//! Virtual services, the kernel's `struct ip_vs_service` (spec §1.2), and their lookup
//! (spec §2.6.1).

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

/// Service flags (spec §1.2).
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
    /// Real servers in kernel order: newest first (spec §1.3).
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
    /// Services with port 0, per (protocol, address): the catch-all lookup of spec §2.6.1.
    nullsvc: usize,
    /// Services with port 21 (the FTP data lookup of spec §2.6.1).
    ftpsvc: usize,
    /// Order in which services were added, for listing in "hash" order.
    order: Vec<ServiceId>,
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

    /// The kernel's `ip_vs_service_find` (spec §2.6.1): fwmark first, then the exact address
    /// service, then the FTP-data rule, then the port-0 catch-all.
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
    /// Number of services.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether there are no services.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
