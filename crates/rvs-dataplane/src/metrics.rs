//! The HTTP admin endpoint: `/metrics` (Prometheus / OpenMetrics text), `/healthz`, `/state`
//! (JSON of the whole state).
//!
//! Every scrape asks the packet thread for a [`StateView`] and builds a fresh
//! `prometheus-client` registry from it; nothing is shared with the packet path. Counters
//! come from the engine's statistics, which (as in the kernel) are published every 2 seconds.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rvs_service_connections_total`, `rvs_service_{in,out}_{packets,bytes}_total` | counter | `service` |
//! | `rvs_service_{connections,in_packets,out_packets,in_bytes,out_bytes}_per_second` | gauge | `service` |
//! | `rvs_real_server_*` (the same ten) | counter, gauge | `service`, `real_server` |
//! | `rvs_real_server_{active,inactive,persistent}_connections`, `rvs_real_server_weight`, `rvs_real_server_draining` (weight 0), `rvs_real_server_overloaded` | gauge | `service`, `real_server` |
//! | `rvs_drops_total` | counter | `reason` (rvs-core `DropReason`) |
//! | `rvs_reschedules_total` | counter | `cause` = `port_reuse` \| `removed_server` |
//! | `rvs_removed_server_resets_total` | counter | |
//! | `rvs_unknown_flow_resets_total`, `rvs_no_real_server_unreachables_total`, `rvs_passed_packets_total`, `rvs_connections_created_total`, `rvs_connections_expired_total`, `rvs_hairpin_fullnat_total` (`safe`) | counter | |
//! | `rvs_connection_table_entries`, `rvs_connection_table_limit`, `rvs_connection_table_under_pressure` (`safe`, 7/8 full) | gauge | |
//! | `rvs_connection_table_full_total` (new entries that found the table at its bound), `rvs_half_open_expired_early_total` (`safe`'s shortened timeout under pressure) | counter | |
//! | `rvs_evictions_total` | counter | `reason` = `half_open` \| `closed` \| `udp_idle` \| `half_open_young` (`safe`) |
//! | `rvs_dataplane_{received,sent}_{packets,bytes}_total`, `rvs_dataplane_read_batches_total`, `rvs_dataplane_{resets,icmp_errors}_sent_total` | counter | |
//! | `rvs_dataplane_malformed_packets_total` | counter | `reason` (rvs-packet `Malformed`) |
//! | `rvs_dataplane_dropped_packets_total` | counter | `reason` (`direct_route_on_tun`, `not_for_a_service`, `source_range`, ...) |
//! | `rvs_state_snapshots_total`, `rvs_state_snapshot_failures_total`, `rvs_state_recovery_refused_total` | counter | |
//! | `rvs_state_snapshot_pause_seconds` (last fork), `rvs_state_snapshot_pause_max_seconds`, `rvs_state_recovered_entries` (adopted after a crash) | gauge | |
//! | `rvs_info` | gauge (1) | `profile`, `version` |

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use rvs_control::proto::{Request, Response, StateView};
use rvs_core::snapshot::{DestView, ServiceView};
use rvs_core::stats::{Counters, Rates};

use crate::tunloop::CtlHandle;

type Labels = Vec<(String, String)>;

struct Fams {
    reg: Registry,
}

impl Fams {
    fn counter(&mut self, name: &str, help: &str) -> Family<Labels, Counter> {
        let f = Family::<Labels, Counter>::default();
        self.reg.register(name, help, f.clone());
        f
    }
    fn gauge(&mut self, name: &str, help: &str) -> Family<Labels, Gauge> {
        let f = Family::<Labels, Gauge>::default();
        self.reg.register(name, help, f.clone());
        f
    }
    fn gauge_f64(&mut self, name: &str, help: &str) -> Family<Labels, Gauge<f64, AtomicU64>> {
        let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        self.reg.register(name, help, f.clone());
        f
    }
}

struct StatFams {
    conns: Family<Labels, Counter>,
    inpkts: Family<Labels, Counter>,
    outpkts: Family<Labels, Counter>,
    inbytes: Family<Labels, Counter>,
    outbytes: Family<Labels, Counter>,
    cps: Family<Labels, Gauge>,
    inpps: Family<Labels, Gauge>,
    outpps: Family<Labels, Gauge>,
    inbps: Family<Labels, Gauge>,
    outbps: Family<Labels, Gauge>,
}

