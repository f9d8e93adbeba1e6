//! `ipvsadm -L --timeout`.

use rvs_core::command::Timeouts;

/// `Timeout (tcp tcpfin udp): 900 120 300`.
pub fn timeout(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcpfin as i32, t.udp as i32
    )
}
