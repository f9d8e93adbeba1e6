//! A compact hash index of slab positions (`u32`), for the connection table.
//!
//! Why not `hashbrown::HashTable<u32>`: it sizes its bucket array to a power of two, so a
//! table of one million entries gets 2^21 buckets (48% full) and costs about 10.5 bytes per
//! entry per index; the connection table has two such indexes per entry. This index keeps
//! hashbrown's design — groups of control bytes (7 bits of the hash, or EMPTY, or DELETED)
//! matched eight at a time, slot arrays of ids, keys compared through the caller — but lets
//! the number of groups be any integer (the home group is chosen by a multiply-shift range
//! reduction), so a table sized for its bound stays 7/8 full: about 5.7 bytes per entry.
//! Matching uses portable SWAR on `u64` words; no `unsafe`.
//!
//! Probing is linear over groups. Deleting from a group that has an EMPTY control byte marks
//! the slot EMPTY (no probe sequence can have passed through such a group); otherwise
//! DELETED. When EMPTY slots run out, the index is rebuilt in place (many DELETED) or grown.

const GROUP: usize = 8;
const EMPTY: u8 = 0x80;
const DELETED: u8 = 0xFE;
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bytes of `w` equal to `b`, as a mask of their high bits (may report a false match above a
/// true one; callers verify).
#[inline]
fn match_byte(w: u64, b: u8) -> u64 {
    let x = w ^ (LO * b as u64);
    x.wrapping_sub(LO) & !x & HI
}

/// Bytes that are EMPTY.
#[inline]
fn match_empty(w: u64) -> u64 {
    // EMPTY is the only control value with the high bit set and bit 1 clear... DELETED is
    // 0xFE: high bit and bit 1 set. FULL bytes have the high bit clear.
    w & HI & !(w << 6)
}

/// Bytes that are EMPTY or DELETED.
#[inline]
fn match_free(w: u64) -> u64 {
    w & HI
}

#[inline]
fn h2(hash: u64) -> u8 {
    (hash >> 57) as u8
}

/// The index.
#[derive(Debug, Clone)]
pub struct Index {
    ctrl: Vec<u64>,
    ids: Vec<u32>,
    items: usize,
    /// Slots still EMPTY minus those kept in reserve (insertions allowed before a rebuild).
    growth_left: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index::with_capacity(0)
    }
}

fn groups_for(capacity: usize) -> usize {
    // 7/8 of the slots may be used.
    (capacity * 8).div_ceil(7).div_ceil(GROUP).max(1)
}

impl Index {
    /// An index that takes `capacity` items without rebuilding.
    pub fn with_capacity(capacity: usize) -> Self {
        let groups = groups_for(capacity);
        Index {
            ctrl: vec![LO * EMPTY as u64; groups],
            ids: vec![u32::MAX; groups * GROUP],
            items: 0,
            growth_left: groups * GROUP * 7 / 8,
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.ctrl.capacity() * 8 + self.ids.capacity() * 4
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((hash as u32 as u64 * self.ctrl.len() as u64) >> 32) as usize
    }

    #[inline]
    fn ctrl_byte(&self, slot: usize) -> u8 {
        (self.ctrl[slot / GROUP] >> (8 * (slot % GROUP))) as u8
    }

    #[inline]
    fn set_ctrl(&mut self, slot: usize, b: u8) {
        let w = &mut self.ctrl[slot / GROUP];
        let shift = 8 * (slot % GROUP);
        *w = (*w & !(0xFF << shift)) | (b as u64) << shift;
    }

    /// The id whose key matches (`eq`), among those with this hash.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, eq).map(|slot| self.ids[slot])
    }

    /// The slot holding `id` (found along `hash`'s probe sequence).
    fn slot_of(&self, hash: u64, id: u32) -> Option<usize> {
        self.find_slot(hash, |x| x == id)
    }

