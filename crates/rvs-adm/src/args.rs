//! ipvsadm 1.31 command-line parsing: an argument vector becomes a [`Request`], or the exact
//! error text and exit status ipvsadm would produce.
//!
//! The order of checks follows ipvsadm: options are scanned left to right (value errors such
//! as `illegal weight specified` stop at the first bad option), then the `--set` values, stray
//! arguments and `-b` flags, then the command/option legality matrix, then the per-command
//! rules (zero port, one-packet, forced real-server port, address family, tunnel options,
//! list option conflicts).

use core::net::{IpAddr, Ipv4Addr};

use rvs_core::addr::Netmask;
use rvs_core::command::{Command, Timeouts};
use rvs_core::dest::{DestConfig, ForwardMethod, TunnelCsum, TunnelInfo, TunnelType};
use rvs_core::service::{Protocol, ServiceConfig, ServiceFlags, ServiceKey};

use crate::cparse::{atoi, inet_aton, inet_pton6, parse_fwmark, string_to_number};
use crate::popt::{ArgKind, Context, Next, OptDef};
use crate::resolve::Resolver;

/// Longest persistence timeout and `--set` value ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// Persistence timeout when `-p` is given without a value.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Scheduler when `-s` is not given.
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// What one ipvsadm invocation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A state change: `-A -E -D -C -Z -a -e -d --set`.
    Apply(Command),
    /// `-L`/`-l` (and no arguments at all): services, one service, or connections.
    List(ListOptions),
    /// `-S` / `--save`.
    Save {
        /// `-n`.
        numeric: bool,
    },
    /// `-R` / `--restore`: read commands from standard input.
    Restore,
    /// `-v` / `--version`.
    Version,
    /// `-h` / `--help`.
    Help,
    /// `-L --timeout`.
    Timeout,
    /// `-L --daemon`.
    Daemon,
    /// `--start-daemon` (parsed and validated; rvs has no sync daemon).
    StartDaemon(DaemonConfig),
    /// `--stop-daemon` (parsed and validated; rvs has no sync daemon).
    StopDaemon(DaemonConfig),
}

/// Options of a `-L` listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `-L -t/-u/--sctp-service/-f ...`: list only this service (no version header).
    pub service: Option<ServiceKey>,
    /// `-c`: list connections.
    pub connections: bool,
    /// `-n`.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact` / `-X`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// Which sync daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonState {
    /// `master`.
    Master,
    /// `backup`.
    Backup,
}

/// A sync daemon as `--start-daemon`/`--stop-daemon` describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Master or backup.
    pub state: DaemonState,
    /// `--mcast-interface` (ipvsadm fills in `eth0` for `--start-daemon`).
    pub mcast_ifn: String,
    /// `--syncid` (0..255).
    pub syncid: u8,
    /// `--sync-maxlen` (0 = not given).
    pub sync_maxlen: u16,
    /// `--mcast-group`.
    pub mcast_group: Option<IpAddr>,
    /// `--mcast-port` (0 = not given).
    pub mcast_port: u16,
    /// `--mcast-ttl` (0 = not given).
    pub mcast_ttl: u8,
}

/// A refused command line: what ipvsadm prints on standard error and how it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError {
    /// The complete text written to standard error (ends with a newline).
    pub message: String,
    /// The exit status of `ipvsadm` (2 for `fail()`, 255 for the "Try ..." hint and popt
    /// errors, 139 where ipvsadm crashes).
    pub status: i32,
    /// Whether ipvsadm calls `exit()` here (which also ends an `ipvsadm -R` restore), as
    /// opposed to a popt error after the command, which only fails the current line.
    pub fatal: bool,
}

impl ArgError {
    fn fail(msg: impl Into<String>) -> Self {
        let mut message = msg.into();
        message.push('\n');
        ArgError {
            message,
            status: 2,
            fatal: true,
        }
    }

    fn tryhelp(program: &str) -> Self {
        ArgError {
            message: format!("Try `{program} -h' or '{program} --help' for more information.\n"),
            status: 255,
            fatal: true,
        }
    }
}

impl core::fmt::Display for ArgError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message.trim_end_matches('\n'))
    }
}

impl std::error::Error for ArgError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    AddService,
    EditService,
    DelService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DelServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masq,
    Ipip,
    Gate,
    FullNat,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

const fn o(long: &'static str, short: u8, arg: ArgKind, tag: Tag) -> OptDef<Tag> {
    OptDef {
        long,
        short: if short == 0 { None } else { Some(short) },
        arg,
        tag,
    }
}

use ArgKind::{None as N, Optional as O, Required as R};

