//! The connection table (kernel-semantics §1.4, §2.3, §2.10): entries, lookups, expiry.

pub mod flags;
pub mod index;
mod table;
pub mod wheel;

pub use table::{Conn, ConnTable, List, NONE};

/// A handle to an entry: its family and its index in that family's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnId {
    /// In the IPv4 table.
    V4(u32),
    /// In the IPv6 table.
    V6(u32),
}
