//! mh — Maglev Hashing (kernel-semantics §4.9), plus our configurable table size and seed.
//!
//! Mirrors `net/netfilter/ipvs/ip_vs_mh.c` (`ip_vs_mh_schedule`, `ip_vs_mh_permutate`,
//! `ip_vs_mh_populate`, `ip_vs_mh_get`, `ip_vs_mh_get_fallback`, `ip_vs_mh_gcd_weight`,
//! `ip_vs_mh_shift_weight`). The algorithm is Maglev's (Eisenbud et al., NSDI 2016, §3.4).
//!
//! # The kernel's table
//!
//! - Size M = 4093 (prime; `CONFIG_IP_VS_MH_TAB_INDEX` = 12), `TAB_BITS` = 6.
//! - `mh_hash(addr, port, key, offset) = hsiphash(offset + port + fold(addr), key)` on the 4-byte
//!   little-endian value ([`hsiphash_u32`]), keys `(2654435761, 2654435761)` and
//!   `(2654446892, 2654446892)`.
//! - Each dest, in list order, gets `offset = mh_hash(dest, key1) mod M` and
//!   `skip = mh_hash(dest, key2) mod (M − 1) + 1`, and `turns` from its **last_weight** (the
//!   latest non-zero weight, so quiescing a dest does not reshuffle the table): with `g` the gcd
//!   of the positive last_weights and `rshift = max(0, fls(max / g) − TAB_BITS)`,
//!   `turns = (lw / g) >> rshift`, at least 1 when `lw ≠ 0`.
//! - Population: rounds over the list; each dest with turns ≥ 1 claims `turns` slots one after
//!   another, each at its current preference if free, else advancing by `skip` (mod M) until a
//!   free slot; it stops the moment all M slots are taken. No positive last_weight: empty table.
//!   More dests than slots: the kernel refuses the rebuild (EINVAL) and keeps its old table; so
//!   do we.
//! - Lookup: slot `mh_hash(saddr, port, key1, 0) mod M` (`port` = source port with mh-port /
//!   SCHED2, else 0). Its dest is returned if it has weight > 0 and is not OVERLOAD; otherwise
//!   `None`, unless mh-fallback (SCHED1): probe `mh_hash(saddr, port, key1, (k + slot) mod M)`
//!   for k = 0..M−1, stop with `None` at an empty slot, return the first usable dest.
//!
//! One difference remains: the kernel folds a dest address by the *service's* family, so for
//! an IPv4 service with IPv6 (tunnel) dests it hashes the first 32-bit word of the IPv6
//! address; rvs folds every address by its own family (XOR of the four words).
//!
//! # Beyond the kernel (our extension)
//!
//! [`MaglevConfig`] can select another prime table size, from 251 to 131071 (e.g. 65537, the
//! size of the Maglev paper and of Katran), and a seed. Validate a configuration with
//! [`MaglevConfig::validate`]: its error's `Display` is a message for the user. With
//! `seed: None` the kernel's keys are used, so rvs and the kernel pick the same servers (for
//! the kernel's own sizes: 4093, or another of its primes if the kernel was built with another
//! `CONFIG_IP_VS_MH_TAB_INDEX`, since `TAB_BITS` = bit length of M / 2 matches the kernel's
//! index / 2). With `seed: Some(s)` both hsiphash keys are derived from `s` by a fixed
//! SplitMix64 stream, so every balancer configured with the same seed and the same servers
//! (address, port, last_weight, list order) builds the same table — across processes and
//! machines; a test pins a fingerprint of such a table.
//!
//! # Rebuilding without blocking the packet path
//!
//! [`MaglevTable`] is a plain value built by [`MaglevTable::build`] from
//! `(folded address, port, last_weight)` triples. The scheduler keeps its table (and the ids of
//! the dests, in the same order) behind an `Arc` and only ever swaps in a complete table.
//!
//! - Default, in-engine: the add/delete/edit callbacks rebuild the table and swap it in. A
//!   build of M = 65537 with 1000 servers takes about 0.8 ms, the kernel's 4093 with 100
//!   servers about 50 µs (the `sched` benchmark, on a 2.6 GHz Xeon).
//! - Off to the side: a control thread takes a [`MaglevHandoff`] from the scheduler when it
//!   creates it ([`Mh::handoff`]), optionally turns the in-engine rebuild off
//!   ([`Mh::set_rebuild_on_change`]), builds tables itself and publishes them:
//!
//! ```
//! use rvs_core::addr::fold;
//! use rvs_core::dest::DestId;
//! use rvs_core::sched::{MaglevConfig, MaglevTable, mh::Mh};
//!
//! let cfg = MaglevConfig { table_size: 65537, seed: Some(7) };
//! let mut mh = Mh::new(cfg).unwrap();
//! let handoff = mh.handoff();
//! mh.set_rebuild_on_change(false);
//! // ... box `mh` as the service's scheduler; later, on the control thread:
//! let servers = [(fold("10.0.11.2".parse().unwrap()), 80, 1), (fold("10.0.12.2".parse().unwrap()),
//! 80, 1)]; let ids = vec![DestId(1), DestId(0)]; // the same dests, in the same (kernel) order
//! let table = MaglevTable::build(&cfg, &servers).unwrap();
//! handoff.publish(table, ids).unwrap();
//! // The packet path adopts it at its next scheduling decision: one atomic load when nothing
//! // is pending, a non-blocking `try_lock` and a pointer swap when something is.
//! ```
//!
//! The table the packet path replaces is handed back to the handoff and dropped by the next
//! `publish`, so the packet path never frees a table either. Until a published table arrives,
//! lookups that land on a dest no longer in the service treat it as unavailable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use super::hash::{HsipKey, hsiphash_u32};
use super::{Dests, MaglevConfig, SchedInput, Scheduler, hash_port, weight};
use crate::addr::fold;
use crate::dest::{Dest, DestId};
use crate::rng::RandomSource;
use crate::service::ServiceFlags;

