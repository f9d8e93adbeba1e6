//! What happens to a packet that matches an existing connection entry: port reuse
//! (`conn_reuse_mode`, kernel-semantics §2.4), destination availability (`expire_nodest_conn`,
//! kernel-semantics §2.5), per profile, and the `safe` rules. A pure function, so the whole
//! decision matrix is tested cell by cell (`tests/reuse_matrix.rs`).

use crate::conntrack::CtInfo;
use crate::decision::DropReason;
use crate::profile::Profile;
use crate::proto::sctp::SctpState;
use crate::proto::tcp::TcpState;
use crate::service::Protocol;

/// The facts the decision reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Protocol of the entry.
    pub proto: Protocol,
    /// Its state number.
    pub state: u8,
    /// NOOUTPUT is set (a DR/tunnel entry, or no reply seen yet).
    pub nooutput: bool,
    /// NFCT is set on the entry.
    pub nfct: bool,
    /// The entry is controlled by a persistence template.
    pub controlled: bool,
    /// The entry controls others (templates; FTP control connections in the kernel).
    pub n_control: u32,
    /// The real server's weight is 0.
    pub weight0: bool,
    /// The real server is still in its service (not deleted to the trash).
    pub available: bool,
    /// The packet is a new-connection attempt: TCP SYN, SCTP INIT first chunk
    /// (the kernel's `is_new_conn`; never for UDP).
    pub new_conn: bool,
    /// The packet is a TCP segment with RST set.
    pub rst: bool,
    /// What conntrack the packet carries (kernel profiles).
    pub ct: CtInfo,
}

/// The knobs the decision reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knobs {
    /// The profile.
    pub profile: Profile,
    /// `conn_reuse_mode`.
    pub conn_reuse_mode: i32,
    /// `expire_nodest_conn`.
    pub expire_nodest_conn: bool,
}

/// The outcome for the packet and the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Process the packet on the existing entry (same real server).
    Continue,
    /// Treat the packet as having no entry: schedule it now. `expire_old`: retire the old
    /// entry (it is kept only when it controls others); `clear_nfct`: the old entry must not
    /// take the new flow's conntrack with it when it expires.
    Reschedule {
        /// Retire the old entry.
        expire_old: bool,
        /// Clear NFCT on the old entry.
        clear_nfct: bool,
    },
    /// Drop the packet. `expire_old`: retire the entry (else it stays, not refreshed).
    Drop {
        /// Why.
        reason: DropReason,
        /// Retire the entry.
        expire_old: bool,
    },
    /// `safe`: answer the client with a TCP RST, send one to the real server, retire the entry.
    ResetAndRetire,
}

/// The kernel's `is_new_conn_expected` (kernel-semantics §2.4).
pub fn new_conn_expected(f: &Facts, mode: i32) -> bool {
    if f.controlled {
        return false;
    }
    match f.proto {
        Protocol::Tcp => match TcpState::from_u8(f.state) {
            Some(TcpState::TimeWait | TcpState::Close) => true,
            Some(TcpState::FinWait) => mode & 2 != 0 && f.nooutput,
            _ => false,
        },
        Protocol::Sctp => SctpState::from_u8(f.state) == Some(SctpState::Closed),
        Protocol::Udp => false,
    }
}

fn closing(f: &Facts) -> bool {
    match f.proto {
        Protocol::Tcp => TcpState::from_u8(f.state).is_some_and(TcpState::is_closing),
        Protocol::Sctp => SctpState::from_u8(f.state).is_some_and(SctpState::is_closing),
        Protocol::Udp => false,
    }
}

/// Decides what to do with a packet that matched an existing entry.
pub fn decide(k: &Knobs, f: &Facts) -> Verdict {
    match k.profile {
        Profile::Safe => safe(f),
        Profile::Linux4_19 => pre_5_9(k, f),
        Profile::Linux5_9 | Profile::Linux5_16 => post_5_9(k, f),
    }
}

