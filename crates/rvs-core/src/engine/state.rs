//! The engine's whole state as bytes, for handing a running engine to another process (a
//! restart or an upgrade of `rvs daemon`, issue 14) — rvs's own, the kernel keeps its table
//! in kernel memory instead.
//!
//! # Format (version 1)
//!
//! ```text
//! header, 32 bytes, little-endian:
//!   0  8  magic  "RVSSTATE"
//!   8  2  format version (1)
//!  10  2  flags (0)
//!  12  4  reserved (0)
//!  16  8  payload length
//!  24  8  checksum of the payload ([`checksum`])
//! payload: three sections, each a 4-byte tag, a u64 length and its body
//!   "META"  JSON: profile, sysctls, timeouts, services in insertion order with their real
//!           servers in kernel order, configuration, statistics, estimators and scheduler
//!           state; trashed real servers; totals, counters, defences, the
//!           configuration generation; how many entries follow
//!   "CON4"  the IPv4 entries, fixed 39-byte records
//!   "CON6"  the IPv6 entries, fixed 75-byte records
//! record: caddr vaddr daddr (4 or 16 bytes each), cport vport dport lport (u16),
//!         proto state (u8), flags (u16, the persistent bits only), in_pkts laddr (u8),
//!         reply-shadow depth (u8: how many newer entries with its reply key hide it),
//!         real server (u32: its rank among the services' real servers, then the trash),
//!         controlling template (u32: its rank among this family's templates, or u32::MAX),
//!         time left (u32, 4 ms ticks from the `now` of the export)
//! ```
//!
//! Templates come first (so a connection's template is already known when it is read), then
//! the connections on no eviction list, then the half-open list and the closed/UDP list each
//! oldest first: an import rebuilds the eviction lists in the same order. Timers are stored as
//! time left, so the importing engine's clock may start anywhere.
//!
//! [`Engine::import_state`] checks everything (magic, version, length, checksum, every
//! service and real server through the same validation as `ipvsadm`, every entry's protocol,
//! state, flags, references and full-NAT port) and refuses bad input with a [`StateError`];
//! it never panics. What is not carried: the caches of lblc/lblcr (re-learnt), the random
//! source of `twos` and of the drop_entry defence (reseeded from the new configuration), and
//! the full-NAT port cursors (the ports in use are).

use core::fmt;
use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Defence, Engine, EngineConfig, EngineCounters, Fam};
use crate::addr::{Addr, V4, V6};
use crate::command::Command;
use crate::conn::{ConnTable, List, NONE, flags as cf};
use crate::dest::{Dest, DestConfig, DestId, ForwardMethod};
use crate::proto::{TimeoutTable, sctp::SctpState, tcp::TcpState};
use crate::sched::Dests;
use crate::service::{Protocol, ServiceConfig, ServiceKey};
use crate::stats::Stats;
use crate::sysctl::Sysctls;
use crate::time::{Instant, Tick};

/// First bytes of an engine state.
pub const STATE_MAGIC: [u8; 8] = *b"RVSSTATE";
/// The format version this build writes and reads.
pub const STATE_VERSION: u16 = 1;
const HEADER: usize = 32;

/// Flag bits an entry keeps across a hand-over (the others are the table's bookkeeping).
const PERSISTENT: u16 =
    cf::FWD_MASK | cf::NOOUTPUT | cf::INACTIVE | cf::TEMPLATE | cf::NFCT | cf::INVALIDATED;

/// Why a state was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// Not an rvs engine state.
    Foreign,
    /// A format version this build does not read.
    Version {
        /// The version found.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// Shorter than its header says.
    Truncated,
    /// The checksum does not match: damaged in transit or storage.
    Checksum,
    /// Well-formed bytes whose content is inconsistent or invalid.
    Invalid(String),
    /// Valid, but this engine cannot take it (its configuration is too small for it).
    Unfit(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Foreign => f.write_str("not an rvs engine state (bad magic)"),
            StateError::Version { found, supported } => write!(
                f,
                "engine state format version {found}, but this binary reads version {supported}"
            ),
            StateError::Truncated => f.write_str("engine state truncated"),
            StateError::Checksum => f.write_str("engine state checksum mismatch (damaged)"),
            StateError::Invalid(m) => write!(f, "invalid engine state: {m}"),
            StateError::Unfit(m) => write!(f, "engine state refused: {m}"),
        }
    }
}

