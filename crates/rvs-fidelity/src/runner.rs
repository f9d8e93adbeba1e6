//! Running one scenario on each side: the kernel through `tests/kernel-vm/run.sh` (a VM), rvs
//! through `tests/fidelity/host-run.sh` (this machine's namespaces, the rvs daemon as the
//! director). Both write the same folder layout: `output.txt`, `files/NAME`, `run-info.txt`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where everything is, for one invocation of the suite.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The repository's root.
    pub root: PathBuf,
    /// The kernel VM harness, `tests/kernel-vm` (`KIPVS_DIR` overrides).
    pub kipvs: PathBuf,
    /// `tests/fidelity`.
    pub fidelity: PathBuf,
    /// The rvs binary.
    pub rvs_bin: PathBuf,
    /// Output root of this invocation (one folder per case below it).
    pub out: PathBuf,
    /// udpflow, built static (it also runs in the VM).
    pub udpflow: PathBuf,
    /// Run the kernel side and the rvs side of a case at the same time.
    pub parallel: bool,
    /// The rvs profile (`linux-5.16`, the one that claims to be the VM's 6.1 kernel; another
    /// one shows what the suite flags).
    pub profile: String,
}

/// The repository's root (this crate is `crates/rvs-fidelity`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// The kernel VM harness: `$KIPVS_DIR` when set, else the repository's own `tests/kernel-vm`.
pub fn kipvs_dir(root: &Path) -> Result<PathBuf, String> {
    let dir = match std::env::var_os("KIPVS_DIR") {
        Some(d) => PathBuf::from(d),
        None => root.join("tests/kernel-vm"),
    };
    if !dir.join("run.sh").is_file() {
        return Err(format!(
            "the kernel VM harness is missing: no run.sh in {}",
            dir.display()
        ));
    }
    Ok(dir.canonicalize().unwrap_or(dir))
}

/// The rvs binary: `$RVS_BIN`, else `cargo build -p rvs --bin rvs` in the profile of the
/// running executable (release when it runs from target/release), and that binary.
pub fn rvs_binary(root: &Path) -> Result<PathBuf, String> {
    if let Ok(b) = std::env::var("RVS_BIN") {
        return Ok(PathBuf::from(b));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let release = dir.file_name().is_some_and(|n| n == "release");
    let target = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--quiet",
            "-p",
            "rvs",
            "--bin",
            "rvs",
            "--target-dir",
        ])
        .arg(&target);
    if release {
        cmd.arg("--release");
    }
    let st = cmd
        .status()
        .map_err(|e| format!("cargo build -p rvs: {e}"))?;
    let bin = dir.join("rvs");
    if !st.success() {
        return Err(format!("cargo build -p rvs failed ({st})"));
    }
    if !bin.is_file() {
        return Err(format!(
            "no rvs binary at {} after the build",
            bin.display()
        ));
    }
    Ok(bin)
}

impl Setup {
    /// Finds the kernel VM harness, builds (or finds) rvs and the static udpflow; `out` is
    /// created.
    pub fn new(out: PathBuf, parallel: bool) -> Result<Setup, String> {
        let root = repo_root();
        let kipvs = kipvs_dir(&root)?;
        let fidelity = root.join("tests/fidelity");
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let out = out.canonicalize().map_err(|e| e.to_string())?;
        let rvs_bin = rvs_binary(&root)?;
        let udpflow = out.join("udpflow");
        let st = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&udpflow)
            .arg(fidelity.join("src/udpflow.c"))
            .status()
            .map_err(|e| format!("gcc (needed for the scenario helpers): {e}"))?;
        if !st.success() {
            return Err(format!("gcc -static udpflow.c failed ({st})"));
        }
        Ok(Setup {
            root,
            kipvs,
            fidelity,
            rvs_bin,
            out,
            udpflow,
            parallel,
            profile: "linux-5.16".into(),
        })
    }
}

/// Which side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideKind {
    /// The real kernel IPVS in the VM.
    Kernel,
    /// rvs on this machine.
    Rvs,
}

impl SideKind {
    /// `kernel` / `rvs`.
    pub fn name(self) -> &'static str {
        match self {
            SideKind::Kernel => "kernel",
            SideKind::Rvs => "rvs",
        }
    }
}

