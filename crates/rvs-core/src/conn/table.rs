//! The per-family connection table: a slab of compact entries and three lookup indexes.
//!
//! * `in_idx`: client-side key (protocol, caddr, cport, vaddr, vport), for packets from clients;
//! * `out_idx`: real-server-side key (protocol, daddr, dport, caddr, cport) — or, for full NAT,
//!   (protocol, daddr, dport, laddr, lport) — for replies, only for methods whose replies
//!   traverse the balancer;
//! * `tmpl_idx`: persistence templates, keyed like `in_idx` (the kernel keeps templates in the
//!   same hash but its lookups never mix them up, kernel-semantics §2.3, §5.2).
//!
//! The indexes ([`Index`]) hold slab indices: each slot costs four bytes plus a control byte,
//! the key is read from the entry itself, and a table sized for its bound stays 7/8 full. Hashing
//! uses foldhash with a seed from the engine's configuration, like the kernel's boot-time random
//! jhash seed, so clients cannot aim for one bucket.

use core::hash::BuildHasher;

use foldhash::fast::FixedState;

use crate::addr::Addr;
use crate::conn::flags::{FREE, HASHED, LIST_EMBRYONIC, LIST_IDLE, LIST_MASK};
use crate::conn::index::Index;
use crate::conn::wheel::Wheel;
use crate::dest::DestId;
use crate::time::Tick;

/// "No entry" in a link field.
pub const NONE: u32 = u32::MAX;

/// One entry: a connection or a persistence template.
///
/// 48 bytes for IPv4 (40 of them the kernel's fields, 8 the links of the eviction lists). What the kernel keeps and rvs derives instead: a connection's timeout
/// is its state's timeout (every packet sets both, kernel-semantics §3), so it is read from the
/// engine's timeout table when the timer is re-armed; a template's timeout (the persistence
/// timeout, or the sticky 60 s of P9) lives in the bytes that only full-NAT connections use.
/// `control` and `n_control` share `link`, since rvs has no FTP helper: a connection points to its
/// template, a template counts the connections it controls.
#[doc(alias = "ip_vs_conn")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Conn<A: Addr> {
    /// Client address (templates: the masked client network).
    pub caddr: A,
    /// Virtual address (fwmark templates: the mark).
    pub vaddr: A,
    /// Real-server address.
    pub daddr: A,
    /// Client port (templates: 0).
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real-server port.
    pub dport: u16,
    /// Full NAT: the local port towards the real server. Templates: bits 0..16 of the timeout.
    pub lport: u16,
    /// IP protocol number (0 for fwmark templates).
    pub proto: u8,
    /// Protocol state (templates: 1 = ASSURED).
    pub state: u8,
    /// Flags ([`crate::conn::flags`]).
    pub flags: u16,
    /// The real server.
    pub dest: DestId,
    /// Connection: its controlling template (or [`NONE`]). Template: controlled connections.
    pub link: u32,
    /// Deadline.
    pub expires: Tick,
    /// The wheel slot the entry is filed under (valid while `FILED` is set).
    pub wheel: u16,
    /// Packets in (saturating; the drop_entry defence looks at 0, 1..8 and more).
    pub in_pkts: u8,
    /// Full NAT: index of the local address in the pool. Templates: bits 16..24 of the timeout.
    pub laddr: u8,
    /// Eviction list ([`List`]): the previous entry (towards the oldest), or [`NONE`].
    pub prev: u32,
    /// Eviction list: the next entry (towards the newest), or [`NONE`].
    pub next: u32,
}