/// ipvsadm's popt table, in its order.
const TABLE: &[OptDef<Tag>] = &[
    o("add-service", b'A', N, Tag::AddService),
    o("edit-service", b'E', N, Tag::EditService),
    o("delete-service", b'D', N, Tag::DelService),
    o("clear", b'C', N, Tag::Clear),
    o("list", b'L', N, Tag::List),
    o("list", b'l', N, Tag::List),
    o("zero", b'Z', N, Tag::Zero),
    o("add-server", b'a', N, Tag::AddServer),
    o("edit-server", b'e', N, Tag::EditServer),
    o("delete-server", b'd', N, Tag::DelServer),
    o("set", 0, N, Tag::Set),
    o("help", b'h', N, Tag::Help),
    o("version", b'v', N, Tag::Version),
    o("restore", b'R', N, Tag::Restore),
    o("save", b'S', N, Tag::Save),
    o("start-daemon", 0, R, Tag::StartDaemon),
    o("stop-daemon", 0, R, Tag::StopDaemon),
    o("tcp-service", b't', R, Tag::Tcp),
    o("udp-service", b'u', R, Tag::Udp),
    o("sctp-service", 0, R, Tag::Sctp),
    o("fwmark-service", b'f', R, Tag::Fwmark),
    o("scheduler", b's', R, Tag::Scheduler),
    o("persistent", b'p', O, Tag::Persistent),
    o("netmask", b'M', R, Tag::Netmask),
    o("real-server", b'r', R, Tag::RealServer),
    o("masquerading", b'm', N, Tag::Masq),
    o("ipip", b'i', N, Tag::Ipip),
    o("gatewaying", b'g', N, Tag::Gate),
    // rvs's extension (ipvsadm has no full NAT): a forwarding method like -m/-g/-i.
    o("fullnat", 0, N, Tag::FullNat),
    o("weight", b'w', R, Tag::Weight),
    o("u-threshold", b'x', R, Tag::UThreshold),
    o("l-threshold", b'y', R, Tag::LThreshold),
    o("numeric", b'n', N, Tag::Numeric),
    o("connection", b'c', N, Tag::Connection),
    o("mcast-interface", 0, R, Tag::McastInterface),
    o("syncid", 0, R, Tag::SyncId),
    o("timeout", 0, N, Tag::Timeout),
    o("daemon", 0, N, Tag::Daemon),
    o("stats", 0, N, Tag::Stats),
    o("rate", 0, N, Tag::Rate),
    o("thresholds", 0, N, Tag::Thresholds),
    o("persistent-conn", 0, N, Tag::PersistentConn),
    o("nosort", 0, N, Tag::NoSort),
    o("sort", 0, N, Tag::Sort),
    o("exact", b'X', N, Tag::Exact),
    o("ipv6", b'6', N, Tag::Ipv6),
    o("ops", b'o', N, Tag::Ops),
    o("pe", 0, R, Tag::Pe),
    o("sched-flags", b'b', R, Tag::SchedFlags),
    o("mcast-group", 0, R, Tag::McastGroup),
    o("mcast-port", 0, R, Tag::McastPort),
    o("mcast-ttl", 0, R, Tag::McastTtl),
    o("sync-maxlen", 0, R, Tag::SyncMaxlen),
    o("tun-info", 0, N, Tag::TunInfo),
    o("tun-type", 0, R, Tag::TunType),
    o("tun-port", 0, R, Tag::TunPort),
    o("tun-nocsum", 0, N, Tag::TunNocsum),
    o("tun-csum", 0, N, Tag::TunCsum),
    o("tun-remcsum", 0, N, Tag::TunRemcsum),
];

/// Every option the parser accepts, in the table's order (for the manual page): the long
/// name, the short letter if there is one, and what follows it: `""` (nothing), `"value"`
/// (required) or `"[value]"` (optional, in the same argument or the next one).
pub fn accepted_options() -> Vec<(&'static str, Option<char>, &'static str)> {
    TABLE
        .iter()
        .map(|d| {
            let value = match d.arg {
                N => "",
                R => "value",
                O => "[value]",
            };
            (d.long, d.short.map(char::from), value)
        })
        .collect()
}

// Commands, in the order of ipvsadm's matrix rows and `cmdnames`.
const CMD_ADD: usize = 0;
const CMD_EDIT: usize = 1;
const CMD_DEL: usize = 2;
const CMD_FLUSH: usize = 3;
const CMD_LIST: usize = 4;
const CMD_ADDDEST: usize = 5;
const CMD_DELDEST: usize = 6;
const CMD_EDITDEST: usize = 7;
const CMD_TIMEOUT: usize = 8;
const CMD_STARTDAEMON: usize = 9;
const CMD_STOPDAEMON: usize = 10;
const CMD_RESTORE: usize = 11;
const CMD_SAVE: usize = 12;
const CMD_ZERO: usize = 13;

const CMDNAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

