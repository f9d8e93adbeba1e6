//! The Debian packages: scripts/build-deb.sh packs the binary this test run built, then the
//! real dpkg installs them in a throwaway root, where the files, the programs, the man
//! pages, the systemd unit and the daemon itself (with the unit's capabilities) are checked;
//! then they are removed again. The host is left as it was.
//!
//! The throwaway root is described in common/deb.rs. No service manager runs in it (its /run
//! is empty), so the maintainer scripts leave the host's systemd alone; deb_systemd.rs boots
//! one.
//!
//! Needs root (namespaces, mounts, a TUN device for the daemon) and cargo-deb; with
//! RVS_SKIP_NETNS=1 it is skipped and recorded as such.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::deb::{
    Root, Shell, drain, host_state, only, pack, repo, require_tools, text, wait_bounded,
};

/// A daemon started in the root; dropping it kills it if it still runs.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One line `Key=value` of the unit (the first).
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("rvs.service has no {key}="))
}

#[test]
fn the_packages_install_work_and_leave_in_a_throwaway_root() {
    if common::skip("deb_package::the_packages_install_work_and_leave_in_a_throwaway_root") {
        return;
    }
    require_tools(&[
        "unshare",
        "nsenter",
        "setpriv",
        "dpkg",
        "man",
        "systemd-analyze",
    ]);
    let _serial = common::serial();

    // Pack the binary of this run, in a target folder of its own.
    let common::deb::Packed {
        stage,
        rvs_deb,
        ipvsadm_deb,
    } = pack("deb-package");
    only(&stage.join("debian"), "rvs-dbgsym_", ".ddeb");
    let field = |deb: &Path, f: &str| {
        let o = Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg(f)
            .output()
            .unwrap();
        text(&o.stdout).trim().to_string()
    };
    assert_eq!(field(&ipvsadm_deb, "Depends"), "rvs");
    for f in ["Conflicts", "Replaces", "Provides"] {
        assert_eq!(field(&ipvsadm_deb, f), "ipvsadm", "{f}");
    }
    assert_eq!(field(&rvs_deb, "Version"), field(&ipvsadm_deb, "Version"));
    let mut pages: Vec<String> = std::fs::read_dir(stage.join("release/man"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for p in ["rvs.1.gz", "rvs-daemon.1.gz", "rvs-adm.1.gz", "rvsadm.8.gz"] {
        assert!(pages.iter().any(|x| x == p), "{p} not among {pages:?}");
    }

    let before = host_state();
    {
        let root = Root::start(
            stage.join(format!("root-{}", std::process::id())),
            &[&rvs_deb, &ipvsadm_deb],
            "",
        );
        let name = |p: &Path| format!("/tmp/{}", p.file_name().unwrap().to_string_lossy());

        // rvs: installed, files in place, the unit neither enabled nor started.
        let out = root.ok(&["dpkg", "-i", &name(&rvs_deb)]);
        assert!(out.contains("Setting up rvs "), "{out}");
        assert_eq!(
            root.ok(&["dpkg-query", "-W", "-f", "${Status}", "rvs"]),
            "install ok installed"
        );
        assert_eq!(
            root.ok(&["readlink", "/usr/sbin/rvsadm"]).trim(),
            "../bin/rvs"
        );
        let packaged = |f: &str| std::fs::read_to_string(repo().join(f)).unwrap();
        assert_eq!(
            root.ok(&["cat", "/etc/rvs/rvs.toml"]),
            packaged("packaging/debian/rvs/rvs.toml")
        );
        let unit = root.ok(&["cat", "/lib/systemd/system/rvs.service"]);
        assert_eq!(unit, packaged("packaging/debian/rvs/rvs.service"));
        let conffiles = root.ok(&["dpkg-query", "-W", "-f", "${Conffiles}", "rvs"]);
        assert!(conffiles.contains("/etc/rvs/rvs.toml"), "{conffiles}");
        let listed = root.ok(&["dpkg", "-L", "rvs"]);
        for p in &pages {
            let section = if p.ends_with(".8.gz") { "man8" } else { "man1" };
            let path = format!("/usr/share/man/{section}/{p}");
            assert!(
                listed.lines().any(|l| l == path),
                "{path} not installed:\n{listed}"
            );
        }
        for f in [
            "/usr/share/doc/rvs/copyright",
            "/usr/share/doc/rvs/README.md",
        ] {
            assert!(listed.lines().any(|l| l == f), "{f} not installed");
        }
        assert!(!root.exists("/etc/systemd/system/multi-user.target.wants/rvs.service"));
        assert!(!root.exists("/run/rvs"), "something started at install");

        // The programs run from the installed tree.
        assert_eq!(
            root.ok(&["rvsadm", "-v"]),
            rvs_adm::render::version::version()
        );
        assert!(
            root.ok(&["rvs", "--version"])
                .contains(env!("CARGO_PKG_VERSION"))
        );

        // The man pages open, and man finds them by name.
        for p in &pages {
            let section = if p.ends_with(".8.gz") { "8" } else { "1" };
            let page = p.trim_end_matches(".gz");
            let title = page.trim_end_matches(&format!(".{section}")).to_string();
            let path = format!("/usr/share/man/man{section}/{p}");
            let o = root.run(&["man", "-l", &path]);
            let shown = text(&o.stdout);
            assert!(
                o.status.success() && o.stderr.is_empty(),
                "man -l {path}: {}",
                text(&o.stderr)
            );
            let heading = format!(
                "{}({section})",
                if title == "rvsadm" { "RVSADM" } else { &title }
            );
            assert!(shown.starts_with(&heading), "man -l {path}:\n{shown}");
            assert!(
                shown.contains("NAME") && shown.lines().count() > 8,
                "{shown}"
            );
            assert_eq!(root.ok(&["man", "-w", section, &title]).trim(), path);
        }
        let adm_page = root.ok(&["man", "8", "rvsadm"]);
        assert!(adm_page.contains("--tcp-service") && adm_page.contains("OPTION TABLE"));

        // systemd accepts the unit (as installed, with its ExecStart in place).
        let o = root.run(&[
            "systemd-analyze",
            "verify",
            "/lib/systemd/system/rvs.service",
        ]);
        let said = text(&o.stderr);
        assert!(o.status.success(), "systemd-analyze verify: {said}");
        assert!(
            !said.contains("rvs.service"),
            "systemd-analyze verify: {said}"
        );
        assert_eq!(unit_value(&unit, "Type"), "notify");
        assert_eq!(unit_value(&unit, "KillMode"), "mixed");
        assert_eq!(unit_value(&unit, "Restart"), "on-failure");
        assert_eq!(unit_value(&unit, "RuntimeDirectory"), "rvs");
        assert!(unit_value(&unit, "ExecReload").ends_with(" --takeover --background"));

        // rvs-ipvsadm takes the ipvsadm package's place (dpkg removes it if installed).
        let out = root.ok(&["dpkg", "-i", &name(&ipvsadm_deb)]);
        assert!(out.contains("Setting up rvs-ipvsadm "), "{out}");
        assert_eq!(
            root.ok(&["readlink", "/sbin/ipvsadm"]).trim(),
            "/usr/bin/rvs"
        );
        let status = root.run(&["dpkg-query", "-W", "-f", "${Status}", "ipvsadm"]);
        assert!(
            !text(&status.stdout).contains("ok installed"),
            "ipvsadm stayed"
        );
        assert_eq!(
            root.ok(&["man", "-w", "ipvsadm"]).trim(),
            "/usr/share/man/man8/rvsadm.8.gz"
        );
        assert!(root.ok(&["man", "ipvsadm"]).starts_with("RVSADM(8)"));
        assert_eq!(
            root.ok(&["readlink", "/usr/share/man/man8/ipvsadm.8.gz"])
                .trim(),
            "rvsadm.8.gz"
        );
        let help = root.ok(&["ipvsadm", "-h"]);
        assert_eq!(help, rvs_adm::render::help::usage("ipvsadm"));

        // The daemon starts from the packaged config with only the unit's capabilities;
        // rvsadm, ipvsadm, ipvsadm-save and ipvsadm-restore drive it as ipvsadm would.
        root.ok(&["ip", "link", "set", "lo", "up"]);
        root.ok(&["install", "-d", "-m", "0750", "/run/rvs"]); // RuntimeDirectory=rvs
        let rules_before = root.ok(&["ip", "rule"]);
        let caps: Vec<String> = unit_value(&unit, "CapabilityBoundingSet")
            .split_whitespace()
            .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
            .collect();
        let bounding = format!("--bounding-set=-all,{}", caps.join(","));
        let exec: Vec<&str> = unit_value(&unit, "ExecStart").split_whitespace().collect();
        let mut argv = vec!["setpriv", bounding.as_str(), "--inh-caps=-all", "--"];
        argv.extend(&exec);
        let mut daemon = Daemon(
            root.command(&argv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let log = drain(daemon.0.stderr.take());
        let start = Instant::now();
        let listing = loop {
            let o = root.run(&["rvsadm", "-L", "-n"]);
            if o.status.success() {
                break text(&o.stdout);
            }
            if let Ok(Some(s)) = daemon.0.try_wait() {
                panic!("the daemon exited ({s}):\n{}", text(&log.join().unwrap()));
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no daemon after 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            listing.starts_with("IP Virtual Server version"),
            "{listing}"
        );
        assert_eq!(root.ok(&["ipvsadm", "-L", "-n"]), listing);
        root.ok(&["ip", "link", "show", "rvs0"]);
        root.ok(&["ipvsadm", "-A", "-t", "10.0.0.100:80", "-s", "rr"]);
        root.ok(&[
            "ipvsadm",
            "-a",
            "-t",
            "10.0.0.100:80",
            "-r",
            "10.2.1.2:80",
            "-m",
        ]);
        let saved = root.ok(&["ipvsadm-save", "-n"]);
        assert!(saved.starts_with("-A -t 10.0.0.100:80 -s rr\n"), "{saved}");
        assert!(
            saved.contains("-a -t 10.0.0.100:80 -r 10.2.1.2:80 -m -w 1\n"),
            "{saved}"
        );
        assert_eq!(saved, root.ok(&["rvsadm", "-S", "-n"]));
        root.ok(&["ipvsadm", "-C"]);
        assert_eq!(root.ok(&["ipvsadm", "-S", "-n"]), "");
        let o = root.run_input(&["ipvsadm-restore"], &format!("# saved\n{saved}"));
        assert!(o.status.success(), "ipvsadm-restore: {}", text(&o.stderr));
        assert_eq!(root.ok(&["ipvsadm", "-S", "-n"]), saved);

        // SIGTERM (what KillMode=mixed sends the main process): the daemon removes its setup.
        let pid = daemon.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = wait_bounded(&mut daemon.0, Duration::from_secs(20), "the daemon's stop");
        let log = text(&log.join().unwrap());
        assert!(status.success(), "the daemon stopped with {status}:\n{log}");
        assert!(!root.run(&["ip", "link", "show", "rvs0"]).status.success());
        assert_eq!(root.ok(&["ip", "rule"]), rules_before);

        // Removal and purge leave nothing of the packages.
        root.ok(&["dpkg", "-r", "rvs-ipvsadm"]);
        assert!(!root.exists("/sbin/ipvsadm"));
        root.ok(&["dpkg", "--purge", "rvs"]);
        for p in [
            "/usr/bin/rvs",
            "/usr/sbin/rvsadm",
            "/etc/rvs",
            "/lib/systemd/system/rvs.service",
        ] {
            assert!(!root.exists(p), "{p} left after purge");
        }
    }
    assert_eq!(host_state(), before, "the host changed");
    assert!(!stage.join(format!("root-{}", std::process::id())).exists());
}
