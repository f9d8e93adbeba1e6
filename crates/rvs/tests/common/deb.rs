//! Shared by the Debian package tests (deb_package.rs, deb_systemd.rs): packing the binary of
//! the test run with scripts/build-deb.sh, bounded commands, the throwaway root and what of
//! the host must be found unchanged afterwards.
//!
//! The throwaway root: `unshare --mount --net` starts a shell in new mount and network
//! namespaces (its mounts are private: none reaches the host). The shell mounts a tmpfs and
//! builds a root in it: /usr, /etc, /var and /opt are overlays whose lower layer is the
//! host's folder and whose upper layer lies in the tmpfs, the top-level links (bin ->
//! usr/bin, ...) are copied, /dev is bound and /proc, /run and /tmp are fresh. Every command
//! runs chrooted there, entered with nsenter; what dpkg and the maintainer scripts write
//! lands in the tmpfs. When the shell ends (the guard kills it, also when an assertion
//! fails), its namespaces and every mount in them go with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::RVS;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Panics with a clear message unless every tool answers `--version`, and cargo-deb is there.
pub fn require_tools(tools: &[&str]) {
    let has = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    for tool in tools {
        assert!(
            has(tool),
            "`{tool}` is missing (.ci/run installs what this test needs)"
        );
    }
    assert!(
        Command::new("cargo")
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "cargo-deb is not installed: cargo install cargo-deb --locked (.ci/run does)"
    );
}