/// The kernel's table size (`CONFIG_IP_VS_MH_TAB_INDEX` = 12).
pub const KERNEL_TABLE_SIZE: u32 = 4093;
/// The table sizes a kernel can be built with (`CONFIG_IP_VS_MH_TAB_INDEX` 8..=17).
pub const KERNEL_PRIMES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];
/// Smallest accepted table size.
pub const MIN_TABLE_SIZE: u32 = 251;
/// Largest accepted table size.
pub const MAX_TABLE_SIZE: u32 = 131_071;
/// Both words of the kernel's first hsiphash key (offsets and lookups).
pub const KERNEL_KEY1: u64 = 2_654_435_761;
/// Both words of the kernel's second hsiphash key (skips).
pub const KERNEL_KEY2: u64 = 2_654_446_892;

/// Why a Maglev configuration or table cannot be used. `Display` gives a message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaglevError {
    /// The table size is outside 251..=131071.
    SizeOutOfRange(u32),
    /// The table size is not a prime.
    SizeNotPrime(u32),
    /// More servers than table slots (the kernel answers EINVAL).
    TooManyServers {
        /// Number of servers.
        servers: usize,
        /// Table size.
        table_size: u32,
    },
    /// A published table was built for another number of servers than the ids given with it.
    ServerCountMismatch {
        /// Servers the table was built for.
        table: usize,
        /// Ids given.
        ids: usize,
    },
}

impl core::fmt::Display for MaglevError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MaglevError::SizeOutOfRange(m) => write!(
                f,
                "Maglev table size {m} is out of range: use a prime from {MIN_TABLE_SIZE} to \
                 {MAX_TABLE_SIZE} (the kernel uses {KERNEL_TABLE_SIZE}; 65537 as in the Maglev paper)"
            ),
            MaglevError::SizeNotPrime(m) => write!(
                f,
                "Maglev table size {m} is not a prime: use a prime from {MIN_TABLE_SIZE} to \
                 {MAX_TABLE_SIZE}, e.g. {KERNEL_TABLE_SIZE} (the kernel's) or 65537"
            ),
            MaglevError::TooManyServers {
                servers,
                table_size,
            } => write!(
                f,
                "{servers} real servers do not fit in a Maglev table of {table_size} slots; \
                 use a larger table (at least 100 slots per server balances well)"
            ),
            MaglevError::ServerCountMismatch { table, ids } => write!(
                f,
                "Maglev table built for {table} servers but published with {ids} ids"
            ),
        }
    }
}

impl std::error::Error for MaglevError {}

/// Whether `n` is a prime (trial division; `n` ≤ 2^32).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let n = n as u64;
    let mut d = 3u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// Checks a table size: a prime from 251 to 131071.
pub fn validate_table_size(m: u32) -> Result<(), MaglevError> {
    if !(MIN_TABLE_SIZE..=MAX_TABLE_SIZE).contains(&m) {
        return Err(MaglevError::SizeOutOfRange(m));
    }
    if !is_prime(m) {
        return Err(MaglevError::SizeNotPrime(m));
    }
    Ok(())
}

/// The next number of a SplitMix64 stream (Steele, Lea, Flood 2014). Used only to derive the
/// seeded keys; written out here so that the derivation can never drift with `rng`.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl MaglevConfig {
    /// The kernel's configuration: 4093 slots, the kernel's keys.
    pub const KERNEL: MaglevConfig = MaglevConfig {
        table_size: KERNEL_TABLE_SIZE,
        seed: None,
    };

    /// Checks the configuration (the table size must be a prime from 251 to 131071). The
    /// error's `Display` is meant for the user.
    pub fn validate(&self) -> Result<(), MaglevError> {
        validate_table_size(self.table_size)
    }

    /// The two hsiphash keys: the kernel's for `seed: None`; else the first four numbers of a
    /// SplitMix64 stream seeded with the seed (key 1 = first two, key 2 = next two).
    pub fn keys(&self) -> (HsipKey, HsipKey) {
        match self.seed {
            None => (
                HsipKey([KERNEL_KEY1, KERNEL_KEY1]),
                HsipKey([KERNEL_KEY2, KERNEL_KEY2]),
            ),
            Some(seed) => {
                let mut s = seed;
                let k1 = HsipKey([splitmix64(&mut s), splitmix64(&mut s)]);
                let k2 = HsipKey([splitmix64(&mut s), splitmix64(&mut s)]);
                (k1, k2)
            }
        }
    }

    /// `TAB_BITS` for this size: the kernel's `CONFIG_IP_VS_MH_TAB_INDEX / 2`, where the index
    /// is the bit length of its prime; for the kernel's primes the same number.
    pub fn tab_bits(&self) -> u32 {
        (32 - self.table_size.leading_zeros()) / 2
    }
}

/// The kernel's `ip_vs_mh_hashkey`: hsiphash of `offset + port + addr_fold` (wrapping u32).
#[inline]
pub fn mh_hash(addr_fold: u32, port: u16, key: &HsipKey, offset: u32) -> u32 {
    hsiphash_u32(
        offset.wrapping_add(port as u32).wrapping_add(addr_fold),
        key,
    )
}

/// A populated Maglev lookup table: each slot names a server by its index in the list given
/// to [`MaglevTable::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    size: u32,
    key1: HsipKey,
    servers: usize,
    /// Server index per slot; [`MaglevTable::EMPTY`] for none.
    slots: Box<[u32]>,
}

/// A server's walk through the table during population.
#[derive(Clone, Copy)]
struct Walker {
    index: u32,
    /// Its current preference (the kernel's `perm`).
    next: u32,
    skip: u32,
    turns: u32,
    /// `k · skip mod M` for k in 0..16: the offsets of a batch of consecutive preferences; and
    /// `steps[4]` and `steps[8]`, the strides between batches of 4 and 8.
    steps: [u32; 16],
    /// `16 · skip mod M`: the stride between batches of 16.
    stride16: u32,
}

impl Walker {
    fn new(index: u32, next: u32, skip: u32, turns: u32, m: u32) -> Walker {
        let mut steps = [0; 16];
        let mut x = 0u32;
        for s in steps.iter_mut() {
            *s = x;
            x = add_mod(x, skip, m);
        }
        Walker {
            index,
            next,
            skip,
            turns,
            steps,
            stride16: x,
        }
    }
}