    /// Walks `hash`'s probe sequence: the first slot whose tag matches and whose id satisfies
    /// `eq`; stops at the first group with an EMPTY slot.
    #[inline]
    fn find_slot(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<usize> {
        let n = self.ctrl.len();
        let tag = h2(hash);
        let mut g = self.home(hash);
        for _ in 0..n {
            let w = self.ctrl[g];
            let mut m = match_byte(w, tag);
            while m != 0 {
                let slot = g * GROUP + (m.trailing_zeros() / 8) as usize;
                if self.ctrl_byte(slot) == tag && eq(self.ids[slot]) {
                    return Some(slot);
                }
                m &= m - 1;
            }
            if match_empty(w) != 0 {
                return None;
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
        None
    }

    /// Inserts `id` under `hash` (the caller knows the key is absent). `rehash` gives the hash
    /// of any stored id, for rebuilding.
    pub fn insert(&mut self, hash: u64, id: u32, rehash: impl Fn(u32) -> u64) {
        if self.growth_left == 0 {
            self.rebuild(self.items + 1, &rehash);
        }
        self.place(hash, id);
    }

    /// Puts `id` in the first free slot of its probe sequence (there is room).
    fn place(&mut self, hash: u64, id: u32) {
        let n = self.ctrl.len();
        let mut g = self.home(hash);
        loop {
            let free = match_free(self.ctrl[g]);
            if free != 0 {
                let slot = g * GROUP + (free.trailing_zeros() / 8) as usize;
                if self.ctrl_byte(slot) == EMPTY {
                    self.growth_left -= 1;
                }
                self.set_ctrl(slot, h2(hash));
                self.ids[slot] = id;
                self.items += 1;
                return;
            }
            g = (g + 1) % n;
        }
    }

    /// Removes `id`, stored under `hash`. Returns whether it was there.
    pub fn remove(&mut self, hash: u64, id: u32) -> bool {
        let Some(slot) = self.slot_of(hash, id) else {
            return false;
        };
        let g = slot / GROUP;
        if match_empty(self.ctrl[g]) != 0 {
            self.set_ctrl(slot, EMPTY);
            self.growth_left += 1;
        } else {
            self.set_ctrl(slot, DELETED);
        }
        self.ids[slot] = u32::MAX;
        self.items -= 1;
        true
    }

    /// Makes room for `additional` more items without rebuilding on insert.
    pub fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        if additional > self.growth_left {
            self.rebuild(self.items + additional, &rehash);
        }
    }

    /// Rebuilds into a table sized for `need` items: the same size if DELETED slots can be
    /// reclaimed, else at least double.
    fn rebuild(&mut self, need: usize, rehash: &impl Fn(u32) -> u64) {
        let cap_now = self.ctrl.len() * GROUP * 7 / 8;
        let cap = if need <= cap_now && self.items <= cap_now / 2 {
            cap_now
        } else {
            need.max(cap_now * 2).max(16)
        };
        let mut fresh = Index::with_capacity(cap);
        for (slot, &id) in self.ids.iter().enumerate() {
            if self.ctrl_byte(slot) & 0x80 == 0 {
                fresh.place(rehash(id), id);
            }
        }
        *self = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn swar_matching() {
        let w = u64::from_le_bytes([0x12, EMPTY, 0x12, DELETED, 0x00, 0x7f, EMPTY, 0x34]);
        assert_eq!(match_byte(w, 0x12) & (0x80 | 0x80 << 16), 0x80 | 0x80 << 16);
        assert_eq!(match_empty(w), 0x80 << 8 | 0x80 << 48);
        assert_eq!(match_free(w), 0x80 << 8 | 0x80 << 24 | 0x80 << 48);
    }

    #[test]
    fn sized_for_its_bound() {
        let i = Index::with_capacity(1_000_000);
        let per = i.heap_bytes() as f64 / 1e6;
        assert!(per < 5.8, "{per} bytes per item");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u16),
        Remove(u16),
    }

    proptest! {
        /// Against a HashMap model, with a deliberately poor hash (few distinct values, so
        /// long probe runs, DELETED markers and rebuilds all happen).
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec(prop_oneof![
            (0..300u16).prop_map(Op::Insert), (0..300u16).prop_map(Op::Remove)], 0..2000),
            spread in 1u64..64) {
            let hash = move |k: u32| (k as u64 % spread).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut idx = Index::with_capacity(4);
            let mut model: HashMap<u32, ()> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        let k = k as u32;
                        if model.insert(k, ()).is_none() {
                            idx.insert(hash(k), k, hash);
                        }
                    }
                    Op::Remove(k) => {
                        let k = k as u32;
                        prop_assert_eq!(idx.remove(hash(k), k), model.remove(&k).is_some());
                    }
                }
                prop_assert_eq!(idx.len(), model.len());
            }
            for k in 0..300u32 {
                prop_assert_eq!(idx.find(hash(k), |id| id == k), model.contains_key(&k).then_some(k));
            }
        }
    }
}
