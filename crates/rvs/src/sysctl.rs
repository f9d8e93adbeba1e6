//! `rvs sysctl`: sysctl(8)-like access to the daemon's knobs.

use rvs_control::client::{Client, ClientError, socket_path};
use rvs_control::proto::{Request, Response};
use rvs_core::sysctl::inert_reason;

use crate::cli::SysctlArgs;

fn print(a: &SysctlArgs, name: &str, value: &str) {
    if a.values_only {
        println!("{value}");
    } else {
        println!("{name} = {value}");
    }
}

/// Runs `rvs sysctl`; returns the exit status.
pub fn run(a: &SysctlArgs) -> i32 {
    if !a.all && a.items.is_empty() && a.profile.is_none() {
        eprintln!("rvs sysctl: give -a, NAME, NAME=VALUE or --profile P (see --help)");
        return 2;
    }
    let mut c = match Client::connect(&socket_path()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvs sysctl: {e}");
            return 1;
        }
    };
    let mut status = 0;
    let mut call = |req: Request| -> Option<Response> {
        match c.call(&req) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("rvs sysctl: {e}");
                None
            }
        }
    };
    if let Some(p) = a.profile {
        match call(Request::SetProfile(p)) {
            Some(Response::Profile(p)) => print(a, "profile", p.name()),
            Some(other) => {
                eprintln!("rvs sysctl: {}", ClientError::Unexpected(other));
                status = 1;
            }
            None => return 1,
        }
    }
    if a.all {
        match call(Request::SysctlList) {
            Some(Response::Sysctls(list)) => {
                for (n, v) in list {
                    print(a, &n, &v);
                }
            }
            Some(other) => {
                eprintln!("rvs sysctl: {}", ClientError::Unexpected(other));
                status = 1;
            }
            None => return 1,
        }
    }
    for item in &a.items {
        let req = match item.split_once('=') {
            Some((n, v)) => Request::SysctlSet(n.trim().into(), v.trim().into()),
            None => Request::SysctlGet(item.trim().into()),
        };
        let setting = item.contains('=');
        match call(req) {
            Some(Response::Sysctl(n, v)) => {
                print(a, &n, &v);
                if let Some(why) = setting.then(|| inert_reason(&n)).flatten() {
                    eprintln!(
                        "rvs sysctl: note: {n} is stored and listed, but has no effect: {why}"
                    );
                }
            }
            Some(Response::Error(m)) => {
                eprintln!("rvs sysctl: {m}");
                status = 1;
            }
            Some(other) => {
                eprintln!("rvs sysctl: {}", ClientError::Unexpected(other));
                status = 1;
            }
            None => return 1,
        }
    }
    status
}
