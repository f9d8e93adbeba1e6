//! `rvs adm` / `rvsadm`: rvs-adm over the daemon's socket.

use rvs_adm::args::{Request, parse};
use rvs_adm::resolve::SystemResolver;
use rvs_control::client::{AdmBackend, Client, socket_path};

/// Runs one ipvsadm invocation; `argv[0]` is the program name ipvsadm messages use.
pub fn run(argv: Vec<String>) -> i32 {
    if argv.len() == 2 && argv[1] == "--reload" {
        return reload();
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
