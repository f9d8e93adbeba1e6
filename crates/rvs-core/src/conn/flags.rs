//! Connection flags (kernel-semantics §1.5), in a compact 16-bit layout of our own. The kernel's
//! values are given where they exist; [`kernel_flags`] converts for display.

/// Forwarding method, low 3 bits: MASQ.
pub const FWD_MASQ: u16 = 0;
/// LOCALNODE.
pub const FWD_LOCAL: u16 = 1;
/// TUNNEL.
pub const FWD_TUNNEL: u16 = 2;
/// DROUTE.
pub const FWD_ROUTE: u16 = 3;
/// BYPASS (forward unchanged; `cache_bypass`).
pub const FWD_BYPASS: u16 = 4;
/// Full NAT (our extension).
pub const FWD_FULLNAT: u16 = 5;
/// Mask of the forwarding method.
pub const FWD_MASK: u16 = 0x0007;
/// No reply seen yet / replies never traverse the balancer (kernel 0x0080): TCP and SCTP use
/// the INPUT_ONLY table.
pub const NOOUTPUT: u16 = 0x0008;
/// Counted in InActConn (kernel 0x0100).
pub const INACTIVE: u16 = 0x0010;
/// A persistence template (kernel 0x1000).
pub const TEMPLATE: u16 = 0x0020;
/// One-packet scheduling (kernel 0x2000): the entry is never hashed.
pub const ONE_PACKET: u16 = 0x0040;
/// Uses netfilter conntrack (kernel 1<<16): set when sysctl `conntrack` was 1 at creation.
pub const NFCT: u16 = 0x0080;
/// In the table's lookup indexes (kernel HASHED 0x0040).
pub const HASHED: u16 = 0x0100;
/// The slot is free (not a kernel flag).
pub const FREE: u16 = 0x0200;
/// A template invalidated by `check_template`: out of the lookup index, left to die (§5.3).
pub const INVALIDATED: u16 = 0x0400;

/// Filed in the expiry wheel (not a kernel flag).
pub const FILED: u16 = 0x0800;

/// On the half-open eviction list (not a kernel flag; `conn::table::List`).
pub const LIST_EMBRYONIC: u16 = 0x1000;
/// On the closed/idle eviction list (not a kernel flag).
pub const LIST_IDLE: u16 = 0x2000;
/// Mask of the eviction-list bits.
pub const LIST_MASK: u16 = LIST_EMBRYONIC | LIST_IDLE;

/// The kernel's numeric flag word for an entry (for `/proc`-style dumps and sync).
pub fn kernel_flags(f: u16) -> u32 {
    let mut k = match f & FWD_MASK {
        FWD_FULLNAT => 0, // shown as MASQ: full NAT is a NAT
        m => m as u32,
    };
    if f & NOOUTPUT != 0 {
        k |= 0x0080;
    }
    if f & INACTIVE != 0 {
        k |= 0x0100;
    }
    if f & TEMPLATE != 0 {
        k |= 0x1000;
    }
    if f & ONE_PACKET != 0 {
        k |= 0x2000;
    }
    if f & HASHED != 0 {
        k |= 0x0040;
    }
    if f & NFCT != 0 {
        k |= 1 << 16;
    }
    k
}
