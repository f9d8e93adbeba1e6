//! Crash recovery (issue 14): the engine's state outlives a `kill -9`.
//!
//! Kernel IPVS keeps its connection table when kube-proxy dies; a user-space balancer must
//! keep it somewhere a crash does not reach. The design:
//!
//! * **The TUN device is persistent** (`IFF_PERSIST`) while a daemon runs, so the device,
//!   its addresses, the VIP routes and the reply rules stay in place when the process dies.
//!   During the gap the kernel drops what it routes into the device (no queue is attached):
//!   the senders retransmit (a SYN after 1 s, data after the RTO).
//! * **Snapshots.** Every `dataplane.snapshot_ms` (200 ms by default; longer when the
//!   table is big, so that the writer keeps at most a quarter of a core busy) the packet
//!   thread forks; the child holds a copy-on-write image of the engine, exports it
//!   ([`rvs_core::Engine::export_state`], the format of a planned hand-over) and writes
//!   `<admin socket>.engine` whole (a temporary file renamed over it). The packet thread
//!   pauses only for the `fork(2)` itself (copying page tables: the figures are in the
//!   data-plane README), not for the export; memory pages the parent writes while the child
//!   runs are copied then.
//! * **The next start** validates the snapshot (this file's header: magic, version, boot,
//!   device name, checksum; then the engine state's own magic, version, length and
//!   checksum, and every record) and adopts it with its timers advanced by the time since it
//!   was written, together with the netlink set-up the crashed daemon recorded. Anything it
//!   cannot take is refused with a message, counted (`rvs_state_recovery_refused_total`),
//!   kept aside as `<file>.refused` for a post-mortem, and the daemon starts empty.
//!
//! What a crash loses: connections opened after the last snapshot (at most `snapshot_ms`
//! old): their next packet meets no entry and is scheduled anew (SYN) or dropped; long-lived
//! flows, the ones a restart must not break, are in every snapshot. Counters and rates are
//! those of the last snapshot.
//!
//! A clean stop (SIGTERM) removes the snapshot and clears `IFF_PERSIST`: the device goes
//! with the daemon, as before.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rvs_core::Engine;

use crate::driver::Driver;
use crate::sys::{self, ChildState};

/// First bytes of a snapshot file.
pub const MAGIC: [u8; 8] = *b"RVSCRASH";
/// Version of the snapshot header this build writes and reads.
pub const VERSION: u16 = 1;
/// Fixed part of the header: magic, version, name length, boot id (36), monotonic ns, pid.
const FIXED: usize = 8 + 2 + 2 + 36 + 8 + 4;
/// Largest snapshot read (as for a hand-over: 16 M entries and the rest).
const MAX_FILE: u64 = 2 << 30;
/// A snapshot child that has not finished after this long is killed.
const CHILD_LIMIT_S: u32 = 30;

/// The snapshot file next to the admin socket.
pub fn file_for(admin: &Path) -> PathBuf {
    let mut s = admin.as_os_str().to_owned();
    s.push(".engine");
    PathBuf::from(s)
}

/// The header and `state` (an exported engine) as one snapshot; `pid` is the daemon's (not
/// the forked writer's, which is the one that encodes).
pub fn encode(boot_id: &str, mono_ns: u64, pid: u32, tun: &str, state: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(FIXED + tun.len() + 8 + state.len());
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(tun.len() as u16).to_le_bytes());
    let mut id = [b' '; 36];
    let n = boot_id.len().min(36);
    id[..n].copy_from_slice(&boot_id.as_bytes()[..n]);
    b.extend_from_slice(&id);
    b.extend_from_slice(&mono_ns.to_le_bytes());
    b.extend_from_slice(&pid.to_le_bytes());
    b.extend_from_slice(tun.as_bytes());
    let sum = rvs_core::checksum(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b.extend_from_slice(state);
    b
}

/// A snapshot's header, checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// CLOCK_MONOTONIC when it was taken.
    pub mono_ns: u64,
    /// The daemon that took it.
    pub pid: u32,
    /// The engine state that follows.
    pub state: &'a [u8],
}