impl std::error::Error for StateError {}

fn invalid<T>(m: impl Into<String>) -> Result<T, StateError> {
    Err(StateError::Invalid(m.into()))
}

/// What the header of a state says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateInfo {
    /// Format version.
    pub version: u16,
    /// Payload bytes.
    pub payload_len: u64,
}

/// Reads and checks the header of a state (magic, version, length; not the checksum).
pub fn state_info(b: &[u8]) -> Result<StateInfo, StateError> {
    if b.len() < 10 {
        return Err(if STATE_MAGIC.starts_with(&b[..b.len().min(8)]) {
            StateError::Truncated
        } else {
            StateError::Foreign
        });
    }
    if b[..8] != STATE_MAGIC {
        return Err(StateError::Foreign);
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != STATE_VERSION {
        return Err(StateError::Version {
            found: version,
            supported: STATE_VERSION,
        });
    }
    if b.len() < HEADER {
        return Err(StateError::Truncated);
    }
    let payload_len = rd_u64(&b[16..24]);
    if (b.len() - HEADER) as u64 != payload_len {
        return Err(if ((b.len() - HEADER) as u64) < payload_len {
            StateError::Truncated
        } else {
            StateError::Invalid("bytes after the payload".into())
        });
    }
    if b[10..16] != [0; 6] {
        return invalid("unknown header flags");
    }
    Ok(StateInfo {
        version,
        payload_len,
    })
}

/// The payload checksum: four independent 64-bit multiply-rotate lanes over 32-byte blocks,
/// folded with the length. Not cryptographic: it catches damage, not forgery (the hand-over
/// socket is root-only). Stable across builds and platforms.
pub fn checksum(b: &[u8]) -> u64 {
    const K: [u64; 4] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0xD6E8_FEB8_6659_FD93,
    ];
    let mut h = K;
    let mut blocks = b.chunks_exact(32);
    let step = |h: &mut [u64; 4], blk: &[u8]| {
        for (l, hl) in h.iter_mut().enumerate() {
            let w = rd_u64(&blk[l * 8..l * 8 + 8]);
            *hl = (*hl ^ w).wrapping_mul(K[(l + 1) & 3] | 1).rotate_left(29);
        }
    };
    for blk in &mut blocks {
        step(&mut h, blk);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 32];
        last[..rest.len()].copy_from_slice(rest);
        step(&mut h, &last);
    }
    let mut x = (b.len() as u64).wrapping_mul(K[0]);
    for (l, hl) in h.iter().enumerate() {
        x = (x ^ hl.rotate_left(l as u32 * 16)).wrapping_mul(K[3] | 1);
        x ^= x >> 31;
    }
    x
}

#[inline]
fn rd_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// A real server as carried.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DestState {
    svc_key: ServiceKey,
    cfg: DestConfig,
    last_weight: u32,
    available: bool,
    overload: bool,
    /// Trash: nanoseconds it has been idle and unreferenced, if it was.
    idle_for: Option<u64>,
    /// Trash: the rank of the service its service id now names, if any (the slot may have
    /// been reused by a newer service).
    #[serde(default)]
    svc_rank: Option<u32>,
    stats: Stats,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ServiceState {
    cfg: ServiceConfig,
    stats: Stats,
    /// Kernel order (newest first).
    dests: Vec<DestState>,
    /// [`crate::sched::Scheduler::export_state`].
    sched: Vec<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Meta {
    writer: String,
    generation: u64,
    profile: crate::profile::Profile,
    sysctls: Sysctls,
    timeouts: TimeoutTable,
    netfilter_conntrack: bool,
    services: Vec<ServiceState>,
    trash: Vec<DestState>,
    totals: Stats,
    counters: EngineCounters,
    defence: Defence,
    /// Nanoseconds until the estimator, defence and trash timers are due.
    timers_in: [u64; 3],
    /// Full-NAT local addresses, by the index entries refer to.
    lpool4: Vec<IpAddr>,
    lpool6: Vec<IpAddr>,
    /// Full-NAT port allocation cursors, by the same index.
    cursors4: Vec<u16>,
    cursors6: Vec<u16>,
    entries4: u64,
    entries6: u64,
}

fn dest_state(d: &Dest, now: Instant) -> DestState {
    DestState {
        svc_key: d.svc_key,
        cfg: d.cfg,
        last_weight: d.last_weight,
        available: d.available,
        overload: d.overload,
        idle_for: d.trash_idle_since.map(|t| now.nanos_since(t)),
        svc_rank: None,
        stats: d.stats.clone(),
    }
}

/// Record I/O per family.
trait Wire: Fam {
    const LEN: usize;
    fn bytes(&self) -> &[u8];
    fn get(b: &[u8]) -> Self;
}

impl Wire for V4 {
    const LEN: usize = 4;
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn get(b: &[u8]) -> Self {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[..4]);
        V4(a)
    }
}