impl StatFams {
    fn new(f: &mut Fams, what: &str, of: &str) -> Self {
        let h = |x: &str| format!("{x} of each {of} (ipvsadm --stats/--rate; published every 2 s)");
        StatFams {
            conns: f.counter(
                &format!("rvs_{what}_connections"),
                &h("Connections scheduled"),
            ),
            inpkts: f.counter(
                &format!("rvs_{what}_in_packets"),
                &h("Packets in (client to real server)"),
            ),
            outpkts: f.counter(
                &format!("rvs_{what}_out_packets"),
                &h("Packets out (replies through the balancer)"),
            ),
            inbytes: f.counter(&format!("rvs_{what}_in_bytes"), &h("Bytes in")),
            outbytes: f.counter(&format!("rvs_{what}_out_bytes"), &h("Bytes out")),
            cps: f.gauge(
                &format!("rvs_{what}_connections_per_second"),
                &h("Connection rate"),
            ),
            inpps: f.gauge(
                &format!("rvs_{what}_in_packets_per_second"),
                &h("Inbound packet rate"),
            ),
            outpps: f.gauge(
                &format!("rvs_{what}_out_packets_per_second"),
                &h("Outbound packet rate"),
            ),
            inbps: f.gauge(
                &format!("rvs_{what}_in_bytes_per_second"),
                &h("Inbound byte rate"),
            ),
            outbps: f.gauge(
                &format!("rvs_{what}_out_bytes_per_second"),
                &h("Outbound byte rate"),
            ),
        }
    }
    fn set(&self, l: &Labels, s: &Counters, r: &Rates) {
        self.conns.get_or_create(l).inc_by(s.conns);
        self.inpkts.get_or_create(l).inc_by(s.inpkts);
        self.outpkts.get_or_create(l).inc_by(s.outpkts);
        self.inbytes.get_or_create(l).inc_by(s.inbytes);
        self.outbytes.get_or_create(l).inc_by(s.outbytes);
        self.cps.get_or_create(l).set(r.cps as i64);
        self.inpps.get_or_create(l).set(r.inpps as i64);
        self.outpps.get_or_create(l).set(r.outpps as i64);
        self.inbps.get_or_create(l).set(r.inbps as i64);
        self.outbps.get_or_create(l).set(r.outbps as i64);
    }
}

