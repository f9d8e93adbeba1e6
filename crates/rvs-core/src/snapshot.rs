//! Read-only views of the engine's state, for listings (`ipvsadm -L`), metrics and the JSON
//! admin view. They are plain data (serde), detached from the engine.

use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::addr::Netmask;
use crate::dest::{ForwardMethod, TunnelInfo};
use crate::service::{ServiceFlags, ServiceKey};
use crate::stats::{Counters, Rates};

/// The IPVS version the engine reports (`IP Virtual Server version 1.2.1`).
pub const IPVS_VERSION: (u8, u8, u8) = (1, 2, 1);

/// Header facts of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoView {
    /// IPVS version.
    pub version: (u8, u8, u8),
    /// The `size=` of listings: the kernel's connection hash bucket count (2^conn_tab_bits).
    pub conn_tab_size: u32,
    /// Connections in the table now (templates included).
    pub conn_count: u64,
    /// The table's bound.
    pub conn_max: u64,
}

/// A real server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestView {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: ForwardMethod,
    /// Weight.
    pub weight: u32,
    /// Upper threshold.
    pub u_threshold: u32,
    /// Lower threshold.
    pub l_threshold: u32,
    /// ActiveConn.
    pub activeconns: u32,
    /// InActConn.
    pub inactconns: u32,
    /// PersistConn.
    pub persistconns: u32,
    /// OVERLOAD flag.
    pub overloaded: bool,
    /// Tunnel parameters.
    pub tunnel: TunnelInfo,
    /// Counters as `--stats` shows them (published on the 2 s tick, minus the zero point).
    pub stats: Counters,
    /// Rates as `--rate` shows them.
    pub rates: Rates,
}

/// A virtual service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Key.
    pub key: ServiceKey,
    /// Scheduler name (`none` when unbound).
    pub scheduler: String,
    /// Flags.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds.
    pub timeout: u32,
    /// Persistence netmask.
    pub netmask: Netmask,
    /// Persistence engine.
    pub pe_name: Option<String>,
    /// Counters.
    pub stats: Counters,
    /// Rates.
    pub rates: Rates,
    /// Real servers in kernel order (newest first).
    pub dests: Vec<DestView>,
}

/// One entry of the connection table (`ipvsadm -Lnc`, `/proc/net/ip_vs_conn`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnView {
    /// Protocol name as `/proc` prints it: `TCP`, `UDP`, `SCTP`, or `IP` (fwmark templates).
    pub proto: String,
    /// Client address (templates: the masked client network).
    pub caddr: IpAddr,
    /// Client port (templates: 0).
    pub cport: u16,
    /// Virtual address (fwmark templates: the mark rendered as an IPv4 address).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real-server address.
    pub daddr: IpAddr,
    /// Real-server port.
    pub dport: u16,
    /// State name (`ESTABLISHED`, `TIME_WAIT`, `UDP`, `NONE`, `ASSURED`...).
    pub state: String,
    /// Milliseconds until the entry expires.
    pub expires_ms: u64,
    /// A persistence template.
    pub template: bool,
    /// Forwarding method of the entry.
    pub fwd: ForwardMethod,
    /// Full NAT only: the local address and port the balancer uses towards the real server.
    pub local: Option<(IpAddr, u16)>,
}

/// Totals of the whole engine (`/proc/net/ip_vs_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalsView {
    /// Counters.
    pub stats: Counters,
    /// Rates.
    pub rates: Rates,
}
