//! Name resolution as ipvsadm does it, behind a trait so tests and daemons can inject their own
//! databases.
//!
//! ipvsadm resolves host names with `gethostbyname` (IPv4 only), addresses with
//! `gethostbyaddr`, and ports with `getservbyname`/`getservbyport` for the service's protocol
//! (`tcp`, `udp`, `sctp`; fwmark services have no protocol, so their ports stay numeric).
//! [`SystemResolver`] reads `/etc/hosts` and `/etc/services` and never asks DNS.

use core::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rvs_core::service::Protocol;

/// The four lookups ipvsadm makes.
pub trait Resolver {
    /// `gethostbyname`: the first IPv4 address of a host name.
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr>;
    /// `gethostbyaddr`: the canonical name of an address.
    fn addr_to_host(&self, addr: IpAddr) -> Option<String>;
    /// `getservbyname(name, proto)`.
    fn service_to_port(&self, name: &str, proto: Protocol) -> Option<u16>;
    /// `getservbyport(port, proto)`: the official service name.
    fn port_to_service(&self, port: u16, proto: Protocol) -> Option<String>;
}

/// One `/etc/hosts` line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostEntry {
    addr: IpAddr,
    names: Vec<String>,
}

/// One `/etc/services` line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ServEntry {
    port: u16,
    proto: String,
    names: Vec<String>,
}

/// A resolver over in-memory `hosts` and `services` databases, in file order (first match
/// wins, as in glibc's `files` backend).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticResolver {
    hosts: Vec<HostEntry>,
    services: Vec<ServEntry>,
}

impl StaticResolver {
    /// A resolver that knows no names: everything stays numeric.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds a hosts entry (canonical name first, then aliases).
    pub fn host(mut self, addr: IpAddr, names: &[&str]) -> Self {
        self.hosts.push(HostEntry {
            addr,
            names: names.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Adds a services entry (`name port/proto aliases...`); `proto` is `tcp`, `udp` or `sctp`.
    pub fn service(mut self, name: &str, port: u16, proto: &str, aliases: &[&str]) -> Self {
        let mut names = vec![name.to_string()];
        names.extend(aliases.iter().map(|s| s.to_string()));
        self.services.push(ServEntry {
            port,
            proto: proto.to_string(),
            names,
        });
        self
    }

    /// Parses the text of an `/etc/hosts` file and adds its entries.
    pub fn with_hosts_text(mut self, text: &str) -> Self {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut it = line.split_whitespace();
            let Some(addr) = it.next() else { continue };
            let Ok(addr) = addr.parse::<IpAddr>() else {
                continue;
            };
            let names: Vec<String> = it.map(str::to_string).collect();
            if !names.is_empty() {
                self.hosts.push(HostEntry { addr, names });
            }
        }
        self
    }

    /// Parses the text of an `/etc/services` file and adds its entries.
    pub fn with_services_text(mut self, text: &str) -> Self {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut it = line.split_whitespace();
            let (Some(name), Some(pp)) = (it.next(), it.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let mut names = vec![name.to_string()];
            names.extend(it.map(str::to_string));
            self.services.push(ServEntry {
                port,
                proto: proto.to_string(),
                names,
            });
        }
        self
    }
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

impl Resolver for StaticResolver {
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.iter().find_map(|h| match h.addr {
            IpAddr::V4(a) if h.names.iter().any(|n| n.eq_ignore_ascii_case(name)) => Some(a),
            _ => None,
        })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        self.hosts
            .iter()
            .find(|h| h.addr == addr)
            .and_then(|h| h.names.first().cloned())
    }

    fn service_to_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        let p = proto_name(proto);
        self.services
            .iter()
            .find(|s| s.proto == p && s.names.iter().any(|n| n == name))
            .map(|s| s.port)
    }

    fn port_to_service(&self, port: u16, proto: Protocol) -> Option<String> {
        let p = proto_name(proto);
        self.services
            .iter()
            .find(|s| s.proto == p && s.port == port)
            .and_then(|s| s.names.first().cloned())
    }
}

/// The default resolver: `/etc/hosts` and `/etc/services`, read once, no DNS.
#[derive(Clone, Debug, Default)]
pub struct SystemResolver(StaticResolver);

impl SystemResolver {
    /// Reads `/etc/hosts` and `/etc/services` (a missing file counts as empty).
    pub fn load() -> Self {
        Self::from_files(Path::new("/etc/hosts"), Path::new("/etc/services"))
    }

    /// Reads the given hosts and services files (a missing file counts as empty).
    pub fn from_files(hosts: &Path, services: &Path) -> Self {
        let h = std::fs::read_to_string(hosts).unwrap_or_default();
        let s = std::fs::read_to_string(services).unwrap_or_default();
        SystemResolver(
            StaticResolver::empty()
                .with_hosts_text(&h)
                .with_services_text(&s),
        )
    }
}

impl Resolver for SystemResolver {
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr> {
        self.0.host_to_addr(name)
    }
    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        self.0.addr_to_host(addr)
    }
    fn service_to_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        self.0.service_to_port(name, proto)
    }
    fn port_to_service(&self, port: u16, proto: Protocol) -> Option<String> {
        self.0.port_to_service(port, proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_backend_first_match() {
        let r = StaticResolver::empty()
            .with_hosts_text("127.0.0.1 localhost\n10.0.0.1 web www # c\n::1 localhost6\n")
            .with_services_text("http 80/tcp www\nhttp 80/udp\ndomain 53/udp\n");
        assert_eq!(r.host_to_addr("WWW"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(r.host_to_addr("localhost6"), None);
        assert_eq!(
            r.addr_to_host("10.0.0.1".parse().unwrap()).as_deref(),
            Some("web")
        );
        assert_eq!(r.service_to_port("www", Protocol::Tcp), Some(80));
        assert_eq!(r.service_to_port("domain", Protocol::Tcp), None);
        assert_eq!(
            r.port_to_service(53, Protocol::Udp).as_deref(),
            Some("domain")
        );
    }
}