fn rs_label(d: &DestView) -> String {
    match d.addr {
        IpAddr::V4(a) => format!("{a}:{}", d.port),
        IpAddr::V6(a) => format!("[{a}]:{}", d.port),
    }
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn one_counter(f: &mut Fams, name: &str, help: &str, v: u64) {
    f.counter(name, help).get_or_create(&Vec::new()).inc_by(v);
}

fn one_gauge(f: &mut Fams, name: &str, help: &str, v: i64) {
    f.gauge(name, help).get_or_create(&Vec::new()).set(v);
}

/// The `/metrics` text for a state.
pub fn render(s: &StateView) -> String {
    let mut f = Fams {
        reg: Registry::default(),
    };
    let info = f.gauge("rvs_info", "The daemon's version and behaviour profile");
    info.get_or_create(&l(&[
        ("profile", s.profile.name()),
        ("version", env!("CARGO_PKG_VERSION")),
    ]))
    .set(1);
    let svc = StatFams::new(&mut f, "service", "virtual service");
    let rs = StatFams::new(&mut f, "real_server", "real server");
    let active = f.gauge(
        "rvs_real_server_active_connections",
        "ActiveConn of each real server",
    );
    let inactive = f.gauge(
        "rvs_real_server_inactive_connections",
        "InActConn of each real server",
    );
    let persist = f.gauge(
        "rvs_real_server_persistent_connections",
        "Persistence templates bound to each real server",
    );
    let weight = f.gauge("rvs_real_server_weight", "Weight of each real server");
    let draining = f.gauge(
        "rvs_real_server_draining",
        "1 when the real server has weight 0 (existing connections continue, no new ones)",
    );
    let overloaded = f.gauge(
        "rvs_real_server_overloaded",
        "1 when the real server is over its upper threshold",
    );
    for v in &s.services {
        let name = v.key.to_string();
        let sl = l(&[("service", &name)]);
        svc.set(&sl, &v.stats, &v.rates);
        for d in &v.dests {
            service_dest(
                &rs,
                &name,
                d,
                [
                    &active,
                    &inactive,
                    &persist,
                    &weight,
                    &draining,
                    &overloaded,
                ],
            );
        }
    }
    let drops = f.counter("rvs_drops", "Packets the engine dropped, by reason");
    for (r, n) in &s.drops {
        drops.get_or_create(&l(&[("reason", r)])).inc_by(*n);
    }
    let c = &s.counters;
    let resched = f.counter(
        "rvs_reschedules",
        "New-connection packets that found an old entry and were scheduled afresh",
    );
    resched
        .get_or_create(&l(&[("cause", "port_reuse")]))
        .inc_by(c.reuse_rescheduled);
    resched
        .get_or_create(&l(&[("cause", "removed_server")]))
        .inc_by(c.nodest_rescheduled);
    one_counter(
        &mut f,
        "rvs_removed_server_resets",
        "Flows to removed real servers ended with TCP resets (safe profile)",
        c.removed_resets,
    );
    one_counter(
        &mut f,
        "rvs_unknown_flow_resets",
        "Resets answered to TCP segments of unknown flows",
        c.unknown_flow_resets,
    );
    one_counter(
        &mut f,
        "rvs_no_real_server_unreachables",
        "ICMP port unreachable answered because no real server was available",
        c.no_dest_unreachable,
    );
    one_counter(
        &mut f,
        "rvs_passed_packets",
        "Packets not for any service",
        c.passed,
    );
    one_counter(
        &mut f,
        "rvs_connections_created",
        "Connection entries created",
        c.conns_created,
    );
    one_counter(
        &mut f,
        "rvs_connections_expired",
        "Connection entries expired",
        c.expired,
    );
    one_counter(
        &mut f,
        "rvs_hairpin_fullnat",
        "NAT connections from a real server to itself given full NAT (safe profile)",
        c.hairpin_fullnat,
    );
    let ev = f.counter(
        "rvs_evictions",
        "Entries given up to make room for a new connection in a full table (safe profile), by reason",
    );
    for r in rvs_core::EvictReason::ALL {
        ev.get_or_create(&l(&[("reason", r.label())]))
            .inc_by(c.evicted_count(r));
    }
    one_counter(
        &mut f,
        "rvs_connection_table_full",
        "New entries that found the connection table at its bound",
        c.table_full,
    );
    one_counter(
        &mut f,
        "rvs_half_open_expired_early",
        "Half-open entries expired by the shortened timeout while the table was under pressure",
        c.pressure_expired,
    );
    one_gauge(
        &mut f,
        "rvs_connection_table_under_pressure",
        "1 while the table is at least 7/8 full (safe profile: shorter half-open timeout)",
        (s.profile == rvs_core::Profile::Safe && s.info.conn_count * 8 >= s.info.conn_max * 7)
            as i64,
    );
    one_gauge(
        &mut f,
        "rvs_connection_table_entries",
        "Entries in the connection table (templates included)",
        s.info.conn_count as i64,
    );
    one_gauge(
        &mut f,
        "rvs_connection_table_limit",
        "Bound of the connection table",
        s.info.conn_max as i64,
    );
    let dp = &s.dataplane;
    one_counter(
        &mut f,
        "rvs_state_snapshots",
        "Crash-recovery snapshots of the engine written",
        dp.snapshots_written,
    );
    one_counter(
        &mut f,
        "rvs_state_snapshot_failures",
        "Crash-recovery snapshots that failed (fork, write or rename)",
        dp.snapshot_failures,
    );
    one_counter(
        &mut f,
        "rvs_state_recovery_refused",
        "Snapshots of a crashed daemon refused at start (damaged, foreign, other version, boot or device)",
        dp.recovery_refused,
    );
    let g = f.gauge_f64(
        "rvs_state_snapshot_pause_seconds",
        "The packet thread's pause for the last snapshot (the fork)",
    );
    g.get_or_create(&Vec::new())
        .set(dp.snapshot_pause_last_ns as f64 / 1e9);
    let g = f.gauge_f64(
        "rvs_state_snapshot_pause_max_seconds",
        "The longest pause of the packet thread for a snapshot",
    );
    g.get_or_create(&Vec::new())
        .set(dp.snapshot_pause_max_ns as f64 / 1e9);
    one_gauge(
        &mut f,
        "rvs_state_recovered_entries",
        "Connection entries adopted at start from a crashed daemon's snapshot",
        dp.recovered_entries as i64,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_received_packets",
        "Packets read from the TUN device",
        dp.rx_packets,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_received_bytes",
        "Bytes read from the TUN device",
        dp.rx_bytes,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_sent_packets",
        "Packets sent (frames, raw sockets or TUN writes, per dataplane.output)",
        dp.tx_packets,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_sent_bytes",
        "Bytes sent",
        dp.tx_bytes,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_sent_frames",
        "Packets of rvs_dataplane_sent_packets sent as Ethernet frames to a next hop the kernel had resolved (output = packet)",
        dp.frames_sent,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_read_batches",
        "Read batches (received packets / batches = batch size)",
        dp.rx_batches,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_resets_sent",
        "TCP resets sent",
        dp.resets_sent,
    );
    one_counter(
        &mut f,
        "rvs_dataplane_icmp_errors_sent",
        "ICMP errors sent",
        dp.icmp_sent,
    );
    let mal = f.counter(
        "rvs_dataplane_malformed_packets",
        "Packets dropped because they failed to parse, by reason",
    );
    for (r, n) in &dp.malformed {
        mal.get_or_create(&l(&[("reason", r)])).inc_by(*n);
    }
    let dd = f.counter(
        "rvs_dataplane_dropped_packets",
        "Packets the data plane dropped (by its source filter, or after the engine's decision), by reason",
    );
    for (r, n) in &dp.dropped {
        dd.get_or_create(&l(&[("reason", r)])).inc_by(*n);
    }
    let mut out = String::new();
    if encode(&mut out, &f.reg).is_err() {
        out.clear();
    }
    out
}

fn service_dest(rs: &StatFams, svc: &str, d: &DestView, g: [&Family<Labels, Gauge>; 6]) {
    let name = rs_label(d);
    let dl = l(&[("service", svc), ("real_server", &name)]);
    rs.set(&dl, &d.stats, &d.rates);
    g[0].get_or_create(&dl).set(d.activeconns as i64);
    g[1].get_or_create(&dl).set(d.inactconns as i64);
    g[2].get_or_create(&dl).set(d.persistconns as i64);
    g[3].get_or_create(&dl).set(d.weight as i64);
    g[4].get_or_create(&dl).set((d.weight == 0) as i64);
    g[5].get_or_create(&dl).set(d.overloaded as i64);
}

async fn state_of(ctl: &CtlHandle) -> Result<Box<StateView>, String> {
    match ctl.call(Request::State).await {
        Response::State(s) => Ok(s),
        Response::Error(e) => Err(e),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

async fn metrics(State(ctl): State<CtlHandle>) -> HttpResponse {
    match state_of(&ctl).await {
        Ok(s) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            render(&s),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}

async fn healthz(State(ctl): State<CtlHandle>) -> HttpResponse {
    let r = tokio::time::timeout(std::time::Duration::from_secs(2), ctl.call(Request::Info)).await;
    match r {
        Ok(Response::Info(_)) => (StatusCode::OK, "ok\n").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the packet thread does not answer\n",
        )
            .into_response(),
    }
}

async fn state(State(ctl): State<CtlHandle>) -> HttpResponse {
    match state_of(&ctl).await {
        Ok(s) => axum::Json(s).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}

/// The admin endpoint's routes.
pub fn router(ctl: CtlHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/state", get(state))
        .with_state(ctl)
}

/// A service's label value (`TCP 10.0.0.1:80`).
pub fn service_label(v: &ServiceView) -> String {
    v.key.to_string()
}