// Options, in the order of the matrix columns and `optnames`.
const OPTC_NUMERIC: usize = 0;
const OPTC_CONNECTION: usize = 1;
const OPTC_SERVICE: usize = 2;
const OPTC_SCHEDULER: usize = 3;
const OPTC_PERSISTENT: usize = 4;
const OPTC_NETMASK: usize = 5;
const OPTC_SERVER: usize = 6;
const OPTC_FORWARD: usize = 7;
const OPTC_WEIGHT: usize = 8;
const OPTC_UTHRESHOLD: usize = 9;
const OPTC_LTHRESHOLD: usize = 10;
const OPTC_MCAST: usize = 11;
const OPTC_TIMEOUT: usize = 12;
const OPTC_DAEMON: usize = 13;
const OPTC_STATS: usize = 14;
const OPTC_RATE: usize = 15;
const OPTC_THRESHOLDS: usize = 16;
const OPTC_PERSISTENTCONN: usize = 17;
const OPTC_NOSORT: usize = 18;
const OPTC_SYNCID: usize = 19;
const OPTC_EXACT: usize = 20;
const OPTC_ONEPACKET: usize = 21;
const OPTC_PE: usize = 22;
const OPTC_SCHED_FLAGS: usize = 23;
const OPTC_MCAST_GROUP: usize = 24;
const OPTC_MCAST_PORT: usize = 25;
const OPTC_MCAST_TTL: usize = 26;
const OPTC_SYNC_MAXLEN: usize = 27;
const OPTC_TUN_INFO: usize = 28;
const OPTC_TUN_TYPE: usize = 29;
const OPTC_TUN_PORT: usize = 30;
const OPTC_TUN_NOCSUM: usize = 31;
const OPTC_TUN_CSUM: usize = 32;
const OPTC_TUN_REMCSUM: usize = 33;
const NUMBER_OF_OPT: usize = 34;

const OPTNAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// ipvsadm's table of legal command/option combinations: `+` compulsory, `x` illegal, `1` at
/// most one of the `1` options, ` ` optional. Columns as [`OPTNAMES`].
const MATRIX: [&[u8; NUMBER_OF_OPT]; 14] = [
    //-n-c svc-s-p-M-r fwd-w-x-y mc tot dmn st rt thr pc srt sid ex ops pe -b grp port ttl size tinf type tprt nocs csum remc
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
const TUNOPTS: [usize; 4] = [
    OPTC_TUN_PORT,
    OPTC_TUN_NOCSUM,
    OPTC_TUN_CSUM,
    OPTC_TUN_REMCSUM,
];
/// Tunnel types versus tunnel options (columns as [`TUNOPTS`]).
const TUN_MATRIX: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_SCTP: u8 = 132;

const IP_VS_CONN_F_MASQ: u32 = 0;
const IP_VS_CONN_F_TUNNEL: u32 = 2;
const IP_VS_CONN_F_DROUTE: u32 = 3;
/// Full NAT, rvs's extension; no kernel value exists.
const RVS_CONN_F_FULLNAT: u32 = 0x100;

const SERVICE_ADDR: u8 = 1;
const SERVICE_PORT: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Af {
    Unspec,
    V4,
    V6,
}

/// ipvsadm's `ipvs_service_t`, as far as the command line fills it.
#[derive(Clone, Debug)]
struct Svc {
    fwmark: u32,
    af: Af,
    protocol: u8,
    addr: IpAddr,
    port: u16,
    sched: String,
    flags: u32,
    timeout: u32,
    /// IPv4: the mask as a host-order value of its four bytes; IPv6: the prefix length.
    netmask: u32,
    pe: String,
}

#[derive(Clone, Debug)]
struct Dst {
    af: Af,
    addr: IpAddr,
    port: u16,
    fwd: u32,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: usize,
    tun_port: u16,
    tun_flags: u16,
}

fn protocol_of(p: u8) -> Option<Protocol> {
    Protocol::from_ipproto(p)
}

/// ipvsadm's `parse_service`: `host[:port]`, `[v6]:port` or a bare IPv6 address.
fn parse_service(buf: &str, svc: &mut Svc, names: &dyn Resolver) -> u8 {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut host: &str = buf;
    let mut port: Option<&str> = None;
    let mut bracketed = false;
    if let Some(inner) = buf.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return 0;
        };
        let after = &inner[close + 1..];
        if !after.starts_with(':') {
            return 0;
        }
        host = &inner[..close];
        port = Some(&after[1..]);
        bracketed = true;
    }
    if let Some(a6) = inet_pton6(host) {
        svc.addr = IpAddr::V6(a6);
        svc.af = Af::V6;
        svc.netmask = 128;
    } else {
        // Not IPv6: ipvsadm looks for the port separator in what is left of the host part
        // (inside the brackets, if any; a port after `]` is then ignored).
        if bracketed {
            port = None;
        }
        if let Some(p) = host.rfind(':') {
            port = Some(&host[p + 1..]);
            host = &host[..p];
        }
        if let Some(a) = inet_aton(host).or_else(|| names.host_to_addr(host)) {
            svc.addr = IpAddr::V4(a);
            svc.af = Af::V4;
        } else {
            return 0;
        }
    }
    let mut result = SERVICE_ADDR;
    if let Some(p) = port {
        result |= SERVICE_PORT;
        if let Some(n) = string_to_number(p, 0, 65535) {
            svc.port = n as u16;
        } else if let Some(n) =
            protocol_of(svc.protocol).and_then(|pr| names.service_to_port(p, pr))
        {
            svc.port = n;
        } else {
            return 0;
        }
    }
    result
}

