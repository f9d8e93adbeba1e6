//! Persistence templates (kernel-semantics §5): how a template is keyed.

use core::net::IpAddr;

use crate::addr::{Netmask, mask};
use crate::service::ServiceKey;

/// The FTP control port, which changes how templates are keyed (kernel-semantics §5.2).
pub const FTPPORT: u16 = 21;

/// The key of a template (kernel-semantics §5.2): protocol (0 = `IP` for fwmark services when the
/// packet is not for the service port), masked client address, virtual address (or the mark), port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateKey {
    /// Protocol number of the template.
    pub proto: u8,
    /// Client network (client address under the service netmask).
    pub caddr: IpAddr,
    /// Virtual address, or `None` for the fwmark case (the mark is stored instead).
    pub vaddr: Option<IpAddr>,
    /// The mark, for the fwmark case.
    pub mark: u32,
    /// Virtual port.
    pub vport: u16,
    /// The template's real-server port: the dest port when `dport == svc_port` and the service
    /// is not FTP, else 0.
    pub use_dest_port: bool,
}

/// The kernel's template key construction in `ip_vs_sched_persist`.
pub fn template_key(
    svc: &ServiceKey,
    netmask: Netmask,
    proto: u8,
    saddr: IpAddr,
    daddr: IpAddr,
    dport: u16,
    mark: u32,
) -> TemplateKey {
    let snet = mask(saddr, netmask);
    let svc_port = svc.port();
    if dport == svc_port {
        if svc_port != FTPPORT {
            TemplateKey {
                proto,
                caddr: snet,
                vaddr: Some(daddr),
                mark: 0,
                vport: dport,
                use_dest_port: true,
            }
        } else {
            TemplateKey {
                proto,
                caddr: snet,
                vaddr: Some(daddr),
                mark: 0,
                vport: 0,
                use_dest_port: false,
            }
        }
    } else {
        match svc {
            ServiceKey::Fwmark { .. } => TemplateKey {
                proto: 0,
                caddr: snet,
                vaddr: None,
                mark,
                vport: 0,
                use_dest_port: false,
            },
            ServiceKey::Addr { .. } => TemplateKey {
                proto,
                caddr: snet,
                vaddr: Some(daddr),
                mark: 0,
                vport: 0,
                use_dest_port: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Protocol;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The four rows of kernel-semantics §5.2's table.
    #[test]
    fn template_keys_spec_5_2() {
        let svc = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: ip("10.0.0.1"),
            port: 80,
        };
        let k = template_key(
            &svc,
            Netmask::V4(0xffffff00),
            6,
            ip("10.1.2.3"),
            ip("10.0.0.1"),
            80,
            0,
        );
        assert_eq!(
            (k.caddr, k.vport, k.use_dest_port, k.proto),
            (ip("10.1.2.0"), 80, true, 6)
        );

        let ftp = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: ip("10.0.0.1"),
            port: 21,
        };
        let k = template_key(
            &ftp,
            Netmask::full(false),
            6,
            ip("10.1.2.3"),
            ip("10.0.0.1"),
            21,
            0,
        );
        assert_eq!((k.vport, k.use_dest_port), (0, false));

        let zero = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: ip("10.0.0.1"),
            port: 0,
        };
        let k = template_key(
            &zero,
            Netmask::full(false),
            6,
            ip("10.1.2.3"),
            ip("10.0.0.1"),
            443,
            0,
        );
        assert_eq!((k.vport, k.vaddr), (0, Some(ip("10.0.0.1"))));

        let fw = ServiceKey::Fwmark { v6: false, mark: 7 };
        let k = template_key(
            &fw,
            Netmask::full(false),
            17,
            ip("10.1.2.3"),
            ip("10.0.0.1"),
            53,
            7,
        );
        assert_eq!((k.proto, k.vaddr, k.mark, k.vport), (0, None, 7, 0));
    }
}
