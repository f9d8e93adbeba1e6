//! A timing wheel for connection expiry, with lazy rescheduling.
//!
//! The kernel arms one timer per connection and re-arms it on every packet. rvs does not touch
//! the wheel on the packet path at all: a packet only moves the entry's `expires` forward.
//! Each entry sits in at most one wheel slot (`Conn::wheel` records which). When a slot comes
//! due, each of its entries is either expired (its `expires` has passed) or moved to the slot
//! of its current `expires`. An entry therefore costs one wheel operation per timeout period
//! rather than one per packet; the only time the packet path touches the wheel is when a state
//! change *shortens* an entry's deadline below the slot it sits in (ESTABLISHED → CLOSE, say).
//!
//! One level of 2^16 slots of one tick (4 ms) covers 262 s; later deadlines wait in the last
//! slot of the horizon and are re-filed each lap (an ESTABLISHED entry, 900 s, is re-filed
//! about four times in its life). An occupancy bitmap lets `advance` skip empty slots, so an
//! idle hour of virtual time costs a scan of 1024 words, not 900 000 slots.

use crate::time::Tick;

/// Slots in the wheel (a power of two).
pub const SLOTS: u32 = 1 << 16;
const MASK: u32 = SLOTS - 1;

/// The wheel: slots of entry indices.
#[derive(Debug)]
pub struct Wheel {
    slots: Vec<Vec<u32>>,
    occupied: Vec<u64>,
    /// Every slot before this tick has been processed.
    next: Tick,
    /// Number of items filed (including stale ones).
    items: usize,
}

impl Wheel {
    /// An empty wheel whose first unprocessed tick is `start`.
    pub fn new(start: Tick) -> Self {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: vec![0; (SLOTS / 64) as usize],
            next: start,
            items: 0,
        }
    }

    /// The slot tick an item with deadline `expires` is filed under (never before `next`,
    /// never beyond the horizon).
    #[inline]
    pub fn slot_for(&self, expires: Tick) -> Tick {
        if expires.at_or_before(self.next) {
            self.next
        } else if expires.since(self.next) >= SLOTS {
            self.next.add(SLOTS - 1)
        } else {
            expires
        }
    }

    /// The slot number of a slot tick, as entries record it.
    #[inline]
    pub fn slot_no(at: Tick) -> u16 {
        (at.0 & MASK) as u16
    }

    /// The tick of slot number `s` in the current lap (at or after `next`).
    #[inline]
    pub fn slot_tick(&self, s: u16) -> Tick {
        self.next.add((s as u32).wrapping_sub(self.next.0) & MASK)
    }

    /// Files `id` under slot tick `at` (from [`Wheel::slot_for`]).
    #[inline]
    pub fn file(&mut self, id: u32, at: Tick) {
        let s = at.0 & MASK;
        self.slots[s as usize].push(id);
        self.occupied[(s / 64) as usize] |= 1 << (s % 64);
        self.items += 1;
    }

    /// The first tick not yet processed.
    pub fn next_tick(&self) -> Tick {
        self.next
    }

    /// Number of filed items (an upper bound on the live entries it tracks).
    pub fn items(&self) -> usize {
        self.items
    }

    /// The earliest occupied slot tick at or after `next`, if any (within one lap).
    pub fn earliest(&self) -> Option<Tick> {
        let start = self.next.0 & MASK;
        let words = self.occupied.len();
        let first_word = (start / 64) as usize;
        // The word containing `start`, masked to bits at or after it; then the others in
        // order, wrapping; then the bits of the first word before `start`.
        for step in 0..=words {
            let w = (first_word + step) % words;
            let mut bits = self.occupied[w];
            if step == 0 {
                bits &= u64::MAX << (start % 64);
            } else if step == words {
                bits &= !(u64::MAX << (start % 64));
            }
            if bits != 0 {
                let s = (w as u32) * 64 + bits.trailing_zeros();
                let delta = s.wrapping_sub(start) & MASK;
                return Some(self.next.add(delta));
            }
        }
        None
    }

    /// Takes the items of the earliest occupied slot if it is due at or before `now`, and
    /// marks every slot before it (and it) processed. Returns the slot's tick and its items;
    /// the caller re-files or expires them and gives the vector back with [`Wheel::recycle`].
    pub fn pop_due(&mut self, now: Tick) -> Option<(Tick, Vec<u32>)> {
        if self.items == 0 {
            // Nothing filed (often the whole IPv6 wheel): skip the occupancy scan.
            if !self.next.after(now) {
                self.next = now.add(1);
            }
            return None;
        }
        let Some(t) = self.earliest() else {
            if now.after(self.next) || now == self.next {
                self.next = now.add(1);
            }
            return None;
        };
        if t.after(now) {
            self.next = now.add(1);
            return None;
        }
        let s = t.0 & MASK;
        let items = core::mem::take(&mut self.slots[s as usize]);
        self.occupied[(s / 64) as usize] &= !(1 << (s % 64));
        self.items -= items.len();
        self.next = t.add(1);
        Some((t, items))
    }

    /// Returns an emptied vector to its slot, keeping its capacity for reuse.
    pub fn recycle(&mut self, at: Tick, mut v: Vec<u32>) {
        v.clear();
        let s = &mut self.slots[(at.0 & MASK) as usize];
        if s.is_empty() && s.capacity() < v.capacity() {
            *s = v;
        }
    }

    /// Bytes of heap this wheel holds (for the memory-per-entry figure).
    pub fn heap_bytes(&self) -> usize {
        self.slots.iter().map(|s| s.capacity() * 4).sum::<usize>()
            + self.slots.capacity() * core::mem::size_of::<Vec<u32>>()
            + self.occupied.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_items_come_out_in_order() {
        let mut w = Wheel::new(Tick(100));
        w.file(1, w.slot_for(Tick(105)));
        w.file(2, w.slot_for(Tick(103)));
        w.file(3, w.slot_for(Tick(50))); // already due: filed at `next`
        assert_eq!(w.earliest(), Some(Tick(100)));
        let (t, v) = w.pop_due(Tick(104)).unwrap();
        assert_eq!((t, v.as_slice()), (Tick(100), &[3][..]));
        w.recycle(t, v);
        let (t, v) = w.pop_due(Tick(104)).unwrap();
        assert_eq!((t, v.as_slice()), (Tick(103), &[2][..]));
        assert!(w.pop_due(Tick(104)).is_none());
        assert_eq!(w.next_tick(), Tick(105));
        let (t, v) = w.pop_due(Tick(105)).unwrap();
        assert_eq!((t, v.as_slice()), (Tick(105), &[1][..]));
        assert_eq!(w.items(), 0);
    }

    #[test]
    fn far_deadlines_wait_at_the_horizon() {
        let mut w = Wheel::new(Tick(0));
        let at = w.slot_for(Tick(10 * SLOTS));
        assert_eq!(at, Tick(SLOTS - 1));
        w.file(9, at);
        assert!(w.pop_due(Tick(SLOTS - 2)).is_none());
        let (t, _) = w.pop_due(Tick(SLOTS)).unwrap();
        assert_eq!(t, Tick(SLOTS - 1));
    }

    #[test]
    fn wraps_around_the_tick_counter() {
        let start = Tick(u32::MAX - 10);
        let mut w = Wheel::new(start);
        w.file(7, w.slot_for(start.add(20)));
        assert_eq!(w.earliest(), Some(start.add(20)));
        assert!(w.pop_due(start.add(19)).is_none());
        assert_eq!(w.pop_due(start.add(25)).unwrap().0, start.add(20));
    }
}
