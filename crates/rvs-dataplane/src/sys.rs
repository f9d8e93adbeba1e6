//! The few raw system calls the packet loop needs, each wrapped in a safe function.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An eventfd: the control threads write to it to wake the packet thread from `poll`.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new non-blocking eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd(2) takes no pointers; a non-negative result is a new descriptor
        // that we own from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Wakes the waiter (adds 1 to the counter).
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local; the descriptor is ours. A full counter
        // (EAGAIN) means a wake-up is pending anyway.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live local; the descriptor is ours and
        // non-blocking.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// What [`poll2`] found readable.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ready {
    /// The first descriptor.
    pub a: bool,
    /// The second descriptor.
    pub b: bool,
}

/// Waits until `a` or `b` is readable, or `timeout_ms` passes (EINTR counts as a timeout).
pub fn poll2(a: RawFd, b: RawFd, timeout_ms: i32) -> Ready {
    let mut fds = [
        libc::pollfd {
            fd: a,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a live array of two pollfd structs and we pass its length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if n <= 0 {
        return Ready::default();
    }
    Ready {
        a: fds[0].revents != 0,
        b: fds[1].revents != 0,
    }
}

/// Sets the process umask, returning the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask(2) cannot fail and takes no pointers.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Moves the calling thread into the network namespace open at `fd` (setns(2) is per
/// thread).
pub fn setns_net(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns(2) takes a descriptor and a flag; it touches no memory of ours.
    let r = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGTERM to a process (errors, e.g. already gone, are ignored).
pub fn kill_term(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes no pointers.
        let _ = unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Sends `count` copies of `payload` on the connected socket `fd` with one sendmmsg(2);
/// returns how many were sent.
pub fn sendmmsg_copies(fd: RawFd, payload: &[u8], count: usize) -> io::Result<usize> {
    const MAX: usize = 64;
    let count = count.min(MAX);
    let mut iov = [libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    }; MAX];
    // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
    let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()).take(count) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `msgs[..count]` point at `iov` entries that point at `payload`, all alive for
    // the call; the kernel only reads them (and writes msg_len).
    let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), count as u32, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A raw IP socket of `family` (`libc::AF_INET` or `libc::AF_INET6`) receiving IP protocol
/// `proto`.
pub fn raw_socket(family: i32, proto: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; a non-negative result is a new descriptor.
    let fd = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets `SO_MARK` (needs CAP_NET_ADMIN) on `fd`: the firewall mark of what it sends.
pub fn set_mark(fd: RawFd, mark: u32) -> io::Result<()> {
    // SAFETY: setsockopt(2) reads `size_of::<u32>()` bytes from `&mark`, alive for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One recv(2) into `buf`.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: writes at most `buf.len()` bytes into `buf`, which is alive and exclusively
    // borrowed for the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Writes `dst` as a socket address into `slot` (a `sockaddr_in6`, large enough for either
/// family) and returns its length.
fn put_sockaddr(dst: std::net::IpAddr, slot: &mut libc::sockaddr_in6) -> libc::socklen_t {
    match dst {
        std::net::IpAddr::V4(a) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in fits in the sockaddr_in6 slot (16 <= 28 bytes), which is
            // exclusively borrowed; write_unaligned needs no alignment.
            unsafe { std::ptr::write_unaligned((slot as *mut libc::sockaddr_in6).cast(), sa) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        std::net::IpAddr::V6(a) => {
            *slot = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Sends one whole IP packet (header included) on a raw `IPPROTO_RAW` socket to `dst`.
pub fn raw_send(fd: RawFd, pkt: &[u8], dst: std::net::IpAddr) -> io::Result<()> {
    // SAFETY: plain-data struct; all-zero is valid.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let len = put_sockaddr(dst, &mut sa);
    // SAFETY: `pkt` and `sa` are alive for the call and their lengths are passed.
    let r = unsafe {
        libc::sendto(
            fd,
            pkt.as_ptr().cast(),
            pkt.len(),
            0,
            (&sa as *const libc::sockaddr_in6).cast(),
            len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `msgs` with as few sendmmsg(2) calls as the kernel allows; a message it refuses is
/// skipped and counted. Returns how many were refused.
///
/// # Safety
/// Every header in `msgs` must point at a name, an iovec and data that stay alive and
/// unchanged for the call.
unsafe fn send_all(fd: RawFd, msgs: &mut [libc::mmsghdr]) -> usize {
    let (mut done, mut failed) = (0, 0);
    while done < msgs.len() {
        // SAFETY: the caller guarantees what the headers point at; the kernel reads them and
        // writes msg_len into msgs[done..], which we own.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                msgs[done..].as_mut_ptr(),
                (msgs.len() - done) as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first remaining message was refused: skip it.
            failed += 1;
            done += 1;
        } else {
            done += n as usize;
        }
    }
    failed
}

/// Sends whole IP packets on a raw `IPPROTO_RAW` socket (header included), each to the
/// destination given with it, with as few sendmmsg(2) calls as possible (64 per call).
/// Returns how many could not be sent (a message the kernel refuses is skipped). Takes an
/// iterator so that the caller needs no list of its own (nothing is allocated).
pub fn raw_sendmmsg<'a>(
    fd: RawFd,
    pkts: impl IntoIterator<Item = (&'a [u8], std::net::IpAddr)>,
) -> usize {
    const MAX: usize = 64;
    let mut pkts = pkts.into_iter().peekable();
    let mut failed = 0;
    while pkts.peek().is_some() {
        // SAFETY: plain-data structs; all-zero is valid for each.
        let mut names: [libc::sockaddr_in6; MAX] = unsafe { std::mem::zeroed() };
        let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
        let mut count = 0;
        for (p, dst) in pkts.by_ref().take(MAX) {
            let k = count;
            let len = put_sockaddr(dst, &mut names[k]);
            iov[k].iov_base = p.as_ptr() as *mut libc::c_void;
            iov[k].iov_len = p.len();
            msgs[k].msg_hdr.msg_name = (&mut names[k] as *mut libc::sockaddr_in6).cast();
            msgs[k].msg_hdr.msg_namelen = len;
            msgs[k].msg_hdr.msg_iov = &mut iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            count += 1;
        }
        // SAFETY: msgs[..count] point into `names`, `iov` and the caller's packets, all
        // alive until after the call.
        failed += unsafe { send_all(fd, &mut msgs[..count]) };
    }
    failed
}

/// A send-only `AF_PACKET` socket (`SOCK_RAW`, protocol 0: it receives nothing): frames
/// written to it go straight to a device's transmit path, with no IP output pass.
pub fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; a non-negative result is a new descriptor.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends whole Ethernet frames on an `AF_PACKET` socket, each out of the interface given
/// with it, with as few sendmmsg(2) calls as possible (64 per call). Returns how many could
/// not be sent. Like [`raw_sendmmsg`], it takes an iterator and allocates nothing.
pub fn packet_sendmmsg<'a>(fd: RawFd, frames: impl IntoIterator<Item = (&'a [u8], u32)>) -> usize {
    const MAX: usize = 64;
    let mut frames = frames.into_iter().peekable();
    let mut failed = 0;
    while frames.peek().is_some() {
        // SAFETY: plain-data structs; all-zero is valid for each.
        let mut names: [libc::sockaddr_ll; MAX] = unsafe { std::mem::zeroed() };
        let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
        let mut count = 0;
        for (f, ifindex) in frames.by_ref().take(MAX) {
            let k = count;
            names[k].sll_family = libc::AF_PACKET as u16;
            // The frame's own EtherType, in network order (bytes 12..14).
            names[k].sll_protocol = f
                .get(12..14)
                .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
            names[k].sll_ifindex = ifindex as i32;
            iov[k].iov_base = f.as_ptr() as *mut libc::c_void;
            iov[k].iov_len = f.len();
            msgs[k].msg_hdr.msg_name = (&mut names[k] as *mut libc::sockaddr_ll).cast();
            msgs[k].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msgs[k].msg_hdr.msg_iov = &mut iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            count += 1;
        }
        // SAFETY: msgs[..count] point into `names`, `iov` and the caller's frames, all alive
        // until after the call.
        failed += unsafe { send_all(fd, &mut msgs[..count]) };
    }
    failed
}

/// Takes ownership of descriptors received with `SCM_RIGHTS` (each a fresh descriptor the
/// kernel installed in this process for us).
pub fn owned_fds(raw: &[RawFd]) -> Vec<OwnedFd> {
    raw.iter()
        .filter(|&&fd| fd >= 0)
        // SAFETY: SCM_RIGHTS installs new descriptors in this process; nothing else owns them.
        .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect()
}

/// A TUN device from a descriptor handed over by another rvs daemon, which opened it with
/// `IFF_TUN | IFF_NO_PI` and no `IFF_VNET_HDR` ([`crate::tunloop::open_tun`]); checks that it is
/// a TUN device first (`TUNGETIFF`).
pub fn tun_from_fd(fd: OwnedFd) -> io::Result<tun_rs::SyncDevice> {
    let mut ifr = [0u8; 40];
    // SAFETY: TUNGETIFF writes a `struct ifreq` (40 bytes) into the buffer we pass.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), 0x8004_54d2, ifr.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the descriptor handed over is not a TUN device: {}",
                io::Error::last_os_error()
            ),
        ));
    }
    let flags = u16::from_ne_bytes([ifr[16], ifr[17]]);
    const IFF_TUN: u16 = 0x0001;
    const IFF_NO_PI: u16 = 0x1000;
    const IFF_VNET_HDR: u16 = 0x4000;
    if flags & (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR) != IFF_TUN | IFF_NO_PI {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the TUN descriptor handed over has flags {flags:#x}, not IFF_TUN|IFF_NO_PI"),
        ));
    }
    use std::os::fd::IntoRawFd;
    // SAFETY: the descriptor is an open TUN device with IFF_NO_PI and without IFF_VNET_HDR
    // (checked above); ownership moves to the device.
    unsafe { tun_rs::SyncDevice::from_fd(fd.into_raw_fd()) }
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes on one machine.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64,
        Err(_) => 0,
    }
}

/// Sets or clears `IFF_PERSIST` on a TUN device (`TUNSETPERSIST`): a persistent device, with
/// its addresses and routes, outlives the last descriptor closed on it, so that a crashed
/// daemon's successor finds it in place.
pub fn tun_set_persist(fd: RawFd, on: bool) -> io::Result<()> {
    const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb; // _IOW('T', 203, int)
    // SAFETY: TUNSETPERSIST takes its argument by value (0 or 1); no memory is passed.
    let r = unsafe { libc::ioctl(fd, TUNSETPERSIST, libc::c_ulong::from(on)) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `child` in a forked copy of this process and returns the child's pid at once; the
/// child exits with `child`'s return value (101 if it panicked), and is killed if the thread
/// that forked it ends (`PR_SET_PDEATHSIG`) or if it runs for more than `limit_s` seconds
/// (`alarm`).
///
/// The copy has only the calling thread: `child` must not take a lock another thread may
/// hold (no logging, no channel, no tokio); memory allocation is safe (glibc's `fork`
/// resets its allocator's locks in the child), and so are plain file system calls. Memory
/// is shared copy-on-write, so the parent's pause is the page-table copy.
pub fn fork_run(limit_s: u32, child: impl FnOnce() -> i32) -> io::Result<libc::pid_t> {
    // SAFETY: fork has no memory-safety preconditions; the child below runs only `child`
    // (under the rules above) and leaves with _exit, never returning into the caller's
    // stack frames or running destructors and atexit handlers meant for the parent.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    // SAFETY: plain system calls without pointers; then _exit ends the process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The parent's handlers write to a pipe the parent reads (tokio's signal driver): a
        // SIGTERM meant for this child must not stop the daemon. Back to the defaults.
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::alarm(limit_s);
    }
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
    // SAFETY: ends the child at once.
    unsafe { libc::_exit(code) }
}

/// How a forked child is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildState {
    /// Still running.
    Running,
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Killed(i32),
}

/// Reaps `pid` if it has ended (`wait4`, `WNOHANG` unless `block`); with the CPU time it
/// used (user and system), in nanoseconds, once it has ended.
pub fn wait_child(pid: libc::pid_t, block: bool) -> io::Result<(ChildState, u64)> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: rusage is plain data; wait4 fills it and the status integer we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to locals alive during the call.
    let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok((ChildState::Running, 0));
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
    if libc::WIFEXITED(status) {
        Ok((ChildState::Exited(libc::WEXITSTATUS(status)), cpu))
    } else {
        Ok((ChildState::Killed(libc::WTERMSIG(status)), cpu))
    }
}

/// Sends SIGKILL to `pid` (a child of ours).
pub fn kill_child(pid: libc::pid_t) {
    // SAFETY: kill has no memory-safety preconditions.
    let _ = unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// This boot's identity (`/proc/sys/kernel/random/boot_id`): CLOCK_MONOTONIC readings are
/// comparable only within one boot.
pub fn boot_id() -> io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

/// The index of the network device `name`, if there is one (`if_nametoindex`).
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a NUL-terminated string alive during the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// A descriptor this process inherited from its parent and was told about (for example in
/// an environment variable), if it is open; ownership moves to the caller.
pub fn inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails on a closed descriptor.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this process for
    // this use alone; nothing else in the process owns it. Close-on-exec so that our own
    // children do not inherit it.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        Some(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn ignore(_: libc::c_int) {}

    /// A snapshot writer does not run the daemon's signal handlers: a SIGHUP (or SIGTERM,
    /// SIGINT) sent to it ends it instead of reaching the daemon through tokio's pipe.
    #[test]
    fn a_forked_child_has_the_default_signal_handlers() {
        // SAFETY: installs a handler that does nothing, and restores the default below.
        unsafe { libc::signal(libc::SIGHUP, ignore as *const () as libc::sighandler_t) };
        let pid = fork_run(5, || {
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(libc::SIGHUP) };
            0
        })
        .unwrap();
        let (state, _) = wait_child(pid, true).unwrap();
        // SAFETY: back to the default disposition.
        unsafe { libc::signal(libc::SIGHUP, libc::SIG_DFL) };
        assert_eq!(state, ChildState::Killed(libc::SIGHUP));
        // And a child that returns exits with its value.
        let pid = fork_run(5, || 7).unwrap();
        assert_eq!(wait_child(pid, true).unwrap().0, ChildState::Exited(7));
    }
}
