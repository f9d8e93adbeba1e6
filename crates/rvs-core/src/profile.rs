//! Profiles: which kernel's decisions the engine reproduces, or rvs's own `safe` rules.
//!
//! The sysctls are the same knobs in every profile; what changes between kernels is the code
//! that reads them. A profile selects those code variants (kernel-semantics §2.4.4, §2.5, §9.2):
//!
//! | profile | port reuse (§2.4) | weight-0 reschedule (Case A) | SYN dropped when | expire_nodest_conn (§2.5) |
//! |---|---|---|---|---|
//! | `linux-4.19` | conn_reuse_mode ≠ 0 | only if conn_reuse_mode ≠ 0 | conn has NFCT and conntrack is active (f719e3754ee2) | drop the packet, expire the entry; no flush |
//! | `linux-5.9` | same | only if conn_reuse_mode ≠ 0 | the SYN's conntrack is *confirmed* (f0a5e4d7a594) | reschedule at once; flush on delete (04231e52d355) |
//! | `linux-5.16` | same | regardless of conn_reuse_mode (c95c07836fa4) | same as 5.9 | same as 5.9 |
//! | `safe` (default) | any closing state, never dropped | always, and for removed servers | never | TCP: RST both ways; UDP: reschedule |
//!
//! `safe` departs from every kernel on purpose; each departure is listed in
//! [`Profile::Safe`]'s documentation and pinned by a test that says so.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// A behaviour profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// rvs's rules for rolling updates (the default). Departures from the kernel:
    /// a. a new-connection packet (TCP SYN, SCTP INIT) that finds an entry in a closing state
    ///    (FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK; SCTP shutdown states, CLOSED,
    ///    REJECTED), or whose real server has weight 0 or was removed, retires the entry and is
    ///    scheduled afresh in the same call — never dropped, whatever `conn_reuse_mode`,
    ///    `expire_nodest_conn` and conntrack say;
    /// b. a retransmitted SYN of a handshake in progress (SYN_RECV) to a healthy server stays
    ///    on that server (as in the kernel);
    /// c. a packet of an established TCP flow whose real server was removed is answered with a
    ///    TCP RST to the client, a RST goes to the real server, and the entry is retired: no
    ///    black hole; a UDP datagram of such a flow is rescheduled to a live server;
    /// d. persistence templates pointing at a weight-0 or removed real server are never used
    ///    for a new connection (as if `expire_quiescent_template=1`);
    /// e. a NAT connection whose client is the real server itself (hairpin: a pod reaching its
    ///    own Service) gets full NAT when the engine has a full-NAT address of the family, so
    ///    that the real server does not receive its own address as the source.
    #[default]
    #[serde(rename = "safe")]
    Safe,
    /// Linux 4.19: the drop-first-SYN era (1 s connect stalls with conntrack, Kubernetes #70747).
    #[serde(rename = "linux-4.19")]
    Linux4_19,
    /// Linux 5.9–5.15 (before the stable backports of c95c07836fa4).
    #[serde(rename = "linux-5.9")]
    Linux5_9,
    /// Linux 5.16 and later, including 6.x (the real 6.1 kernel measured in
    /// `docs/kernel-6.1-incident.md`).
    #[serde(rename = "linux-5.16")]
    Linux5_16,
}

/// Every profile, in the order reports list them.
pub const ALL: [Profile; 4] = [
    Profile::Safe,
    Profile::Linux4_19,
    Profile::Linux5_9,
    Profile::Linux5_16,
];

impl Profile {
    /// The profile's name (`safe`, `linux-4.19`, `linux-5.9`, `linux-5.16`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Safe => "safe",
            Profile::Linux4_19 => "linux-4.19",
            Profile::Linux5_9 => "linux-5.9",
            Profile::Linux5_16 => "linux-5.16",
        }
    }
    /// Whether this is a kernel profile (as opposed to `safe`).
    pub fn is_kernel(self) -> bool {
        self != Profile::Safe
    }
    /// Kernel ≥ 5.9 behaviour: reuse drops only on a confirmed conntrack; expire_nodest_conn
    /// reschedules and flushes on delete.
    pub fn has_5_9_fixes(self) -> bool {
        matches!(self, Profile::Linux5_9 | Profile::Linux5_16)
    }
    /// Kernel ≥ 5.16: the weight-0 reschedule (Case A) ignores conn_reuse_mode.
    pub fn has_5_16_fix(self) -> bool {
        self == Profile::Linux5_16
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            format!(
                "unknown profile '{s}' (expected one of: safe, linux-4.19, linux-5.9, linux-5.16)"
            )
        })
    }
}
