//! Reading a node's files, from `/` or from a captured tree (`--root DIR`).
//!
//! Every input is an [`Input`]: present (and parsed), missing (the file does not exist, which is
//! itself evidence: no `/proc/net/ip_vs` means IPVS is not loaded, no `conn_reuse_mode` means a
//! kernel older than 4.1), or in error (it exists but could not be read or parsed). Errors are
//! also collected in [`Tree::input_errors`], which makes the audit exit with
//! [`crate::EXIT_INPUT_ERROR`].

use crate::kube_proxy::KubeProxy;
use crate::procfs::{self, ConnEntry, IpvsTable, PortRange};
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};

/// `/proc/sys/kernel/osrelease`.
pub const OSRELEASE: &str = "proc/sys/kernel/osrelease";
/// `/proc/version`.
pub const PROC_VERSION: &str = "proc/version";
/// `/proc/version_signature` (Ubuntu only).
pub const VERSION_SIGNATURE: &str = "proc/version_signature";
/// The IPVS sysctl directory.
pub const VS_SYSCTL_DIR: &str = "proc/sys/net/ipv4/vs";
/// `/proc/sys/net/ipv4/ip_local_port_range`.
pub const PORT_RANGE: &str = "proc/sys/net/ipv4/ip_local_port_range";
/// `/proc/sys/net/ipv4/ip_local_reserved_ports`.
pub const RESERVED_PORTS: &str = "proc/sys/net/ipv4/ip_local_reserved_ports";
/// `/proc/sys/net/ipv4/tcp_tw_reuse`.
pub const TCP_TW_REUSE: &str = "proc/sys/net/ipv4/tcp_tw_reuse";
/// `/proc/net/ip_vs`.
pub const IP_VS: &str = "proc/net/ip_vs";
/// `/proc/net/ip_vs_conn`.
pub const IP_VS_CONN: &str = "proc/net/ip_vs_conn";

/// How an input was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "value", rename_all = "lowercase")]
pub enum Input<T> {
    /// Read and parsed.
    Present(T),
    /// The file does not exist.
    Missing,
    /// The file exists but could not be read or parsed; the message names the file.
    Error(String),
}

impl<T> Input<T> {
    /// The value, if present.
    pub fn value(&self) -> Option<&T> {
        match self {
            Input::Present(v) => Some(v),
            _ => None,
        }
    }

    /// True if missing.
    pub fn is_missing(&self) -> bool {
        matches!(self, Input::Missing)
    }
}

/// A file that exists but could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputError {
    /// The file, as a path inside the tree (e.g. `/proc/net/ip_vs`), or a host path for
    /// `--kube-proxy-config`.
    pub path: String,
    /// What went wrong.
    pub error: String,
}

/// Why a tree could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeError(pub String);

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TreeError {}

/// The IPVS sysctls the audit reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VsSysctls {
    /// `conn_reuse_mode`.
    pub conn_reuse_mode: Input<i64>,
    /// `conntrack`.
    pub conntrack: Input<i64>,
    /// `expire_nodest_conn`.
    pub expire_nodest_conn: Input<i64>,
    /// `expire_quiescent_template`.
    pub expire_quiescent_template: Input<i64>,
}

/// Everything read from one node (or captured tree).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tree {
    /// The root that was read (`/` for the live node).
    pub root: PathBuf,
    /// `/proc/sys/kernel/osrelease`.
    pub osrelease: Input<String>,
    /// `/proc/version`.
    pub proc_version: Input<String>,
    /// `/proc/version_signature`.
    pub version_signature: Input<String>,
    /// Whether `/proc/sys/net/ipv4/vs/` exists.
    pub vs_sysctl_dir: bool,
    /// The IPVS sysctls.
    pub vs: VsSysctls,
    /// `ip_local_port_range`.
    pub port_range: Input<PortRange>,
    /// `ip_local_reserved_ports`.
    pub reserved_ports: Input<Vec<(u32, u32)>>,
    /// `tcp_tw_reuse`.
    pub tcp_tw_reuse: Input<i64>,
    /// `/proc/net/ip_vs`.
    pub ip_vs: Input<IpvsTable>,
    /// `/proc/net/ip_vs_conn`.
    pub ip_vs_conn: Input<Vec<ConnEntry>>,
    /// `CONFIG_HZ` and the file it came from (`/boot/config-<release>`), if found.
    pub config_hz: Option<(u32, String)>,
    /// kube-proxy settings given on the command line, if any.
    pub kube_proxy: Option<KubeProxy>,
    /// Files that exist but could not be read or parsed.
    pub input_errors: Vec<InputError>,
}

/// `proc/net/ip_vs` → `/proc/net/ip_vs`.
pub fn display(rel: &str) -> String {
    format!("/{rel}")
}