impl<A: Addr> Conn<A> {
    /// Whether a flag is set.
    #[inline]
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    /// Whether this is a template.
    #[inline]
    pub fn is_template(&self) -> bool {
        self.has(crate::conn::flags::TEMPLATE)
    }
    /// The forwarding method bits.
    #[inline]
    pub fn fwd(&self) -> u16 {
        self.flags & crate::conn::flags::FWD_MASK
    }
    /// The controlling template of a connection, if any.
    #[inline]
    pub fn control(&self) -> Option<u32> {
        if self.is_template() || self.link == NONE {
            None
        } else {
            Some(self.link)
        }
    }
    /// Number of connections a template controls (0 for connections).
    #[inline]
    pub fn n_control(&self) -> u32 {
        if self.is_template() { self.link } else { 0 }
    }
    /// A template's timeout in seconds.
    #[inline]
    pub fn template_timeout(&self) -> u32 {
        self.lport as u32 | (self.laddr as u32) << 16
    }
    /// Sets a template's timeout (seconds, at most 2^24 − 1 ≈ 194 days).
    #[inline]
    pub fn set_template_timeout(&mut self, secs: u32) {
        let s = secs.min(0x00ff_ffff);
        self.lport = s as u16;
        self.laddr = (s >> 16) as u8;
    }
}

/// The table of one address family.
pub struct ConnTable<A: Addr> {
    slab: Vec<Conn<A>>,
    free: Vec<u32>,
    in_idx: Index,
    out_idx: Index,
    tmpl_idx: Index,
    /// Entries sharing a reply key: the kernel's reply lookup walks a hash chain to which new
    /// entries are added at the head, so the newest wins. The out index holds only the newest
    /// of such entries; `shadows` maps it to the one it hides, `shadowed_by` the other way,
    /// and the hidden one is re-indexed when the newer one goes. (Rare: one client port talking
    /// to two services that share a real server.)
    shadows: hashbrown::HashMap<u32, u32>,
    shadowed_by: hashbrown::HashMap<u32, u32>,
    hasher: FixedState,
    /// Full NAT: the local addresses of this family, indexed by `Conn::laddr` (append only).
    pub lpool: Vec<A>,
    /// The expiry wheel.
    pub wheel: Wheel,
    live: usize,
    /// The eviction lists (oldest first), by [`List`]: head, tail, length.
    lists: [ListEnds; 2],
}

/// The ends of one eviction list.
#[derive(Clone, Copy, Debug)]
struct ListEnds {
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for ListEnds {
    fn default() -> Self {
        ListEnds {
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }
}

/// The eviction lists of a table (rvs's own, not the kernel's): entries that may be given up
/// first when the table is full, each list in the order entries joined it (oldest first).
/// Moving an entry between lists, or out of them, is O(1) (the links live in the entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// Half-open: TCP before the client's ACK (NONE, SYN_SENT, SYN_RECV, SYNACK), SCTP before
    /// ESTABLISHED.
    Embryonic = 0,
    /// Closed or closing for good (TCP TIME_WAIT, CLOSE; SCTP CLOSED, REJECTED) and UDP entries
    /// (which are only given up once idle).
    Idle = 1,
}

impl List {
    #[inline]
    fn flag(self) -> u16 {
        match self {
            List::Embryonic => LIST_EMBRYONIC,
            List::Idle => LIST_IDLE,
        }
    }
}

#[inline]
fn key_hash<A: Addr>(h: &FixedState, proto: u8, a1: A, p1: u16, a2: A, p2: u16) -> u64 {
    h.hash_one((a1, a2, (proto as u64) << 32 | (p1 as u64) << 16 | p2 as u64))
}

impl<A: Addr> ConnTable<A> {
    /// An empty table; `seed` keys the hash, `start` is the first tick of the wheel.
    pub fn new(seed: u64, start: Tick) -> Self {
        ConnTable {
            slab: Vec::new(),
            free: Vec::new(),
            in_idx: Index::default(),
            out_idx: Index::default(),
            tmpl_idx: Index::default(),
            shadows: hashbrown::HashMap::new(),
            shadowed_by: hashbrown::HashMap::new(),
            hasher: FixedState::with_seed(seed),
            lpool: Vec::new(),
            wheel: Wheel::new(start),
            live: 0,
            lists: [ListEnds::default(); 2],
        }
    }

