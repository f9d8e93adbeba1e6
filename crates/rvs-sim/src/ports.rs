//! A client's local ports and Linux 6.1's choice among them (`__inet_hash_connect`).
//!
//! The kernel scans the range from a perturbed offset, two ports at a time (the low end's
//! parity first, then the other), and takes the first port no socket holds, a TIME_WAIT socket
//! counting as held until `tcp_tw_reuse` or its end frees it. When half the range sits in
//! TIME_WAIT that scan walks thousands of ports per connect (in the kernel too). The simulator
//! makes the same choice in O(log n): each parity's ports are the leaves of a min-tree of
//! "usable from" times, and the first usable port at or after the offset is found by descent.

/// "Held by an open socket".
pub const IN_USE: u32 = u32::MAX;

/// A min-tree over one parity's ports, in scan order.
#[derive(Clone, Debug)]
struct Tree {
    n: usize,
    size: usize,
    t: Vec<u32>,
}

impl Tree {
    fn new(n: usize) -> Self {
        let size = n.next_power_of_two().max(1);
        let mut t = vec![IN_USE; 2 * size];
        for i in 0..n {
            t[size + i] = 0;
        }
        for i in (1..size).rev() {
            t[i] = t[2 * i].min(t[2 * i + 1]);
        }
        Tree { n, size, t }
    }

    #[inline]
    fn set(&mut self, k: usize, v: u32) {
        let mut i = self.size + k;
        self.t[i] = v;
        while i > 1 {
            i /= 2;
            let m = self.t[2 * i].min(self.t[2 * i + 1]);
            if self.t[i] == m {
                break;
            }
            self.t[i] = m;
        }
    }

    #[inline]
    fn get(&self, k: usize) -> u32 {
        self.t[self.size + k]
    }

    /// The first leaf in `from..to` whose value is `<= now`: from the leaf upwards (the
    /// usual answer is a few leaves away), then down the first subtree that has one.
    fn first_in(&self, from: usize, to: usize, now: u32) -> Option<usize> {
        let to = to.min(self.n);
        if from >= to || self.t[1] > now {
            return None;
        }
        let mut i = self.size + from;
        if self.t[i] > now {
            loop {
                // Up while `i` is a right child, then over to the right sibling.
                while i & 1 == 1 {
                    i >>= 1;
                    if i <= 1 {
                        return None;
                    }
                }
                i += 1;
                if self.t[i] <= now {
                    break;
                }
            }
            while i < self.size {
                i *= 2;
                if self.t[i] > now {
                    i += 1;
                }
            }
        }
        let k = i - self.size;
        (k < to).then_some(k)
    }

    /// The kernel's walk over leaves `lo..hi` starting at `s` and wrapping to `lo`: the first
    /// usable leaf and how many steps it took.
    fn cyclic(&self, lo: usize, hi: usize, s: usize, now: u32) -> Option<(usize, usize)> {
        let s = s.clamp(lo, hi);
        self.first_in(s, hi, now)
            .map(|k| (k, k - s))
            .or_else(|| self.first_in(lo, s, now).map(|k| (k, hi - s + k - lo)))
    }
}

/// A host's ports for one destination.
#[derive(Clone, Debug)]
pub struct Ports {
    size: u32,
    remaining: u32,
    /// The even-index and odd-index ports (leaf k is index 2k, resp. 2k + 1).
    tree: [Tree; 2],
}

impl Ports {
    /// `size` ports, all free.
    pub fn new(size: u32) -> Self {
        let remaining = if size > 1 { size & !1 } else { size };
        Ports {
            size,
            remaining,
            tree: [
                Tree::new(size.div_ceil(2) as usize),
                Tree::new((size / 2) as usize),
            ],
        }
    }

