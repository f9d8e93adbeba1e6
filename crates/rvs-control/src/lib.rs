//! # rvs-control: the admin protocol and the config file
//!
//! * [`proto`]: the requests `rvs adm`, `rvs sysctl` and the HTTP endpoint send to the daemon
//!   and its responses (serde), framed as JSON lines over a Unix stream socket (default
//!   [`proto::DEFAULT_SOCKET`], mode 0600, created by the daemon).
//! * [`client`]: a blocking client with clear errors when the daemon is not running or the
//!   socket is not ours to open, and [`client::AdmBackend`], `rvs_adm::Backend` over it.
//! * [`config`]: the TOML config file: schema, whole-file validation with errors that name
//!   the file, line and field, and [`config::diff`] from a running engine to the file.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod proto;

pub use client::{AdmBackend, Client, ClientError};
pub use config::{Config, ConfigError};
pub use proto::{DataplaneStats, Request, Response, StateView};
