//! `rvs man --out DIR`: the manual pages. `rvs.1` and one page per visible subcommand
//! (`rvs-daemon.1`, `rvs-adm.1`, ...) are rendered from the clap definitions by clap_mangen.
//! `rvsadm.8`, the ipvsadm-compatible front end whose parser is hand-written, is put together
//! from what that front end itself uses: its option table, the `-h` text it prints and the
//! help of `rvs adm`. Nothing in the pages is typed twice, so they cannot drift from the code.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use roff::{Roff, bold, italic, roman};

use crate::cli::Cli;

/// Writes every page into `out` (created if missing) and prints their paths.
pub fn run(out: &Path) -> i32 {
    match write_pages(out) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            0
        }
        Err(e) => {
            eprintln!("rvs man: {e}");
            1
        }
    }
}

fn write_pages(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for (name, text) in pages()? {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

/// Every page: its file name and its roff source.
fn pages() -> Result<Vec<(String, String)>, String> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let source = format!("rvs {}", env!("CARGO_PKG_VERSION"));
    let mut out = Vec::new();
    clap_pages(&cli, &source, &mut out)?;
    out.push(("rvsadm.8".to_string(), rvsadm_page(&cli, &source)?));
    Ok(out)
}

/// The page of `cmd`, then those of its visible subcommands, depth first.
fn clap_pages(
    cmd: &clap::Command,
    source: &str,
    out: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(source)
        .manual("rvs manual");
    let mut text = Vec::new();
    man.render(&mut text)
        .map_err(|e| format!("cannot render the page of `{}`: {e}", cmd.get_name()))?;
    let text = String::from_utf8(text)
        .map_err(|e| format!("the page of `{}` is not UTF-8: {e}", cmd.get_name()))?;
    out.push((man.get_filename(), text));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        clap_pages(sub, source, out)?;
    }
    Ok(())
}

