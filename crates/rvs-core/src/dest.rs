//! Real servers ("destinations"), the kernel's `struct ip_vs_dest` (kernel-semantics §1.3).
//!
//! All real servers of all services live in one [`DestArena`], addressed by [`DestId`].
//! A service lists its own in kernel order (newest first, kernel-semantics §1.3): schedulers depend
//! on it. Deleting a real server that connections still reference moves it to the *trash* instead
//! of freeing it: it stays in the arena, not AVAILABLE, until its last reference is gone and it has
//! been idle for the trash period; re-adding the same address and port to the same service
//! revives it, and the connections bound to it work again.

use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::service::ServiceId;
use crate::stats::Stats;
use crate::time::Instant;

/// Index of a real server in the [`DestArena`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct DestId(pub u32);

impl DestId {
    /// The arena index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Forwarding method of a real server (`ipvsadm -m/-g/-i`, plus our full NAT).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ForwardMethod {
    /// NAT: destination rewritten to the real server, replies come back through the balancer.
    Masq,
    /// The kernel's LOCALNODE (saved as `-g` by ipvsadm); rvs treats it like Masq to a local
    /// address.
    Local,
    /// IPIP / IP6IP6 tunnel to the real server.
    Tunnel,
    /// Direct routing (MAC rewrite): the default of ipvsadm.
    #[default]
    Route,
    /// Our extension: full NAT, source rewritten too (DPVS's FNAT), one-arm deployments.
    FullNat,
}

impl ForwardMethod {
    /// The name ipvsadm prints in the `Forward` column.
    pub fn ipvsadm_name(self) -> &'static str {
        match self {
            ForwardMethod::Masq => "Masq",
            ForwardMethod::Local => "Local",
            ForwardMethod::Tunnel => "Tunnel",
            ForwardMethod::Route => "Route",
            ForwardMethod::FullNat => "FullNat",
        }
    }
    /// Whether replies traverse the balancer (the kernel's MASQ test; full NAT too).
    /// Every other method sets NOOUTPUT on its connections (kernel-semantics §1.3, §3).
    pub fn sees_replies(self) -> bool {
        matches!(self, ForwardMethod::Masq | ForwardMethod::FullNat)
    }
}

/// Tunnel encapsulation type (`--tun-type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TunnelType {
    /// IPIP / IP6IP6 (the default).
    #[default]
    Ipip,
    /// GUE with a UDP port.
    Gue,
    /// GRE.
    Gre,
}

/// Tunnel checksum option (`--tun-nocsum/--tun-csum/--tun-remcsum`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TunnelCsum {
    /// No checksum (the default).
    #[default]
    NoCsum,
    /// Checksum.
    Csum,
    /// Remote checksum offload (GUE only).
    RemCsum,
}

/// Tunnel parameters of a real server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TunnelInfo {
    /// Encapsulation.
    pub kind: TunnelType,
    /// GUE port (0 otherwise).
    pub port: u16,
    /// Checksum option.
    pub csum: TunnelCsum,
}

/// Everything the control plane sets on a real server (`ipvsadm -a/-e` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestConfig {
    /// Address of the real server.
    pub addr: IpAddr,
    /// Port (0 = use the packet's destination port).
    pub port: u16,
    /// Forwarding method.
    pub fwd: ForwardMethod,
    /// Weight; 0 = quiescent (no new connections, existing ones continue).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub l_threshold: u32,
    /// Tunnel parameters (for `Tunnel` only).
    pub tunnel: TunnelInfo,
}

impl DestConfig {
    /// A real server with ipvsadm's defaults for everything but address and port
    /// (weight 1, direct routing, no thresholds).
    pub fn new(addr: IpAddr, port: u16) -> Self {
        DestConfig {
            addr,
            port,
            fwd: ForwardMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: TunnelInfo::default(),
        }
    }
    /// Sets the forwarding method.
    pub fn fwd(mut self, fwd: ForwardMethod) -> Self {
        self.fwd = fwd;
        self
    }
    /// Sets the weight.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
    /// Sets the thresholds.
    pub fn thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }
}

