//! Control-plane operations: what `ipvsadm` can ask of the kernel, as one enum that travels
//! over the admin socket, appears in simulator scripts and in tests.

use core::fmt;
use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::dest::DestConfig;
use crate::service::{ServiceConfig, ServiceKey};

/// The three timeouts `ipvsadm --set tcp tcpfin udp` changes, in seconds (0 = leave unchanged
/// when setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT.
    pub tcpfin: u32,
    /// UDP.
    pub udp: u32,
}

/// One control-plane operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `ipvsadm -A`.
    AddService(ServiceConfig),
    /// `ipvsadm -E` (a complete service: options not given take their defaults,
    /// kernel-semantics §8.3).
    EditService(ServiceConfig),
    /// `ipvsadm -D`.
    DelService(ServiceKey),
    /// `ipvsadm -C`: delete every service (connections stay until they expire,
    /// kernel-semantics §2.10).
    Flush,
    /// `ipvsadm -Z [service]`: zero counters of one service or of everything.
    Zero(Option<ServiceKey>),
    /// `ipvsadm -a`.
    AddDest(ServiceKey, DestConfig),
    /// `ipvsadm -e` (a complete real server, kernel-semantics §8.3).
    EditDest(ServiceKey, DestConfig),
    /// `ipvsadm -d`.
    DelDest(ServiceKey, IpAddr, u16),
    /// `ipvsadm --set tcp tcpfin udp`.
    SetTimeouts(Timeouts),
    /// `rvs sysctl net.ipv4.vs.NAME=VALUE` (name with or without the prefix).
    Sysctl(String, String),
}

/// Why a control-plane operation was refused. The `Display` text is what `ipvsadm` prints for
/// the kernel's errno (libipvs `ipvs_strerror`, kernel-semantics §8.8a).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdmError {
    /// EEXIST on add service.
    ServiceExists,
    /// ENOENT: unknown scheduler or persistence engine.
    NoScheduler,
    /// ESRCH on edit/delete/zero/list of a service.
    NoService,
    /// ESRCH on a real-server operation: the service does not exist.
    ServiceNotDefined,
    /// EEXIST on add real server.
    DestExists,
    /// ENOENT on edit/delete real server.
    NoDest,
    /// EINVAL, with the detail of what was invalid (not printed by ipvsadm).
    Invalid(String),
    /// ERANGE (negative weight, lower threshold above upper), with the detail.
    Range(String),
    /// EAFNOSUPPORT: mixed address families where only tunnels allow them.
    AddressFamily,
    /// A sysctl name or value was refused.
    Sysctl(String),
}

impl AdmError {
    /// The text ipvsadm prints.
    pub fn ipvsadm_message(&self) -> &str {
        match self {
            AdmError::ServiceExists => "Service already exists",
            AdmError::NoScheduler => "Scheduler or persistence engine not found",
            AdmError::NoService => "No such service",
            AdmError::ServiceNotDefined => "Service not defined",
            AdmError::DestExists => "Destination already exists",
            AdmError::NoDest => "No such destination",
            AdmError::Invalid(_) => {
                "Invalid operation.  Possibly wrong module version, address not unicast, ..."
            }
            AdmError::Range(_) => "Numerical result out of range",
            AdmError::AddressFamily => "Operation not supported with specified address family",
            AdmError::Sysctl(m) => m,
        }
    }
}

impl fmt::Display for AdmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdmError::Invalid(d) | AdmError::Range(d) => {
                write!(f, "{} ({d})", self.ipvsadm_message())
            }
            _ => f.write_str(self.ipvsadm_message()),
        }
    }
}

impl std::error::Error for AdmError {}
