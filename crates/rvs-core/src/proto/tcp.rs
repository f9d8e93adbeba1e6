//! TCP in IPVS: states, names, default timeouts, and the transition tables of
//! `ip_vs_proto_tcp.c` (kernel-semantics §3.1).
//!
//! The tables keep the layout of kernel-semantics §3.1.3: one block per direction (INPUT, OUTPUT,
//! INPUT_ONLY), rows = event (syn, fin, ack, rst), columns = current state (NO ES SS SR FW TW CL CW
//! LA LI SA). Two sets exist: the normal one and the "secure" one used while the `secure_tcp`
//! defence is active (kernel-semantics §3.1.4).

use rvs_packet::TcpFlags;

use super::Direction;

/// A TCP connection state, numbered as the kernel numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// NONE.
    None = 0,
    /// ESTABLISHED.
    Established = 1,
    /// SYN_SENT.
    SynSent = 2,
    /// SYN_RECV.
    SynRecv = 3,
    /// FIN_WAIT.
    FinWait = 4,
    /// TIME_WAIT.
    TimeWait = 5,
    /// CLOSE.
    Close = 6,
    /// CLOSE_WAIT.
    CloseWait = 7,
    /// LAST_ACK.
    LastAck = 8,
    /// LISTEN.
    Listen = 9,
    /// SYNACK.
    SynAck = 10,
}

/// Number of TCP states.
pub const STATES: usize = 11;

use TcpState as S;

/// All states by number.
pub const ALL: [TcpState; STATES] = [
    S::None,
    S::Established,
    S::SynSent,
    S::SynRecv,
    S::FinWait,
    S::TimeWait,
    S::Close,
    S::CloseWait,
    S::LastAck,
    S::Listen,
    S::SynAck,
];

impl TcpState {
    /// From the kernel's state number (`None` if out of range).
    pub fn from_u8(n: u8) -> Option<Self> {
        ALL.get(n as usize).copied()
    }
    /// The name `/proc/net/ip_vs_conn` and `ipvsadm -Lc` print.
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }
    /// Whether a connection in this state counts in ActiveConn (kernel-semantics §1.6):
    /// ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK; all others count in InActConn.
    pub fn is_active(self) -> bool {
        matches!(self, S::Established | S::SynSent | S::SynRecv | S::SynAck)
    }
    /// A state in which the connection is closing or closed: a new SYN on it is a new
    /// connection (the `safe` profile's rule, README, Profiles).
    pub fn is_closing(self) -> bool {
        matches!(
            self,
            S::FinWait | S::TimeWait | S::Close | S::CloseWait | S::LastAck
        )
    }
}

/// State names, indexed by state number (kernel-semantics §3.1.1).
pub const NAMES: [&str; STATES] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
];

/// Default timeouts in seconds, indexed by state number (kernel-semantics §3.1.1). ESTABLISHED and
/// FIN_WAIT can be changed with `ipvsadm --set`.
pub const DEFAULT_TIMEOUTS: [u32; STATES] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

/// The four events a TCP segment can produce (kernel-semantics §3.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpEvent {
    /// SYN set (and not RST).
    Syn = 0,
    /// FIN set (and not RST or SYN).
    Fin = 1,
    /// ACK set (and none of the above).
    Ack = 2,
    /// RST set.
    Rst = 3,
}

/// The kernel's `tcp_state_idx`: RST, then SYN, then FIN, then ACK; `None` for a segment with
/// none of these flags (which forces the state to CLOSE, kernel-semantics §3.1.2, pitfall P6).
pub fn event(flags: TcpFlags) -> Option<TcpEvent> {
    if flags.rst() {
        Some(TcpEvent::Rst)
    } else if flags.syn() {
        Some(TcpEvent::Syn)
    } else if flags.fin() {
        Some(TcpEvent::Fin)
    } else if flags.ack() {
        Some(TcpEvent::Ack)
    } else {
        None
    }
}

type Table = [[TcpState; STATES]; 4];

// Abbreviations, as in the tables of kernel-semantics §3.1.
const ES: S = S::Established;
const SS: S = S::SynSent;
const SR: S = S::SynRecv;
const FW: S = S::FinWait;
const TW: S = S::TimeWait;
const CL: S = S::Close;
const CW: S = S::CloseWait;
const LA: S = S::LastAck;
const LI: S = S::Listen;
const SA: S = S::SynAck;