/// ipvsadm's `parse_netmask` (IPv4): dotted (inet_aton) or a host name.
fn parse_netmask(buf: &str, names: &dyn Resolver) -> Option<u32> {
    inet_aton(buf)
        .or_else(|| names.host_to_addr(buf))
        .map(u32::from)
}

fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, ArgError> {
    let sched = if sched.is_empty() {
        DEFAULT_SCHEDULER
    } else {
        sched
    };
    let mut flags = 0;
    let mut tokens = arg.split(',').filter(|t| !t.is_empty()).peekable();
    if tokens.peek().is_none() {
        // strtok returns NULL on a string of commas and ipvsadm dereferences it.
        return Err(ArgError {
            message: String::new(),
            status: 139,
            fatal: true,
        });
    }
    for flag in tokens {
        let (bit, needs) = match flag {
            "flag-1" => (ServiceFlags::SCHED1, None),
            "flag-2" => (ServiceFlags::SCHED2, None),
            "flag-3" => (ServiceFlags::SCHED3, None),
            "sh-fallback" => (ServiceFlags::SCHED1, Some("sh")),
            "sh-port" => (ServiceFlags::SCHED2, Some("sh")),
            "mh-fallback" => (ServiceFlags::SCHED1, Some("mh")),
            "mh-port" => (ServiceFlags::SCHED2, Some("mh")),
            _ => return Err(ArgError::fail(format!("invalid scheduler flag `{flag}'"))),
        };
        flags |= bit;
        if needs.is_some_and(|s| s != sched) {
            return Err(ArgError::fail(format!(
                "incompatible scheduler flag `{flag}'"
            )));
        }
    }
    Ok(flags)
}

fn parse_timeout(buf: Option<&str>, min: u32, max: u32) -> Result<u32, ArgError> {
    let Some(buf) = buf else {
        return Ok(DEFAULT_PERSISTENT_TIMEOUT);
    };
    string_to_number(buf, min as i64, max as i64)
        .map(|v| v as u32)
        .ok_or_else(|| ArgError::fail(format!("invalid timeout value `{buf}' specified")))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

struct Parsed {
    cmd: usize,
    options: u64,
    svc: Svc,
    dest: Dst,
    timeouts: Timeouts,
    daemon: DaemonConfig,
}

fn set_option(options: &mut u64, optc: usize) -> Result<(), ArgError> {
    let bit = 1u64 << optc;
    if *options & bit != 0 {
        return Err(ArgError::fail(format!(
            "multiple '{}' options specified",
            OPTNAMES[optc]
        )));
    }
    *options |= bit;
    Ok(())
}

fn has(options: u64, optc: usize) -> bool {
    options & (1u64 << optc) != 0
}

fn generic_opt_check(cmd: usize, options: u64) -> Result<(), ArgError> {
    let row = MATRIX[cmd];
    let mut last = 0;
    let mut count = 0;
    for (j, &rule) in row.iter().enumerate() {
        if !has(options, j) {
            if rule == b'+' {
                return Err(ArgError::fail(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    OPTNAMES[j], CMDNAMES[cmd]
                )));
            }
        } else {
            if rule == b'x' {
                return Err(ArgError::fail(format!(
                    "Illegal '{}' option with the '{}' command",
                    OPTNAMES[j], CMDNAMES[cmd]
                )));
            }
            if rule == b'1' {
                count += 1;
                if count == 1 {
                    last = j;
                    continue;
                }
                return Err(ArgError::fail(format!(
                    "The option '{}' conflicts with the '{}' option in the '{}' command",
                    OPTNAMES[j], OPTNAMES[last], CMDNAMES[cmd]
                )));
            }
        }
    }
    Ok(())
}

fn tunnel_opt_check(tun_type: usize, options: u64) -> Result<(), ArgError> {
    let row = TUN_MATRIX[tun_type];
    let mut last = 0;
    let mut count = 0;
    for (j, &k) in TUNOPTS.iter().enumerate() {
        if !has(options, k) {
            if row[j] == b'+' {
                return Err(ArgError::fail(format!(
                    "You need to supply the '{}' option for the '{}' tunnel type",
                    OPTNAMES[k], TUNNAMES[tun_type]
                )));
            }
        } else {
            if row[j] == b'x' {
                return Err(ArgError::fail(format!(
                    "Illegal '{}' option with the '{}' tunnel type",
                    OPTNAMES[k], TUNNAMES[tun_type]
                )));
            }
            if row[j] == b'1' {
                count += 1;
                if count == 1 {
                    last = k;
                    continue;
                }
                return Err(ArgError::fail(format!(
                    "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                    OPTNAMES[k], OPTNAMES[last], TUNNAMES[tun_type]
                )));
            }
        }
    }
    Ok(())
}