/// Why a snapshot was not adopted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a snapshot file.
    Foreign,
    /// Written by a build with another header version.
    Version(u16),
    /// Shorter than its header.
    Truncated,
    /// The header's checksum does not match.
    Damaged,
    /// Written before the last reboot (its clock readings mean nothing now).
    OtherBoot,
    /// Written for another TUN device.
    OtherDevice(String),
    /// Its clock reading is in the future.
    Clock,
    /// The engine state inside was refused.
    State(rvs_core::StateError),
    /// The file could not be read.
    Io(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Foreign => f.write_str("not an rvs state snapshot (bad magic)"),
            Refusal::Version(v) => write!(
                f,
                "snapshot header version {v}, but this binary reads version {VERSION}"
            ),
            Refusal::Truncated => f.write_str("snapshot truncated (shorter than its header)"),
            Refusal::Damaged => f.write_str("snapshot header checksum mismatch (damaged)"),
            Refusal::OtherBoot => f.write_str("snapshot written before the last reboot"),
            Refusal::OtherDevice(d) => write!(f, "snapshot written for TUN device {d}"),
            Refusal::Clock => f.write_str("snapshot taken in the future (clock reading)"),
            Refusal::State(e) => write!(f, "{e}"),
            Refusal::Io(e) => f.write_str(e),
        }
    }
}

/// Checks a snapshot's header against this boot, this clock and this device.
pub fn decode<'a>(
    b: &'a [u8],
    boot_id: &str,
    now_mono: u64,
    tun: &str,
) -> Result<Header<'a>, Refusal> {
    if b.len() < 8 || b[..8] != MAGIC {
        return Err(if MAGIC.starts_with(b) {
            Refusal::Truncated
        } else {
            Refusal::Foreign
        });
    }
    if b.len() < FIXED {
        return Err(Refusal::Truncated);
    }
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let version = u16_at(8);
    if version != VERSION {
        return Err(Refusal::Version(version));
    }
    let name_len = usize::from(u16_at(10));
    let end = FIXED + name_len;
    if b.len() < end + 8 {
        return Err(Refusal::Truncated);
    }
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&b[end..end + 8]);
    if rvs_core::checksum(&b[..end]) != u64::from_le_bytes(sum) {
        return Err(Refusal::Damaged);
    }
    let id = std::str::from_utf8(&b[12..48]).unwrap_or("").trim_end();
    if id != boot_id.trim() {
        return Err(Refusal::OtherBoot);
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[48..56]);
    let mono_ns = u64::from_le_bytes(w);
    let pid = u32::from_le_bytes([b[56], b[57], b[58], b[59]]);
    let name = String::from_utf8_lossy(&b[FIXED..end]);
    if name != tun {
        return Err(Refusal::OtherDevice(name.into_owned()));
    }
    if mono_ns > now_mono {
        return Err(Refusal::Clock);
    }
    Ok(Header {
        mono_ns,
        pid,
        state: &b[end + 8..],
    })
}

/// A snapshot adopted at start.
pub struct Recovered {
    /// The engine, with its clock at zero = when the snapshot was taken.
    pub engine: Engine,
    /// When the snapshot was taken, on this process's clock: the driver's epoch.
    pub epoch: std::time::Instant,
    /// How old the snapshot was.
    pub age: std::time::Duration,
    /// The daemon that wrote it.
    pub pid: u32,
}

/// Reads and validates the snapshot at `path`, for an engine configured by `cfg`. `Ok(None)`:
/// there is none. A refused file is renamed `<file>.refused` (replacing an older one), so that
/// the next start does not meet it again.
pub fn load(
    path: &Path,
    cfg: rvs_core::EngineConfig,
    tun: &str,
) -> Result<Option<Recovered>, Refusal> {
    let bytes = match read_bounded(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(set_aside(path, Refusal::Io(format!("reading: {e}")))),
    };
    let boot = sys::boot_id().map_err(|e| Refusal::Io(format!("boot id: {e}")))?;
    let now_mono = sys::monotonic_ns();
    let h = decode(&bytes, &boot, now_mono, tun).map_err(|r| set_aside(path, r))?;
    let engine = Engine::import_state(cfg, rvs_core::Instant::ZERO, h.state)
        .map_err(|e| set_aside(path, Refusal::State(e)))?;
    let age = std::time::Duration::from_nanos(now_mono - h.mono_ns);
    let now = std::time::Instant::now();
    let epoch = now.checked_sub(age).unwrap_or(now);
    Ok(Some(Recovered {
        engine,
        epoch,
        age,
        pid: h.pid,
    }))
}

fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, more than the {MAX_FILE} a snapshot can have"),
        ));
    }
    let mut b = Vec::with_capacity(len as usize);
    f.take(MAX_FILE).read_to_end(&mut b)?;
    Ok(b)
}

