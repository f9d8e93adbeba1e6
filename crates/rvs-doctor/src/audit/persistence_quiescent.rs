//! `persistence-quiescent-template` (worst `critical`): session affinity that follows a
//! draining pod.
//!
//! Looks for: persistent services in `/proc/net/ip_vs` while `expire_quiescent_template=0`:
//! `critical` when a weight-0 real server of such a service still has connections or
//! persistence templates (counted in `/proc/net/ip_vs_conn`), `warning` otherwise; `ok` with
//! `expire_quiescent_template != 0` or no persistent service. The persistence timeout is
//! printed in jiffies and converted with `CONFIG_HZ` from `/boot/config-<release>`, or an
//! assumed HZ=250.
//!
//! Why: templates stay valid for a weight-0 server unless `expire_quiescent_template=1`, and
//! each new connection through a template refreshes it, so a client with affinity keeps going
//! to a draining pod for up to the persistence timeout (sessionAffinity ClientIP: 10800 s) and
//! the server never drains: kubernetes#71809, fixed in kube-proxy by kubernetes#71834
//! (`net/netfilter/ipvs/ip_vs_conn.c: ip_vs_check_template`;
//! `Documentation/networking/ipvs-sysctl.rst`: `expire_quiescent_template`;
//! `docs/kernel-semantics.md` §5.3, §5.6, P8).
//!
//! Fix: `sysctl -w net.ipv4.vs.expire_quiescent_template=1`, persisted in `/etc/sysctl.d/`
//! (kube-proxy in IPVS mode sets it).

use super::{
    ASSUMED_HZ, Ctx, DisplayInput, dest_is_zero, entries_for, finding, ids, input_ev, refs,
    service_label, sysctl_ev,
};
use crate::procfs::{ConnEntry, Service};
use crate::report::{Finding, Severity};
use crate::tree::{self, Input, display};

/// `persistent 75000` → "75000 jiffies = 300 s at HZ=250 (…)".
fn persistence_text(ctx: &Ctx, jiffies: u64) -> String {
    let (hz, how) = match &ctx.tree.config_hz {
        Some((hz, src)) => (*hz, format!("CONFIG_HZ={hz} from {src}")),
        None => (
            ASSUMED_HZ,
            format!("HZ={ASSUMED_HZ} (assumed: no /boot/config-<release> with CONFIG_HZ)"),
        ),
    };
    let secs = jiffies as f64 / f64::from(hz.max(1));
    format!("{jiffies} jiffies = {secs:.0} s at {how}")
}

pub(super) fn persistence_quiescent(ctx: &Ctx) -> Finding {
    let t = ctx.tree;
    let eqt = &t.vs.expire_quiescent_template;
    let mut ev = vec![sysctl_ev("expire_quiescent_template", eqt)];
    let r = refs(&[
        "kubernetes#71809",
        "kubernetes#71834",
        "net/netfilter/ipvs/ip_vs_conn.c: ip_vs_check_template",
        "Documentation/networking/ipvs-sysctl.rst: expire_quiescent_template",
    ]);
    let why = "Persistence templates stay valid for a weight-0 real server unless \
        expire_quiescent_template=1, and each new connection through a template refreshes it, so \
        a client with session affinity keeps being sent to a draining pod for up to the \
        persistence timeout (Kubernetes sessionAffinity ClientIP defaults to 10800 s) and the \
        server never drains; after the pod is gone its connections fail. kubernetes#71809 (\"all \
        communications to the service stopped working\") was fixed in kube-proxy by setting it \
        to 1 (PR #71834). conn_reuse_mode never reschedules connections controlled by a template.";
    let persistent: Vec<&Service> = match &t.ip_vs {
        Input::Present(tab) => tab
            .services
            .iter()
            .filter(|s| s.persistent.is_some())
            .collect(),
        _ => Vec::new(),
    };
    for svc in &persistent {
        if let Some(p) = svc.persistent {
            ev.push(format!(
                "{}: {} persistent {} {:08X}: {}",
                display(tree::IP_VS),
                service_label(svc),
                p.timeout_jiffies,
                p.netmask,
                persistence_text(ctx, p.timeout_jiffies)
            ));
        }
    }
    // weight-0 servers of persistent services that still hold connections or templates
    let conns: &[ConnEntry] = t.ip_vs_conn.value().map(Vec::as_slice).unwrap_or(&[]);
    let mut stuck = Vec::new();
    for svc in &persistent {
        for d in svc.dests.iter().filter(|d| dest_is_zero(d)) {
            let templates = entries_for(conns, svc, d)
                .filter(|c| c.is_template())
                .count();
            if d.active + d.inactive > 0 || templates > 0 {
                stuck.push(format!(
                    "{}: {} -> {} weight {}, ActiveConn {}, InActConn {}; {}: {templates} \
                     persistence template(s) point at it",
                    display(tree::IP_VS),
                    service_label(svc),
                    d.endpoint(),
                    d.weight,
                    d.active,
                    d.inactive,
                    display(tree::IP_VS_CONN)
                ));
            }
        }
    }
    let fix = "sysctl -w net.ipv4.vs.expire_quiescent_template=1 and persist it in \
               /etc/sysctl.d/ (kube-proxy in IPVS mode sets it).";
    match eqt.value() {
        Some(v) if *v != 0 => finding(
            ids::PERSISTENCE_QUIESCENT,
            Severity::Ok,
            format!("expire_quiescent_template={v}: templates of weight-0 servers are invalidated"),
            ev,
            why,
            "",
            r,
        ),
        Some(_) => {
            if t.ip_vs.value().is_none() {
                ev.push(input_ev(&display(tree::IP_VS), &t.ip_vs.as_ref_display()));
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Info,
                    "expire_quiescent_template=0; the services could not be read to see whether \
                     any is persistent",
                    ev,
                    why,
                    fix,
                    r,
                )
            } else if persistent.is_empty() {
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Ok,
                    "expire_quiescent_template=0, but no service is persistent",
                    ev,
                    why,
                    "Harmless today; set it to 1 before adding persistent services (session \
                     affinity).",
                    r,
                )
            } else if !stuck.is_empty() {
                ev.extend(stuck);
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Critical,
                    "Persistent services with expire_quiescent_template=0 and a weight-0 real \
                     server still in use: clients with affinity keep going to the draining pod",
                    ev,
                    why,
                    fix,
                    r,
                )
            } else {
                finding(
                    ids::PERSISTENCE_QUIESCENT,
                    Severity::Warning,
                    format!(
                        "{} persistent service(s) with expire_quiescent_template=0: clients with \
                         affinity will follow a draining pod",
                        persistent.len()
                    ),
                    ev,
                    why,
                    fix,
                    r,
                )
            }
        }
        None => finding(
            ids::PERSISTENCE_QUIESCENT,
            if persistent.is_empty() {
                Severity::Info
            } else {
                Severity::Warning
            },
            "expire_quiescent_template could not be read: cannot tell whether affinity clients \
             follow draining pods",
            ev,
            why,
            "Read it on the node: sysctl net.ipv4.vs.expire_quiescent_template.",
            r,
        ),
    }
}