/// Parses one ipvsadm command line (`argv[0]` is the program name, used in the "Try ..."
/// hint). With no arguments at all ipvsadm lists the table, as does this.
pub fn parse(argv: &[String], names: &dyn Resolver) -> Result<Request, ArgError> {
    if argv.len() <= 1 {
        return Ok(Request::List(ListOptions::default()));
    }
    let p = parse_options(argv, names)?;
    let p = match p {
        Early::Done(r) => return Ok(r),
        Early::Parsed(p) => p,
    };
    finish(p)
}

enum Early {
    Done(Request),
    Parsed(Box<Parsed>),
}

fn parse_options(argv: &[String], names: &dyn Resolver) -> Result<Early, ArgError> {
    let program = argv.first().map(String::as_str).unwrap_or("ipvsadm");
    let mut ctx = Context::new(TABLE, argv);
    let mut svc = Svc {
        fwmark: 0,
        af: Af::Unspec,
        protocol: 0,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        sched: String::new(),
        flags: 0,
        timeout: 0,
        netmask: 0xffff_ffff,
        pe: String::new(),
    };
    let mut dest = Dst {
        af: Af::Unspec,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        fwd: IP_VS_CONN_F_DROUTE,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tun_type: 0,
        tun_port: 0,
        tun_flags: 0,
    };
    let mut daemon = DaemonConfig {
        state: DaemonState::Master,
        mcast_ifn: String::new(),
        syncid: 0,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    };
    let mut options: u64 = 0;
    let mut sched_flags_arg = String::new();

    let (first, first_arg) = match ctx.next_opt() {
        Next::Opt(t, a) => (t, a),
        _ => return Err(ArgError::tryhelp(program)),
    };
    let daemon_state = |a: &Option<String>| match a.as_deref() {
        Some("master") => Some(DaemonState::Master),
        Some("backup") => Some(DaemonState::Backup),
        _ => None,
    };
    let cmd = match first {
        Tag::AddService => CMD_ADD,
        Tag::EditService => CMD_EDIT,
        Tag::DelService => CMD_DEL,
        Tag::AddServer => CMD_ADDDEST,
        Tag::EditServer => CMD_EDITDEST,
        Tag::DelServer => CMD_DELDEST,
        Tag::Clear => CMD_FLUSH,
        Tag::List => CMD_LIST,
        Tag::Zero => CMD_ZERO,
        Tag::Set => CMD_TIMEOUT,
        Tag::Restore => CMD_RESTORE,
        Tag::Save => CMD_SAVE,
        Tag::StartDaemon => {
            daemon.state = daemon_state(&first_arg)
                .ok_or_else(|| ArgError::fail("illegal start-daemon parameter specified"))?;
            CMD_STARTDAEMON
        }
        Tag::StopDaemon => {
            daemon.state = daemon_state(&first_arg)
                .ok_or_else(|| ArgError::fail("illegal start_daemon specified"))?;
            CMD_STOPDAEMON
        }
        Tag::Help => return Ok(Early::Done(Request::Help)),
        Tag::Version => return Ok(Early::Done(Request::Version)),
        _ => return Err(ArgError::tryhelp(program)),
    };

    loop {
        let (tag, optarg) = match ctx.next_opt() {
            Next::Opt(t, a) => (t, a),
            Next::End => break,
            Next::Err(e) => {
                return Err(ArgError {
                    message: format!("{}: {}\n", ctx.bad_option(), e.text()),
                    status: 255,
                    fatal: false,
                });
            }
        };
        let arg = optarg.as_deref().unwrap_or("");
        match tag {
            Tag::Tcp | Tag::Udp | Tag::Sctp => {
                set_option(&mut options, OPTC_SERVICE)?;
                svc.protocol = match tag {
                    Tag::Tcp => IPPROTO_TCP,
                    Tag::Udp => IPPROTO_UDP,
                    _ => IPPROTO_SCTP,
                };
                if parse_service(arg, &mut svc, names) & SERVICE_ADDR == 0 {
                    return Err(ArgError::fail(
                        "illegal virtual server address[:port] specified",
                    ));
                }
            }
            Tag::Fwmark => {
                set_option(&mut options, OPTC_SERVICE)?;
                svc.af = Af::V4;
                svc.protocol = IPPROTO_TCP;
                svc.fwmark = parse_fwmark(arg).ok_or_else(|| {
                    ArgError::fail(format!("invalid fwmark value `{arg}' specified"))
                })?;
            }
            Tag::Scheduler => {
                set_option(&mut options, OPTC_SCHEDULER)?;
                svc.sched = truncate(arg, 15);
            }
            Tag::Persistent => {
                set_option(&mut options, OPTC_PERSISTENT)?;
                svc.flags |= ServiceFlags::PERSISTENT;
                svc.timeout = parse_timeout(optarg.as_deref(), 1, MAX_TIMEOUT)?;
            }
            Tag::Netmask => {
                set_option(&mut options, OPTC_NETMASK)?;
                if svc.af != Af::V6 {
                    svc.netmask = parse_netmask(arg, names).ok_or_else(|| {
                        ArgError::fail("illegal virtual server persistent mask specified")
                    })?;
                } else {
                    let m = atoi(arg);
                    if !(1..=128).contains(&m) {
                        return Err(ArgError::fail("illegal ipv6 netmask specified"));
                    }
                    svc.netmask = m as u32;
                }
            }
            Tag::RealServer => {
                set_option(&mut options, OPTC_SERVER)?;
                let mut t = svc.clone();
                let parse = parse_service(arg, &mut t, names);
                dest.af = t.af;
                dest.addr = t.addr;
                dest.port = t.port;
                if parse & SERVICE_ADDR == 0 {
                    return Err(ArgError::fail(
                        "illegal real server address[:port] specified",
                    ));
                }
                if parse == SERVICE_ADDR {
                    dest.port = svc.port;
                }
            }
            Tag::Ipip | Tag::Gate | Tag::Masq | Tag::FullNat => {
                set_option(&mut options, OPTC_FORWARD)?;
                dest.fwd = match tag {
                    Tag::Ipip => IP_VS_CONN_F_TUNNEL,
                    Tag::Gate => IP_VS_CONN_F_DROUTE,
                    Tag::FullNat => RVS_CONN_F_FULLNAT,
                    _ => IP_VS_CONN_F_MASQ,
                };
            }
            Tag::Weight => {
                set_option(&mut options, OPTC_WEIGHT)?;
                // ipvsadm 1.31 as Debian ships it accepts 0..INT_MAX (upstream: 65535).
                dest.weight = string_to_number(arg, 0, i32::MAX as i64)
                    .ok_or_else(|| ArgError::fail("illegal weight specified"))?
                    as u32;
            }
            Tag::UThreshold => {
                set_option(&mut options, OPTC_UTHRESHOLD)?;
                dest.u_threshold = string_to_number(arg, 0, i32::MAX as i64)
                    .ok_or_else(|| ArgError::fail("illegal u_threshold specified"))?
                    as u32;
            }
            Tag::LThreshold => {
                set_option(&mut options, OPTC_LTHRESHOLD)?;
                dest.l_threshold = string_to_number(arg, 0, i32::MAX as i64)
                    .ok_or_else(|| ArgError::fail("illegal l_threshold specified"))?
                    as u32;
            }
            Tag::Connection => set_option(&mut options, OPTC_CONNECTION)?,
            Tag::Numeric => set_option(&mut options, OPTC_NUMERIC)?,
            Tag::McastInterface => {
                set_option(&mut options, OPTC_MCAST)?;
                daemon.mcast_ifn = truncate(arg, 15);
            }
            Tag::SyncId => {
                set_option(&mut options, OPTC_SYNCID)?;
                daemon.syncid = string_to_number(arg, 0, 255)
                    .ok_or_else(|| ArgError::fail("illegal syncid specified"))?
                    as u8;
            }
            Tag::Timeout => set_option(&mut options, OPTC_TIMEOUT)?,
            Tag::Daemon => set_option(&mut options, OPTC_DAEMON)?,
            Tag::Stats => set_option(&mut options, OPTC_STATS)?,
            Tag::Rate => set_option(&mut options, OPTC_RATE)?,
            Tag::Thresholds => set_option(&mut options, OPTC_THRESHOLDS)?,
            Tag::PersistentConn => set_option(&mut options, OPTC_PERSISTENTCONN)?,
            Tag::NoSort => set_option(&mut options, OPTC_NOSORT)?,
            Tag::Sort => {}
            Tag::Exact => set_option(&mut options, OPTC_EXACT)?,
            Tag::Ipv6 => {
                if svc.fwmark != 0 {
                    svc.af = Af::V6;
                    svc.netmask = 128;
                } else {
                    return Err(ArgError::fail("-6 used before -f\n"));
                }
            }
            Tag::Ops => {
                set_option(&mut options, OPTC_ONEPACKET)?;
                svc.flags |= ServiceFlags::ONEPACKET;
            }
            Tag::Pe => {
                set_option(&mut options, OPTC_PE)?;
                svc.pe = truncate(arg, 32);
            }
            Tag::SchedFlags => {
                set_option(&mut options, OPTC_SCHED_FLAGS)?;
                sched_flags_arg = truncate(arg, 127);
            }
            Tag::McastGroup => {
                set_option(&mut options, OPTC_MCAST_GROUP)?;
                if arg.contains(':') {
                    match inet_pton6(arg) {
                        Some(a) if a.is_multicast() => daemon.mcast_group = Some(IpAddr::V6(a)),
                        _ => {
                            return Err(ArgError::fail(format!(
                                "invalid IPv6 mcast-group `{arg}'"
                            )));
                        }
                    }
                } else {
                    match arg.parse::<Ipv4Addr>() {
                        Ok(a) if a.is_multicast() => daemon.mcast_group = Some(IpAddr::V4(a)),
                        _ => {
                            return Err(ArgError::fail(format!(
                                "invalid IPv4 mcast-group `{arg}'"
                            )));
                        }
                    }
                }
            }
            Tag::McastPort => {
                set_option(&mut options, OPTC_MCAST_PORT)?;
                daemon.mcast_port = string_to_number(arg, 1, 65535)
                    .ok_or_else(|| ArgError::fail("illegal mcast-port specified"))?
                    as u16;
            }
            Tag::McastTtl => {
                set_option(&mut options, OPTC_MCAST_TTL)?;
                daemon.mcast_ttl = string_to_number(arg, 1, 255)
                    .ok_or_else(|| ArgError::fail("illegal mcast-ttl specified"))?
                    as u8;
            }
            Tag::SyncMaxlen => {
                set_option(&mut options, OPTC_SYNC_MAXLEN)?;
                daemon.sync_maxlen = string_to_number(arg, 1, 65535 - 20 - 8)
                    .ok_or_else(|| ArgError::fail("illegal sync-maxlen specified"))?
                    as u16;
            }
            Tag::TunInfo => set_option(&mut options, OPTC_TUN_INFO)?,
            Tag::TunType => {
                set_option(&mut options, OPTC_TUN_TYPE)?;
                dest.tun_type = TUNNAMES
                    .iter()
                    .position(|n| *n == arg)
                    .ok_or_else(|| ArgError::fail("illegal tunnel type specified"))?;
            }
            Tag::TunPort => {
                set_option(&mut options, OPTC_TUN_PORT)?;
                dest.tun_port = string_to_number(arg, 1, 65535)
                    .ok_or_else(|| ArgError::fail("illegal tunnel port specified"))?
                    as u16;
            }
            Tag::TunNocsum => set_option(&mut options, OPTC_TUN_NOCSUM)?,
            Tag::TunCsum => {
                set_option(&mut options, OPTC_TUN_CSUM)?;
                dest.tun_flags |= 1;
            }
            Tag::TunRemcsum => {
                set_option(&mut options, OPTC_TUN_REMCSUM)?;
                dest.tun_flags |= 2;
            }
            // A second command, -h or -v after the command.
            _ => {
                return Err(ArgError::fail(format!(
                    "invalid option `{}'",
                    ctx.bad_option()
                )));
            }
        }
    }

    let mut timeouts = Timeouts {
        tcp: 0,
        tcpfin: 0,
        udp: 0,
    };
    if cmd == CMD_TIMEOUT {
        match (ctx.get_arg(), ctx.get_arg(), ctx.get_arg()) {
            (Some(a), Some(b), Some(c)) => {
                timeouts.tcp = parse_timeout(Some(&a), 0, MAX_TIMEOUT)?;
                timeouts.tcpfin = parse_timeout(Some(&b), 0, MAX_TIMEOUT)?;
                timeouts.udp = parse_timeout(Some(&c), 0, MAX_TIMEOUT)?;
            }
            _ => return Err(ArgError::fail("--set option requires 3 timeout values")),
        }
    }
    if let Some(a) = ctx.get_arg() {
        return Err(ArgError::fail(format!("unexpected argument {a}")));
    }
    if !sched_flags_arg.is_empty() {
        svc.flags &= !ServiceFlags::SCHED_MASK;
        svc.flags |= parse_sched_flags(&svc.sched, &sched_flags_arg)?;
    }

    Ok(Early::Parsed(Box::new(Parsed {
        cmd,
        options,
        svc,
        dest,
        timeouts,
        daemon,
    })))
}