/// Reads a pipe to its end on a thread (so that a full pipe never stalls the child).
pub fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child` at most `limit`; kills it (it is ours) and panics past that.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {limit:?}");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// Runs `cmd` with `input` on its standard input, at most `limit`.
pub fn run_bounded(cmd: &mut Command, input: &str, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_bounded(&mut child, limit, what);
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What the test must find unchanged on the host afterwards: dpkg's view of every package,
/// and every path the packages install or touch.
pub fn host_state() -> String {
    let o = run_bounded(
        Command::new("dpkg-query").args(["-W", "-f", "${Package} ${Version} ${Status}\n"]),
        "",
        Duration::from_secs(60),
        "dpkg-query on the host",
    );
    assert!(o.status.success(), "dpkg-query: {}", text(&o.stderr));
    let mut s = text(&o.stdout);
    for p in [
        "/usr/bin/rvs",
        "/usr/sbin/rvsadm",
        "/sbin/ipvsadm",
        "/usr/sbin/ipvsadm",
        "/sbin/ipvsadm-save",
        "/sbin/ipvsadm-restore",
        "/etc/rvs",
        "/usr/lib/systemd/system/rvs.service",
        "/etc/systemd/system/multi-user.target.wants/rvs.service",
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/info/rvs.list",
        "/run/rvs",
        "/run/systemd/nspawn",
    ] {
        let m = std::fs::symlink_metadata(p).map(|m| (m.len(), m.modified().ok(), m.file_type()));
        s += &format!("{p}: {m:?}\n");
    }
    s
}

pub fn only(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{prefix}*{suffix} in {}: {found:?}",
        dir.display()
    );
    found[0].clone()
}

/// The packages of the binary of this test run.
pub struct Packed {
    /// The target folder of the packing (release/ and debian/ in it).
    pub stage: PathBuf,
    pub rvs_deb: PathBuf,
    pub ipvsadm_deb: PathBuf,
}

/// Packs the binary of this run with scripts/build-deb.sh, in a target folder of its own
/// (`name` below CARGO_TARGET_TMPDIR).
pub fn pack(name: &str) -> Packed {
    let stage = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("release")).unwrap();
    std::fs::copy(RVS, stage.join("release/rvs")).unwrap();
    let t = Instant::now();
    let o = run_bounded(
        Command::new(repo().join("scripts/build-deb.sh"))
            .arg("--no-build")
            .env("CARGO_TARGET_DIR", &stage),
        "",
        Duration::from_secs(600),
        "scripts/build-deb.sh --no-build",
    );
    assert!(
        o.status.success(),
        "build-deb.sh:\n{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    eprintln!("packed in {:?}:\n{}", t.elapsed(), text(&o.stdout));
    let debs = stage.join("debian");
    Packed {
        rvs_deb: only(&debs, "rvs_", ".deb"),
        ipvsadm_deb: only(&debs, "rvs-ipvsadm_", ".deb"),
        stage,
    }
}

/// Where commands run: `command` builds one; the rest is shared.
pub trait Shell {
    /// The command `argv` in this place, with a plain environment.
    fn command(&self, argv: &[&str]) -> Command;

    fn run_input(&self, argv: &[&str], input: &str) -> Output {
        let what = format!("`{}` in the throwaway root", argv.join(" "));
        run_bounded(
            &mut self.command(argv),
            input,
            Duration::from_secs(300),
            &what,
        )
    }

    fn run(&self, argv: &[&str]) -> Output {
        self.run_input(argv, "")
    }

    /// Runs `argv`, asserts that it succeeded, returns its standard output.
    fn ok(&self, argv: &[&str]) -> String {
        let o = self.run(argv);
        assert!(
            o.status.success(),
            "`{}` failed ({}):\n{}{}",
            argv.join(" "),
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn exists(&self, path: &str) -> bool {
        self.run(&["test", "-e", path]).status.success()
    }
}

/// `env -i` and a plain environment, then `argv`.
fn plain_env(c: &mut Command, argv: &[&str]) {
    c.args([
        "env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL=C",
    ])
    .args([
        "HOME=/root",
        "DEBIAN_FRONTEND=noninteractive",
        "MANWIDTH=100",
    ])
    .args(argv);
}

/// The throwaway root; dropping it ends the namespaces and removes its folder.
pub struct Root {
    shell: Child,
    work: PathBuf,
    pub root: PathBuf,
}

const SETUP: &str = r#"
set -euo pipefail
work=$1
extra=$2
shift 2
mount -t tmpfs -o mode=0755 rvs-deb-test "$work"
mkdir "$work/upper" "$work/ovl" "$work/root"
root=$work/root
for d in /*; do
	n=${d#/}
	if [ -L "$d" ]; then
		ln -s "$(readlink "$d")" "$root/$n"
	elif [ -d "$d" ]; then
		mkdir "$root/$n"
		case $n in
		usr | etc | var | opt)
			mkdir "$work/upper/$n" "$work/ovl/$n"
			mount -t overlay overlay \
				-o "lowerdir=$d,upperdir=$work/upper/$n,workdir=$work/ovl/$n" "$root/$n"
			;;
		esac
	fi
done
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755 run "$root/run"
mount -t tmpfs -o mode=1777 tmp "$root/tmp"
cp -- "$@" "$root/tmp/"
eval "$extra"
echo ready
read -r _ || true
"#;

impl Root {
    /// Builds the root in new namespaces, with `files` copied into its /tmp; then runs the
    /// shell commands `extra` in those namespaces (outside the root).
    pub fn start(work: PathBuf, files: &[&Path], extra: &str) -> Root {
        let _ = std::fs::remove_dir(&work);
        std::fs::create_dir(&work)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", work.display()));
        let mut shell = Command::new("unshare")
            .args(["--mount", "--net", "--propagation", "private", "--"])
            .args(["bash", "-c", SETUP, "rvs-deb-root"])
            .arg(&work)
            .arg(extra)
            .args(files)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start unshare: {e}"));
        let stdout = shell.stdout.take();
        let root = Root {
            shell,
            root: work.join("root"),
            work,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            if let Some(s) = stdout {
                let _ = BufReader::new(s).read_line(&mut line);
            }
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.trim() == "ready" => root,
            Ok(l) => panic!("the throwaway root was not set up (said {l:?}; its errors are above)"),
            Err(e) => panic!("the throwaway root was not set up within 60 s: {e}"),
        }
    }

    /// The command `argv` in the root's namespaces but not chrooted (host programs, seeing
    /// the root at `self.root`).
    pub fn outside(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.shell.id().to_string())
            .args(["--mount", "--net", "--"])
            .args(argv);
        c
    }
}

impl Shell for Root {
    /// The command `argv`, chrooted in the root and in its namespaces.
    fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.shell.id().to_string())
            .args(["--mount", "--net", "--", "chroot"])
            .arg(&self.root);
        plain_env(&mut c, argv);
        c
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = self.shell.kill();
        let _ = self.shell.wait();
        // The tmpfs went with the mount namespace: the folder is empty again.
        if let Err(e) = std::fs::remove_dir(&self.work) {
            eprintln!("cannot remove {}: {e}", self.work.display());
        }
    }
}

/// A systemd booted as PID 1 of a container (systemd-nspawn) on a throwaway root; dropping
/// it kills the container (SIGKILL to its PID 1 ends its whole PID namespace).
pub struct Booted {
    nspawn: Child,
    /// The container's PID 1, as the host sees it.
    pub init: u32,
    log: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Booted {
    /// Boots `root` (whose shell must have hidden the host's /run, where nspawn keeps its
    /// state; its /tmp goes) with its own network namespace, into `unit`; returns once
    /// `systemctl is-system-running` says running (or degraded), at most `limit`.
    pub fn boot(root: &Root, unit: &str, limit: Duration) -> Booted {
        let dir = root.root.to_str().unwrap().to_string();
        // nspawn mounts /dev, /proc, /run and /tmp itself, and wants them empty.
        let api: Vec<String> = ["dev", "proc", "run", "tmp"]
            .iter()
            .map(|d| format!("{dir}/{d}"))
            .collect();
        let mut umount = vec!["umount", "--recursive"];
        umount.extend(api.iter().map(String::as_str));
        let o = run_bounded(
            &mut root.outside(&umount),
            "",
            Duration::from_secs(30),
            "umount",
        );
        assert!(o.status.success(), "umount: {}", text(&o.stderr));
        let unit_arg = format!("systemd.unit={unit}");
        let mut nspawn = root
            .outside(&[
                "systemd-nspawn",
                "--quiet",
                "--boot",
                "--directory",
                &dir,
                "--machine",
                "rvs-systemd-test",
                "--private-network",
                "--register=no",
                "--keep-unit",
                "--link-journal=no",
                "--console=pipe",
                "--",
                &unit_arg,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start systemd-nspawn: {e}"));
        let out = drain(nspawn.stdout.take());
        let err = drain(nspawn.stderr.take());
        let log = Some(std::thread::spawn(move || {
            let mut v = out.join().unwrap_or_default();
            v.extend(err.join().unwrap_or_default());
            v
        }));
        let start = Instant::now();
        let mut b = Booted {
            nspawn,
            init: 0,
            log,
        };
        loop {
            if let Ok(Some(s)) = b.nspawn.try_wait() {
                panic!("systemd-nspawn exited ({s}):\n{}", b.log());
            }
            if b.init == 0 {
                b.init = container_init(b.nspawn.id()).unwrap_or(0);
            }
            if b.init != 0 {
                let o = b.run(&["systemctl", "is-system-running"]);
                let state = text(&o.stdout);
                if ["running", "degraded"].contains(&state.trim()) {
                    return b;
                }
                if start.elapsed() > limit {
                    let jobs = text(&b.run(&["systemctl", "list-jobs"]).stdout);
                    panic!("systemd did not finish booting within {limit:?} ({state}):\n{jobs}");
                }
            } else {
                assert!(
                    start.elapsed() < limit,
                    "no systemd in the container after {limit:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What systemd-nspawn printed; only once it has ended (see Drop).
    fn log(&mut self) -> String {
        self.log
            .take()
            .map(|h| text(&h.join().unwrap_or_default()))
            .unwrap_or_default()
    }
}

/// The process among the children and grandchildren of `pid` that is PID 1 of a PID
/// namespace of its own (its last NSpid is 1): the container's init.
fn container_init(pid: u32) -> Option<u32> {
    let children = |p: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect()
    };
    let first = children(pid);
    let second: Vec<u32> = first.iter().flat_map(|&c| children(c)).collect();
    first.into_iter().chain(second).find(|&c| {
        std::fs::read_to_string(format!("/proc/{c}/status")).is_ok_and(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|ids| ids.split_whitespace().last())
                == Some("1")
        })
    })
}

impl Shell for Booted {
    /// The command `argv` in the container: its mount, PID, UTS, IPC and network namespaces.
    fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.init.to_string())
            .args(["--mount", "--pid", "--uts", "--ipc", "--net", "--"]);
        plain_env(&mut c, argv);
        c
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        if self.init != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.init.to_string()])
                .status();
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        let _ = self.log();
    }
}