/// `rvsadm.8`: the synopsis and option text are what `rvsadm -h` prints, the option list is
/// the parser's table, and the extensions are `rvs adm --help`'s.
fn rvsadm_page(cli: &clap::Command, source: &str) -> Result<String, String> {
    let help = rvs_adm::render::help::usage("rvsadm");
    let adm = cli
        .find_subcommand("adm")
        .ok_or("the command line has no `adm` subcommand to describe in rvsadm.8")?;
    let extensions = adm
        .get_after_help()
        .ok_or("`rvs adm` has no after-help text to put in rvsadm.8")?
        .to_string();

    let mut r = Roff::new();
    r.control("TH", ["RVSADM", "8", "", source, "rvs manual"]);
    r.control("SH", ["NAME"]);
    r.text([roman(
        "rvsadm, ipvsadm - ipvsadm 1.31's command line for the rvs daemon",
    )]);

    r.control("SH", ["SYNOPSIS"]);
    let usage = help
        .split("Usage:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .ok_or("the -h text has no `Usage:` block")?;
    for line in usage.lines() {
        let rest = line.trim_start().trim_start_matches("rvsadm").trim_start();
        r.text([bold("rvsadm"), roman(format!(" {rest}"))]);
        r.control("br", []);
    }

    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(
        "rvsadm is the rvs binary started under that name (/usr/sbin/rvsadm is a link to \
         /usr/bin/rvs); rvs adm ARGS runs the same code. The optional rvs-ipvsadm package \
         makes /sbin/ipvsadm a third name for it, with ipvsadm-save and ipvsadm-restore, in \
         place of the kernel's ipvsadm, so that scripts written for ipvsadm run unchanged.",
    )]);
    r.control("PP", []);
    r.text([roman(
        "It takes ipvsadm 1.31's command line and prints what ipvsadm 1.31 prints, byte for \
         byte: listings, saved rules, help, errors and exit statuses, with the program name \
         as invoked in the usage and error messages. The commands go to the running rvs \
         daemon over its admin socket instead of the kernel's IP Virtual Server. With no \
         arguments it lists the table. Help (-h), the version line (-v) and argument errors \
         need no daemon.",
    )]);

    r.control("SH", ["OPTIONS"]);
    r.text([roman("What rvsadm -h prints:")]);
    r.control("PP", []);
    r.control("nf", []);
    r.control("RS", ["4"]);
    for line in help.lines() {
        r.text([roman(line)]);
    }
    r.control("RE", []);
    r.control("fi", []);

    r.control("SH", ["OPTION TABLE"]);
    r.text([roman(
        "Every option the parser accepts, in the order of its table (ipvsadm's popt table, \
         plus rvs's --fullnat).",
    )]);
    r.control("PP", []);
    let mut seen: Vec<&str> = Vec::new();
    let table = rvs_adm::args::accepted_options();
    for (long, _, value) in &table {
        if seen.contains(long) {
            continue;
        }
        seen.push(long);
        let shorts: Vec<String> = table
            .iter()
            .filter(|(l, s, _)| l == long && s.is_some())
            .filter_map(|(_, s, _)| s.map(|c| format!("-{c}")))
            .collect();
        let mut line = vec![bold(format!("--{long}"))];
        for s in shorts {
            line.push(roman(", "));
            line.push(bold(s));
        }
        if !value.is_empty() {
            line.push(roman(" "));
            line.push(italic(*value));
        }
        r.text(line);
        r.control("br", []);
    }

    r.control("SH", ["RVS EXTENSIONS"]);
    for para in extensions.split('\n').filter(|p| !p.trim().is_empty()) {
        r.text([roman(para)]);
        r.control("PP", []);
    }
    r.text([roman(format!(
        "--start-daemon and --stop-daemon are checked as ipvsadm checks them, then refused: {}",
        rvs_adm::DAEMON_UNSUPPORTED.trim_end()
    ))]);

    r.control("SH", ["ENVIRONMENT"]);
    r.control("TP", []);
    r.text([bold(rvs_control::proto::SOCKET_ENV)]);
    r.text([roman(format!(
        "The daemon's admin socket (default {}).",
        rvs_control::proto::DEFAULT_SOCKET
    ))]);

    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "ipvsadm's; 1 when the daemon cannot be reached or answers with an error.",
    )]);

    r.control("SH", ["SEE ALSO"]);
    r.text([roman(
        "rvs(1), rvs-adm(1), rvs-daemon(1), rvs-sysctl(1), ipvsadm(8)",
    )]);
    Ok(r.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How roff source spells `text` (dashes escaped).
    fn esc(text: &str) -> String {
        text.replace('-', r"\-")
    }

    fn page<'a>(pages: &'a [(String, String)], name: &str) -> &'a str {
        let names: Vec<&String> = pages.iter().map(|(n, _)| n).collect();
        pages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("no page {name} among {names:?}"))
    }

    /// Every visible command has a page, named after it, that names each of its visible
    /// subcommands and each of its visible arguments.
    fn check(cmd: &clap::Command, prefix: &str, pages: &[(String, String)], count: &mut usize) {
        let name = if prefix.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{prefix}-{}", cmd.get_name())
        };
        let text = page(pages, &format!("{name}.1"));
        *count += 1;
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let spelled = match (arg.get_long(), arg.get_short()) {
                (Some(l), _) => format!("--{l}"),
                (None, Some(s)) => format!("-{s}"),
                (None, None) => arg
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| arg.get_id().to_string().to_uppercase()),
            };
            assert!(
                text.contains(&esc(&spelled)),
                "{name}.1 does not mention {spelled}"
            );
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            assert!(
                text.contains(&esc(&format!("{name}-{}(1)", sub.get_name()))),
                "{name}.1 does not list {}",
                sub.get_name()
            );
            check(sub, &name, pages, count);
        }
        for sub in cmd.get_subcommands().filter(|s| s.is_hide_set()) {
            let hidden = format!("{name}-{}.1", sub.get_name());
            assert!(
                pages.iter().all(|(n, _)| *n != hidden),
                "hidden {hidden} has a page"
            );
        }
    }

    #[test]
    fn every_command_and_argument_has_its_page() {
        let pages = pages().unwrap();
        let mut cli = Cli::command().disable_help_subcommand(true);
        cli.build();
        let mut count = 0;
        check(&cli, "", &pages, &mut count);
        // rvs, daemon, adm, sysctl, doctor, sim, demo at least; plus rvsadm.8.
        assert!(count >= 7, "{count} clap pages");
        assert_eq!(pages.len(), count + 1, "{:?}", pages.iter().map(|p| &p.0));
        for (name, text) in &pages {
            assert!(text.contains(".TH "), "{name} has no title");
            assert!(text.contains(".SH NAME"), "{name} has no NAME section");
        }
    }

    #[test]
    fn rvsadm_page_has_every_option_and_the_help_text() {
        let pages = pages().unwrap();
        let text = page(&pages, "rvsadm.8");
        let table = rvs_adm::args::accepted_options();
        assert!(table.len() > 50, "{} options", table.len());
        for (long, short, _) in table {
            assert!(text.contains(&esc(&format!("--{long}"))), "--{long}");
            if let Some(s) = short {
                assert!(text.contains(&esc(&format!("-{s}"))), "-{s} of --{long}");
            }
        }
        for line in rvs_adm::render::help::usage("rvsadm").lines() {
            let roff_line = esc(&line.replace('\\', r"\\")).replace('\'', r"\*(Aq");
            assert!(text.contains(&roff_line), "help line `{line}`");
        }
        assert!(text.contains(&esc("--reload")) && text.contains(&esc("--fullnat")));
        assert!(text.contains("RVS_SOCKET") && text.contains("/run/rvs/rvs.sock"));
    }
}
