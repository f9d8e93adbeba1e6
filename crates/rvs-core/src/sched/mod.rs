//! Schedulers: one file per ipvsadm `-s` name, like the kernel's `ip_vs_<name>.c` (spec §4).
//!
//! A scheduler picks a real server for a *new* connection. It sees the service's real servers
//! in kernel order (newest first, spec §1.3) through [`Dests`], and the packet's addresses
//! through [`SchedInput`]. Callbacks tell it when the list changed, so table-based schedulers
//! (sh, dh, mh) rebuild and cursor-based ones (rr, wrr) fix their cursor, as the kernel's
//! `add_dest/del_dest/upd_dest` hooks do. Schedulers never touch connection counters or the
//! OVERLOAD flag: the engine maintains them (spec §4.15) and schedulers read them.

use core::net::IpAddr;

use crate::dest::{Dest, DestArena, DestId};
use crate::rng::RandomSource;
use crate::service::ServiceFlags;
use crate::time::Instant;

pub mod hash;

/// The real servers of one service, in kernel order (newest first).
#[derive(Clone, Copy)]
pub struct Dests<'a> {
    /// Ids in kernel order.
    pub order: &'a [DestId],
    /// Where the real servers live.
    pub arena: &'a DestArena,
}

impl<'a> Dests<'a> {
    /// Iterates `(id, dest)` in kernel order.
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &'a Dest)> + '_ {
        let arena = self.arena;
        self.order.iter().map(move |&id| (id, &arena[id]))
    }
    /// A real server by id.
    pub fn get(&self, id: DestId) -> &'a Dest {
        &self.arena[id]
    }
    /// Number of real servers.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// Position of `id` in kernel order.
    pub fn position(&self, id: DestId) -> Option<usize> {
        self.order.iter().position(|&d| d == id)
    }
}

/// What a scheduler may look at in the packet and its context.
#[derive(Clone, Copy, Debug)]
pub struct SchedInput {
    /// Current time (lblc/lblcr caches and their garbage collection).
    pub now: Instant,
    /// IP protocol number of the packet.
    pub protocol: u8,
    /// Client (source) address.
    pub saddr: IpAddr,
    /// Client (source) port.
    pub sport: u16,
    /// Destination address of the packet (the virtual address).
    pub daddr: IpAddr,
    /// Destination port of the packet.
    pub dport: u16,
    /// The service flags (scheduler flags SCHED1..3 select sh/mh options).
    pub flags: ServiceFlags,
    /// `net.ipv4.vs.lblc_expiration` in seconds.
    pub lblc_expiration: u32,
    /// `net.ipv4.vs.lblcr_expiration` in seconds.
    pub lblcr_expiration: u32,
}

/// Maglev table parameters (our extension, issue 3): a prime table size and a hash seed.
/// The default is the kernel's: 4093 slots and the kernel's fixed keys (spec §4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevConfig {
    /// Table size M, a prime (the kernel's 4093 by default; 65537 as in the Maglev paper).
    pub table_size: u32,
    /// Hash seed; `None` = the kernel's keys, so rvs picks what the kernel picks.
    pub seed: Option<u64>,
}

impl Default for MaglevConfig {
    fn default() -> Self {
        MaglevConfig {
            table_size: 4093,
            seed: None,
        }
    }
}

/// Options that are not part of ipvsadm's service but change how schedulers are built
/// (our extensions, see `mh`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedOptions {
    /// Maglev table size and seed; `None` = the kernel's 4093 slots and keys.
    pub maglev: Option<MaglevConfig>,
}

/// A scheduling algorithm bound to one service.
pub trait Scheduler: Send {
    /// The ipvsadm name.
    fn name(&self) -> &'static str;

    /// The scheduler was bound to a service with these real servers (`init_service`).
    fn init(&mut self, dests: Dests<'_>) {
        let _ = dests;
    }

    /// `id` was added (it is already at the head of `dests`).
    fn add_dest(&mut self, dests: Dests<'_>, id: DestId) {
        let _ = (dests, id);
    }

    /// `id` was removed; `dests` no longer holds it; it stood at position `former_pos`.
    fn del_dest(&mut self, dests: Dests<'_>, id: DestId, former_pos: usize) {
        let _ = (dests, id, former_pos);
    }

    /// `id`'s weight or thresholds changed (it is still in `dests`).
    fn upd_dest(&mut self, dests: Dests<'_>, id: DestId) {
        let _ = (dests, id);
    }

    /// Picks a real server for a new connection, or `None` ("no destination available").
    fn schedule(
        &mut self,
        input: &SchedInput,
        dests: Dests<'_>,
        rng: &mut dyn RandomSource,
    ) -> Option<DestId>;
}

/// Every scheduler name, in the order ipvsadm's help lists them.
pub const NAMES: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// A fresh scheduler by ipvsadm name (the kernel's `ip_vs_scheduler_get`); `None` if unknown.
pub fn by_name(name: &str, opts: &SchedOptions) -> Option<Box<dyn Scheduler>> {
    let _ = opts;
    match name {
        _ => None,
    }
}
