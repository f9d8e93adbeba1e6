//! `weight0-kept-alive` (worst `critical`): weight-0 real servers that never drain.
//!
//! Looks for: weight-0 real servers in `/proc/net/ip_vs` with ActiveConn + InActConn > 0, and
//! their entries in `/proc/net/ip_vs_conn`. `critical` when `reuse-sticky-terminating` is
//! critical; `warning` when the entries carry the port-reuse signature (at least 10 entries
//! from at most 3 client addresses, or new connections at weight 0 on a non-persistent
//! service); `info` for what looks like a normal drain; `ok` when none holds connections.
//!
//! Why: kube-proxy's graceful termination deletes a weight-0 server only once its counts reach
//! 0 (re-checked every 60 s, no deadline). With `conn_reuse_mode=0` and no effective weight-0
//! reschedule, every SYN that reuses a client port of an old entry goes to the weight-0 server
//! and refreshes the entry, so the counts never reach 0: the kubernetes#81775 signature
//! (10 ActiveConn / 14048 InActConn on a weight-0 server; also #99162; kube-proxy's
//! `pkg/proxy/ipvs/graceful_termination.go`; on 6.1: `docs/kernel-6.1-incident.md`).
//!
//! Fix: make reuse safe first (`expire_nodest_conn=1` on a kernel with c95c07836fa4, or
//! `conn_reuse_mode=1` on 5.9+); to unblock a stuck rollout, delete the weight-0 real server by
//! hand (`ipvsadm -d -t VIP:PORT -r RS:PORT`).

use super::{
    Ctx, DisplayInput, dest_is_zero, entries_for, finding, ids, input_ev, refs, s, service_label,
    sysctl_ev,
};
use crate::procfs::ConnEntry;
use crate::report::{Finding, Severity};
use crate::tree::{self, Input, display};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub(super) fn weight0_kept_alive(ctx: &Ctx, sticky: Severity) -> Finding {
    let t = ctx.tree;
    let r = refs(&[
        "kubernetes#81775",
        "kubernetes#99162",
        "kubernetes pkg/proxy/ipvs/graceful_termination.go",
        "docs/kernel-6.1-incident.md (rvs repository)",
    ]);
    let why_base = "kube-proxy's graceful termination sets a removed endpoint's real server to \
        weight 0 and deletes it only once ActiveConn + InActConn reach 0 (re-checked every 60 s, \
        no deadline). Without port reuse that takes about 2 minutes for closed connections \
        (TIME_WAIT 120 s) and up to the ESTABLISHED timeout (900 s) for idle open ones. With \
        conn_reuse_mode=0 and no effective weight-0 reschedule, every SYN that reuses a client \
        port of an old entry goes to the weight-0 server and refreshes the entry, so the counts \
        never reach 0 and the traffic follows the pod after it is gone: the #81775 signature \
        (10 ActiveConn / 14048 InActConn on a weight-0 server).";
    let tab = match &t.ip_vs {
        Input::Present(tab) => tab,
        other => {
            return finding(
                ids::WEIGHT0_KEPT_ALIVE,
                Severity::Info,
                "Cannot look for weight-0 real servers: /proc/net/ip_vs was not readable",
                vec![input_ev(&display(tree::IP_VS), &other.as_ref_display())],
                why_base,
                "",
                r,
            );
        }
    };
    let conns = t.ip_vs_conn.value();
    let mut ev = Vec::new();
    let mut any = false;
    let mut signature = false;
    let mut zero_total = 0usize;
    for svc in &tab.services {
        for d in svc.dests.iter().filter(|d| dest_is_zero(d)) {
            zero_total += 1;
            if d.active + d.inactive == 0 {
                continue;
            }
            any = true;
            if ev.len() < 10 {
                ev.push(format!(
                    "{}: {} -> {} weight {}, ActiveConn {}, InActConn {}",
                    display(tree::IP_VS),
                    service_label(svc),
                    d.endpoint(),
                    d.weight,
                    d.active,
                    d.inactive
                ));
            }
            if let Some(conns) = conns {
                let mine: Vec<&ConnEntry> = entries_for(conns, svc, d)
                    .filter(|c| !c.is_template())
                    .collect();
                let clients: BTreeSet<IpAddr> = mine.iter().map(|c| c.caddr).collect();
                let mut states: BTreeMap<&str, usize> = BTreeMap::new();
                for c in &mine {
                    *states.entry(c.state.as_str()).or_default() += 1;
                }
                let new_conns = mine
                    .iter()
                    .filter(|c| matches!(c.state.as_str(), "SYN_RECV" | "SYNACK" | "SYN_SENT"))
                    .count();
                let few_clients_many_ports = mine.len() >= 10 && clients.len() <= 3;
                let here = few_clients_many_ports || (new_conns > 0 && svc.persistent.is_none());
                signature |= here;
                if ev.len() < 10 {
                    let st: Vec<String> = states.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    ev.push(format!(
                        "{}: {} entries to {} from {} client address(es) ({}){}",
                        display(tree::IP_VS_CONN),
                        mine.len(),
                        d.endpoint(),
                        clients.len(),
                        if st.is_empty() {
                            s("none")
                        } else {
                            st.join(", ")
                        },
                        if here {
                            " - port-reuse signature: few clients, many ports, or new \
                             connections arriving at weight 0"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
    }
    if conns.is_none() {
        ev.push(input_ev(
            &display(tree::IP_VS_CONN),
            &t.ip_vs_conn.as_ref_display(),
        ));
    }
    ev.push(sysctl_ev("conn_reuse_mode", &t.vs.conn_reuse_mode));
    ev.push(sysctl_ev("expire_nodest_conn", &t.vs.expire_nodest_conn));
    if !any {
        return finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Ok,
            if zero_total == 0 {
                s("No real server is at weight 0")
            } else {
                format!("{zero_total} weight-0 real server(s), none with connections left")
            },
            vec![format!(
                "{}: {} service(s), {zero_total} weight-0 real server(s) with no connections",
                display(tree::IP_VS),
                tab.services.len()
            )],
            why_base,
            "",
            r,
        );
    }
    let fix_sticky = "Make reuse safe first (reuse-sticky-terminating): expire_nodest_conn=1 \
        on a kernel with c95c07836fa4, or conn_reuse_mode=1 on 5.9+. To unblock a stuck \
        rollout now, delete the weight-0 real server by hand (ipvsadm -d -t VIP:PORT -r RS:PORT); \
        with expire_nodest_conn=1 its entries are expired and reused ports are rescheduled, at \
        the price of resetting its remaining connections.";
    if sticky >= Severity::Critical {
        finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Critical,
            "Weight-0 real servers still hold connections and this node's reuse settings keep \
             sending reused ports to them: they will not drain",
            ev,
            why_base,
            fix_sticky,
            r,
        )
    } else if signature {
        finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Warning,
            "Weight-0 real servers still hold connections with the port-reuse signature (few \
             clients, many entries, or new connections at weight 0)",
            ev,
            format!(
                "{why_base} Here the entries come from few client addresses or include new \
                 connections, which fits port reuse (or persistence) rather than a normal drain; \
                 a later snapshot that still shows them confirms it."
            ),
            fix_sticky,
            r,
        )
    } else {
        finding(
            ids::WEIGHT0_KEPT_ALIVE,
            Severity::Info,
            "Weight-0 real servers still hold connections: a drain in progress",
            ev,
            format!(
                "{why_base} Nothing here looks like port reuse; if the counts have not fallen \
                 after a few minutes, look again."
            ),
            "",
            r,
        )
    }
}
