//! `port-reuse-rate` (worst `warning`): the connection rate at which client ports get reused.
//!
//! Looks for: P usable source ports (`ip_local_port_range`, kernel default 32768-60999 when
//! missing, minus `ip_local_reserved_ports`) and `tcp_tw_reuse`, giving the reuse threshold
//! P / 120 s per client and VIP:port (IPVS TIME_WAIT is a fixed 120 s), P / 240 s for clients
//! that prefer one port parity (Linux since 07f4c90062f8, `net/ipv4/inet_hashtables.c:
//! __inet_hash_connect`; seen on 6.1 in `docs/kernel-6.1-incident.md`), and the client's own
//! cap P / 60 s; and the busiest observed (client, VIP:port) from the closing TCP entries of
//! `/proc/net/ip_vs_conn`. `warning` when the busiest client is at or above P / 240 s and the
//! reuse handling (the worse of `reuse-sticky-terminating` and `reuse-syn-drop-stall`) is a
//! warning or worse; `info` otherwise.
//!
//! Why: above the threshold every new connection reuses a port IPVS still holds, and is handled
//! per `conn_reuse_mode` (kubernetes#81775; `net/netfilter/ipvs/ip_vs_proto_tcp.c: tcp_timeouts`,
//! `net/netfilter/ipvs/ip_vs_core.c: is_new_conn_expected`; `docs/kernel-semantics.md` §2.4,
//! §3.1.1).
//!
//! Fix (warning only): make port reuse harmless (the reuse findings), and reduce churn:
//! keep-alive or connection pooling in the client, or a wider `ip_local_port_range` on the
//! clients.