    /// Number of ports.
    pub fn len(&self) -> u32 {
        self.size
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Marks port `idx` usable from millisecond `at` (`IN_USE`: held).
    #[inline]
    pub fn set(&mut self, idx: u32, at: u32) {
        self.tree[(idx & 1) as usize].set((idx / 2) as usize, at);
    }

    /// Whether port `idx` is usable at `now_ms`.
    pub fn usable(&self, idx: u32, now_ms: u32) -> bool {
        self.tree[(idx & 1) as usize].get((idx / 2) as usize) <= now_ms
    }

    /// The kernel's choice for hint `hint` (`perturb + port_offset`) at `now_ms`: the port
    /// index and the scan distance `i` of its pass, or `None` (EADDRNOTAVAIL). The port is
    /// not marked; the caller does.
    ///
    /// The kernel walks `offset, offset + 2, ...` for `remaining / 2` steps, subtracting
    /// `remaining` from an index past the range. With an even range that is a cycle over one
    /// parity. With an odd range (`remaining = size - 1`) the low parity's walk wraps from the
    /// top to index 2, so it cycles over 2, 4, ..., size - 1, except from offset 0, where it
    /// runs 0, 2, ..., size - 3 without wrapping.
    pub fn pick(&self, hint: u32, now_ms: u32) -> Option<(u32, u32)> {
        if self.size == 0 {
            return None;
        }
        let offset = (hint % self.remaining) & !1;
        let s = (offset / 2) as usize;
        let even = &self.tree[0];
        let found = if self.size % 2 == 1 {
            if offset == 0 {
                even.first_in(0, self.remaining.div_ceil(2) as usize, now_ms)
                    .map(|k| (k, k))
            } else {
                even.cyclic(1, even.n, s, now_ms)
            }
        } else {
            even.cyclic(0, even.n, s, now_ms)
        };
        if let Some((k, steps)) = found {
            return Some((2 * k as u32, 2 * steps as u32));
        }
        if self.remaining <= 1 {
            return None;
        }
        let odd = &self.tree[1];
        odd.cyclic(0, odd.n, s, now_ms)
            .map(|(k, steps)| (2 * k as u32 + 1, 2 * steps as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's loop, literally (index space), for comparison.
    fn kernel_pick(used: &[bool], hint: u32) -> Option<(u32, u32)> {
        let size = used.len() as u32;
        let mut remaining = size;
        if remaining > 1 {
            remaining &= !1;
        }
        let mut offset = (hint % remaining) & !1;
        loop {
            let mut i = 0;
            while i < remaining {
                let mut idx = offset + i;
                if idx >= size {
                    idx -= remaining;
                }
                if !used[idx as usize] {
                    return Some((idx, i));
                }
                i += 2;
            }
            offset += 1;
            if offset & 1 == 0 || remaining <= 1 {
                return None;
            }
        }
    }

    #[test]
    fn same_choice_as_the_kernel_loop() {
        let mut rng = crate::rng::Rng::new(9);
        for size in [1u32, 2, 3, 7, 10, 11, 64, 101, 1024] {
            let mut p = Ports::new(size);
            let mut used = vec![false; size as usize];
            for step in 0..3000 {
                let hint = rng.next_u64() as u32;
                let a = p.pick(hint, 0);
                let b = kernel_pick(&used, hint);
                assert_eq!(a, b, "size {size} step {step}");
                match a {
                    Some((idx, _)) if rng.below(3) > 0 => {
                        used[idx as usize] = true;
                        p.set(idx, IN_USE);
                    }
                    _ => {
                        // Free a random used port.
                        let i = rng.below(size as u64) as u32;
                        used[i as usize] = false;
                        p.set(i, 0);
                    }
                }
            }
        }
    }

    #[test]
    fn time_makes_ports_usable() {
        let mut p = Ports::new(10);
        for i in 0..10 {
            p.set(i, 1000);
        }
        assert_eq!(p.pick(0, 999), None);
        p.set(6, 500);
        assert_eq!(p.pick(0, 999), Some((6, 6)));
        assert!(p.usable(6, 500));
        assert!(!p.usable(6, 499));
        assert_eq!(p.pick(3, 1000), Some((2, 0)));
    }
}
