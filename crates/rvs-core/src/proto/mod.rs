//! Protocol state machines (kernel-semantics §3): TCP and SCTP tables, UDP's single state, and the
//! per-engine timeout tables that `ipvsadm --set` changes.

pub mod sctp;
pub mod tcp;

use serde::{Deserialize, Serialize};

use crate::command::Timeouts;
use crate::service::Protocol;

/// Which transition table a packet uses (kernel-semantics §3, general rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to real server, on a connection whose replies the balancer sees (NAT).
    Input = 0,
    /// Real server to client (NAT replies).
    Output = 1,
    /// Client to real server on a connection flagged NOOUTPUT (DR, tunnel).
    InputOnly = 2,
}

/// UDP's single state (kernel-semantics §3.2): named `UDP`, never active.
pub const UDP_STATE_NAME: &str = "UDP";
/// UDP's default timeout in seconds.
pub const UDP_DEFAULT_TIMEOUT: u32 = 300;

/// Per-protocol, per-state timeouts of one engine, in seconds (and in ticks, for the packet
/// path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutTable {
    /// TCP, by state number.
    tcp: [u32; tcp::STATES],
    /// SCTP, by state number.
    sctp: [u32; sctp::STATES],
    /// UDP.
    udp: u32,
    /// The same in ticks: TCP, SCTP, then UDP.
    #[serde(skip)]
    ticks: [u32; tcp::STATES + sctp::STATES + 1],
}

impl Default for TimeoutTable {
    fn default() -> Self {
        let mut t = TimeoutTable {
            tcp: tcp::DEFAULT_TIMEOUTS,
            sctp: sctp::DEFAULT_TIMEOUTS,
            udp: UDP_DEFAULT_TIMEOUT,
            ticks: [0; tcp::STATES + sctp::STATES + 1],
        };
        t.update_ticks();
        t
    }
}

impl TimeoutTable {
    /// After deserializing (the tick cache is not serialized): recomputes the ticks; `false`
    /// if a timeout exceeds what the kernel accepts (`INT_MAX / HZ` seconds).
    pub(crate) fn loaded(&mut self) -> bool {
        let max = (i32::MAX / 250) as u32;
        let ok = self.tcp.iter().chain(self.sctp.iter()).all(|&t| t <= max) && self.udp <= max;
        self.update_ticks();
        ok
    }

    fn update_ticks(&mut self) {
        let all = self
            .tcp
            .iter()
            .chain(self.sctp.iter())
            .chain(core::iter::once(&self.udp));
        for (t, &s) in self.ticks.iter_mut().zip(all) {
            *t = crate::time::secs_to_ticks(s);
        }
    }

    /// Timeout of a state in ticks (state 0 for UDP); 2 s for an unknown state.
    #[inline]
    pub fn ticks(&self, proto: Protocol, state: u8) -> u32 {
        let i = match proto {
            Protocol::Tcp if (state as usize) < tcp::STATES => state as usize,
            Protocol::Sctp if (state as usize) < sctp::STATES => tcp::STATES + state as usize,
            Protocol::Udp => tcp::STATES + sctp::STATES,
            _ => return 2 * crate::time::TICKS_PER_SEC,
        };
        self.ticks
            .get(i)
            .copied()
            .unwrap_or(2 * crate::time::TICKS_PER_SEC)
    }

    /// Timeout of a state (state 0 for UDP), in seconds.
    #[inline]
    pub fn get(&self, proto: Protocol, state: u8) -> u32 {
        match proto {
            Protocol::Tcp => self.tcp.get(state as usize).copied().unwrap_or(2),
            Protocol::Sctp => self.sctp.get(state as usize).copied().unwrap_or(2),
            Protocol::Udp => self.udp,
        }
    }

    /// What `ipvsadm -L --timeout` shows.
    pub fn ipvsadm(&self) -> Timeouts {
        Timeouts {
            tcp: self.tcp[tcp::TcpState::Established as usize],
            tcpfin: self.tcp[tcp::TcpState::FinWait as usize],
            udp: self.udp,
        }
    }

    /// `ipvsadm --set tcp tcpfin udp`: each non-zero value replaces its timeout.
    pub fn set(&mut self, t: Timeouts) {
        if t.tcp != 0 {
            self.tcp[tcp::TcpState::Established as usize] = t.tcp;
        }
        if t.tcpfin != 0 {
            self.tcp[tcp::TcpState::FinWait as usize] = t.tcpfin;
        }
        if t.udp != 0 {
            self.udp = t.udp;
        }
        self.update_ticks();
    }
}

/// The state name of a connection as `/proc` prints it.
pub fn state_name(proto: Protocol, state: u8) -> &'static str {
    match proto {
        Protocol::Tcp => tcp::NAMES.get(state as usize).copied().unwrap_or("ERR!"),
        Protocol::Sctp => sctp::NAMES.get(state as usize).copied().unwrap_or("ERR!"),
        Protocol::Udp => UDP_STATE_NAME,
    }
}

/// Whether a connection of `proto` in `state` counts as active (kernel-semantics §1.6).
#[inline]
pub fn is_active(proto: Protocol, state: u8) -> bool {
    match proto {
        Protocol::Tcp => tcp::TcpState::from_u8(state).is_some_and(tcp::TcpState::is_active),
        Protocol::Sctp => sctp::SctpState::from_u8(state).is_some_and(sctp::SctpState::is_active),
        Protocol::Udp => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--set` changes only non-zero values; `-L --timeout` shows tcp, tcpfin, udp
    /// (kernel-semantics §8.7, golden ipvsadm-L-timeout*.txt).
    #[test]
    fn set_timeouts_spec_8_7() {
        let mut t = TimeoutTable::default();
        assert_eq!(
            t.ipvsadm(),
            Timeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300
            }
        );
        t.set(Timeouts {
            tcp: 600,
            tcpfin: 60,
            udp: 120,
        });
        assert_eq!(
            t.ipvsadm(),
            Timeouts {
                tcp: 600,
                tcpfin: 60,
                udp: 120
            }
        );
        t.set(Timeouts {
            tcp: 0,
            tcpfin: 0,
            udp: 5,
        });
        assert_eq!(
            t.ipvsadm(),
            Timeouts {
                tcp: 600,
                tcpfin: 60,
                udp: 5
            }
        );
        assert_eq!(t.get(Protocol::Tcp, tcp::TcpState::TimeWait as u8), 120);
    }
}
