//! The packaged unit under a real systemd: the rvs package, built from the binary of this
//! test run, is installed with dpkg in a throwaway root (common/deb.rs), which
//! systemd-nspawn then boots (systemd as PID 1 of its own PID namespace, with its own network
//! namespace, into basic.target). There `systemctl start rvs` must reach READY=1,
//! `systemctl reload rvs` must hand over to a new main process (takeover), a `kill -9` of
//! the daemon must end in a restart that adopts the state left behind, and
//! `systemctl stop rvs` must remove the whole setup. The host is left as it was: the
//! container is killed and the root's namespaces end with the test, also when it fails.
//!
//! Needs root, systemd-nspawn (package systemd-container) and cargo-deb; with
//! RVS_SKIP_NETNS=1 it is skipped and recorded as such.

mod common;

use std::time::{Duration, Instant};

use common::deb::{Booted, Root, Shell, host_state, pack, repo, require_tools, text};

fn show(c: &Booted, prop: &str) -> String {
    c.ok(&["systemctl", "show", "-p", prop, "--value", "rvs"])
        .trim()
        .to_string()
}

fn is_active(c: &Booted) -> String {
    text(&c.run(&["systemctl", "is-active", "rvs"]).stdout)
        .trim()
        .to_string()
}

fn journal(c: &Booted) -> String {
    c.ok(&["journalctl", "--no-pager", "-o", "cat", "-u", "rvs"])
}