fn set_aside(path: &Path, r: Refusal) -> Refusal {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".refused");
    if std::fs::rename(path, &aside).is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Removes the snapshot and any temporary file a killed writer left.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    remove_temporaries(path);
}

/// Removes `<file>.<pid>.tmp` files of writers that were killed.
pub fn remove_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&prefix) && n.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Counters of the snapshots, for the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotStats {
    /// Snapshots written.
    pub written: u64,
    /// Snapshots whose child failed (could not fork, write or rename).
    pub failed: u64,
    /// The packet thread's pause for the last snapshot (the fork), nanoseconds.
    pub pause_last_ns: u64,
    /// The longest such pause.
    pub pause_max_ns: u64,
    /// Entries adopted from a crashed daemon's snapshot at start.
    pub recovered_entries: u64,
    /// Snapshots refused at start.
    pub refused: u64,
}

/// Takes the snapshots, from the packet thread.
pub struct Snapshotter {
    path: PathBuf,
    interval_ns: u64,
    next_ns: u64,
    boot_id: String,
    tun: String,
    child: Option<libc::pid_t>,
    /// When the running child was forked (CLOCK_MONOTONIC ns).
    child_started: u64,
    logged_failure: bool,
}

impl Snapshotter {
    /// Snapshots of the engine into `path` every `interval_ms`, the first at once.
    pub fn new(path: PathBuf, interval_ms: u32, tun: &str) -> io::Result<Snapshotter> {
        remove_temporaries(&path);
        Ok(Snapshotter {
            path,
            interval_ns: u64::from(interval_ms) * 1_000_000,
            next_ns: 0,
            boot_id: sys::boot_id()?,
            tun: tun.to_string(),
            child: None,
            child_started: 0,
            logged_failure: false,
        })
    }

    /// Nanoseconds until the next snapshot is due (for the packet loop's poll timeout).
    pub fn due_in(&self) -> u64 {
        self.next_ns.saturating_sub(sys::monotonic_ns())
    }

    /// When a snapshot is due: reaps the last writer (or waits for it), then forks the next.
    pub fn poll(&mut self, d: &mut Driver) {
        let mono = sys::monotonic_ns();
        if mono < self.next_ns {
            return;
        }
        if let Some(pid) = self.child {
            match sys::wait_child(pid, false) {
                Ok((ChildState::Running, _)) => {
                    // The last one is still being written: look again soon.
                    self.next_ns = mono + self.interval_ns.min(10_000_000);
                    return;
                }
                Ok((ChildState::Exited(0), cpu_ns)) => {
                    d.counters.snapshot.written += 1;
                    // A big table takes the child a while (about 130 ms of CPU for a
                    // million entries): space the snapshots so that writing them keeps at
                    // most a quarter of a core busy.
                    self.next_ns = self.next_ns.max(self.child_started + 4 * cpu_ns);
                    if mono < self.next_ns {
                        self.child = None;
                        return;
                    }
                }
                Ok((other, _)) => self.failed(d, &format!("the writer ended: {other:?}")),
                Err(e) => self.failed(d, &format!("waitpid: {e}")),
            }
            self.child = None;
        }
        self.next_ns = mono + self.interval_ns;
        let now = d.now();
        let t0 = std::time::Instant::now();
        let (path, boot, tun) = (&self.path, &self.boot_id, &self.tun);
        let engine = &mut d.engine;
        let daemon = std::process::id();
        let r = sys::fork_run(CHILD_LIMIT_S, || {
            // The child: a copy of the engine as it is now; the parent goes on.
            let state = engine.export_state(now);
            let bytes = encode(boot, sys::monotonic_ns(), daemon, tun, &state);
            match write_whole(path, &bytes) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        });
        let pause = t0.elapsed().as_nanos() as u64;
        match r {
            Ok(pid) => {
                self.child = Some(pid);
                self.child_started = mono;
                let s = &mut d.counters.snapshot;
                s.pause_last_ns = pause;
                s.pause_max_ns = s.pause_max_ns.max(pause);
            }
            Err(e) => self.failed(d, &format!("fork: {e}")),
        }
    }

    fn failed(&mut self, d: &mut Driver, why: &str) {
        d.counters.snapshot.failed += 1;
        if !self.logged_failure {
            self.logged_failure = true;
            tracing::error!(
                file = %self.path.display(),
                "crash-recovery snapshot failed: {why} (counted in \
                 rvs_state_snapshot_failures_total; logged once)"
            );
        }
    }
}