impl Wire for V6 {
    const LEN: usize = 16;
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn get(b: &[u8]) -> Self {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        V6(a)
    }
}

const fn record_len(alen: usize) -> usize {
    3 * alen + 8 + 2 + 2 + 3 + 4 + 4 + 4
}

fn put_section(out: &mut Vec<u8>, tag: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(tag);
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    body(out);
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

/// Writes one family's entries; `dest_rank` maps a real server to its rank.
fn put_entries<A: Wire>(
    tab: &ConnTable<A>,
    now: Tick,
    dest_rank: &[u32],
    out: &mut Vec<u8>,
) -> u64 {
    let slots = tab.capacity_slots() as usize;
    // Template ranks by slab index.
    let mut rank = vec![NONE; slots];
    let mut n_tmpl = 0u32;
    let mut count = 0u64;
    let mut put = |c: &crate::conn::Conn<A>, depth: u32, rank: &[u32], out: &mut Vec<u8>| {
        // One record, built in place and appended at once.
        let mut r = [0u8; record_len(16)];
        let mut at = 0;
        let mut w = |b: &[u8]| {
            r[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        w(A::bytes(&c.caddr));
        w(A::bytes(&c.vaddr));
        w(A::bytes(&c.daddr));
        for p in [c.cport, c.vport, c.dport, c.lport] {
            w(&p.to_le_bytes());
        }
        w(&[c.proto, c.state]);
        w(&(c.flags & PERSISTENT).to_le_bytes());
        w(&[c.in_pkts, c.laddr, depth.min(255) as u8]);
        w(&dest_rank
            .get(c.dest.index())
            .copied()
            .unwrap_or(NONE)
            .to_le_bytes());
        let link = match c.control() {
            Some(t) => rank.get(t as usize).copied().unwrap_or(NONE),
            None => NONE,
        };
        w(&link.to_le_bytes());
        w(&c.expires.since(now).to_le_bytes());
        out.extend_from_slice(&r[..at]);
        count += 1;
    };
    for (i, c) in tab.iter() {
        if c.is_template() && !c.has(cf::ONE_PACKET) {
            put(c, 0, &rank, out);
            rank[i as usize] = n_tmpl;
            n_tmpl += 1;
        }
    }
    for (i, c) in tab.iter() {
        if !c.is_template() && !c.has(cf::ONE_PACKET) && tab.list_of(i).is_none() {
            put(c, tab.shadow_depth(i), &rank, out);
        }
    }
    for l in [List::Embryonic, List::Idle] {
        let mut at = tab.list_head(l);
        while let Some(i) = at {
            if let Some(c) = tab.get(i) {
                put(c, tab.shadow_depth(i), &rank, out);
            }
            at = tab.list_next(i);
        }
    }
    count
}

impl Engine {
    /// The whole state of the engine as bytes (the format in this module's documentation),
    /// with every timer taken relative to `now`. Runs the timers due at `now` first, so that
    /// nothing already expired is carried.
    pub fn export_state(&mut self, now: Instant) -> Vec<u8> {
        self.handle_timeout(now);
        let now = self.core.now;
        let c = &self.core;
        // Rank of each real server, by arena index (a plain array: one lookup per entry).
        let slots = c
            .dests
            .iter()
            .map(|(id, _)| id.index() + 1)
            .max()
            .unwrap_or(0);
        let mut dest_rank = vec![NONE; slots];
        let mut ranked = 0u32;
        let mut services = Vec::new();
        for &id in c.services.ids() {
            let Some(s) = c.services.get(id) else {
                continue;
            };
            let dests = Dests {
                order: &s.dests,
                arena: &c.dests,
            };
            let mut ds = Vec::with_capacity(s.dests.len());
            for &d in &s.dests {
                dest_rank[d.index()] = ranked;
                ranked += 1;
                ds.push(dest_state(&c.dests[d], now));
            }
            services.push(ServiceState {
                cfg: s.cfg.clone(),
                stats: s.stats.clone(),
                dests: ds,
                sched: s
                    .sched
                    .as_ref()
                    .map(|x| x.export_state(dests))
                    .unwrap_or_default(),
            });
        }
        let mut trash = Vec::new();
        for &d in &c.trash {
            if let Some(dest) = c.dests.get(d) {
                dest_rank[d.index()] = ranked;
                ranked += 1;
                let mut st = dest_state(dest, now);
                st.svc_rank = c
                    .services
                    .ids()
                    .iter()
                    .position(|&s| s == dest.svc)
                    .map(|p| p as u32);
                trash.push(st);
            }
        }
        let mut meta = Meta {
            writer: concat!("rvs-core ", env!("CARGO_PKG_VERSION")).to_string(),
            generation: c.generation,
            profile: c.profile,
            sysctls: c.sysctl.clone(),
            timeouts: c.timeouts.clone(),
            netfilter_conntrack: c.netfilter_conntrack,
            services,
            trash,
            totals: c.totals.clone(),
            counters: c.counters.clone(),
            defence: c.defence.clone(),
            timers_in: [
                c.next_est.nanos_since(now),
                c.next_defence.nanos_since(now),
                c.next_trash.nanos_since(now),
            ],
            lpool4: self.v4.lpool.iter().map(|a| a.to_ip()).collect(),
            lpool6: self.v6.lpool.iter().map(|a| a.to_ip()).collect(),
            cursors4: c.ports_v4.cursors(),
            cursors6: c.ports_v6.cursors(),
            entries4: 0,
            entries6: 0,
        };
        let tick = now.tick();
        let mut con4 = Vec::with_capacity(self.v4.len() * record_len(4));
        meta.entries4 = put_entries(&self.v4, tick, &dest_rank, &mut con4);
        let mut con6 = Vec::with_capacity(self.v6.len() * record_len(16));
        meta.entries6 = put_entries(&self.v6, tick, &dest_rank, &mut con6);
        // Meta serializes plain data: it cannot fail.
        let json = serde_json::to_vec(&meta).unwrap_or_default();

        let mut out = Vec::with_capacity(HEADER + 36 + json.len() + con4.len() + con6.len());
        out.extend_from_slice(&STATE_MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&[0; 16]);
        put_section(&mut out, b"META", |o| o.extend_from_slice(&json));
        put_section(&mut out, b"CON4", |o| o.extend_from_slice(&con4));
        put_section(&mut out, b"CON6", |o| o.extend_from_slice(&con6));
        let payload_len = (out.len() - HEADER) as u64;
        let sum = checksum(&out[HEADER..]);
        out[16..24].copy_from_slice(&payload_len.to_le_bytes());
        out[24..32].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// A new engine built from `cfg` (its table bound, seed, full-NAT addresses and scheduler
    /// options) holding the state `bytes` describes (services, real servers, entries, timers,
    /// statistics, profile, sysctls, timeouts), with its clock at `now`. Refuses anything
    /// malformed, inconsistent, or that `cfg` cannot hold.
    pub fn import_state(
        cfg: EngineConfig,
        now: Instant,
        bytes: &[u8],
    ) -> Result<Engine, StateError> {
        state_info(bytes)?;
        let payload = &bytes[HEADER..];
        if checksum(payload) != rd_u64(&bytes[24..32]) {
            return Err(StateError::Checksum);
        }
        let mut rest = payload;
        let meta_bytes = section(&mut rest, b"META")?;
        let con4 = section(&mut rest, b"CON4")?;
        let con6 = section(&mut rest, b"CON6")?;
        if !rest.is_empty() {
            return invalid("bytes after the last section");
        }
        let meta: Meta = serde_json::from_slice(meta_bytes)
            .map_err(|e| StateError::Invalid(format!("META: {e}")))?;
        let total = meta.entries4.saturating_add(meta.entries6);
        if total > cfg.conn_max as u64 {
            return Err(StateError::Unfit(format!(
                "it holds {total} entries, more than this daemon's conn_max ({})",
                cfg.conn_max
            )));
        }
        for (n, body, len) in [
            (meta.entries4, con4, record_len(4)),
            (meta.entries6, con6, record_len(16)),
        ] {
            if (body.len() as u64) != n.saturating_mul(len as u64) {
                return invalid("entry section length does not match its count");
            }
        }

        let mut e = Engine::new(EngineConfig {
            profile: meta.profile,
            start: now,
            ..cfg
        });
        // Sysctls and timeouts through the same validation as the control plane.
        for (name, value) in meta.sysctls.list() {
            e.core
                .sysctl
                .set(&name, &value)
                .map_err(|m| StateError::Invalid(format!("sysctl {name}: {m}")))?;
        }
        let mut timeouts = meta.timeouts.clone();
        if !timeouts.loaded() {
            return invalid("a timeout is out of range");
        }
        e.core.timeouts = timeouts;
        e.core.netfilter_conntrack = meta.netfilter_conntrack;

        // Services and real servers, through the control plane's validation.
        let mut ranks: Vec<DestId> = Vec::new();
        for s in &meta.services {
            e.apply(now, Command::AddService(s.cfg.clone()))
                .map_err(|x| StateError::Invalid(format!("service {}: {x}", s.cfg.key)))?;
            for d in s.dests.iter().rev() {
                if d.svc_key != s.cfg.key {
                    return invalid(format!("real server {} under another service", d.cfg.addr));
                }
                e.apply(now, Command::AddDest(s.cfg.key, d.cfg))
                    .map_err(|x| {
                        StateError::Invalid(format!(
                            "service {} real server {}:{}: {x}",
                            s.cfg.key, d.cfg.addr, d.cfg.port
                        ))
                    })?;
            }
            let c = &mut e.core;
            let sid = c
                .services
                .find_key(&s.cfg.key)
                .ok_or_else(|| StateError::Invalid("service vanished".into()))?;
            let svc = c
                .services
                .get_mut(sid)
                .ok_or_else(|| StateError::Invalid("service vanished".into()))?;
            svc.stats = s.stats.clone();
            if svc.dests.len() != s.dests.len() {
                return invalid(format!("service {}: real servers repeated", s.cfg.key));
            }
            for (&id, d) in svc.dests.iter().zip(&s.dests) {
                let x = &mut c.dests[id];
                x.last_weight = d.last_weight;
                x.overload = d.overload;
                x.stats = d.stats.clone();
                ranks.push(id);
            }
            // Rebuild the scheduler from the final real servers, then restore its own state.
            if let Some(sch) = svc.sched.as_mut() {
                let dests = Dests {
                    order: &svc.dests,
                    arena: &c.dests,
                };
                sch.init(dests);
                if !sch.import_state(dests, &s.sched) {
                    return invalid(format!("service {}: scheduler state", s.cfg.key));
                }
            } else if !s.sched.is_empty() {
                return invalid(format!("service {}: scheduler state", s.cfg.key));
            }
        }
        for d in &meta.trash {
            if d.cfg.addr.is_ipv6() != d.svc_key.is_v6() {
                return invalid("trashed real server of the wrong family");
            }
            let svc = match d.svc_rank {
                None => crate::service::ServiceId(u32::MAX),
                Some(r) => match e.core.services.ids().get(r as usize) {
                    Some(&id) => id,
                    None => return invalid("trashed real server of an unknown service"),
                },
            };
            let mut x = Dest::new(svc, d.svc_key, d.cfg);
            x.available = false;
            x.last_weight = d.last_weight;
            x.overload = d.overload;
            x.stats = d.stats.clone();
            x.trash_idle_since = d
                .idle_for
                .map(|ns| Instant::from_nanos(now.as_nanos().saturating_sub(ns)));
            let id = e.core.dests.insert(x);
            e.core.trash.push(id);
            ranks.push(id);
        }

        // The entries.
        let map4 = lpool_map(&meta.lpool4, &e.v4.lpool)?;
        let map6 = lpool_map(&meta.lpool6, &e.v6.lpool)?;
        load_entries::<V4>(&mut e, now, con4, &ranks, &map4)?;
        load_entries::<V6>(&mut e, now, con6, &ranks, &map6)?;
        for (cur, map, pool) in [
            (&meta.cursors4, &map4, &mut e.core.ports_v4),
            (&meta.cursors6, &map6, &mut e.core.ports_v6),
        ] {
            for (k, &c) in cur.iter().enumerate() {
                if let Some(&a) = map.get(k) {
                    pool.set_cursor(a, c);
                }
            }
        }

        // Counters and timers last: loading must not count anything.
        let c = &mut e.core;
        let mut counters = meta.counters;
        counters.drops.resize(crate::decision::DROP_REASONS, 0);
        c.counters = counters;
        c.totals = meta.totals;
        let d = &meta.defence;
        if d.drop_rate < 0
            || d.drop_counter < -1
            || d.todrop_counter.iter().any(|&t| !(-1..=9).contains(&t))
        {
            return invalid("defence state out of range");
        }
        c.defence = meta.defence;
        c.generation = meta.generation;
        let [est, def, tr] = meta
            .timers_in
            .map(|ns| now.add_nanos(ns.min(120 * 1_000_000_000)));
        c.next_est = est;
        c.next_defence = def;
        c.next_trash = tr;
        c.next_deadline = now;
        Ok(e)
    }
}

/// Takes the section `tag` off the front of `rest`.
fn section<'a>(rest: &mut &'a [u8], tag: &[u8; 4]) -> Result<&'a [u8], StateError> {
    let r: &'a [u8] = rest;
    if r.len() < 12 {
        return Err(StateError::Truncated);
    }
    if &r[..4] != tag {
        return invalid(format!("expected section {}", String::from_utf8_lossy(tag)));
    }
    let len = rd_u64(&r[4..12]);
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(12))
        .filter(|&e| e <= r.len())
        .ok_or(StateError::Truncated)?;
    *rest = &r[end..];
    Ok(&r[12..end])
}

/// Maps the exported full-NAT address indexes to this engine's.
fn lpool_map<A: Addr>(old: &[IpAddr], new: &[A]) -> Result<Vec<u8>, StateError> {
    old.iter()
        .map(|a| {
            new.iter()
                .position(|n| n.to_ip() == *a)
                .map(|p| p as u8)
                .ok_or_else(|| {
                    StateError::Unfit(format!(
                        "full-NAT local address {a} is in use but not configured here"
                    ))
                })
        })
        .collect()
}

fn valid_state(proto: u8, state: u8, template: bool) -> bool {
    if template {
        return state <= 1;
    }
    match Protocol::from_ipproto(proto) {
        Some(Protocol::Tcp) => TcpState::from_u8(state).is_some(),
        Some(Protocol::Sctp) => SctpState::from_u8(state).is_some(),
        Some(Protocol::Udp) => state == 0,
        None => false,
    }
}

fn load_entries<A: Wire>(
    e: &mut Engine,
    now: Instant,
    body: &[u8],
    ranks: &[DestId],
    lmap: &[u8],
) -> Result<(), StateError> {
    let len = record_len(A::LEN);
    let n = body.len() / len;
    let (core, tab) = A::split(e);
    // Room for the whole bound up front, as `Engine::preallocate` gives the IPv4 table, so that
    // no index grows (and rehashes every entry) later on the packet path.
    tab.reserve(if A::V6 {
        n
    } else {
        n.max(core.conn_max as usize)
    });
    let tick = now.tick();
    // New slab index of each template, by rank.
    let mut templates: Vec<u32> = Vec::new();
    let mut seen_conn = false;
    let mut plain: Vec<u32> = Vec::with_capacity(n);
    let mut deep: Vec<(u8, u32)> = Vec::new();
    for r in body.chunks_exact(len) {
        let k = 3 * A::LEN;
        let (caddr, vaddr, daddr) = (A::get(r), A::get(&r[A::LEN..]), A::get(&r[2 * A::LEN..]));
        let u16_at = |o: usize| u16::from_le_bytes([r[k + o], r[k + o + 1]]);
        let u32_at =
            |o: usize| u32::from_le_bytes([r[k + o], r[k + o + 1], r[k + o + 2], r[k + o + 3]]);
        let (cport, vport, dport, lport) = (u16_at(0), u16_at(2), u16_at(4), u16_at(6));
        let (proto, state) = (r[k + 8], r[k + 9]);
        let flags = u16_at(10);
        let (in_pkts, laddr, depth) = (r[k + 12], r[k + 13], r[k + 14]);
        let (dest_rank, link, left) = (u32_at(15), u32_at(19), u32_at(23));

        if flags & !PERSISTENT != 0 || flags & cf::FWD_MASK > cf::FWD_FULLNAT {
            return invalid(format!("entry flags {flags:#x}"));
        }
        let template = flags & cf::TEMPLATE != 0;
        if template && seen_conn {
            return invalid("a template after connections");
        }
        seen_conn |= !template;
        if !valid_state(proto, state, template)
            || (template && proto != 0 && Protocol::from_ipproto(proto).is_none())
        {
            return invalid(format!("entry protocol {proto} state {state}"));
        }
        let Some(&dest) = ranks.get(dest_rank as usize) else {
            return invalid(format!(
                "entry refers to real server {dest_rank} of {}",
                ranks.len()
            ));
        };
        let d = &core.dests[dest];
        if A::from_ip(d.cfg.addr) != Some(daddr) {
            return invalid("entry's real-server address differs from its real server's");
        }
        let fullnat = flags & cf::FWD_MASK == cf::FWD_FULLNAT && !template;
        let mut laddr = laddr;
        if fullnat {
            let Some(&l) = lmap.get(laddr as usize) else {
                return invalid("full-NAT entry with an unknown local address");
            };
            laddr = l;
            if !A::ports(core).take(laddr, lport) {
                return invalid(format!("full-NAT local port {lport} taken twice"));
            }
        }
        let control = if template || link == NONE {
            NONE
        } else {
            match templates.get(link as usize) {
                Some(&t) => t,
                None => return invalid("entry refers to an unknown template"),
            }
        };
        let expires = tick.add(left);
        let entry = crate::conn::Conn {
            caddr,
            vaddr,
            daddr,
            cport,
            vport,
            dport,
            lport,
            proto,
            state,
            flags,
            dest,
            link: if template { 0 } else { control },
            expires,
            wheel: 0,
            in_pkts,
            laddr,
            prev: NONE,
            next: NONE,
        };
        let i = tab.alloc(entry);
        if template {
            templates.push(i);
        } else if control != NONE
            && let Some(t) = tab.get_mut(control)
        {
            t.link += 1;
        }
        let d = &mut core.dests[dest];
        d.refs += 1;
        if template {
            d.persistconns += 1;
        } else if flags & cf::INACTIVE != 0 {
            d.inactconns += 1;
        } else {
            d.activeconns += 1;
        }
        core.conn_count += 1;
        if flags & cf::INVALIDATED == 0 {
            if depth == 0 {
                plain.push(i);
            } else {
                deep.push((depth, i));
            }
        }
        if !template {
            super::conn_ops::file(tab, i, expires);
        }
        tab.set_list(i, super::conn_ops::list_for(&entry));
    }
    // Templates go into the wheel after the connections: when a template and a connection it
    // controls are due in the same 4 ms tick, the connection goes first and the template,
    // then unused, with it — the order the wheel usually has them in (a connection's first
    // filing, at its short initial timeout, comes due before its template's).
    for &t in &templates {
        if let Some(c) = tab.get(t) {
            let expires = c.expires;
            super::conn_ops::file(tab, t, expires);
        }
    }
    // Index the entries, those hidden from reply lookups first (deepest first), so that the
    // newest of entries sharing a reply key answers, as before.
    deep.sort_by_key(|&(d, _)| core::cmp::Reverse(d));
    for i in deep.into_iter().map(|(_, i)| i).chain(plain) {
        let Some(c) = tab.get(i).copied() else {
            continue;
        };
        // One entry per key.
        let dup = if c.is_template() {
            tab.find_template(c.proto, c.caddr, c.vaddr, c.vport)
                .is_some()
        } else {
            tab.find_in(c.proto, c.caddr, c.cport, c.vaddr, c.vport)
                .is_some()
        };
        if dup {
            return invalid("two entries with one key");
        }
        tab.hash(i, ForwardMethod::from_conn_flags(c.flags).sees_replies());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_sees_every_single_byte_change() {
        let b: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        let base = checksum(&b);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert_ne!(checksum(&c), base, "byte {i}");
        }
        assert_ne!(checksum(&b[..199]), base);
    }

    #[test]
    fn header_errors_are_told_apart() {
        assert_eq!(
            state_info(b"hello world, not a state"),
            Err(StateError::Foreign)
        );
        assert_eq!(state_info(b"RVSS"), Err(StateError::Truncated));
        let mut v = STATE_MAGIC.to_vec();
        v.extend_from_slice(&2u16.to_le_bytes());
        v.resize(HEADER, 0);
        assert_eq!(
            state_info(&v),
            Err(StateError::Version {
                found: 2,
                supported: 1
            })
        );
    }
}