/// Polls `cond` every 100 ms for at most `limit`; panics with `what` and the unit's journal.
fn until(c: &Booted, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            panic!(
                "{what}: not within {limit:?}\nsystemctl status rvs:\n{}\njournal:\n{}",
                text(&c.run(&["systemctl", "status", "--no-pager", "rvs"]).stdout),
                journal(c)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(c: &Booted, pid: &str) -> bool {
    c.exists(&format!("/proc/{pid}"))
}

#[test]
fn the_packaged_unit_starts_reloads_recovers_and_stops_under_systemd() {
    if common::skip(
        "deb_systemd::the_packaged_unit_starts_reloads_recovers_and_stops_under_systemd",
    ) {
        return;
    }
    require_tools(&["unshare", "nsenter", "dpkg", "systemd-nspawn"]);
    let _serial = common::serial();
    let packed = pack("deb-systemd");
    let t = Instant::now();
    let before = host_state();
    let work = packed.stage.join(format!("root-{}", std::process::id()));
    {
        // The host's /run is hidden in the root's mount namespace: systemd-nspawn keeps its
        // state (/run/systemd/nspawn) there.
        let root = Root::start(
            work.clone(),
            &[&packed.rvs_deb],
            "mount -t tmpfs -o mode=0755 rvs-host-run /run",
        );
        let deb = format!(
            "/tmp/{}",
            packed.rvs_deb.file_name().unwrap().to_string_lossy()
        );
        root.ok(&["dpkg", "-i", &deb]);
        // One service (10.0.0.100:80 -> 10.2.1.2:80), for the reload and the restart to keep.
        let packaged = std::fs::read_to_string(repo().join("packaging/debian/rvs/rvs.toml"));
        let service = common::service("tcp", false, 80, "rr", "masq", &[1]);
        let config = format!("{}\n{service}", packaged.unwrap());
        let o = root.run_input(&["sh", "-c", "cat > /etc/rvs/rvs.toml"], &config);
        assert!(o.status.success(), "{}", text(&o.stderr));
        // The package again, for the upgrade under systemd (nspawn gives /tmp a fresh tmpfs);
        // no policy-rc.d that would refuse the postinst's reload.
        let again = deb.replacen("/tmp/", "/var/tmp/", 1);
        root.ok(&["cp", &deb, &again]);
        root.ok(&["rm", "-f", "/usr/sbin/policy-rc.d"]);

        let c = Booted::boot(&root, "basic.target", Duration::from_secs(90));
        eprintln!("booted in {:?}", t.elapsed());
        let rules_before = c.ok(&["ip", "rule"]);
        assert!(!c.exists("/run/rvs/rvs.sock.engine"));

        // 1. Start: READY=1 (systemctl start waits for it with Type=notify).
        c.ok(&["systemctl", "start", "rvs"]);
        assert_eq!(is_active(&c), "active");
        let pid1 = show(&c, "MainPID");
        assert!(pid1 != "0" && alive(&c, &pid1), "MainPID {pid1}");
        c.ok(&["ip", "link", "show", "rvs0"]);
        assert!(c.ok(&["ip", "rule"]).contains("0x7373"));
        let listing = c.ok(&["rvs", "adm", "-Ln"]);
        assert!(
            listing.contains("TCP  10.0.0.100:80 rr") && listing.contains("10.2.1.2:80"),
            "{listing}"
        );

        // 2. Reload: a takeover by a new daemon, which becomes the main process.
        c.ok(&["systemctl", "reload", "rvs"]);
        let pid2 = show(&c, "MainPID");
        assert!(pid2 != "0" && pid2 != pid1, "MainPID {pid1} -> {pid2}");
        assert_eq!(is_active(&c), "active");
        until(&c, Duration::from_secs(10), "the old daemon's exit", || {
            !alive(&c, &pid1)
        });
        assert!(alive(&c, &pid2));
        assert_eq!(c.ok(&["rvs", "adm", "-Ln"]), listing);
        assert_eq!(is_active(&c), "active");
        assert_eq!(show(&c, "MainPID"), pid2);
        c.ok(&["ip", "link", "show", "rvs0"]);

        // An upgrade (the same version again): the postinst reloads the running daemon.
        let out = c.ok(&["dpkg", "-i", &again]);
        let pid2b = show(&c, "MainPID");
        assert!(
            pid2b != "0" && pid2b != pid2,
            "MainPID {pid2} -> {pid2b} across dpkg -i:\n{out}\n{}",
            journal(&c)
        );
        until(
            &c,
            Duration::from_secs(10),
            "the exit of the upgraded daemon",
            || !alive(&c, &pid2),
        );
        assert_eq!(is_active(&c), "active");
        assert_eq!(c.ok(&["rvs", "adm", "-Ln"]), listing);
        let pid2 = pid2b;

        // 3. kill -9: systemd restarts the unit (RestartSec=2s) and the new daemon adopts the
        // state the dead one left.
        c.ok(&["kill", "-KILL", &pid2]);
        until(
            &c,
            Duration::from_secs(20),
            "the restart after kill -9",
            || {
                let pid = show(&c, "MainPID");
                pid != "0" && pid != pid2 && is_active(&c) == "active"
            },
        );
        let pid3 = show(&c, "MainPID");
        assert_eq!(show(&c, "NRestarts"), "1");
        let log = journal(&c);
        assert!(log.contains("crash recovery: adopted"), "{log}");
        let crashed = format!("crashed_pid={pid2}");
        assert!(log.split_whitespace().any(|w| w == crashed), "{log}");
        assert!(!log.contains('\x1b'), "escape codes in the journal:\n{log}");
        assert_eq!(c.ok(&["rvs", "adm", "-Ln"]), listing);
        assert!(c.exists("/run/rvs/rvs.sock.engine"));

        // 4. Stop: a clean exit that removes the TUN device, the rules and the snapshot.
        c.ok(&["systemctl", "stop", "rvs"]);
        assert_eq!(is_active(&c), "inactive");
        assert_eq!(show(&c, "Result"), "success");
        assert_eq!(show(&c, "ExecMainStatus"), "0");
        assert!(!alive(&c, &pid3));
        let log = journal(&c);
        assert!(
            !c.run(&["ip", "link", "show", "rvs0"]).status.success(),
            "rvs0 left:\n{log}"
        );
        let rules = c.ok(&["ip", "rule"]);
        assert!(!rules.contains("7373"), "{rules}\n{log}");
        assert_eq!(rules, rules_before);
        assert!(!c.exists("/run/rvs/rvs.sock.engine"), "{log}");
        eprintln!("checked in {:?}; the unit's journal:\n{log}", t.elapsed());
    }
    assert_eq!(host_state(), before, "the host changed");
    assert!(!work.exists());
}
