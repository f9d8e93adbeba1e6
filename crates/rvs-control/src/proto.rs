//! The wire types of the admin protocol: what `rvs adm`, `rvs sysctl` and the HTTP endpoint
//! ask of the daemon, and what it answers.
//!
//! Framing: one JSON document per line (JSON lines) in each direction over a Unix stream
//! socket; one response per request, in order. A client may send several requests on one
//! connection. [`encode`] and [`decode`] are the only framing code.

use serde::{Deserialize, Serialize};

use rvs_core::EngineCounters;
use rvs_core::command::{AdmError, Command, Timeouts};
use rvs_core::profile::Profile;
use rvs_core::service::ServiceKey;
use rvs_core::snapshot::{ConnView, InfoView, ServiceView, TotalsView};
use std::net::IpAddr;

/// Default path of the admin socket.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvs.sock";

/// Environment variable that overrides the socket path for `rvs adm` and `rvs sysctl`.
pub const SOCKET_ENV: &str = "RVS_SOCKET";

/// Longest line the daemon accepts for a request (a request is small; a restore sends one
/// command per request).
pub const MAX_REQUEST_LINE: usize = 1 << 20;

/// Allowed source prefixes per service ([`Request::SetSourceRanges`]).
pub type SourceRanges = Vec<(ServiceKey, Vec<(IpAddr, u8)>)>;

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Apply one ipvsadm operation.
    Apply(Command),
    /// Apply several operations in order, each on its own: a refused one does not stop the
    /// others (what a driver such as the Kubernetes one sends after a sync).
    Batch(Vec<Command>),
    /// Listing header facts.
    Info,
    /// Services with their real servers.
    Services,
    /// The connection table.
    Conns,
    /// TCP/TCP FIN/UDP timeouts.
    Timeouts,
    /// Engine totals.
    Totals,
    /// One sysctl by name (with or without the `net.ipv4.vs.` prefix).
    SysctlGet(String),
    /// Every sysctl with its value.
    SysctlList,
    /// Set one sysctl.
    SysctlSet(String, String),
    /// Switch the behaviour profile (existing connections stay).
    SetProfile(Profile),
    /// Reload the daemon's config file (as SIGHUP does).
    Reload,
    /// The whole state (what `/state` shows).
    State,
    /// Replaces the data plane's source filter: new packets to each service key are
    /// accepted only from these prefixes (a Kubernetes LoadBalancer's
    /// `loadBalancerSourceRanges`); others are dropped and counted (`source_range`). Not part
    /// of the engine's state: the driver that sets it sets it again after a takeover.
    SetSourceRanges(SourceRanges),
}

/// One response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The request was carried out and has nothing to return.
    Done,
    /// The engine refused an operation (ipvsadm prints [`AdmError::ipvsadm_message`]).
    Adm(AdmError),
    /// Any other failure, as a message for a person (a reload's validation error names the
    /// file, line and field).
    Error(String),
    /// [`Request::Batch`]: per command, in order, `None` if it was applied or the refusal.
    Batch(Vec<Option<AdmError>>),
    /// [`Request::Info`].
    Info(InfoView),
    /// [`Request::Services`].
    Services(Vec<ServiceView>),
    /// [`Request::Conns`].
    Conns(Vec<ConnView>),
    /// [`Request::Timeouts`].
    Timeouts(Timeouts),
    /// [`Request::Totals`].
    Totals(TotalsView),
    /// [`Request::SysctlGet`] and [`Request::SysctlSet`]: the full name and the value now.
    Sysctl(String, String),
    /// [`Request::SysctlList`]: `(full name, value)` in `/proc/sys` order.
    Sysctls(Vec<(String, String)>),
    /// [`Request::SetProfile`]: the profile now.
    Profile(Profile),
    /// [`Request::Reload`]: what changed, one line per command applied.
    Reloaded(Vec<String>),
    /// [`Request::State`].
    State(Box<StateView>),
}