impl Drop for Snapshotter {
    /// Kills and reaps a writer still running, so that no snapshot appears after the packet
    /// thread has ended (a clean stop removes the file next).
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            sys::kill_child(pid);
            let _ = sys::wait_child(pid, true);
        }
    }
}

/// Writes `bytes` to `<path>.<pid>.tmp` and renames it over `path`.
fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "0f4cbd0e-6a43-4a3c-9b0e-2f3c1d2e5a77";

    fn snap() -> Vec<u8> {
        encode(BOOT, 5_000, 4242, "rvs0", b"RVSSTATE-and-the-rest")
    }

    #[test]
    fn a_snapshot_reads_back() {
        let b = snap();
        let h = decode(&b, BOOT, 6_000, "rvs0").unwrap();
        assert_eq!(h.mono_ns, 5_000);
        assert_eq!(h.pid, 4242);
        assert_eq!(h.state, b"RVSSTATE-and-the-rest");
    }

    #[test]
    fn foreign_truncated_damaged_old_or_misplaced_snapshots_are_refused() {
        let b = snap();
        assert_eq!(decode(b"hello", BOOT, 6_000, "rvs0"), Err(Refusal::Foreign));
        assert_eq!(decode(b"", BOOT, 6_000, "rvs0"), Err(Refusal::Truncated));
        for cut in [4, 8, 20, FIXED + 2, FIXED + 4 + 7] {
            assert_eq!(
                decode(&b[..cut], BOOT, 6_000, "rvs0"),
                Err(Refusal::Truncated),
                "cut at {cut}"
            );
        }
        let mut v = b.clone();
        v[8] = 2;
        assert_eq!(decode(&v, BOOT, 6_000, "rvs0"), Err(Refusal::Version(2)));
        // Any flipped header byte after the version is caught by the checksum.
        for i in 12..FIXED + 4 {
            let mut v = b.clone();
            v[i] ^= 0x20;
            assert_eq!(
                decode(&v, BOOT, 6_000, "rvs0"),
                Err(Refusal::Damaged),
                "byte {i}"
            );
        }
        let other = "1f4cbd0e-6a43-4a3c-9b0e-2f3c1d2e5a77";
        assert_eq!(decode(&b, other, 6_000, "rvs0"), Err(Refusal::OtherBoot));
        assert_eq!(
            decode(&b, BOOT, 6_000, "rvs1"),
            Err(Refusal::OtherDevice("rvs0".into()))
        );
        assert_eq!(decode(&b, BOOT, 4_000, "rvs0"), Err(Refusal::Clock));
    }

    #[test]
    fn a_refused_file_is_set_aside_and_the_engine_state_checked() {
        let dir = std::env::temp_dir().join(format!("rvs-recovery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rvs.sock.engine");
        let cfg = || rvs_core::EngineConfig::default();
        // None there: nothing to adopt.
        assert!(matches!(load(&path, cfg(), "rvs0"), Ok(None)));
        // A valid header around a damaged engine state: refused by the engine's checks.
        let boot = sys::boot_id().unwrap();
        let mut state = Engine::new(cfg()).export_state(rvs_core::Instant::ZERO);
        let last = state.len() - 1;
        state[last] ^= 1;
        std::fs::write(&path, encode(&boot, 1, 1, "rvs0", &state)).unwrap();
        let r = load(&path, cfg(), "rvs0");
        assert!(matches!(r, Err(Refusal::State(_))), "{:?}", r.err());
        assert!(!path.exists());
        let mut aside = path.as_os_str().to_owned();
        aside.push(".refused");
        assert!(Path::new(&aside).exists());
        // A good one is adopted, its age measured from its clock reading.
        let state = Engine::new(cfg()).export_state(rvs_core::Instant::ZERO);
        let mono = sys::monotonic_ns() - 2_000_000_000;
        std::fs::write(&path, encode(&boot, mono, 1, "rvs0", &state)).unwrap();
        let r = load(&path, cfg(), "rvs0").unwrap().unwrap();
        assert!(r.age >= std::time::Duration::from_secs(2), "{:?}", r.age);
        std::fs::write(dir.join("rvs.sock.engine.77.tmp"), b"x").unwrap();
        remove(&path);
        assert!(std::fs::read_dir(&dir).unwrap().all(|e| {
            let n = e.unwrap().file_name();
            !n.to_string_lossy().ends_with(".tmp") && n != "rvs.sock.engine"
        }));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
