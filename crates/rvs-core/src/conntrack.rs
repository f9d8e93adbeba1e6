//! The small model of netfilter conntrack that the kernel profiles' port-reuse decision needs
//! (kernel-semantics §2.4, "uses old conntrack").
//!
//! On a Linux director the decision to drop a reused-port SYN depends on the conntrack entry
//! the SYN carries when IPVS sees it:
//! * before 5.9 (`ip_vs_conn_uses_conntrack`): any conntrack entry, if the IPVS connection has
//!   NFCT (sysctl `conntrack=1` when it was created);
//! * from 5.9 (`ip_vs_conn_uses_old_conntrack`): a *confirmed* entry, i.e. the old flow's.
//!
//! rvs does not run conntrack. What it needs is whether netfilter tracks the director's flows
//! at all (true on a kube-proxy node, whose iptables rules register the conntrack hooks; false
//! on a bare director: the engine setting `netfilter_conntrack`) and, for a new SYN on an
//! existing flow, whether netfilter would keep the old entry or replace it. netfilter's TCP
//! tracker replaces ("reopens") an entry in TIME_WAIT or CLOSE when a SYN arrives, so the SYN
//! then carries a fresh, unconfirmed entry; in every other state the SYN is matched to the old,
//! confirmed entry (nf_conntrack_proto_tcp.c; kernel-semantics §2.4.2 and the 5.9 patch rationale).
//! The IPVS entry's state stands in for the conntrack entry's: on a NAT director both see the
//! same packets. For SCTP the same holds for CLOSED; UDP flows are never rescheduled on reuse.

use crate::proto::sctp::SctpState;
use crate::proto::tcp::TcpState;
use crate::service::Protocol;

/// What netfilter attaches to a new-connection packet that matches an existing IPVS entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtInfo {
    /// The packet carries a conntrack entry (netfilter tracks the director's flows).
    pub present: bool,
    /// That entry is the old flow's, already confirmed.
    pub confirmed: bool,
}

/// The conntrack a SYN (SCTP: INIT) carries when it matches an IPVS entry of `proto` in
/// `state`, on a director where netfilter tracking is `active`.
pub fn for_new_conn(active: bool, proto: Protocol, state: u8) -> CtInfo {
    if !active {
        return CtInfo {
            present: false,
            confirmed: false,
        };
    }
    let reopened = match proto {
        Protocol::Tcp => matches!(
            TcpState::from_u8(state),
            Some(TcpState::TimeWait | TcpState::Close)
        ),
        Protocol::Sctp => SctpState::from_u8(state) == Some(SctpState::Closed),
        Protocol::Udp => false,
    };
    CtInfo {
        present: true,
        confirmed: !reopened,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_wait_and_close_are_reopened_spec_2_4_2() {
        let tw = for_new_conn(true, Protocol::Tcp, TcpState::TimeWait as u8);
        assert_eq!(
            tw,
            CtInfo {
                present: true,
                confirmed: false
            }
        );
        let cl = for_new_conn(true, Protocol::Tcp, TcpState::Close as u8);
        assert!(!cl.confirmed);
        let sr = for_new_conn(true, Protocol::Tcp, TcpState::SynRecv as u8);
        assert!(sr.confirmed);
        let fw = for_new_conn(true, Protocol::Tcp, TcpState::FinWait as u8);
        assert!(fw.confirmed);
        assert!(!for_new_conn(false, Protocol::Tcp, TcpState::Established as u8).present);
    }
}
