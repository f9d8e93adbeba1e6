//! # rvs-adm: an ipvsadm 1.31 work-alike
//!
//! `rvs-adm` parses ipvsadm command lines and prints ipvsadm's outputs byte for byte, on top
//! of rvs-core's control-plane [`Command`]s and snapshot views. It does no I/O of its own
//! beyond the streams it is handed; the engine is reached through a [`Backend`] (the admin
//! daemon's client implements it over its socket).
//!
//! * [`args`]: an argument vector → a [`Request`], or the exact error text and exit status
//!   (popt's option scanning, ipvsadm's command/option matrix, value checks, edit semantics).
//! * [`render`]: every output format (`-L` in all its variants, `-Lc`, `-S`, `--timeout`,
//!   `--daemon`, `-v`, `-h`, and `/proc/net/ip_vs*`) as `String`s from the views.
//! * [`restore`]: `ipvsadm -R`.
//! * [`resolve`]: host and service names (`/etc/hosts`, `/etc/services`, or injected).
//! * [`run`]: one whole ipvsadm invocation, with ipvsadm's split between standard output and
//!   standard error and its exit statuses (0; 2 for `fail()`-style errors; 255 for the
//!   "Try ..." hint, popt errors and kernel errors; 1 for `-L` of a missing service).
//!
//! ```
//! use rvs_adm::args::{parse, Request};
//! use rvs_adm::resolve::StaticResolver;
//! use rvs_core::command::Command;
//!
//! let argv: Vec<String> = "ipvsadm -A -t 10.0.0.1:80 -s rr".split(' ').map(String::from).collect();
//! let req = parse(&argv, &StaticResolver::empty()).unwrap();
//! assert!(matches!(req, Request::Apply(Command::AddService(_))));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io::{BufRead, Write};

use rvs_core::command::{AdmError, Command, Timeouts};
use rvs_core::snapshot::{ConnView, InfoView, ServiceView, TotalsView};

pub mod args;
mod cparse;
mod popt;
pub mod render;
pub mod resolve;
pub mod restore;

pub use args::{ArgError, ListOptions, Request};
pub use restore::Flow;

/// What ipvsadm needs from the engine: apply commands, read the views.
pub trait Backend {
    /// Applies one control-plane command.
    fn apply(&mut self, cmd: Command) -> Result<(), AdmError>;
    /// Listing header facts.
    fn info(&mut self) -> InfoView;
    /// Services in kernel order, each with its real servers in kernel order (newest first).
    fn services(&mut self) -> Vec<ServiceView>;
    /// The connection table in kernel order.
    fn conns(&mut self) -> Vec<ConnView>;
    /// The TCP, TCP FIN and UDP timeouts.
    fn timeouts(&mut self) -> Timeouts;
    /// Engine totals (`/proc/net/ip_vs_stats`).
    fn totals(&mut self) -> TotalsView;
}

/// What rvs answers to `--start-daemon` / `--stop-daemon`.
pub const DAEMON_UNSUPPORTED: &str =
    "Connection synchronization daemons are not supported by rvs\n";

/// Runs one ipvsadm invocation (`argv[0]` is the program name) with the system's
/// `/etc/hosts` and `/etc/services`; returns the exit status.
pub fn run(
    argv: &[String],
    backend: &mut dyn Backend,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let names = resolve::SystemResolver::load();
    run_with(argv, backend, &names, stdin, stdout, stderr)
}

/// [`run`] with an injected name resolver.
pub fn run_with(
    argv: &[String],
    backend: &mut dyn Backend,
    names: &dyn resolve::Resolver,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let program = argv.first().map(String::as_str).unwrap_or("ipvsadm");
    match args::parse(argv, names) {
        Err(e) => {
            let _ = stderr.write_all(e.message.as_bytes());
            e.status
        }
        Ok(Request::Restore) => {
            let mut input = Vec::new();
            let _ = stdin.read_to_end(&mut input);
            // Both callbacks write to standard error; share it through a cell.
            let err = std::cell::RefCell::new(stderr);
            let mut apply = |req: Request| {
                let mut e = err.borrow_mut();
                execute(req, backend, names, program, stdout, &mut **e)
            };
            let mut report = |e: &ArgError| {
                let _ = err.borrow_mut().write_all(e.message.as_bytes());
            };
            restore::restore(&input, program, names, &mut apply, &mut report)
        }
        Ok(req) => match execute(req, backend, names, program, stdout, stderr) {
            Flow::Continue(r) => restore::exit_status(r),
            Flow::Exit(code) => code,
        },
    }
}

/// Executes one parsed request against the backend, writing what ipvsadm writes.
pub fn execute(
    req: Request,
    backend: &mut dyn Backend,
    names: &dyn resolve::Resolver,
    program: &str,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Flow {
    let mut out = |s: String| {
        let _ = stdout.write_all(s.as_bytes());
    };
    match req {
        Request::Apply(cmd) => match backend.apply(cmd) {
            Ok(()) => Flow::Continue(0),
            Err(e) => {
                let _ = writeln!(stderr, "{}", e.ipvsadm_message());
                Flow::Continue(-1)
            }
        },
        Request::List(o) => {
            if o.connections {
                let conns = backend.conns();
                out(render::conns::conns(
                    &conns,
                    o.numeric,
                    o.persistent_conn,
                    names,
                ));
            } else if let Some(key) = o.service {
                let services = backend.services();
                match services.iter().find(|s| s.key == key) {
                    Some(svc) => out(render::single_service(svc, &o, names)),
                    None => {
                        let _ = writeln!(stderr, "{}", AdmError::NoService.ipvsadm_message());
                        return Flow::Exit(1);
                    }
                }
            } else {
                let info = backend.info();
                let services = backend.services();
                out(render::listing(&info, &services, &o, names));
            }
            Flow::Continue(0)
        }
        Request::Save { numeric } => {
            let services = backend.services();
            out(render::save::save(&services, numeric, names));
            Flow::Continue(0)
        }
        Request::Timeout => {
            out(render::timeout::timeout(&backend.timeouts()));
            Flow::Continue(0)
        }
        Request::Daemon => {
            out(render::daemon::daemons(&[]));
            Flow::Continue(0)
        }
        Request::Version => {
            out(render::version::version());
            Flow::Exit(0)
        }
        Request::Help => {
            out(render::help::usage(program));
            Flow::Exit(0)
        }
        Request::StartDaemon(_) | Request::StopDaemon(_) => {
            let _ = stderr.write_all(DAEMON_UNSUPPORTED.as_bytes());
            Flow::Continue(-1)
        }
        Request::Restore => {
            let _ = writeln!(
                stderr,
                "Try `{program} -h' or '{program} --help' for more information."
            );
            Flow::Exit(255)
        }
    }
}