/// Normal tables (kernel-semantics §3.1.3).
pub const NORMAL: [Table; 3] = [
    // INPUT             NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT            NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY        NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// Secure (DoS) tables, used while `secure_tcp` is in effect (kernel-semantics §3.1.4).
pub const SECURE: [Table; 3] = [
    // INPUT             NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        /* ack */ [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
    // OUTPUT            NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /* syn */ [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY        NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [
        /* syn */ [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The kernel's `set_tcp_state`: the next state for a segment with `flags` seen in `dir` on a
/// connection in `cur`. A segment with no SYN/FIN/ACK/RST forces CLOSE.
pub fn transition(secure: bool, dir: Direction, cur: TcpState, flags: TcpFlags) -> TcpState {
    let Some(ev) = event(flags) else {
        return S::Close;
    };
    let tables = if secure { &SECURE } else { &NORMAL };
    tables[dir as usize][ev as usize][cur as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Direction::{Input, InputOnly, Output};

    const F_SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const F_SYNACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    const F_ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const F_FIN: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
    const F_RST: TcpFlags = TcpFlags(TcpFlags::RST);

    /// The tables of kernel-semantics §3.1.3 / §3.1.4, transcribed from its text as strings, so
    /// that every cell of the const tables above is checked against an independent transcription.
    const SPEC_NORMAL: [&str; 3] = [
        "SR ES ES SR SR SR SR SR SR SR SR|CL CW SS TW TW TW CL CW LA LI TW|ES ES SS ES FW TW CL CW CL LI ES|CL CL CL SR CL CL CL CL LA LI SR",
        "SS ES SS SR SS SS SS SS SS LI SR|TW FW SS TW FW TW CL TW LA LI TW|ES ES SS ES FW TW CL CW LA ES ES|CL CL SS CL CL TW CL CL CL CL CL",
        "SR ES ES SR SR SR SR SR SR SR SR|CL FW SS TW FW TW CL CW LA LI TW|ES ES SS ES FW TW CL CW CL LI ES|CL CL CL SR CL CL CL CL LA LI CL",
    ];
    const SPEC_SECURE: [&str; 3] = [
        "SR ES ES SR SR SR SR SR SR SR SA|CL CW SS TW TW TW CL CW LA LI SA|ES ES SS SR FW TW CL CW CL LI SA|CL CL CL SR CL CL CL CL LA LI CL",
        "SS ES SS SA SS SS SS SS SS LI SA|TW FW SS TW FW TW CL TW LA LI TW|ES ES SS ES FW TW CL CW LA ES ES|CL CL SS CL CL TW CL CL CL CL CL",
        "SA ES ES SR SA SA SA SA SA SA SA|CL FW SS TW FW TW CL CW LA LI TW|ES ES SS ES FW TW CL CW CL LI ES|CL CL CL SR CL CL CL CL LA LI CL",
    ];
    const ABBR: [&str; STATES] = [
        "NO", "ES", "SS", "SR", "FW", "TW", "CL", "CW", "LA", "LI", "SA",
    ];

    fn check(spec: &[&str; 3], secure: bool) {
        let flags = [F_SYN, F_FIN, F_ACK, F_RST];
        for (d, dir) in [Input, Output, InputOnly].into_iter().enumerate() {
            for (e, row) in spec[d].split('|').enumerate() {
                for (c, cell) in row.split(' ').enumerate() {
                    let got = transition(secure, dir, ALL[c], flags[e]);
                    assert_eq!(
                        ABBR[got as usize], cell,
                        "secure={secure} dir={dir:?} event={e} cur={}",
                        ABBR[c]
                    );
                }
            }
        }
    }

    /// Every cell of every normal table (kernel-semantics §3.1.3).
    #[test]
    fn every_cell_normal_tables_spec_3_1_3() {
        check(&SPEC_NORMAL, false);
    }

    /// Every cell of every secure table (kernel-semantics §3.1.4).
    #[test]
    fn every_cell_secure_tables_spec_3_1_4() {
        check(&SPEC_SECURE, true);
    }

    /// Event priority and the flagless-segment quirk (kernel-semantics §3.1.2, P6).
    #[test]
    fn event_extraction_spec_3_1_2() {
        assert_eq!(
            event(TcpFlags(TcpFlags::RST | TcpFlags::SYN)),
            Some(TcpEvent::Rst)
        );
        assert_eq!(event(F_SYNACK), Some(TcpEvent::Syn));
        assert_eq!(event(F_FIN), Some(TcpEvent::Fin));
        assert_eq!(event(F_ACK), Some(TcpEvent::Ack));
        assert_eq!(event(TcpFlags(TcpFlags::PSH)), None);
        assert_eq!(
            transition(false, Input, S::Established, TcpFlags(TcpFlags::PSH)),
            S::Close
        );
    }

    /// The worked NAT example of kernel-semantics §3.1.3: client-initiated close ends in TIME_WAIT.
    #[test]
    fn nat_client_close_walk_spec_3_1_3() {
        let mut s = S::None;
        for (dir, f, want) in [
            (Input, F_SYN, SR),
            (Output, F_SYNACK, SR),
            (Input, F_ACK, ES),
            (Input, F_FIN, CW),
            (Output, F_ACK, CW),
            (Output, F_FIN, TW),
            (Input, F_ACK, TW),
        ] {
            s = transition(false, dir, s, f);
            assert_eq!(s, want);
        }
    }

    /// DR connections never reach TIME_WAIT (kernel-semantics §3.1.3, P5).
    #[test]
    fn dr_close_ends_in_fin_wait_spec_3_1_3() {
        let mut s = S::None;
        for f in [F_SYN, F_ACK, F_FIN, F_ACK] {
            s = transition(false, InputOnly, s, f);
        }
        assert_eq!(s, FW);
    }

    #[test]
    fn activity_and_names_spec_3_1_1() {
        let active: Vec<_> = ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.name())
            .collect();
        assert_eq!(active, ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]);
        assert_eq!(DEFAULT_TIMEOUTS[S::TimeWait as usize], 120);
        assert_eq!(DEFAULT_TIMEOUTS[S::Close as usize], 10);
        assert_eq!(DEFAULT_TIMEOUTS[S::SynRecv as usize], 60);
    }
}
