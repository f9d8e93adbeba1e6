//! Full NAT (our extension, DPVS's FNAT): the balancer rewrites the source of a flow to one
//! of its local addresses and a port allocated for the flow, so real servers reply to the
//! balancer without any routing trick (one-arm deployments). This module hands out those
//! ports.
//!
//! Ports are unique per local address across all real servers (a simple bitmap per address,
//! 1024..=65535), which bounds concurrent full-NAT flows to 64 512 per local address: add
//! local addresses for more. The allocator walks from a rotating cursor, so a port is not
//! reused right after it was freed while stray packets of the old flow may still arrive.

/// Lowest port handed out.
pub const FIRST_PORT: u16 = 1024;

/// Port bitmaps for the local addresses of one family.
#[derive(Debug, Default)]
pub struct PortPool {
    maps: Vec<(Vec<u64>, u16)>,
}

impl PortPool {
    /// Registers one more local address; its index is the number registered before.
    pub fn add_address(&mut self) {
        self.maps.push((vec![0; 1024], FIRST_PORT));
    }

    /// Number of local addresses.
    pub fn addresses(&self) -> usize {
        self.maps.len()
    }

    /// Allocates a port, preferring address `hint`; returns (address index, port).
    pub fn alloc(&mut self, hint: usize) -> Option<(u8, u16)> {
        let n = self.maps.len();
        for k in 0..n {
            let a = (hint + k) % n;
            let (map, cursor) = &mut self.maps[a];
            if let Some(p) = find_free(map, *cursor) {
                map[(p / 64) as usize] |= 1 << (p % 64);
                *cursor = if p == 65535 { FIRST_PORT } else { p + 1 };
                return Some((a as u8, p));
            }
        }
        None
    }

    /// Marks a given port of address `addr` as in use (a connection handed over from another
    /// process); `false` if the address is unknown, the port below [`FIRST_PORT`] or already
    /// taken.
    pub fn take(&mut self, addr: u8, port: u16) -> bool {
        let Some((map, _)) = self.maps.get_mut(addr as usize) else {
            return false;
        };
        let (w, b) = ((port / 64) as usize, port % 64);
        if port < FIRST_PORT || map[w] & (1 << b) != 0 {
            return false;
        }
        map[w] |= 1 << b;
        true
    }

    /// The allocation cursor of each address.
    pub fn cursors(&self) -> Vec<u16> {
        self.maps.iter().map(|(_, c)| *c).collect()
    }

    /// Sets the allocation cursor of address `addr` (ignored for an unknown address).
    pub fn set_cursor(&mut self, addr: u8, cursor: u16) {
        if let Some((_, c)) = self.maps.get_mut(addr as usize) {
            *c = cursor.max(FIRST_PORT);
        }
    }

    /// Frees a port.
    pub fn free(&mut self, addr: u8, port: u16) {
        if let Some((map, _)) = self.maps.get_mut(addr as usize) {
            map[(port / 64) as usize] &= !(1 << (port % 64));
        }
    }
}

/// The first free port at or after `from`, wrapping to [`FIRST_PORT`], a word at a time.
fn find_free(map: &[u64], from: u16) -> Option<u16> {
    let first_word = (FIRST_PORT / 64) as usize;
    let start = from.max(FIRST_PORT);
    let (sw, sb) = ((start / 64) as usize, start % 64);
    let words = map.len() - first_word;
    for step in 0..=words {
        let w = first_word + (sw - first_word + step) % words;
        let mut free = !map[w];
        if step == 0 {
            free &= u64::MAX << sb;
        } else if step == words {
            free &= !(u64::MAX << sb);
        }
        if free != 0 {
            return Some((w as u32 * 64 + free.trailing_zeros()) as u16);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_unique_ports_and_rotates() {
        let mut p = PortPool::default();
        p.add_address();
        let a = p.alloc(0).unwrap();
        let b = p.alloc(0).unwrap();
        assert_eq!(a, (0, 1024));
        assert_eq!(b, (0, 1025));
        p.free(0, 1024);
        assert_eq!(
            p.alloc(0).unwrap(),
            (0, 1026),
            "freed ports are not reused at once"
        );
    }

    #[test]
    fn exhausts_then_moves_to_the_next_address() {
        let mut p = PortPool::default();
        p.add_address();
        p.add_address();
        for _ in 0..64512 {
            assert_eq!(p.alloc(0).unwrap().0, 0);
        }
        assert_eq!(p.alloc(0).unwrap().0, 1);
        let mut q = PortPool::default();
        q.add_address();
        for _ in 0..64512 {
            q.alloc(0).unwrap();
        }
        assert_eq!(q.alloc(0), None);
    }
}