fn service_key(svc: &Svc) -> ServiceKey {
    if svc.fwmark != 0 {
        ServiceKey::Fwmark {
            v6: svc.af == Af::V6,
            mark: svc.fwmark,
        }
    } else {
        ServiceKey::Addr {
            proto: protocol_of(svc.protocol).unwrap_or(Protocol::Tcp),
            addr: svc.addr,
            port: svc.port,
        }
    }
}

fn service_config(svc: &Svc) -> ServiceConfig {
    let key = service_key(svc);
    let netmask = if svc.af == Af::V6 {
        Netmask::V6(svc.netmask.min(255) as u8)
    } else {
        Netmask::V4(svc.netmask)
    };
    ServiceConfig {
        key,
        scheduler: svc.sched.clone(),
        flags: ServiceFlags(svc.flags),
        timeout: svc.timeout,
        netmask,
        pe_name: (!svc.pe.is_empty()).then(|| svc.pe.clone()),
    }
}

fn dest_config(d: &Dst) -> DestConfig {
    DestConfig {
        addr: d.addr,
        port: d.port,
        fwd: match d.fwd {
            IP_VS_CONN_F_MASQ => ForwardMethod::Masq,
            IP_VS_CONN_F_TUNNEL => ForwardMethod::Tunnel,
            RVS_CONN_F_FULLNAT => ForwardMethod::FullNat,
            1 => ForwardMethod::Local,
            _ => ForwardMethod::Route,
        },
        weight: d.weight,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
        tunnel: TunnelInfo {
            kind: match d.tun_type {
                1 => TunnelType::Gue,
                2 => TunnelType::Gre,
                _ => TunnelType::Ipip,
            },
            port: d.tun_port,
            csum: match d.tun_flags {
                0 => TunnelCsum::NoCsum,
                1 => TunnelCsum::Csum,
                _ => TunnelCsum::RemCsum,
            },
        },
    }
}