/// `safe` (README, Profiles): never drop a new connection, never send one to a draining or
/// removed server, end flows to removed servers with a reset.
fn safe(f: &Facts) -> Verdict {
    if f.new_conn {
        // b: a retransmitted SYN of a handshake in progress to a healthy server stays.
        if closing(f) || f.weight0 || !f.available {
            return Verdict::Reschedule {
                expire_old: f.n_control == 0,
                clear_nfct: true,
            };
        }
        return Verdict::Continue;
    }
    if !f.available {
        return match f.proto {
            Protocol::Tcp if f.rst => Verdict::Drop {
                reason: DropReason::DestRemoved,
                expire_old: true,
            },
            Protocol::Tcp => Verdict::ResetAndRetire,
            Protocol::Udp => Verdict::Reschedule {
                expire_old: true,
                clear_nfct: true,
            },
            Protocol::Sctp => Verdict::Drop {
                reason: DropReason::DestRemoved,
                expire_old: true,
            },
        };
    }
    Verdict::Continue
}

/// Linux ≥ 5.9 (`ip_vs_in_hook`, kernel-semantics §2.4.1 and §2.5); ≥ 5.16 moves Case A out of the
/// `conn_reuse_mode` guard.
fn post_5_9(k: &Knobs, f: &Facts) -> Verdict {
    let mode = k.conn_reuse_mode;
    let old_ct = f.ct.present && f.ct.confirmed;
    let guard = k.profile.has_5_16_fix() || mode != 0;
    if guard && f.new_conn {
        let mut resched = false;
        if k.expire_nodest_conn && f.weight0 {
            // Case A: a quiescent real server.
            resched = true;
        } else if mode != 0 && new_conn_expected(f, mode) {
            // Case B: port reuse of a closed connection.
            resched = f.n_control == 0 || !old_ct;
        }
        if resched {
            let expire_old = f.n_control == 0;
            if old_ct {
                return Verdict::Drop {
                    reason: DropReason::ReuseConntrack,
                    expire_old,
                };
            }
            return Verdict::Reschedule {
                expire_old,
                clear_nfct: true,
            };
        }
    }
    if !f.available {
        if k.expire_nodest_conn {
            if old_ct {
                return Verdict::Drop {
                    reason: DropReason::DestUnavailableExpired,
                    expire_old: true,
                };
            }
            return Verdict::Reschedule {
                expire_old: true,
                clear_nfct: true,
            };
        }
        return Verdict::Drop {
            reason: DropReason::DestUnavailable,
            expire_old: false,
        };
    }
    Verdict::Continue
}

/// Linux 4.19: the whole reuse block sits under `conn_reuse_mode != 0`; a SYN is dropped when
/// the entry has NFCT and the packet has any conntrack (f719e3754ee2); a packet to a removed
/// server is always dropped, and with `expire_nodest_conn` the entry is expired so the next
/// packet is scheduled afresh.
fn pre_5_9(k: &Knobs, f: &Facts) -> Verdict {
    let mode = k.conn_reuse_mode;
    if mode != 0 && f.new_conn {
        let uses_ct = f.nfct && f.ct.present;
        let mut resched = false;
        if k.expire_nodest_conn && f.weight0 {
            resched = true;
        } else if new_conn_expected(f, mode) {
            resched = f.n_control == 0 || !uses_ct;
        }
        if resched {
            let expire_old = f.n_control == 0;
            if uses_ct {
                return Verdict::Drop {
                    reason: DropReason::ReuseConntrack,
                    expire_old,
                };
            }
            return Verdict::Reschedule {
                expire_old,
                clear_nfct: false,
            };
        }
    }
    if !f.available {
        if k.expire_nodest_conn {
            return Verdict::Drop {
                reason: DropReason::DestUnavailableExpired,
                expire_old: true,
            };
        }
        return Verdict::Drop {
            reason: DropReason::DestUnavailable,
            expire_old: false,
        };
    }
    Verdict::Continue
}