/// Counters kept by the data plane itself (not by the engine).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneStats {
    /// Packets read from the device.
    pub rx_packets: u64,
    /// Bytes read from the device.
    pub rx_bytes: u64,
    /// Packets written to the device (forwarded, answers and engine output).
    pub tx_packets: u64,
    /// Bytes written.
    pub tx_bytes: u64,
    /// Packets of `tx_packets` sent as Ethernet frames to a next hop the kernel had resolved
    /// (`output = "packet"`); the rest went through raw sockets or the TUN.
    #[serde(default)]
    pub frames_sent: u64,
    /// Read batches (one poll wake-up each); `rx_packets / rx_batches` is the batch size.
    pub rx_batches: u64,
    /// Packets dropped before the engine because they failed to parse, by
    /// `rvs_packet::Malformed` label.
    pub malformed: Vec<(String, u64)>,
    /// Packets the engine decided on but the data plane dropped, by reason label
    /// (`direct_route_on_tun`, `local_on_tun`, `bypass_on_tun`, `not_for_a_service`,
    /// `rewrite_failed`, `synth_failed`, `tunnel_too_big`, `write_failed`).
    pub dropped: Vec<(String, u64)>,
    /// TCP resets sent (answers and engine output).
    pub resets_sent: u64,
    /// ICMP errors sent (port unreachable, fragmentation needed).
    pub icmp_sent: u64,
    /// Packets of no service written back unchanged (a real server's own traffic caught by a
    /// reply-steering rule).
    pub passed_through: u64,
    /// Milliseconds since the data plane started.
    pub uptime_ms: u64,
    /// Crash-recovery snapshots written (by a forked child; see `rvs_dataplane::recovery`).
    #[serde(default)]
    pub snapshots_written: u64,
    /// Snapshots that failed (fork, write or rename).
    #[serde(default)]
    pub snapshot_failures: u64,
    /// The packet thread's pause for the last snapshot (the fork), nanoseconds.
    #[serde(default)]
    pub snapshot_pause_last_ns: u64,
    /// The longest such pause.
    #[serde(default)]
    pub snapshot_pause_max_ns: u64,
    /// Entries adopted at start from a crashed daemon's snapshot.
    #[serde(default)]
    pub recovered_entries: u64,
    /// Snapshots refused at start (damaged, foreign, another version or boot or device).
    #[serde(default)]
    pub recovery_refused: u64,
}

/// The whole state of a running daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    /// Behaviour profile.
    pub profile: Profile,
    /// Listing header facts (table size and count).
    pub info: InfoView,
    /// Services and their real servers.
    pub services: Vec<ServiceView>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Totals.
    pub totals: TotalsView,
    /// Engine event counters (drops are indexed by `rvs_core::DropReason::index`).
    pub counters: EngineCounters,
    /// Drop counters with their labels (`rvs_core::DropReason::as_str`).
    pub drops: Vec<(String, u64)>,
    /// Every sysctl.
    pub sysctls: Vec<(String, String)>,
    /// Data-plane counters.
    pub dataplane: DataplaneStats,
    /// Connection entries (at most [`StateView::CONNS_SHOWN`]).
    pub conns: Vec<ConnView>,
    /// Whether `conns` was cut.
    pub conns_truncated: bool,
}

impl StateView {
    /// Most connection entries a state view carries.
    pub const CONNS_SHOWN: usize = 10_000;
}

/// One message as a JSON line (ends with `\n`).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these types cannot fail: no maps with non-string keys, no foreign types.
    let mut v = serde_json::to_vec(msg).unwrap_or_else(|e| {
        serde_json::to_vec(&Response::Error(format!("cannot encode: {e}"))).unwrap_or_default()
    });
    v.push(b'\n');
    v
}

/// One message from a JSON line (with or without its `\n`).
pub fn decode<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(line).map_err(|e| format!("malformed admin message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};

    #[test]
    fn requests_round_trip_as_json_lines() {
        let key = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let reqs = [
            Request::Apply(Command::AddService(ServiceConfig::new(key).scheduler("rr"))),
            Request::SysctlSet("conn_reuse_mode".into(), "0".into()),
            Request::SetProfile(Profile::Linux5_16),
            Request::Reload,
        ];
        for r in reqs {
            let line = encode(&r);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            let back: Request = decode(&line).unwrap();
            assert_eq!(back, r);
        }
        let resp = Response::Adm(AdmError::NoService);
        assert_eq!(decode::<Response>(&encode(&resp)).unwrap(), resp);
        assert!(decode::<Request>(b"{nope").is_err());
    }
}