use super::{
    CLIENT_TIME_WAIT_S, Ctx, DEFAULT_PORT_RANGE, DisplayInput, IPVS_TIME_WAIT_S, finding, ids,
    input_ev, refs, s,
};
use crate::procfs::VAddr;
use crate::report::{Finding, Severity};
use crate::tree::{self, Input, display};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A rate for humans: no false "0 conn/s" for small ranges.
fn rate(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else if x >= 0.01 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

pub(super) fn port_reuse_rate(ctx: &Ctx, reuse_handling: Severity) -> Finding {
    let t = ctx.tree;
    let mut ev = Vec::new();
    let (low, high, assumed) = match &t.port_range {
        Input::Present(r) => (r.low, r.high, false),
        _ => (DEFAULT_PORT_RANGE.0, DEFAULT_PORT_RANGE.1, true),
    };
    if assumed {
        ev.push(format!(
            "{} (kernel default {low}-{high} assumed)",
            input_ev(&display(tree::PORT_RANGE), &t.port_range.as_ref_display())
        ));
    } else {
        ev.push(format!(
            "{}: {low} {high} ({} ports)",
            display(tree::PORT_RANGE),
            high - low + 1
        ));
    }
    let mut ports = high - low + 1;
    if let Input::Present(res) = &t.reserved_ports {
        let reserved: u32 = res
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (a.max(low), b.min(high));
                if a <= b { b - a + 1 } else { 0 }
            })
            .sum();
        if reserved > 0 {
            ports = ports.saturating_sub(reserved).max(1);
            ev.push(format!(
                "{}: {reserved} reserved port(s) inside the range",
                display(tree::RESERVED_PORTS)
            ));
        }
    }
    let tw = t.tcp_tw_reuse.value().copied();
    ev.push(input_ev(&display(tree::TCP_TW_REUSE), &t.tcp_tw_reuse));
    let p = f64::from(ports);
    let threshold = p / IPVS_TIME_WAIT_S;
    let parity = p / (2.0 * IPVS_TIME_WAIT_S);
    let client_cap = p / CLIENT_TIME_WAIT_S;
    let (th_s, par_s, cap_s) = (rate(threshold), rate(parity), rate(client_cap));

    // Observed: closing TCP entries per (client, VIP:port), over their 120 s lifetime.
    let mut observed: Option<(f64, String)> = None;
    match &t.ip_vs_conn {
        Input::Present(conns) => {
            let mut per: BTreeMap<(IpAddr, IpAddr, u16), usize> = BTreeMap::new();
            for c in conns.iter().filter(|c| c.is_tcp_closing()) {
                *per.entry((c.caddr, c.vaddr, c.vport)).or_default() += 1;
            }
            let mut top: Vec<_> = per.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            if top.is_empty() {
                ev.push(format!(
                    "{}: no TCP entries in TIME_WAIT/FIN_WAIT/CLOSE: no observed connection \
                     churn",
                    display(tree::IP_VS_CONN)
                ));
            }
            for ((ca, va, vp), n) in top.iter().take(3) {
                let r = *n as f64 / IPVS_TIME_WAIT_S;
                let pct = 100.0 * r / threshold;
                let pct = if pct < 1.0 {
                    s("<1%")
                } else {
                    format!("{pct:.0}%")
                };
                ev.push(format!(
                    "{}: client {ca} -> {}: {n} closing entries ~ {} conn/s ({pct} of the \
                     reuse threshold)",
                    display(tree::IP_VS_CONN),
                    VAddr::Addr(*va, *vp),
                    rate(r),
                ));
            }
            if let Some(((ca, va, vp), n)) = top.first() {
                observed = Some((
                    *n as f64 / IPVS_TIME_WAIT_S,
                    format!("{ca} -> {}", VAddr::Addr(*va, *vp)),
                ));
            }
        }
        other => ev.push(input_ev(
            &display(tree::IP_VS_CONN),
            &other.as_ref_display(),
        )),
    }

    let tw_text = match tw {
        Some(1) => format!(
            "tcp_tw_reuse=1 lets a client reuse its own TIME_WAIT ports after about 1 s, so a \
             client on this node can go far past that rate (up to ~{} conn/s) and collide \
             with IPVS entries.",
            rate(p)
        ),
        Some(2) => format!(
            "tcp_tw_reuse=2 allows early reuse for loopback only; a client on this node is \
             otherwise held by its own 60 s TIME_WAIT to about {cap_s} conn/s per VIP:port, \
             which is still above {th_s}: between the two rates the client reuses ports \
             that IPVS still holds."
        ),
        _ => format!(
            "Without tcp_tw_reuse a client is held by its own 60 s TIME_WAIT to about \
             {cap_s} conn/s per VIP:port (P/60 s), which is still above {th_s} \
             (P/120 s): between the two rates the client reuses ports that IPVS still holds."
        ),
    };
    let why = format!(
        "IPVS keeps a closed NAT connection in TIME_WAIT for a fixed 120 s (ipvsadm --set and \
         kube-proxy's tcpFinTimeout change FIN_WAIT, not TIME_WAIT). A client that opens more \
         than P / 120 s connections per second to one VIP:port, with P = {ports} usable source \
         ports, must pick a port whose previous entry is still in the table: from about \
         {th_s} conn/s every new connection is a port reuse, handled per conn_reuse_mode \
         (reuse-sticky-terminating, reuse-syn-drop-stall). Clients that prefer one port parity in \
         connect() (Linux since 07f4c90062f8: even ports first) can start reusing at about half that, \
         {par_s} conn/s. {tw_text} The range and tcp_tw_reuse read here are this node's: \
         pods have their own network namespace and sysctls, remote clients their own range, and \
         clients behind one SNAT address count as one client. The observed rate is estimated \
         from closing entries, which live about 120 s."
    );
    let (sev, title) = match &observed {
        Some((r, who)) if *r >= parity => (
            if reuse_handling >= Severity::Warning {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!(
                "Client port reuse is likely now: {who} runs at ~{} conn/s, the threshold \
                 is ~{th_s} conn/s ({ports} ports / 120 s)",
                rate(*r)
            ),
        ),
        Some((r, who)) => (
            Severity::Info,
            format!(
                "Port reuse begins at ~{th_s} conn/s per client and VIP:port ({ports} \
                 ports / 120 s); busiest observed: {who} at ~{} conn/s",
                rate(*r)
            ),
        ),
        None => (
            Severity::Info,
            format!(
                "Port reuse begins at ~{th_s} conn/s per client and VIP:port ({ports} \
                 ports / 120 s)"
            ),
        ),
    };
    finding(
        ids::PORT_REUSE_RATE,
        sev,
        title,
        ev,
        why,
        if sev == Severity::Warning {
            "Make port reuse harmless before the next rollout (see the reuse findings above), \
             and reduce churn: keep-alive or connection pooling in the client, or a wider \
             ip_local_port_range on the clients."
        } else {
            ""
        },
        refs(&[
            "net/netfilter/ipvs/ip_vs_proto_tcp.c: tcp_timeouts",
            "net/netfilter/ipvs/ip_vs_core.c: is_new_conn_expected",
            "net/ipv4/inet_hashtables.c: __inet_hash_connect",
            "07f4c90062f8",
            "kubernetes#81775",
        ]),
    )
}