    /// Reserves room for `n` entries (slab and indexes), so a bounded table never reallocates
    /// on the packet path.
    pub fn reserve(&mut self, n: usize) {
        self.slab.reserve(n.saturating_sub(self.slab.len()));
        let h = self.hasher.clone();
        let (slab, lp) = (&self.slab, &self.lpool);
        let more = n.saturating_sub(self.in_idx.len());
        self.in_idx
            .reserve(more, |i| in_hash(&h, &slab[i as usize]));
        let more = n.saturating_sub(self.out_idx.len());
        self.out_idx
            .reserve(more, |i| out_hash(&h, &slab[i as usize], lp));
    }

    /// Entries in the table (connections and templates).
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Entry by index (free slots included: check [`FREE`]).
    #[inline]
    pub fn get(&self, i: u32) -> Option<&Conn<A>> {
        self.slab.get(i as usize).filter(|c| !c.has(FREE))
    }

    /// Entry by index, mutably.
    #[inline]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut Conn<A>> {
        self.slab.get_mut(i as usize).filter(|c| !c.has(FREE))
    }

    /// Entry by index and the wheel, both mutably (the packet path re-arms in place).
    #[inline]
    pub fn entry_and_wheel(&mut self, i: u32) -> Option<(&mut Conn<A>, &mut Wheel)> {
        let c = self.slab.get_mut(i as usize).filter(|c| !c.has(FREE))?;
        Some((c, &mut self.wheel))
    }

