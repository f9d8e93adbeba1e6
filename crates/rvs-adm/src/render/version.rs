//! `ipvsadm -v`.

/// The version line: ipvsadm reports the IPVS version of the headers it was built with.
pub fn version() -> String {
    "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n".to_string()
}
