//! `rvs-fidelity`: runs fidelity cases on the kernel (VM) and on rvs, compares, reports.
//!
//! ```text
//! rvs-fidelity [all | ci | list | CASE...] [--out DIR] [--sequential] [--profile P]
//! ```
//! `all` (the default) is the whole suite, `ci` the CI subset, `list` prints the case names.
//! The report is printed and written to `DIR/report.txt` (default
//! `target/fidelity/<unix time>/`). Exit status: 0 when every check agrees or is a listed
//! known difference, 1 otherwise, 2 when the suite cannot run.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rvs_fidelity::{Setup, cases, known, report, runner};

fn usage() -> ! {
    eprintln!(
        "usage: rvs-fidelity [all | ci | list | CASE...] [--out DIR] [--sequential] [--profile P]\n\
         all: the whole suite (default); ci: the CI subset; list: case names.\n\
         --sequential: run the kernel side and the rvs side of a case one after the other.\n\
         --profile P: the rvs profile (default linux-5.16, the one that models the VM's 6.1).\n\
         Env: RVS_BIN (rvs binary; default: built with cargo),\n\
         KIPVS_DIR (the kernel VM harness; default: tests/kernel-vm)."
    );
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut names = Vec::new();
    let mut out: Option<PathBuf> = None;
    let mut parallel = true;
    let mut profile: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" | "-o" => out = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--sequential" => parallel = false,
            "--profile" => profile = Some(args.next().unwrap_or_else(|| usage())),
            "-h" | "--help" => usage(),
            s if s.starts_with('-') => usage(),
            s => names.push(s.to_string()),
        }
    }
    let root = runner::repo_root();
    let kipvs = runner::kipvs_dir(&root).unwrap_or_else(|e| {
        eprintln!("rvs-fidelity: {e}");
        std::process::exit(2)
    });
    let fid = root.join("tests/fidelity");
    let all = cases::all(&kipvs, &fid);
    let selected: Vec<cases::Case> = match names.first().map(String::as_str) {
        None | Some("all") => all,
        Some("ci") => cases::ci(&kipvs, &fid),
        Some("list") => {
            let ci: Vec<String> = cases::ci(&kipvs, &fid)
                .into_iter()
                .map(|c| c.name)
                .collect();
            for c in &all {
                let tag = if ci.contains(&c.name) { " (ci)" } else { "" };
                println!("{}{tag}", c.name);
            }
            return;
        }
        Some(_) => {
            let mut v = Vec::new();
            for n in &names {
                match all.iter().find(|c| &c.name == n) {
                    Some(c) => v.push(c.clone()),
                    None => {
                        eprintln!("rvs-fidelity: no case {n} (see `rvs-fidelity list`)");
                        std::process::exit(2)
                    }
                }
            }
            v
        }
    };
    if let Some(why) = rvs_fidelity::unavailable() {
        eprintln!("rvs-fidelity: cannot run here: {why}");
        std::process::exit(2)
    }
    let known = known::load(&rvs_fidelity::known_file(&root)).unwrap_or_else(|e| {
        eprintln!("rvs-fidelity: {e}");
        std::process::exit(2)
    });
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let out = out.unwrap_or_else(|| root.join(format!("target/fidelity/{stamp}")));
    let t0 = Instant::now();
    let mut setup = Setup::new(out, parallel).unwrap_or_else(|e| {
        eprintln!("rvs-fidelity: setup: {e}");
        std::process::exit(2)
    });
    if let Some(p) = profile {
        setup.profile = p;
    }
    eprintln!(
        "rvs-fidelity: {} cases, rvs {} (profile {}), kernel VM {}, output {}",
        selected.len(),
        setup.rvs_bin.display(),
        setup.profile,
        setup.kipvs.display(),
        setup.out.display()
    );
    let mut results = Vec::new();
    for (i, c) in selected.iter().enumerate() {
        eprintln!("[{}/{}] {} ...", i + 1, selected.len(), c.name);
        let r = rvs_fidelity::run_case(&setup, c);
        let (text, t) = report::case_report(&r, &known);
        eprintln!(
            "[{}/{}] {}: {} checks, {} differ, {} known ({:.0} s)",
            i + 1,
            selected.len(),
            c.name,
            t.checks,
            t.differ + t.stale,
            t.known,
            r.kernel.wall.max(r.rvs.wall).as_secs_f64()
        );
        let _ = std::fs::write(setup.out.join(&c.name).join("report.txt"), &text);
        results.push(r);
    }
    let (text, totals) = report::suite_report(&results, &known);
    let text = format!(
        "== rvs fidelity report: kernel side Linux 6.1 IPVS (kernel VM), rvs side {} with \
         profile {}\n\n{text}== wall time {:.0} s ({} kernel and rvs sides {})\n",
        setup.rvs_bin.display(),
        setup.profile,
        t0.elapsed().as_secs_f64(),
        selected.len(),
        if parallel {
            "in parallel"
        } else {
            "one after the other"
        }
    );
    print!("{text}");
    let path = setup.out.join("report.txt");
    if let Err(e) = std::fs::write(&path, &text) {
        eprintln!("rvs-fidelity: {}: {e}", path.display());
    } else {
        eprintln!("rvs-fidelity: report written to {}", path.display());
    }
    std::process::exit(if totals.pass() { 0 } else { 1 })
}
