//! SCTP in IPVS: states, names, timeouts, chunk events and the transition tables of
//! `ip_vs_proto_sctp.c` (kernel-semantics §3.3). Rows = event, columns = current state, one block
//! per direction, as in kernel-semantics §3.3.3.

use rvs_packet::sctp_chunk as chunk;

use super::Direction;

/// An SCTP connection state, numbered as the kernel numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SctpState {
    /// NONE.
    None = 0,
    /// INIT1.
    Init1 = 1,
    /// INIT.
    Init = 2,
    /// COOKIE_SENT.
    CookieSent = 3,
    /// COOKIE_REPLIED.
    CookieReplied = 4,
    /// COOKIE_WAIT.
    CookieWait = 5,
    /// COOKIE.
    Cookie = 6,
    /// COOKIE_ECHOED.
    CookieEchoed = 7,
    /// ESTABLISHED.
    Established = 8,
    /// SHUTDOWN_SENT.
    ShutdownSent = 9,
    /// SHUTDOWN_RECEIVED.
    ShutdownReceived = 10,
    /// SHUTDOWN_ACK_SENT.
    ShutdownAckSent = 11,
    /// REJECTED.
    Rejected = 12,
    /// CLOSED.
    Closed = 13,
}

/// Number of SCTP states.
pub const STATES: usize = 14;

use SctpState as S;

/// All states by number.
pub const ALL: [SctpState; STATES] = [
    S::None,
    S::Init1,
    S::Init,
    S::CookieSent,
    S::CookieReplied,
    S::CookieWait,
    S::Cookie,
    S::CookieEchoed,
    S::Established,
    S::ShutdownSent,
    S::ShutdownReceived,
    S::ShutdownAckSent,
    S::Rejected,
    S::Closed,
];

/// State names as `/proc` prints them (kernel-semantics §3.3.1).
pub const NAMES: [&str; STATES] = [
    "NONE",
    "INIT1",
    "INIT",
    "C-SENT",
    "C-REPLIED",
    "C-WAIT",
    "COOKIE",
    "C-ECHOED",
    "ESTABLISHED",
    "S-SENT",
    "S-RECEIVED",
    "S-ACK-SENT",
    "REJECTED",
    "CLOSED",
];

/// Default timeouts in seconds (kernel-semantics §3.3.1); not settable through ipvsadm.
pub const DEFAULT_TIMEOUTS: [u32; STATES] = [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61];

impl SctpState {
    /// From the state number.
    pub fn from_u8(n: u8) -> Option<Self> {
        ALL.get(n as usize).copied()
    }
    /// The `/proc` name.
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }
    /// Only ESTABLISHED counts as active (kernel-semantics §1.6).
    pub fn is_active(self) -> bool {
        self == S::Established
    }
    /// A state in which the association is shutting down or closed (the `safe` profile
    /// reschedules an INIT that finds it).
    pub fn is_closing(self) -> bool {
        matches!(
            self,
            S::ShutdownSent | S::ShutdownReceived | S::ShutdownAckSent | S::Rejected | S::Closed
        )
    }
}

/// SCTP events (kernel-semantics §3.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SctpEvent {
    /// DATA and every chunk type mapped to it.
    Data = 0,
    /// INIT.
    Init = 1,
    /// INIT ACK.
    InitAck = 2,
    /// COOKIE ECHO.
    CookieEcho = 3,
    /// COOKIE ACK.
    CookieAck = 4,
    /// SHUTDOWN.
    Shutdown = 5,
    /// SHUTDOWN ACK.
    ShutdownAck = 6,
    /// SHUTDOWN COMPLETE.
    ShutdownComplete = 7,
    /// ERROR.
    Error = 8,
    /// ABORT.
    Abort = 9,
}

/// The event of a packet from its first chunk type (kernel-semantics §3.3.2); `cookie_then_abort`
/// is the COOKIE ECHO/ACK followed by ABORT special case.
pub fn event(first_chunk: u8, cookie_then_abort: bool) -> SctpEvent {
    use SctpEvent as E;
    if cookie_then_abort {
        return E::Abort;
    }
    match first_chunk {
        chunk::INIT => E::Init,
        chunk::INIT_ACK => E::InitAck,
        chunk::ABORT => E::Abort,
        chunk::SHUTDOWN => E::Shutdown,
        chunk::SHUTDOWN_ACK => E::ShutdownAck,
        chunk::ERROR => E::Error,
        chunk::COOKIE_ECHO => E::CookieEcho,
        chunk::COOKIE_ACK => E::CookieAck,
        chunk::SHUTDOWN_COMPLETE => E::ShutdownComplete,
        _ => E::Data,
    }
}

type Table = [[SctpState; STATES]; 10];

const I1: S = S::Init1;
const IN: S = S::Init;
const CS: S = S::CookieSent;
const CR: S = S::CookieReplied;
const CW: S = S::CookieWait;
const CO: S = S::Cookie;
const CE: S = S::CookieEchoed;
const ES: S = S::Established;
const SS: S = S::ShutdownSent;
const SR: S = S::ShutdownReceived;
const SA: S = S::ShutdownAckSent;
const RJ: S = S::Rejected;
const CL: S = S::Closed;

