//! End-to-end forwarding through `rvs daemon`: NAT, full NAT and tunnel, IPv4 and IPv6,
//! TCP and UDP, with real clients (curl, ab) and real servers in network namespaces.

mod common;

use common::*;

#[test]
fn nat_v4_tcp_curl_round_robin() {
    if skip("nat_v4_tcp_curl_round_robin") {
        return;
    }
    let _g = serial();
    let env = Env::start(
        "nt",
        3,
        80,
        "safe",
        &service("tcp", false, 80, "rr", "masq", &[1, 1, 1]),
    );
    let vip = Topology::vip(false);
    let names: Vec<String> = (0..6).map(|_| curl(&env, vip, 80)).collect();
    assert_eq!(
        names,
        ["rs3", "rs2", "rs1", "rs3", "rs2", "rs1"].map(String::from),
        "{}",
        env.log()
    );
}