struct Reader<'a> {
    root: &'a Path,
    errors: Vec<InputError>,
}

impl Reader<'_> {
    fn raw(&mut self, rel: &str) -> Input<String> {
        let path = self.root.join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => Input::Present(s),
                Err(_) => self.fail(rel, "the file is not valid UTF-8 text".into()),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Input::Missing,
            Err(e) => self.fail(rel, format!("cannot read: {e}")),
        }
    }

    fn parsed<T>(&mut self, rel: &str, parse: impl Fn(&str) -> Result<T, String>) -> Input<T> {
        match self.raw(rel) {
            Input::Present(s) => match parse(&s) {
                Ok(v) => Input::Present(v),
                Err(e) => self.fail(rel, format!("cannot parse: {e}")),
            },
            Input::Missing => Input::Missing,
            Input::Error(e) => Input::Error(e),
        }
    }

    fn fail<T>(&mut self, rel: &str, error: String) -> Input<T> {
        let path = display(rel);
        let msg = format!("{path}: {error}");
        self.errors.push(InputError { path, error });
        Input::Error(msg)
    }
}

impl Tree {
    /// Reads the tree under `root` (`/` for the live node). Nothing is written.
    ///
    /// Fails only if `root` is not a readable directory with a `proc` directory in it; missing
    /// or broken files inside are recorded in the returned tree.
    pub fn load(root: &Path) -> Result<Tree, TreeError> {
        let meta = std::fs::metadata(root)
            .map_err(|e| TreeError(format!("cannot read --root {}: {e}", root.display())))?;
        if !meta.is_dir() {
            return Err(TreeError(format!(
                "--root {} is not a directory",
                root.display()
            )));
        }
        let proc_dir = root.join("proc");
        match std::fs::metadata(&proc_dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(TreeError(format!(
                    "{} is not a directory: --root must point at a captured root with proc/ in it",
                    proc_dir.display()
                )));
            }
            Err(e) => {
                return Err(TreeError(format!(
                    "cannot read {}: {e} (--root must point at a captured root with proc/ in it)",
                    proc_dir.display()
                )));
            }
        }

        let mut r = Reader {
            root,
            errors: Vec::new(),
        };
        let trimmed = |s: &str| -> Result<String, String> {
            let t = s.trim();
            if t.is_empty() {
                Err("the file is empty".into())
            } else {
                Ok(t.to_string())
            }
        };
        let osrelease = r.parsed(OSRELEASE, trimmed);
        let proc_version = r.parsed(PROC_VERSION, trimmed);
        let version_signature = r.parsed(VERSION_SIGNATURE, trimmed);
        let vs_sysctl_dir = root.join(VS_SYSCTL_DIR).is_dir();
        let vs_file = |name: &str| format!("{VS_SYSCTL_DIR}/{name}");
        let vs = VsSysctls {
            conn_reuse_mode: r.parsed(&vs_file("conn_reuse_mode"), procfs::parse_int),
            conntrack: r.parsed(&vs_file("conntrack"), procfs::parse_int),
            expire_nodest_conn: r.parsed(&vs_file("expire_nodest_conn"), procfs::parse_int),
            expire_quiescent_template: r
                .parsed(&vs_file("expire_quiescent_template"), procfs::parse_int),
        };
        let port_range = r.parsed(PORT_RANGE, procfs::parse_port_range);
        let reserved_ports = r.parsed(RESERVED_PORTS, procfs::parse_reserved_ports);
        let tcp_tw_reuse = r.parsed(TCP_TW_REUSE, procfs::parse_int);
        let ip_vs = r.parsed(IP_VS, procfs::parse_ip_vs);
        let ip_vs_conn = r.parsed(IP_VS_CONN, procfs::parse_ip_vs_conn);

        let config_hz = osrelease.value().and_then(|rel| {
            let p = format!("boot/config-{rel}");
            std::fs::read_to_string(root.join(&p))
                .ok()
                .and_then(|t| procfs::parse_config_hz(&t))
                .map(|hz| (hz, display(&p)))
        });

        Ok(Tree {
            root: root.to_path_buf(),
            osrelease,
            proc_version,
            version_signature,
            vs_sysctl_dir,
            vs,
            port_range,
            reserved_ports,
            tcp_tw_reuse,
            ip_vs,
            ip_vs_conn,
            config_hz,
            kube_proxy: None,
            input_errors: r.errors,
        })
    }

    /// True when there is any sign of IPVS: `/proc/net/ip_vs` or the IPVS sysctl directory.
    pub fn ipvs_present(&self) -> bool {
        !self.ip_vs.is_missing() || self.vs_sysctl_dir
    }
}