/// A real server: configuration, state flags and connection counters.
#[doc(alias = "ip_vs_dest")]
#[derive(Debug)]
pub struct Dest {
    /// The service this real server belongs (or, in the trash, belonged) to.
    pub svc: ServiceId,
    /// That service's key (a trashed real server revives when re-added to a service with the
    /// same key, kernel-semantics §1.3).
    pub svc_key: crate::service::ServiceKey,
    /// Configuration.
    pub cfg: DestConfig,
    /// The most recent non-zero weight (or the initial weight); used by `mh`
    /// (kernel-semantics §1.3).
    pub last_weight: u32,
    /// Linked in its service (cleared when deleted / in the trash).
    pub available: bool,
    /// Over its upper threshold (kernel-semantics §4.15).
    pub overload: bool,
    /// Connections in an active state (kernel-semantics §1.6).
    pub activeconns: u32,
    /// Connections in an inactive state (all UDP connections, closing TCP...).
    pub inactconns: u32,
    /// Persistence templates bound to it.
    pub persistconns: u32,
    /// Entries (connections and templates) that reference it; a trash entry is freed at 0.
    pub refs: u32,
    /// When the trash first saw it unreferenced (the idle clock of kernel-semantics §1.3).
    pub trash_idle_since: Option<Instant>,
    /// Counters and rates.
    pub stats: Stats,
}

impl Dest {
    /// A new, available real server with no connections.
    pub fn new(svc: ServiceId, svc_key: crate::service::ServiceKey, cfg: DestConfig) -> Self {
        Dest {
            svc,
            svc_key,
            cfg,
            last_weight: cfg.weight,
            available: true,
            overload: false,
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
            refs: 0,
            trash_idle_since: None,
            stats: Stats::default(),
        }
    }

    /// The weight (convenience for schedulers).
    #[inline]
    pub fn weight(&self) -> u32 {
        self.cfg.weight
    }
    /// The kernel's `ip_vs_dest_conn_overhead`: `activeconns * 256 + inactconns`
    /// (kernel-semantics §4.0).
    #[inline]
    pub fn overhead(&self) -> u64 {
        ((self.activeconns as u64) << 8) + self.inactconns as u64
    }
    /// Address as a socket address.
    pub fn addr(&self) -> IpAddr {
        self.cfg.addr
    }
    /// Port.
    pub fn port(&self) -> u16 {
        self.cfg.port
    }
}

/// All real servers, live and trashed.
#[derive(Debug, Default)]
pub struct DestArena {
    slots: Vec<Option<Dest>>,
    free: Vec<u32>,
}

impl DestArena {
    /// Inserts a real server and returns its id.
    pub fn insert(&mut self, dest: Dest) -> DestId {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(dest);
            DestId(i)
        } else {
            self.slots.push(Some(dest));
            DestId(self.slots.len() as u32 - 1)
        }
    }
    /// Frees a slot.
    pub fn remove(&mut self, id: DestId) -> Option<Dest> {
        let d = self.slots.get_mut(id.index())?.take();
        if d.is_some() {
            self.free.push(id.0);
        }
        d
    }
    /// A real server by id.
    #[inline]
    pub fn get(&self, id: DestId) -> Option<&Dest> {
        self.slots.get(id.index()).and_then(Option::as_ref)
    }
    /// A real server by id, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        self.slots.get_mut(id.index()).and_then(Option::as_mut)
    }
    /// Every live or trashed real server.
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &Dest)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().map(|d| (DestId(i as u32), d)))
    }
    /// Ids of every real server.
    pub fn ids(&self) -> Vec<DestId> {
        self.iter().map(|(id, _)| id).collect()
    }
}

impl core::ops::Index<DestId> for DestArena {
    type Output = Dest;
    /// Panics on a dangling id: ids handed out by the engine stay valid while referenced
    /// (the invariant the trash maintains).
    fn index(&self, id: DestId) -> &Dest {
        self.get(id).expect("dangling DestId")
    }
}

impl core::ops::IndexMut<DestId> for DestArena {
    fn index_mut(&mut self, id: DestId) -> &mut Dest {
        self.get_mut(id).expect("dangling DestId")
    }
}