    /// Every live entry.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Conn<A>)> {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.has(FREE))
            .map(|(i, c)| (i as u32, c))
    }

    /// Number of slab slots (live and free), for sweeps.
    pub fn capacity_slots(&self) -> u32 {
        self.slab.len() as u32
    }

    /// Stores a new entry (not yet indexed) and returns its index.
    pub fn alloc(&mut self, c: Conn<A>) -> u32 {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            self.slab[i as usize] = c;
            i
        } else {
            self.slab.push(c);
            self.slab.len() as u32 - 1
        }
    }

    /// Unindexes and frees an entry.
    pub fn free(&mut self, i: u32) {
        self.unhash(i);
        self.set_list(i, None);
        if let Some(c) = self.slab.get_mut(i as usize) {
            if !c.has(FREE) {
                c.flags = FREE;
                self.free.push(i);
                self.live -= 1;
            }
        }
    }

    /// Adds an entry to the lookup indexes: templates to the template index, connections to
    /// the client-side index and, if `reply_index`, to the real-server-side index.
    pub fn hash(&mut self, i: u32, reply_index: bool) {
        let h = self.hasher.clone();
        let Some(c) = self.slab.get_mut(i as usize) else {
            return;
        };
        if c.has(HASHED) {
            return;
        }
        c.flags |= HASHED;
        let c = *c;
        let (slab, lp) = (&self.slab, &self.lpool);
        if c.is_template() {
            self.tmpl_idx
                .insert(in_hash(&h, &c), i, |j| in_hash(&h, &slab[j as usize]));
            return;
        }
        self.in_idx
            .insert(in_hash(&h, &c), i, |j| in_hash(&h, &slab[j as usize]));
        if reply_index {
            let oh = out_hash(&h, &c, lp);
            let key = out_key(&c, lp);
            if let Some(older) = self
                .out_idx
                .find(oh, |j| out_key(&slab[j as usize], lp) == key)
            {
                // The new entry hides the older one from reply lookups (see `shadows`).
                self.out_idx.remove(oh, older);
                self.shadows.insert(i, older);
                self.shadowed_by.insert(older, i);
            }
            self.out_idx
                .insert(oh, i, |j| out_hash(&h, &slab[j as usize], lp));
        }
    }

    /// Removes an entry from the lookup indexes (it stays allocated).
    pub fn unhash(&mut self, i: u32) {
        let h = self.hasher.clone();
        let Some(c) = self.slab.get_mut(i as usize) else {
            return;
        };
        if !c.has(HASHED) {
            return;
        }
        c.flags &= !HASHED;
        let c = *c;
        if c.is_template() {
            self.tmpl_idx.remove(in_hash(&h, &c), i);
            return;
        }
        self.in_idx.remove(in_hash(&h, &c), i);
        if self.shadows.is_empty() {
            self.out_idx.remove(out_hash(&h, &c, &self.lpool), i);
            return;
        }
        if let Some(newer) = self.shadowed_by.remove(&i) {
            // Hidden: not in the out index; take it out of its chain.
            match self.shadows.remove(&i) {
                Some(older) => {
                    self.shadows.insert(newer, older);
                    self.shadowed_by.insert(older, newer);
                }
                None => {
                    self.shadows.remove(&newer);
                }
            }
            return;
        }
        let oh = out_hash(&h, &c, &self.lpool);
        self.out_idx.remove(oh, i);
        if let Some(older) = self.shadows.remove(&i) {
            self.shadowed_by.remove(&older);
            let (slab, lp) = (&self.slab, &self.lpool);
            self.out_idx
                .insert(oh, older, |j| out_hash(&h, &slab[j as usize], lp));
        }
    }

    /// Client-side lookup (the kernel's `ip_vs_conn_in_get`).
    #[inline]
    pub fn find_in(&self, proto: u8, caddr: A, cport: u16, vaddr: A, vport: u16) -> Option<u32> {
        let hash = key_hash(&self.hasher, proto, caddr, cport, vaddr, vport);
        let slab = &self.slab;
        self.in_idx.find(hash, |j| {
            let c = &slab[j as usize];
            c.cport == cport
                && c.vport == vport
                && c.caddr == caddr
                && c.vaddr == vaddr
                && c.proto == proto
        })
    }

    /// Real-server-side lookup for replies (the kernel's `ip_vs_conn_out_get`): `saddr:sport`
    /// is the real server, `daddr:dport` the client (or the full-NAT local address and port).
    #[inline]
    pub fn find_out(&self, proto: u8, saddr: A, sport: u16, daddr: A, dport: u16) -> Option<u32> {
        let hash = key_hash(&self.hasher, proto, saddr, sport, daddr, dport);
        let (slab, lpool) = (&self.slab, &self.lpool);
        self.out_idx.find(hash, |j| {
            let c = &slab[j as usize];
            let (ca, cp) = out_client(c, lpool);
            c.dport == sport && cp == dport && c.daddr == saddr && ca == daddr && c.proto == proto
        })
    }

    /// Template lookup (the kernel's `ip_vs_ct_in_get`).
    #[inline]
    pub fn find_template(&self, proto: u8, caddr: A, vaddr: A, vport: u16) -> Option<u32> {
        let hash = key_hash(&self.hasher, proto, caddr, 0, vaddr, vport);
        let slab = &self.slab;
        self.tmpl_idx.find(hash, |j| {
            let c = &slab[j as usize];
            c.vport == vport && c.caddr == caddr && c.vaddr == vaddr && c.proto == proto
        })
    }

    /// How many newer entries with the same reply key hide entry `i` from reply lookups
    /// (0: it answers them); see `shadows`.
    pub fn shadow_depth(&self, i: u32) -> u32 {
        if self.shadowed_by.is_empty() {
            return 0;
        }
        let (mut d, mut at) = (0, i);
        while let Some(&n) = self.shadowed_by.get(&at) {
            d += 1;
            at = n;
            if d >= 255 {
                break;
            }
        }
        d
    }

    /// The eviction list an entry is on.
    #[inline]
    pub fn list_of(&self, i: u32) -> Option<List> {
        let c = self.get(i)?;
        match c.flags & LIST_MASK {
            LIST_EMBRYONIC => Some(List::Embryonic),
            LIST_IDLE => Some(List::Idle),
            _ => None,
        }
    }

    /// Puts entry `i` at the newest end of list `l`, or takes it off its list (`None`). An entry
    /// already on `l` keeps its place.
    #[inline]
    pub fn set_list(&mut self, i: u32, l: Option<List>) {
        let Some(c) = self.slab.get(i as usize) else {
            return;
        };
        let cur = c.flags & LIST_MASK;
        let want = l.map_or(0, List::flag);
        if cur == want {
            return;
        }
        if cur != 0 {
            self.unlink(i, (cur == LIST_IDLE) as usize);
        }
        if let Some(l) = l {
            self.link_tail(i, l as usize);
        }
    }

    /// Moves entry `i` to the newest end of its list (a second chance).
    pub fn requeue(&mut self, i: u32) {
        if let Some(l) = self.list_of(i) {
            self.unlink(i, l as usize);
            self.link_tail(i, l as usize);
        }
    }

    /// The oldest entry of list `l`.
    #[inline]
    pub fn list_head(&self, l: List) -> Option<u32> {
        let h = self.lists[l as usize].head;
        (h != NONE).then_some(h)
    }

    /// The entry after `i` on its list (towards the newest).
    #[inline]
    pub fn list_next(&self, i: u32) -> Option<u32> {
        let n = self.get(i)?.next;
        (n != NONE).then_some(n)
    }

    /// Entries on list `l`.
    #[inline]
    pub fn list_len(&self, l: List) -> usize {
        self.lists[l as usize].len
    }

    fn unlink(&mut self, i: u32, l: usize) {
        let (prev, next) = {
            let c = &mut self.slab[i as usize];
            c.flags &= !LIST_MASK;
            let pn = (c.prev, c.next);
            c.prev = NONE;
            c.next = NONE;
            pn
        };
        match prev {
            NONE => self.lists[l].head = next,
            p => self.slab[p as usize].next = next,
        }
        match next {
            NONE => self.lists[l].tail = prev,
            n => self.slab[n as usize].prev = prev,
        }
        self.lists[l].len -= 1;
    }

    fn link_tail(&mut self, i: u32, l: usize) {
        let tail = self.lists[l].tail;
        {
            let c = &mut self.slab[i as usize];
            c.flags |= if l == 0 { LIST_EMBRYONIC } else { LIST_IDLE };
            c.prev = tail;
            c.next = NONE;
        }
        match tail {
            NONE => self.lists[l].head = i,
            t => self.slab[t as usize].next = i,
        }
        self.lists[l].tail = i;
        self.lists[l].len += 1;
    }

    /// Bytes of heap held by the table (slab, indexes, wheel): the memory-per-entry figure.
    pub fn heap_bytes(&self) -> usize {
        let idx = |t: &Index| t.heap_bytes();
        self.slab.capacity() * core::mem::size_of::<Conn<A>>()
            + self.free.capacity() * 4
            + idx(&self.in_idx)
            + idx(&self.out_idx)
            + idx(&self.tmpl_idx)
            + self.wheel.heap_bytes()
    }
}

/// The client side of an entry as its real server sees it: the client itself, or for full
/// NAT the local address (from the pool, by index) and port.
#[inline]
fn out_client<A: Addr>(c: &Conn<A>, lpool: &[A]) -> (A, u16) {
    if c.fwd() == crate::conn::flags::FWD_FULLNAT {
        (
            lpool.get(c.laddr as usize).copied().unwrap_or_default(),
            c.lport,
        )
    } else {
        (c.caddr, c.cport)
    }
}

/// The reply key of an entry: protocol, real server, and the client as the server sees it.
#[inline]
fn out_key<A: Addr>(c: &Conn<A>, lpool: &[A]) -> (u8, A, u16, A, u16) {
    let (a, p) = out_client(c, lpool);
    (c.proto, c.daddr, c.dport, a, p)
}

#[inline]
fn in_hash<A: Addr>(h: &FixedState, c: &Conn<A>) -> u64 {
    key_hash(h, c.proto, c.caddr, c.cport, c.vaddr, c.vport)
}

#[inline]
fn out_hash<A: Addr>(h: &FixedState, c: &Conn<A>, lpool: &[A]) -> u64 {
    let (a, p) = out_client(c, lpool);
    key_hash(h, c.proto, c.daddr, c.dport, a, p)
}