fn finish(p: Box<Parsed>) -> Result<Request, ArgError> {
    let Parsed {
        cmd,
        options,
        mut svc,
        mut dest,
        timeouts,
        mut daemon,
    } = *p;
    generic_opt_check(cmd, options)?;

    if cmd == CMD_ADD || cmd == CMD_EDIT {
        if svc.fwmark == 0 && svc.port == 0 && svc.flags & ServiceFlags::PERSISTENT == 0 {
            return Err(ArgError::fail(
                "Zero port specified for non-persistent service",
            ));
        }
        if svc.flags & ServiceFlags::ONEPACKET != 0
            && svc.fwmark == 0
            && svc.protocol != IPPROTO_UDP
        {
            return Err(ArgError::fail(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
        if svc.sched.is_empty() {
            svc.sched = DEFAULT_SCHEDULER.to_string();
        }
    }
    if cmd == CMD_STARTDAEMON && daemon.mcast_ifn.is_empty() {
        daemon.mcast_ifn = "eth0".to_string();
    }
    if cmd == CMD_ADDDEST || cmd == CMD_EDITDEST {
        if svc.fwmark == 0 && (dest.fwd == IP_VS_CONN_F_TUNNEL || dest.fwd == IP_VS_CONN_F_DROUTE) {
            dest.port = svc.port;
        }
        if dest.af != svc.af && dest.fwd != IP_VS_CONN_F_TUNNEL {
            return Err(ArgError::fail(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tun_opts = [
            OPTC_TUN_TYPE,
            OPTC_TUN_PORT,
            OPTC_TUN_NOCSUM,
            OPTC_TUN_CSUM,
            OPTC_TUN_REMCSUM,
        ];
        if tun_opts.iter().any(|&k| has(options, k)) && dest.fwd != IP_VS_CONN_F_TUNNEL {
            return Err(ArgError::fail(
                "Tunnel options conflict with forward method",
            ));
        }
        tunnel_opt_check(dest.tun_type, options)?;
    }

    let key = || service_key(&svc);
    Ok(match cmd {
        CMD_LIST => {
            let o = |k| has(options, k);
            if ((o(OPTC_CONNECTION) || o(OPTC_TIMEOUT) || o(OPTC_DAEMON))
                && (o(OPTC_STATS) || o(OPTC_RATE) || o(OPTC_THRESHOLDS)))
                || ((o(OPTC_TIMEOUT) || o(OPTC_DAEMON)) && o(OPTC_PERSISTENTCONN))
            {
                return Err(ArgError::fail("options conflicts in the list command"));
            }
            let list = ListOptions {
                service: None,
                connections: o(OPTC_CONNECTION),
                numeric: o(OPTC_NUMERIC),
                stats: o(OPTC_STATS),
                rate: o(OPTC_RATE),
                thresholds: o(OPTC_THRESHOLDS),
                persistent_conn: o(OPTC_PERSISTENTCONN),
                nosort: o(OPTC_NOSORT),
                exact: o(OPTC_EXACT),
                tun_info: o(OPTC_TUN_INFO),
            };
            if o(OPTC_CONNECTION) {
                Request::List(list)
            } else if o(OPTC_SERVICE) {
                Request::List(ListOptions {
                    service: Some(key()),
                    ..list
                })
            } else if o(OPTC_TIMEOUT) {
                Request::Timeout
            } else if o(OPTC_DAEMON) {
                Request::Daemon
            } else {
                Request::List(list)
            }
        }
        CMD_RESTORE => Request::Restore,
        CMD_SAVE => Request::Save {
            numeric: has(options, OPTC_NUMERIC),
        },
        CMD_FLUSH => Request::Apply(Command::Flush),
        CMD_ADD => Request::Apply(Command::AddService(service_config(&svc))),
        CMD_EDIT => Request::Apply(Command::EditService(service_config(&svc))),
        CMD_DEL => Request::Apply(Command::DelService(key())),
        CMD_ZERO => {
            // libipvs leaves the service out (zero everything) when it is all zeros.
            if svc.fwmark == 0 && svc.addr.is_unspecified() && svc.port == 0 {
                Request::Apply(Command::Zero(None))
            } else {
                Request::Apply(Command::Zero(Some(key())))
            }
        }
        CMD_ADDDEST => Request::Apply(Command::AddDest(key(), dest_config(&dest))),
        CMD_EDITDEST => Request::Apply(Command::EditDest(key(), dest_config(&dest))),
        CMD_DELDEST => Request::Apply(Command::DelDest(key(), dest.addr, dest.port)),
        CMD_TIMEOUT => Request::Apply(Command::SetTimeouts(timeouts)),
        CMD_STARTDAEMON => Request::StartDaemon(daemon),
        _ => Request::StopDaemon(daemon),
    })
}
