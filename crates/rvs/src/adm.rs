//! `rvs adm` / `rvsadm`: rvs-adm over the daemon's socket.

use rvs_adm::args::{Request, parse};
use rvs_adm::resolve::SystemResolver;
use rvs_control::client::{AdmBackend, Client, socket_path};

/// Runs one ipvsadm invocation; `argv[0]` is the program name ipvsadm messages use.
pub fn run(argv: Vec<String>) -> i32 {
    if argv.len() == 2 && argv[1] == "--reload" {
        return reload();
    }
    if argv.len() == 2 && argv[1] == "--table" {
        return table();
    }
    // Help, version and argument errors need no daemon.
    let names = SystemResolver::load();
    match parse(&argv, &names) {
        Err(_) | Ok(Request::Help) | Ok(Request::Version) => {
            let mut b = NoDaemon;
            return rvs_adm::run_with(
                &argv,
                &mut b,
                &names,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
        }
        Ok(_) => {}
    }
    let path = socket_path();
    let client = match Client::connect(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let mut backend = AdmBackend::new(client);
    let code = rvs_adm::run_with(
        &argv,
        &mut backend,
        &names,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    if let Some(e) = backend.error {
        eprintln!("{e}");
        return 1;
    }
    code
}

/// A backend for invocations that never reach it (help, version, argument errors).
struct NoDaemon;

impl rvs_adm::Backend for NoDaemon {
    fn apply(&mut self, _: rvs_core::command::Command) -> Result<(), rvs_core::command::AdmError> {
        Err(rvs_core::command::AdmError::Invalid("no daemon".into()))
    }
    fn info(&mut self) -> rvs_core::snapshot::InfoView {
        rvs_core::snapshot::InfoView {
            version: rvs_core::snapshot::IPVS_VERSION,
            conn_tab_size: 0,
            conn_count: 0,
            conn_max: 0,
        }
    }
    fn services(&mut self) -> Vec<rvs_core::snapshot::ServiceView> {
        Vec::new()
    }
    fn conns(&mut self) -> Vec<rvs_core::snapshot::ConnView> {
        Vec::new()
    }
    fn timeouts(&mut self) -> rvs_core::command::Timeouts {
        rvs_core::command::Timeouts {
            tcp: 0,
            tcpfin: 0,
            udp: 0,
        }
    }
    fn totals(&mut self) -> rvs_core::snapshot::TotalsView {
        Default::default()
    }
}

/// `rvs adm --reload`: asks the daemon to reload its config file (as SIGHUP does) and prints
/// what changed, or the error (which names the file, line and field).
fn reload() -> i32 {
    use rvs_control::proto::{Request as Req, Response};
    let mut c = match Client::connect(&socket_path()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match c.call(&Req::Reload) {
        Ok(Response::Reloaded(lines)) => {
            for l in &lines {
                println!("{l}");
            }
            println!("reloaded ({} changes)", lines.len());
            0
        }
        Ok(Response::Error(m)) => {
            eprintln!("reload refused: {m}");
            1
        }
        Ok(other) => {
            eprintln!("{}", rvs_control::ClientError::Unexpected(other));
            1
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// `rvs adm --table`: the connection table's bound, fill, pressure and evictions (rvs's own;
/// ipvsadm has no such listing).
fn table() -> i32 {
    use rvs_control::proto::{Request as Req, Response};
    let mut c = match Client::connect(&socket_path()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match c.call(&Req::State) {
        Ok(Response::State(s)) => {
            print!("{}", render_table(&s));
            0
        }
        Ok(Response::Error(m)) => {
            eprintln!("{m}");
            1
        }
        Ok(other) => {
            eprintln!("{}", rvs_control::ClientError::Unexpected(other));
            1
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The text of `rvs adm --table`.
pub fn render_table(s: &rvs_control::proto::StateView) -> String {
    use rvs_core::{DropReason, EvictReason};
    let (n, max) = (s.info.conn_count, s.info.conn_max.max(1));
    let c = &s.counters;
    let pressure = s.profile == rvs_core::Profile::Safe && n * 8 >= max * 7;
    let mut out = format!(
        "Connection table: {n} of {max} entries ({:.1}%), profile {}{}\n",
        n as f64 * 100.0 / max as f64,
        s.profile,
        if pressure {
            ", under pressure (half-open timeout 5 s)"
        } else {
            ""
        }
    );
    out += &format!(
        "Found full: {}; refused (table_full): {}; half-open expired early: {}\n",
        c.table_full,
        c.drop_count(DropReason::TableFull),
        c.pressure_expired
    );
    out += "Evicted:";
    for r in EvictReason::ALL {
        out += &format!(" {} {}", r.label(), c.evicted_count(r));
    }
    out += "\n";
    out
}