/// Transition tables (kernel-semantics §3.3.3): INPUT, OUTPUT, INPUT_ONLY.
pub const TABLES: [Table; 3] = [
    // INPUT                      NO  I1  IN  CS  CR  CW  CO  CE  ES  SS  SR  SA  RJ  CL
    [
        /* DATA              */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* INIT              */ [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
        /* INIT_ACK          */ [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* COOKIE_ECHO       */ [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* COOKIE_ACK        */ [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
        /* SHUTDOWN          */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        /* SHUTDOWN_ACK      */ [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
        /* SHUTDOWN_COMPLETE */ [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
        /* ERROR             */ [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
        /* ABORT             */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // OUTPUT                     NO  I1  IN  CS  CR  CW  CO  CE  ES  SS  SR  SA  RJ  CL
    [
        /* DATA              */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* INIT              */ [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
        /* INIT_ACK          */ [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* COOKIE_ECHO       */ [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
        /* COOKIE_ACK        */ [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
        /* SHUTDOWN          */ [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
        /* SHUTDOWN_ACK      */ [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
        /* SHUTDOWN_COMPLETE */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* ERROR             */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* ABORT             */ [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY                 NO  I1  IN  CS  CR  CW  CO  CE  ES  SS  SR  SA  RJ  CL
    [
        /* DATA              */ [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* INIT              */ [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
        /* INIT_ACK          */ [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* COOKIE_ECHO       */ [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* COOKIE_ACK        */ [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
        /* SHUTDOWN          */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        /* SHUTDOWN_ACK      */ [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
        /* SHUTDOWN_COMPLETE */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
        /* ERROR             */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* ABORT             */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

/// The next state for event `ev` seen in `dir` in state `cur`.
pub fn transition(dir: Direction, cur: SctpState, ev: SctpEvent) -> SctpState {
    TABLES[dir as usize][ev as usize][cur as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Direction::{Input, InputOnly, Output};

    const ABBR: [&str; STATES] = [
        "NO", "I1", "IN", "CS", "CR", "CW", "CO", "CE", "ES", "SS", "SR", "SA", "RJ", "CL",
    ];
    const EVENTS: [SctpEvent; 10] = [
        SctpEvent::Data,
        SctpEvent::Init,
        SctpEvent::InitAck,
        SctpEvent::CookieEcho,
        SctpEvent::CookieAck,
        SctpEvent::Shutdown,
        SctpEvent::ShutdownAck,
        SctpEvent::ShutdownComplete,
        SctpEvent::Error,
        SctpEvent::Abort,
    ];
    /// kernel-semantics §3.3.3, transcribed independently as text.
    const SPEC: [&str; 3] = [
        "ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL|I1 IN IN CS CR CW CO CE ES SS SR SA IN IN|CW CW CW CS CR CO CO CE ES SS SR SA RJ CL|CR IN IN CR CR CW CO CE ES SS SR SA RJ CL|ES I1 IN CS CR CW CO ES ES SS SR SA RJ CL|SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL|CL IN IN CS CR CW CO CE ES CL SR CL RJ CL|CL CL CL CS CR CW CO CE ES SS SR CL RJ CL|CL I1 IN CS CR CW CO CL ES SS SR SA RJ CL|CL CL CL CL CL RJ CL CL CL CL CL CL CL CL",
        "ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL|CW CW CW CW CW CW CW CW ES CW CW CW CW CW|CS CS CS CS CR CW CO CE ES SS SR SA RJ CL|CE CE CE CE CE CE CE CE ES SS SR SA RJ CL|ES ES ES ES ES ES ES ES ES SS SR SA RJ CL|SS SS SS SS SS SS SS SS SS SS SR SA RJ CL|SA SA SA SA SA CW CO CE ES SA SA SA RJ CL|CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL|CL CL CL CL CL CW CO CE ES SS SR SA RJ CL|CL RJ CL CL CL CL CL CL CL CL CL CL CL CL",
        "ES I1 IN CS CR ES CO CE ES SS SR SA RJ CL|I1 IN IN IN IN IN CO CE ES SS SR SA IN IN|CE CE CE CE CE CE CO CE ES SS SR SA RJ CL|ES ES ES ES ES ES CO CE ES SS SR SA RJ CL|ES I1 IN ES ES CW ES ES ES SS SR SA RJ CL|SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL|CL IN IN CS CR CW CO CE CL CL SR CL RJ CL|CL CL CL CL CL CW CO CE ES SS CL CL RJ CL|CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL|CL CL CL CL CL RJ CL CL CL CL CL CL CL CL",
    ];

    /// Every cell of the three SCTP tables (kernel-semantics §3.3.3).
    #[test]
    fn every_cell_spec_3_3_3() {
        for (d, dir) in [Input, Output, InputOnly].into_iter().enumerate() {
            for (e, row) in SPEC[d].split('|').enumerate() {
                for (c, cell) in row.split(' ').enumerate() {
                    let got = transition(dir, ALL[c], EVENTS[e]);
                    assert_eq!(
                        ABBR[got as usize], cell,
                        "dir={dir:?} ev={:?} cur={}",
                        EVENTS[e], ABBR[c]
                    );
                }
            }
        }
    }

    /// Chunk-to-event mapping, unknown types as DATA, and the cookie+abort case
    /// (kernel-semantics §3.3.2).
    #[test]
    fn events_spec_3_3_2() {
        assert_eq!(event(chunk::SACK, false), SctpEvent::Data);
        assert_eq!(event(chunk::HEARTBEAT, false), SctpEvent::Data);
        assert_eq!(event(200, false), SctpEvent::Data);
        assert_eq!(event(chunk::INIT, false), SctpEvent::Init);
        assert_eq!(event(chunk::COOKIE_ECHO, true), SctpEvent::Abort);
        assert_eq!(NAMES[SctpState::CookieSent as usize], "C-SENT");
        assert_eq!(DEFAULT_TIMEOUTS[SctpState::Init1 as usize], 4);
    }
}
