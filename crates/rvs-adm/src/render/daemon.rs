//! `ipvsadm -L --daemon`: one line per running sync daemon (rvs runs none, so the listing is
//! empty, exactly what ipvsadm prints when the kernel has no daemon).

use std::fmt::Write as _;

use crate::args::{DaemonConfig, DaemonState};

/// `master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848,
/// ttl=1)`, the optional parts only when set.
pub fn daemons(list: &[DaemonConfig]) -> String {
    let mut out = String::new();
    for d in list {
        let kind = match d.state {
            DaemonState::Master => "master",
            DaemonState::Backup => "backup",
        };
        let _ = write!(
            out,
            "{kind} sync daemon (mcast={}, syncid={}",
            d.mcast_ifn, d.syncid
        );
        if d.sync_maxlen != 0 {
            let _ = write!(out, ", maxlen={}", d.sync_maxlen);
        }
        if let Some(g) = d.mcast_group {
            let _ = write!(out, ", group={g}");
        }
        if d.mcast_port != 0 {
            let _ = write!(out, ", port={}", d.mcast_port);
        }
        if d.mcast_ttl != 0 {
            let _ = write!(out, ", ttl={}", d.mcast_ttl);
        }
        out.push_str(")\n");
    }
    out
}