/// `(a + b) mod m` for `a, b < m`, without a branch (the wrap is a coin flip that the branch
/// predictor cannot learn).
#[inline(always)]
fn add_mod(a: u32, b: u32, m: u32) -> u32 {
    let c = a + b;
    c.min(c.wrapping_sub(m))
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl MaglevTable {
    /// Marks an empty slot in [`MaglevTable::slots`].
    pub const EMPTY: u32 = u32::MAX;

    /// An empty table (every lookup misses).
    pub fn empty(cfg: &MaglevConfig) -> Result<Self, MaglevError> {
        cfg.validate()?;
        Ok(MaglevTable {
            size: cfg.table_size,
            key1: cfg.keys().0,
            servers: 0,
            slots: vec![Self::EMPTY; cfg.table_size as usize].into_boxed_slice(),
        })
    }

    /// Builds the table for `servers`, given in kernel order as
    /// `(fold(address), port, last_weight)` (`ip_vs_mh_reassign`).
    #[doc(alias = "ip_vs_mh_populate")]
    #[doc(alias = "ip_vs_mh_permutate")]
    pub fn build(cfg: &MaglevConfig, servers: &[(u32, u16, u32)]) -> Result<Self, MaglevError> {
        let mut table = Self::empty(cfg)?;
        let m = cfg.table_size;
        if servers.len() > m as usize {
            return Err(MaglevError::TooManyServers {
                servers: servers.len(),
                table_size: m,
            });
        }
        table.servers = servers.len();
        // Weights as the kernel's int.
        let lw = |w: u32| i32::try_from(w).unwrap_or(i32::MAX);
        let g = servers
            .iter()
            .map(|s| lw(s.2))
            .filter(|&w| w > 0)
            .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
        if g < 1 {
            return Ok(table);
        }
        let max = servers.iter().map(|s| lw(s.2)).fold(0, i32::max) / g;
        let fls = 32 - max.leading_zeros() as i32;
        let rshift = (fls - cfg.tab_bits() as i32).max(0) as u32;
        let (k1, k2) = cfg.keys();
        let walkers: Vec<Walker> = servers
            .iter()
            .enumerate()
            .filter_map(|(i, &(addr, port, w))| {
                let w = lw(w);
                let turns = match (w / g) >> rshift {
                    0 => (w != 0) as i32,
                    t => t,
                };
                (turns >= 1).then(|| {
                    Walker::new(
                        i as u32,
                        mh_hash(addr, port, &k1, 0) % m,
                        mh_hash(addr, port, &k2, 0) % (m - 1) + 1,
                        turns as u32,
                        m,
                    )
                })
            })
            .collect();
        populate(m, walkers, &mut table.slots);
        Ok(table)
    }

    /// Table size M.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Number of servers it was built for.
    pub fn servers(&self) -> usize {
        self.servers
    }

    /// Server index per slot ([`MaglevTable::EMPTY`] for none).
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// Slots per server.
    pub fn counts(&self) -> Vec<u32> {
        let mut c = vec![0; self.servers];
        for &s in self.slots.iter() {
            if let Some(n) = c.get_mut(s as usize) {
                *n += 1;
            }
        }
        c
    }

    /// The slot a (folded address, port) hashes to at probe `offset`.
    #[inline]
    pub fn slot(&self, addr_fold: u32, port: u16, offset: u32) -> u32 {
        mh_hash(addr_fold, port, &self.key1, offset) % self.size
    }

    /// The server in `slot`.
    #[inline]
    pub fn get(&self, slot: u32) -> Option<usize> {
        match self.slots.get(slot as usize) {
            Some(&s) if s != Self::EMPTY => Some(s as usize),
            _ => None,
        }
    }

    /// The server for a (folded source address, port) (`ip_vs_mh_get`, before its
    /// availability test).
    #[inline]
    pub fn lookup(&self, addr_fold: u32, port: u16) -> Option<usize> {
        self.get(self.slot(addr_fold, port, 0))
    }

    /// mh-fallback (`ip_vs_mh_get_fallback`): the first server accepted by `usable`, trying the
    /// hashed slot, then the probes at offsets `(k + slot) mod M`, k = 0..M−1; `None` at the
    /// first empty slot.
    pub fn lookup_with_fallback(
        &self,
        addr_fold: u32,
        port: u16,
        mut usable: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let ihash = self.slot(addr_fold, port, 0);
        let first = self.get(ihash)?;
        if usable(first) {
            return Some(first);
        }
        for offset in 0..self.size {
            let roffset = (offset + ihash) % self.size;
            let s = self.get(self.slot(addr_fold, port, roffset))?;
            if usable(s) {
                return Some(s);
            }
        }
        None
    }
}

/// Words of the occupancy bitmap. It has two bits per slot, `s` and `s + M`, so that a probe
/// at `next + k·skip` (< 2M) needs no reduction mod M; 2 × 131071 bits fit, and the power of
/// two lets a mask keep every index in bounds without a check in the probe loop.
const BITMAP_WORDS: usize = 4096;
const _: () = assert!(BITMAP_WORDS * 64 >= 2 * MAX_TABLE_SIZE as usize);

/// The occupancy of the table during population.
struct Occupancy {
    bits: Box<[u64; BITMAP_WORDS]>,
    m: u32,
}

impl Occupancy {
    #[inline(always)]
    fn word(p: u32) -> usize {
        (p >> 6) as usize & (BITMAP_WORDS - 1)
    }

    /// Whether slot `p mod M` is taken, for `p < 2M`.
    #[inline(always)]
    fn taken(&self, p: u32) -> u32 {
        ((self.bits[Self::word(p)] >> (p & 63)) & 1) as u32
    }

    fn take(&mut self, c: u32) {
        for p in [c, c + self.m] {
            self.bits[Self::word(p)] |= 1 << (p & 63);
        }
    }

    /// The first free slot among the preferences `next, next + skip, ...` of `w`, probing `B`
    /// (4, 8 or 16) consecutive preferences at a time without a branch. Only a fully taken batch
    /// loops, which keeps the loop-exit mispredictions (a large part of the cost) down.
    #[inline(always)]
    fn first_free<const B: usize>(&self, w: &Walker) -> u32 {
        let stride = if B == 16 { w.stride16 } else { w.steps[B & 15] };
        let mut c = w.next;
        loop {
            let mut taken = 0u32;
            for (k, &step) in w.steps.iter().take(B).enumerate() {
                taken |= self.taken(c + step) << k;
            }
            let free = !taken & ((1 << B) - 1);
            if free != 0 {
                return add_mod(c, w.steps[free.trailing_zeros() as usize & 15], self.m);
            }
            c = add_mod(c, stride, self.m);
        }
    }
}

/// `x mod m` for `x < 2^34` by Barrett reduction with `mu = (2^64 − 1) / m`.
#[inline(always)]
fn reduce(x: u64, m: u64, mu: u64) -> u64 {
    let q = ((x as u128 * mu as u128) >> 64) as u64;
    let r = x - q * m;
    if r >= m { r - m } else { r }
}

/// The inverse of `a` modulo the prime `m` (extended Euclid), `0 < a < m`.
fn inverse_mod(a: u32, m: u32) -> u64 {
    let (mut r0, mut r1) = (m as i64, a as i64);
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(m as i64) as u64
}

/// The free slot that `w`'s probing would reach first, by arithmetic: slot `s` is
/// `(s − next) · skip⁻¹ mod M` preferences away. Returns its index in `free`.
fn nearest_free(free: &[u32], w: &Walker, inv: u64, m: u32) -> Option<usize> {
    let (m64, mu) = (m as u64, u64::MAX / m as u64);
    let next = w.next;
    let mut best: Option<(u64, usize)> = None;
    for (k, &s) in free.iter().enumerate() {
        let d = add_mod(s, m - next, m) as u64;
        let steps = reduce(d * inv, m64, mu);
        if best.is_none_or(|(b, _)| steps < b) {
            best = Some((steps, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Fills every slot (`ip_vs_mh_populate`). `m` is prime and `walkers` are the servers with
/// turns ≥ 1, in list order; each skip is in 1..m, so a walk visits every slot and the search
/// for a free one ends while any is left.
///
/// The result is the kernel's, computed faster:
/// - occupancy is a bitmap that stays in L1, probed several consecutive preferences at a time
///   (4 while the table is less than half full, then 8, then 16 past 7/8), so that only a
///   fully taken batch loops and the loop-exit mispredictions stay rare;
/// - the tail is not probed: with `F` free slots left a search takes about `M / F` probes, so
///   the last few hundred placements would dominate. Once `F² < M`, a placement computes for
///   each free slot how far down the walker's preferences it is and takes the nearest one.
fn populate(m: u32, mut walkers: Vec<Walker>, slots: &mut [u32]) {
    let mut fill = Fill {
        occ: Occupancy {
            bits: Box::new([0u64; BITMAP_WORDS]),
            m,
        },
        free: m,
        wi: 0,
        turn: 0,
    };
    if walkers.is_empty() {
        return;
    }
    let tail_at = (1..=m).find(|f| f * f >= m).unwrap_or(1);
    fill.probe::<4>(&mut walkers, slots, m / 2);
    fill.probe::<8>(&mut walkers, slots, m / 8);
    fill.probe::<16>(&mut walkers, slots, tail_at);
    fill.tail(&mut walkers, slots);
}

/// The population in progress: occupancy, free count, and whose turn it is.
struct Fill {
    occ: Occupancy,
    free: u32,
    /// The walker placing now, and how many of its turns it has used this round.
    wi: usize,
    turn: u32,
}

impl Fill {
    /// Records a placement by the current walker and moves to the next turn.
    #[inline(always)]
    fn place(&mut self, walkers: &mut [Walker], slots: &mut [u32], c: u32) {
        let Some(w) = walkers.get_mut(self.wi) else {
            return;
        };
        w.next = c;
        if let Some(s) = slots.get_mut(c as usize) {
            *s = w.index;
        }
        self.free -= 1;
        self.turn += 1;
        if self.turn >= w.turns {
            self.turn = 0;
            self.wi += 1;
            if self.wi == walkers.len() {
                self.wi = 0;
            }
        }
    }

    /// Places by probing in batches of `B` while more than `until` slots are free.
    fn probe<const B: usize>(&mut self, walkers: &mut [Walker], slots: &mut [u32], until: u32) {
        // Common case, one turn per walker: stream over the walkers from the current one.
        if self.turn == 0 && walkers.iter().all(|w| w.turns == 1) {
            while self.free > until {
                let start = self.wi.min(walkers.len());
                let budget = (self.free - until) as usize;
                let mut placed = 0usize;
                for w in walkers[start..].iter_mut().take(budget) {
                    let c = self.occ.first_free::<B>(w);
                    self.occ.take(c);
                    w.next = c;
                    if let Some(s) = slots.get_mut(c as usize) {
                        *s = w.index;
                    }
                    placed += 1;
                }
                self.free -= placed as u32;
                self.wi = start + placed;
                if self.wi >= walkers.len() {
                    self.wi = 0;
                }
            }
            return;
        }
        while self.free > until {
            let Some(w) = walkers.get(self.wi) else {
                return;
            };
            let c = self.occ.first_free::<B>(w);
            self.occ.take(c);
            self.place(walkers, slots, c);
        }
    }

    /// Places the rest from the list of free slots.
    fn tail(&mut self, walkers: &mut [Walker], slots: &mut [u32]) {
        let m = self.occ.m;
        let mut list: Vec<u32> = (0..m).filter(|&c| self.occ.taken(c) == 0).collect();
        let mut inverses: Vec<u64> = vec![0; walkers.len()];
        while self.free > 0 {
            let (Some(w), Some(inv)) = (walkers.get(self.wi), inverses.get_mut(self.wi)) else {
                return;
            };
            if *inv == 0 {
                *inv = inverse_mod(w.skip, m);
            }
            let Some(k) = nearest_free(&list, w, *inv, m) else {
                return; // cannot happen while `free > 0`
            };
            let c = list.swap_remove(k);
            self.place(walkers, slots, c);
        }
    }
}

/// A table and the dests its server indexes stand for.
#[derive(Debug)]
struct MhState {
    table: MaglevTable,
    ids: Box<[DestId]>,
}

#[derive(Debug, Default)]
struct HandoffInner {
    next: Option<Arc<MhState>>,
    retired: Option<Arc<MhState>>,
}

#[derive(Debug, Default)]
struct HandoffSlot {
    pending: AtomicBool,
    inner: Mutex<HandoffInner>,
}

/// Hands tables built on another thread to an [`Mh`] scheduler (see the module docs).
#[derive(Clone, Debug)]
pub struct MaglevHandoff(Arc<HandoffSlot>);

impl MaglevHandoff {
    /// Publishes a table built for `ids` (the service's dests, in the order the table's server
    /// indexes refer to). The scheduler adopts it at its next decision. The table it replaces
    /// is dropped by the next call, on the caller's thread.
    pub fn publish(&self, table: MaglevTable, ids: Vec<DestId>) -> Result<(), MaglevError> {
        if ids.len() != table.servers() {
            return Err(MaglevError::ServerCountMismatch {
                table: table.servers(),
                ids: ids.len(),
            });
        }
        let state = Arc::new(MhState {
            table,
            ids: ids.into_boxed_slice(),
        });
        let retired = {
            let mut g = self.0.inner.lock().unwrap_or_else(PoisonError::into_inner);
            g.next = Some(state);
            self.0.pending.store(true, Ordering::Release);
            g.retired.take()
        };
        drop(retired);
        Ok(())
    }
}

/// Maglev Hashing.
#[doc(alias = "ip_vs_mh_schedule")]
#[derive(Debug)]
pub struct Mh {
    cfg: MaglevConfig,
    state: Arc<MhState>,
    rebuild_on_change: bool,
    handoff: Option<MaglevHandoff>,
}

impl Mh {
    /// A scheduler with an empty table; fails if `cfg` is invalid.
    pub fn new(cfg: MaglevConfig) -> Result<Self, MaglevError> {
        Ok(Mh {
            state: Arc::new(MhState {
                table: MaglevTable::empty(&cfg)?,
                ids: Box::new([]),
            }),
            cfg,
            rebuild_on_change: true,
            handoff: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MaglevConfig {
        &self.cfg
    }

    /// The current table.
    pub fn table(&self) -> &MaglevTable {
        &self.state.table
    }

    /// The dests the current table's server indexes stand for.
    pub fn table_ids(&self) -> &[DestId] {
        &self.state.ids
    }

    /// Whether add/delete/edit callbacks rebuild the table (the default). Turn it off when a
    /// control thread publishes tables through [`Mh::handoff`] instead.
    pub fn set_rebuild_on_change(&mut self, on: bool) {
        self.rebuild_on_change = on;
    }

    /// A handle through which another thread can publish tables to this scheduler.
    pub fn handoff(&mut self) -> MaglevHandoff {
        self.handoff
            .get_or_insert_with(|| MaglevHandoff(Arc::default()))
            .clone()
    }

    /// Swaps in a table built elsewhere, on this thread.
    pub fn install(&mut self, table: MaglevTable, ids: Vec<DestId>) -> Result<(), MaglevError> {
        if ids.len() != table.servers() {
            return Err(MaglevError::ServerCountMismatch {
                table: table.servers(),
                ids: ids.len(),
            });
        }
        self.state = Arc::new(MhState {
            table,
            ids: ids.into_boxed_slice(),
        });
        Ok(())
    }

    /// The kernel's `ip_vs_mh_dest_changed`: rebuild from the list, keeping the old table if
    /// the new one cannot be built (more dests than slots).
    fn rebuild(&mut self, dests: Dests<'_>) {
        if !self.rebuild_on_change {
            return;
        }
        let servers: Vec<(u32, u16, u32)> = dests
            .iter()
            .map(|(_, d)| (fold(d.cfg.addr), d.cfg.port, d.last_weight))
            .collect();
        if let Ok(table) = MaglevTable::build(&self.cfg, &servers) {
            self.state = Arc::new(MhState {
                table,
                ids: dests.order.into(),
            });
        }
    }

    /// Adopts a published table, if any, without ever blocking.
    fn adopt_published(&mut self) {
        let Some(h) = &self.handoff else { return };
        if !h.0.pending.load(Ordering::Acquire) {
            return;
        }
        let mut g = match h.0.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if let Some(next) = g.next.take() {
            g.retired = Some(core::mem::replace(&mut self.state, next));
        }
        h.0.pending.store(false, Ordering::Release);
    }
}

/// The dest a table's server index stands for, if it is still in the service.
#[inline]
fn resolve<'a>(st: &MhState, dests: Dests<'a>, i: usize) -> Option<&'a Dest> {
    let id = *st.ids.get(i)?;
    // Fast path: the table is current and the dest stands where it stood at build time.
    // Otherwise (a rebuild refused, or a published table still on its way) check that the dest
    // is still listed: the kernel would still hold it, but our engine may have freed it.
    if dests.order.get(i) != Some(&id) && !dests.order.contains(&id) {
        return None;
    }
    dests.arena.get(id)
}

#[inline]
fn usable(d: &Dest) -> bool {
    weight(d) > 0 && !d.overload
}

impl Scheduler for Mh {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn init(&mut self, dests: Dests<'_>) {
        self.rebuild(dests);
    }

    fn add_dest(&mut self, dests: Dests<'_>, _id: DestId) {
        self.rebuild(dests);
    }

    fn del_dest(&mut self, dests: Dests<'_>, _id: DestId, _former_pos: usize) {
        self.rebuild(dests);
    }

    fn upd_dest(&mut self, dests: Dests<'_>, _id: DestId) {
        self.rebuild(dests);
    }

    fn schedule(
        &mut self,
        input: &SchedInput,
        dests: Dests<'_>,
        _rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        self.adopt_published();
        let st = &*self.state;
        let addr = fold(input.saddr);
        let port = hash_port(input);
        let i = if input.flags.has(ServiceFlags::SCHED1) {
            st.table
                .lookup_with_fallback(addr, port, |i| resolve(st, dests, i).is_some_and(usable))?
        } else {
            let i = st.table.lookup(addr, port)?;
            if !resolve(st, dests, i).is_some_and(usable) {
                return None;
            }
            i
        };
        st.ids.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Svc, input};
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> u32 {
        fold(s.parse().unwrap())
    }

    fn kernel_three(weights: [u32; 3]) -> MaglevTable {
        // Added .2, .3, .4: list order .4, .3, .2.
        let servers = [
            (ip("192.168.1.4"), 80, weights[0]),
            (ip("192.168.1.3"), 80, weights[1]),
            (ip("192.168.1.2"), 80, weights[2]),
        ];
        MaglevTable::build(&MaglevConfig::KERNEL, &servers).unwrap()
    }

    #[test]
    fn mh_dest_hashes_spec_10_2() {
        let (k1, k2) = MaglevConfig::KERNEL.keys();
        let want = [
            (
                "192.168.1.2",
                0x529f_7fe7u32,
                0x5574_829du32,
                183u32,
                1302u32,
            ),
            ("192.168.1.3", 0x7d6c_ecd1, 0xaf3d_77fd, 1446, 594),
            ("192.168.1.4", 0xff71_4c8a, 0x9613_086c, 2755, 1681),
        ];
        for (a, h1, h2, off, skip) in want {
            assert_eq!(mh_hash(ip(a), 80, &k1, 0), h1, "{a}");
            assert_eq!(mh_hash(ip(a), 80, &k2, 0), h2, "{a}");
            assert_eq!(h1 % 4093, off);
            assert_eq!(h2 % 4092 + 1, skip);
        }
    }

    #[test]
    fn mh_slot_counts_spec_10_2() {
        assert_eq!(kernel_three([1, 1, 1]).counts(), [1365, 1364, 1364]);
        assert_eq!(kernel_three([3, 2, 1]).counts(), [2047, 1364, 682]);
    }

    #[test]
    fn mh_client_lookups_spec_10_2() {
        let t = kernel_three([1, 1, 1]);
        // Server index 0 = .4, 1 = .3, 2 = .2.
        for (client, slot, server) in [
            ("10.0.0.5", 3620, 1),
            ("10.0.0.6", 2581, 1),
            ("10.0.0.7", 754, 0),
            ("172.16.0.1", 1127, 0),
        ] {
            assert_eq!(t.slot(ip(client), 0, 0), slot, "{client}");
            assert_eq!(t.lookup(ip(client), 0), Some(server), "{client}");
        }
    }

    #[test]
    fn mh_turns_use_gcd_and_rshift_spec_4_9() {
        // 1000 and 10: gcd 10 → 100 and 1; fls(100) = 7 > 6 → rshift 1 → turns 50 and 1
        // (10/10 >> 1 = 0, raised to 1). Per round 50 + 1 slots.
        let cfg = MaglevConfig::KERNEL;
        let t = MaglevTable::build(&cfg, &[(1, 0, 1000), (2, 0, 10)]).unwrap();
        let c = t.counts();
        assert_eq!(c[0] + c[1], 4093);
        // 4093 = 80 rounds × 51 + 13: the last round gives its 13 slots to server 0.
        assert_eq!(c, [80 * 50 + 13, 80]);
        // last_weight 0 gets no slot; all 0: empty table.
        let t = MaglevTable::build(&cfg, &[(1, 0, 0), (2, 0, 3)]).unwrap();
        assert_eq!(t.counts(), [0, 4093]);
        let t = MaglevTable::build(&cfg, &[(1, 0, 0)]).unwrap();
        assert!(t.slots().iter().all(|&s| s == MaglevTable::EMPTY));
        assert_eq!(t.lookup(5, 0), None);
    }

    #[test]
    fn mh_ext_config_validation_messages() {
        assert!(MaglevConfig::KERNEL.validate().is_ok());
        for m in KERNEL_PRIMES.into_iter().chain([65537, 257, 131_071]) {
            assert!(validate_table_size(m).is_ok(), "{m}");
        }
        assert_eq!(
            validate_table_size(65536),
            Err(MaglevError::SizeNotPrime(65536))
        );
        assert_eq!(
            validate_table_size(241),
            Err(MaglevError::SizeOutOfRange(241))
        );
        assert_eq!(
            validate_table_size(131_101),
            Err(MaglevError::SizeOutOfRange(131_101))
        );
        let msg = MaglevError::SizeNotPrime(65536).to_string();
        assert!(
            msg.contains("not a prime") && msg.contains("65537"),
            "{msg}"
        );
        let cfg = MaglevConfig {
            table_size: 251,
            seed: None,
        };
        let servers: Vec<_> = (0..252).map(|i| (i, 0, 1)).collect();
        let err = MaglevTable::build(&cfg, &servers).unwrap_err();
        assert_eq!(
            err,
            MaglevError::TooManyServers {
                servers: 252,
                table_size: 251
            }
        );
        assert!(by_name_mh(65536).is_none());
        assert!(by_name_mh(65537).is_some());
    }

    fn by_name_mh(m: u32) -> Option<Box<dyn Scheduler>> {
        super::super::by_name(
            "mh",
            &super::super::SchedOptions {
                maglev: Some(MaglevConfig {
                    table_size: m,
                    seed: None,
                }),
            },
        )
    }

    #[test]
    fn mh_tab_bits_match_kernel_index_spec_4_9() {
        for (i, m) in KERNEL_PRIMES.into_iter().enumerate() {
            let cfg = MaglevConfig {
                table_size: m,
                seed: None,
            };
            assert_eq!(cfg.tab_bits(), (i as u32 + 8) / 2, "{m}");
        }
    }

    fn three_dests(s: &mut Mh) -> (Svc, [DestId; 3]) {
        let mut svc = Svc::default();
        s.init(svc.dests());
        let a = svc.add(s, "192.168.1.2", 1);
        let b = svc.add(s, "192.168.1.3", 1);
        let c = svc.add(s, "192.168.1.4", 1);
        (svc, [a, b, c])
    }

    #[test]
    fn mh_scheduler_lookups_and_quiesce_keeps_table_spec_4_9() {
        let mut s = Mh::new(MaglevConfig::KERNEL).unwrap();
        let (mut svc, [_a, b, c]) = three_dests(&mut s);
        assert_eq!(svc.pick(&mut s, &input("10.0.0.5")), Some(b));
        assert_eq!(svc.pick(&mut s, &input("10.0.0.7")), Some(c));
        let before = s.table().clone();
        // Weight 0 keeps last_weight: same table, but .3 is unavailable.
        svc.set_weight(&mut s, b, 0);
        assert_eq!(s.table(), &before);
        assert_eq!(svc.pick(&mut s, &input("10.0.0.5")), None);
        assert_eq!(svc.pick(&mut s, &input("10.0.0.7")), Some(c));
    }

    #[test]
    fn mh_fallback_on_weight_zero_or_overload_spec_4_9() {
        let mut s = Mh::new(MaglevConfig::KERNEL).unwrap();
        let (mut svc, [_a, b, _c]) = three_dests(&mut s);
        let mut inp = input("10.0.0.5"); // slot 3620 → .3
        svc.d(b).overload = true;
        assert_eq!(svc.pick(&mut s, &inp), None);
        inp.flags = ServiceFlags(ServiceFlags::SCHED1);
        let t = s.table().clone();
        let addr = ip("10.0.0.5");
        // The kernel's probe order: offsets (k + 3620) mod 4093.
        let expect = (0..4093)
            .map(|k| t.get(t.slot(addr, 0, (k + 3620) % 4093)).unwrap())
            .find(|&i| i != 1)
            .map(|i| s.table_ids()[i]);
        assert!(expect.is_some());
        assert_eq!(svc.pick(&mut s, &inp), expect);
        svc.d(b).overload = false;
        svc.set_weight(&mut s, b, 0);
        assert_eq!(svc.pick(&mut s, &inp), expect);
        svc.set_weight(&mut s, b, 1);
        assert_eq!(svc.pick(&mut s, &inp), Some(b));
    }

    #[test]
    fn mh_port_flag_spec_4_9() {
        let mut s = Mh::new(MaglevConfig::KERNEL).unwrap();
        let (svc, _) = three_dests(&mut s);
        let mut inp = input("10.0.0.5");
        inp.sport = 5000;
        inp.flags = ServiceFlags(ServiceFlags::SCHED2);
        let t = s.table();
        let want = t.lookup(ip("10.0.0.5"), 5000).map(|i| s.table_ids()[i]);
        let want0 = t.lookup(ip("10.0.0.5"), 0).map(|i| s.table_ids()[i]);
        assert_eq!(svc.pick(&mut s, &inp), want);
        inp.protocol = 1;
        assert_eq!(svc.pick(&mut s, &inp), want0);
    }

    #[test]
    fn mh_too_many_dests_keeps_old_table_spec_4_9() {
        let cfg = MaglevConfig {
            table_size: 251,
            seed: None,
        };
        let mut s = Mh::new(cfg).unwrap();
        let mut svc = Svc::default();
        for i in 0..251 {
            svc.add(&mut s, &format!("10.2.{}.{}", i / 200, i % 200 + 1), 1);
        }
        let t = s.table().clone();
        assert_eq!(t.servers(), 251);
        let extra = svc.add(&mut s, "10.3.0.1", 1);
        assert_eq!(s.table(), &t);
        // Lookups still work for the dests that are listed; the newcomer has no slot.
        for i in 0..50 {
            let id = svc.pick(&mut s, &input(&format!("172.16.0.{i}")));
            assert!(id.is_some() && id != Some(extra));
        }
        // A dest deleted while the stale table names it is unavailable, not dangling.
        let victim = s.table_ids()[t.lookup(ip("172.16.0.1"), 0).unwrap()];
        svc.del(&mut s, victim); // 251 dests again: the table is rebuilt
        assert_ne!(s.table(), &t);
        assert_ne!(svc.pick(&mut s, &input("172.16.0.1")), Some(victim));
    }

    #[test]
    fn mh_ext_handoff_publish_and_adopt() {
        let cfg = MaglevConfig {
            table_size: 65537,
            seed: Some(42),
        };
        let mut s = Mh::new(cfg).unwrap();
        let h = s.handoff();
        s.set_rebuild_on_change(false);
        let (svc, [a, b, c]) = three_dests(&mut s);
        // Nothing built in-engine: every lookup misses.
        assert_eq!(svc.pick(&mut s, &input("10.0.0.5")), None);
        let servers: Vec<_> = svc
            .dests()
            .iter()
            .map(|(_, d)| (fold(d.cfg.addr), d.cfg.port, d.last_weight))
            .collect();
        let table = MaglevTable::build(&cfg, &servers).unwrap();
        let want = table.lookup(ip("10.0.0.5"), 0).unwrap();
        assert_eq!(
            h.publish(table.clone(), vec![c]),
            Err(MaglevError::ServerCountMismatch { table: 3, ids: 1 })
        );
        h.publish(table, vec![c, b, a]).unwrap();
        assert_eq!(svc.pick(&mut s, &input("10.0.0.5")), Some([c, b, a][want]));
        assert_eq!(s.table().size(), 65537);
    }

    /// FNV-1a over the slots: a fingerprint to pin tables across processes and versions.
    fn fingerprint(t: &MaglevTable) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &s in t.slots() {
            for b in s.to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    fn servers(n: usize) -> Vec<(u32, u16, u32)> {
        (0..n)
            .map(|i| (0x0a00_0000 + i as u32 * 7 + 1, 80, 1))
            .collect()
    }

    #[test]
    fn mh_tables_pinned_across_processes_spec_4_9_and_ext() {
        // If this fails, the table layout for a given seed changed: every balancer of a
        // deployment must then be upgraded together. Both values were also computed with an
        // independent transcription of kernel-semantics Appendix A, extended with the seeded keys.
        let cfg = MaglevConfig {
            table_size: 65537,
            seed: Some(0x5eed),
        };
        let t = MaglevTable::build(&cfg, &servers(100)).unwrap();
        assert_eq!(
            fingerprint(&t),
            SEEDED_FINGERPRINT,
            "{:#x}",
            fingerprint(&t)
        );
        let k = MaglevTable::build(&MaglevConfig::KERNEL, &servers(100)).unwrap();
        assert_eq!(
            fingerprint(&k),
            KERNEL_FINGERPRINT,
            "{:#x}",
            fingerprint(&k)
        );
        // Another seed gives another table.
        let other = MaglevTable::build(
            &MaglevConfig {
                table_size: 65537,
                seed: Some(0x5eee),
            },
            &servers(100),
        )
        .unwrap();
        assert_ne!(fingerprint(&other), SEEDED_FINGERPRINT);
    }

    const SEEDED_FINGERPRINT: u64 = 0xc765_65fa_ec19_5c01;
    const KERNEL_FINGERPRINT: u64 = 0xbaaa_a2f4_3948_56a9;

    /// Fraction of the table whose server changed when server `removed` is taken out, not
    /// counting the slots it owned (those must move).
    fn excess_movement(cfg: &MaglevConfig, n: usize, removed: usize) -> f64 {
        let all = servers(n);
        let before = MaglevTable::build(cfg, &all).unwrap();
        let mut rest = all.clone();
        rest.remove(removed);
        let after = MaglevTable::build(cfg, &rest).unwrap();
        let moved = before
            .slots()
            .iter()
            .zip(after.slots())
            .filter(|&(&b, &a)| {
                // Back to the old numbering.
                let a = if a as usize >= removed { a + 1 } else { a };
                b as usize != removed && a != b
            })
            .count();
        moved as f64 / before.size() as f64
    }

    /// Maglev is not minimally disruptive: removing one of N servers moves its 1/N of the
    /// slots plus some more, about half a percent of the table once N ≥ 100. Measured with
    /// M = 65537, averaged over 8 removed positions: N = 10: +0.0028 of the table (3% of 1/N),
    /// N = 100: +0.0057 (57%), N = 1000: +0.0055 (5.5 × 1/N).
    /// `cargo test -p rvs-core --lib mh_ext_removal -- --nocapture` prints them.
    #[test]
    fn mh_ext_removal_moves_about_one_nth() {
        let cfg = MaglevConfig {
            table_size: 65537,
            seed: None,
        };
        for n in [10usize, 100, 1000] {
            let trials: Vec<usize> = (0..8).map(|k| k * (n - 1) / 7).collect();
            let excess = trials
                .iter()
                .map(|&r| excess_movement(&cfg, n, r))
                .sum::<f64>()
                / trials.len() as f64;
            let share = 1.0 / n as f64;
            println!(
                "M=65537 N={n}: removing one server moves its 1/N = {share:.4} of the slots \
                 plus {excess:.4} more ({:.0}% of 1/N)",
                excess / share * 100.0
            );
            assert!(excess < 0.01, "N={n}: excess {excess}");
            if n == 10 {
                assert!(excess < share / 10.0, "N={n}: excess {excess}");
            }
        }
    }

    /// The kernel's population, transcribed plainly (one probe at a time, a bool per slot).
    fn reference_build(cfg: &MaglevConfig, servers: &[(u32, u16, u32)]) -> Vec<u32> {
        let m = cfg.table_size;
        let (k1, k2) = cfg.keys();
        let lw: Vec<i32> = servers.iter().map(|s| s.2 as i32).collect();
        let g = lw
            .iter()
            .filter(|&&w| w > 0)
            .fold(0, |g, &w| if g > 0 { gcd(w, g) } else { w });
        let mut table = vec![MaglevTable::EMPTY; m as usize];
        if g < 1 {
            return table;
        }
        let max = lw.iter().copied().max().unwrap_or(0) / g;
        let rshift = ((32 - max.leading_zeros()) as i32 - cfg.tab_bits() as i32).max(0);
        let mut st: Vec<(u32, u32, i32)> = servers
            .iter()
            .zip(&lw)
            .map(|(&(a, p, _), &w)| {
                let t = (w / g) >> rshift;
                let turns = if t != 0 { t } else { (w != 0) as i32 };
                (
                    mh_hash(a, p, &k1, 0) % m,
                    mh_hash(a, p, &k2, 0) % (m - 1) + 1,
                    turns,
                )
            })
            .collect();
        let mut n = 0;
        loop {
            for (i, (perm, skip, turns)) in st.iter_mut().enumerate() {
                for _ in 0..*turns {
                    while table[*perm as usize] != MaglevTable::EMPTY {
                        *perm = (*perm + *skip) % m;
                    }
                    table[*perm as usize] = i as u32;
                    n += 1;
                    if n == m {
                        return table;
                    }
                }
            }
        }
    }

    #[test]
    fn mh_fast_population_equals_reference_large_tables_spec_4_9() {
        for (m, n, seed) in [
            (65537, 1000, None),
            (131_071, 7, Some(3)),
            (65521, 300, Some(9)),
        ] {
            let cfg = MaglevConfig {
                table_size: m,
                seed,
            };
            let list: Vec<_> = servers(n)
                .into_iter()
                .enumerate()
                .map(|(i, (a, p, _))| (a, p, 1 + (i as u32 * 7) % 5))
                .collect();
            let fast = MaglevTable::build(&cfg, &list).unwrap();
            assert!(
                fast.slots() == reference_build(&cfg, &list).as_slice(),
                "M={m} N={n}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn mh_fast_population_equals_reference_spec_4_9(
            m in proptest::sample::select(vec![251u32, 257, 509, 1021, 2039, 4093, 8191]),
            ws in proptest::collection::vec(0u32..100, 1..120),
            seed in proptest::option::of(any::<u64>()),
        ) {
            let cfg = MaglevConfig { table_size: m, seed };
            let list: Vec<_> = ws.iter().take(m as usize).enumerate()
                .map(|(i, &w)| (0x0a00_0000 ^ (i as u32).wrapping_mul(2_654_435_761), 80, w))
                .collect();
            let fast = MaglevTable::build(&cfg, &list).unwrap();
            prop_assert!(fast.slots() == reference_build(&cfg, &list).as_slice());
        }

        #[test]
        fn mh_share_within_one_percent_spec_4_9(n in 1usize..=40, seed in proptest::option::of(any::<u64>())) {
            // M ≥ 100·N, equal weights: each server within 1% of M/N.
            let cfg = MaglevConfig { table_size: 4093, seed };
            let t = MaglevTable::build(&cfg, &servers(n)).unwrap();
            let ideal = 4093.0 / n as f64;
            for c in t.counts() {
                prop_assert!((c as f64 - ideal).abs() <= ideal * 0.01, "{} vs {}", c, ideal);
            }
        }

        #[test]
        fn mh_ext_same_seed_same_table(seed in any::<u64>(), n in 1usize..50) {
            let cfg = MaglevConfig { table_size: 2039, seed: Some(seed) };
            let a = MaglevTable::build(&cfg, &servers(n)).unwrap();
            let b = MaglevTable::build(&cfg, &servers(n)).unwrap();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn mh_table_full_and_weighted_spec_4_9(ws in proptest::collection::vec(0u32..300, 1..30)) {
            let servers: Vec<_> = ws.iter().enumerate().map(|(i, &w)| (i as u32 * 977, 0, w)).collect();
            let t = MaglevTable::build(&MaglevConfig::KERNEL, &servers).unwrap();
            let any = ws.iter().any(|&w| w > 0);
            let counts = t.counts();
            prop_assert_eq!(counts.iter().sum::<u32>(), if any { 4093 } else { 0 });
            for (c, &w) in counts.iter().zip(&ws) {
                prop_assert_eq!(*c == 0, w == 0);
            }
        }
    }
}