/// One side's run of a scenario.
#[derive(Clone, Debug)]
pub struct Side {
    /// Which side.
    pub kind: SideKind,
    /// Its output folder.
    pub dir: PathBuf,
    /// `output.txt`.
    pub output: String,
    /// `files/NAME` -> contents.
    pub files: BTreeMap<String, String>,
    /// The scenario's exit status (124: timed out; None: the runner failed).
    pub rc: Option<i32>,
    /// Wall time of the run.
    pub wall: Duration,
    /// The runner's own stderr (setup errors, VM boot).
    pub log: String,
}

impl Side {
    /// An emitted file, or "" when missing.
    pub fn file(&self, name: &str) -> &str {
        self.files.get(name).map(String::as_str).unwrap_or("")
    }
}

/// What a scenario needs to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The scenario file.
    pub scenario: PathBuf,
    /// `-e KEY=VAL` knobs (the same on both sides).
    pub env: Vec<(String, String)>,
    /// Copy udpflow into the scenario's folder.
    pub udpflow: bool,
    /// Give up after this long.
    pub timeout: Duration,
}

/// Runs `spec` on one side into `dir`.
pub fn run_side(setup: &Setup, spec: &RunSpec, kind: SideKind, dir: &Path) -> Side {
    let t0 = Instant::now();
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::create_dir_all(dir);
    let mut cmd = match kind {
        SideKind::Kernel => Command::new(setup.kipvs.join("run.sh")),
        SideKind::Rvs => {
            let mut c = Command::new(setup.fidelity.join("host-run.sh"));
            c.arg("--rvs")
                .arg(&setup.rvs_bin)
                .arg("--profile")
                .arg(&setup.profile);
            c
        }
    };
    cmd.arg("-q")
        .arg("-o")
        .arg(dir)
        .arg("-t")
        .arg(spec.timeout.as_secs().to_string());
    for (k, v) in &spec.env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    if spec.udpflow {
        cmd.arg("-f").arg(&setup.udpflow);
    }
    cmd.arg(&spec.scenario)
        .env("KIPVS_DIR", &setup.kipvs)
        .stdin(Stdio::null());
    let (rc, log) = match cmd.output() {
        Ok(o) => {
            let mut log = String::from_utf8_lossy(&o.stdout).to_string();
            log += &String::from_utf8_lossy(&o.stderr);
            (o.status.code(), log)
        }
        Err(e) => (
            None,
            format!("cannot start the {} runner: {e}", kind.name()),
        ),
    };
    let output = std::fs::read_to_string(dir.join("output.txt")).unwrap_or_default();
    let mut files = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("files")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                files.insert(e.file_name().to_string_lossy().to_string(), t);
            }
        }
    }
    let _ = std::fs::write(dir.join("runner.log"), &log);
    Side {
        kind,
        dir: dir.to_path_buf(),
        output,
        files,
        rc,
        wall: t0.elapsed(),
        log,
    }
}

/// Runs `spec` on both sides (at the same time when `setup.parallel`) into `dir/kernel` and
/// `dir/rvs`.
pub fn run_both(setup: &Setup, spec: &RunSpec, dir: &Path) -> (Side, Side) {
    let (kd, rd) = (dir.join("kernel"), dir.join("rvs"));
    if setup.parallel {
        std::thread::scope(|s| {
            let k = s.spawn(|| run_side(setup, spec, SideKind::Kernel, &kd));
            let r = run_side(setup, spec, SideKind::Rvs, &rd);
            (k.join().expect("kernel side thread"), r)
        })
    } else {
        let k = run_side(setup, spec, SideKind::Kernel, &kd);
        let r = run_side(setup, spec, SideKind::Rvs, &rd);
        (k, r)
    }
}

/// Why the kernel side cannot run here, if it obviously cannot (the runner installs qemu
/// and friends itself with apt-get; this only catches a missing harness or no root).
pub fn vm_unavailable(root: &Path) -> Option<String> {
    if let Err(e) = kipvs_dir(root) {
        return Some(e);
    }
    if !is_root() {
        return Some(
            "not running as root (run.sh installs packages and boots QEMU as root)".into(),
        );
    }
    None
}

/// Why the rvs side cannot run here (root, /dev/net/tun, ip, unshare, gcc).
pub fn host_unavailable() -> Option<String> {
    if !is_root() {
        return Some("not running as root (network namespaces and TUN need it)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    for t in ["ip", "unshare", "gcc", "ss"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{t}` is missing"));
        }
    }
    None
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
