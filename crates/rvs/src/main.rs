//! `rvs`: one binary, one arm per subcommand. Started as `rvsadm` or `ipvsadm`, it is
//! `rvs adm`.
#![forbid(unsafe_code)]

mod adm;
mod cli;
mod kube;
mod lab;
mod man;
mod sysctl;

use clap::Parser;

use cli::{Cli, Cmd};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let invoked_as = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("rvs");
    if invoked_as == "rvsadm" || invoked_as == "ipvsadm" {
        std::process::exit(adm::run(argv));
    }
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Daemon(a) if a.background => {
            // The same command without --background, as a child that says when it has taken
            // over.
            let args: Vec<std::ffi::OsString> = std::env::args_os()
                .skip(1)
                .filter(|a| a != "--background")
                .collect();
            rvs_dataplane::daemon::run_background(&args)
        }
        Cmd::Daemon(a) => {
            cli::init_logging();
            rvs_dataplane::run_with(
                rvs_dataplane::DaemonOptions {
                    config: a.config,
                    profile: a.profile,
                    takeover: match a.takeover {
                        None => rvs_dataplane::daemon::Takeover::No,
                        Some(cli::TakeoverMode::Always) => rvs_dataplane::daemon::Takeover::Always,
                        Some(cli::TakeoverMode::Auto) => rvs_dataplane::daemon::Takeover::Auto,
                    },
                    stay: a.stay,
                    overrides: rvs_control::config::Overrides {
                        kubernetes: a.kubernetes,
                        service_proxy_name: a.service_proxy_name,
                    },
                },
                vec![kube::attach()],
            )
        }
        Cmd::Adm(a) => {
            let mut v = vec!["rvs adm".to_string()];
            v.extend(a.args);
            adm::run(v)
        }
        Cmd::Sysctl(a) => sysctl::run(&a),
        Cmd::Doctor(a) => rvs_doctor::run(&a, &mut std::io::stdout()),
        Cmd::Sim(a) => match rvs_sim::cli::run(&a, &mut std::io::stdout()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("rvs sim: {e:#}");
                2
            }
        },
        Cmd::Demo(a) => rvs_demo::run(&a, &rvs_demo::current_bin()),
        Cmd::Lab(a) => lab::run(a),
        Cmd::Man(a) => man::run(&a.out),
    };
    std::process::exit(code);
}
