//! # rvs-sim: rollouts in virtual time, against the real engine
//!
//! Operators want to know, before a rollout, whether their settings and their traffic will
//! hurt: which `conn_reuse_mode`, which kernel, which client port range, which connection
//! rate. `rvs-sim` answers by simulation. It is a deterministic discrete-event simulator that
//! feeds the **real** [`rvs_core::Engine`] — the same code that replays each kernel's IPVS
//! decisions — with the packets of modelled clients and servers, in virtual time, and counts
//! what the clients see.
//!
//! ```text
//! rvs sim incident                      # the seed incident, five profile rows
//! rvs sim vm-incident                   # the 6.1 VM's incident, row by row
//! rvs sim run my.toml --svg chart.svg   # a scenario of your own (schema: `scenario`)
//! rvs sim sweep --ports 1024,28232      # at which rate per client does a setting fail?
//! ```
//!
//! The binary calls [`run`] with its [`SimArgs`]; [`simulate`] and [`sim::run`] are the
//! library entry points.
//!
//! ## Determinism
//!
//! Virtual time is [`rvs_core::Instant`] (nanoseconds). Events sit in a binary heap ordered by
//! (time, sequence number). Every random choice draws from a stream of its own (per client
//! host, control plane), derived from the scenario seed ([`rng`]); the engine's seed derives
//! from it too. Runs are independent, so they are spread over threads and reported in a fixed
//! order. The same seed, scenario and binary give byte-identical text, JSON and SVG; the one
//! platform dependency is `f64::ln` (exponential variates), which comes from the platform's
//! libm.
//!
//! ## Models
//!
//! **Clients** (`[[clients]]`). Each host has its own address and port range. Open-loop hosts
//! start connections at a rate (Poisson or evenly spaced); closed-loop hosts run `concurrency`
//! loops of connect–close–pause, like the VM's `tcpclient`.
//! * *Port choice* is Linux 6.1's `__inet_hash_connect` ([`ports`]): a per-destination
//!   perturbation plus a per-host hash offset, ports of the range's low parity first, the scan
//!   distance (at least a random even number below 16) plus 2 added to the perturbation after
//!   each success. It is made in O(log n) with the same result as the kernel's loop (a test
//!   compares them). A consequence worth knowing: the cursor advances ~9 ports per connect, so
//!   a client revisits ports far sooner than an even cycle through its range would.
//! * *TIME_WAIT*: the side that closes first keeps the port for `time_wait_s` (60 s). With
//!   `tcp_tw_reuse = 1` the port is usable again once the host's seconds clock has ticked past
//!   the last segment received (Linux compares `ktime_get_seconds()` with the TIME_WAIT's
//!   timestamp second: 0–1 s later); each host's clock has a random phase. A port whose
//!   connect failed is free at once.
//! * *No free port* (EADDRNOTAVAIL): a closed loop retries 20 ms later (as `tcpclient`); an
//!   open-loop arrival is lost. Both are counted in `eaddrnotavail`, not as failures.
//! * *SYN retransmission*: RTO 1 s, doubling, `syn_retries` times; the kernel gives up after
//!   the last RTO (127 s for 6). `connect_timeout_ms` is the application's timeout.
//! * *Outcomes*: ok, refused (RST or ICMP port unreachable), timeout, unreachable (ICMP host
//!   unreachable, which fails a SYN_SENT socket at once, as `tcp_v4_err` does). Latency is
//!   from the first SYN to the outcome, including retransmissions.
//! * *UDP*: request/response; `fixed` sockets keep their source port (so their IPVS entry
//!   keeps its server), `fresh` sockets get a random free port per query. A query that gets
//!   no answer is re-sent on the same socket after `udp_timeout_ms`, `udp_attempts` times in
//!   all (a resolver's 5 s × 2).
//! * *Round trip*: `rtt_us` plus an exponential jitter of mean `rtt_jitter_us`.
//!
//! **Packets.** Every connection goes through the engine in both directions (NAT: replies
//! move the state machine): SYN; the server's SYN-ACK (or RST); the client's ACK; then the
//! close, client first (FIN, the server's FIN-ACK, the last ACK: IPVS TIME_WAIT) or server
//! first (the server's FIN, the client's FIN-ACK, the last ACK). Data segments are not sent:
//! they do not change an IPVS entry's state, and the FIN that follows re-arms its timer
//! anyway; the engine's byte and packet counters therefore undercount. A connection whose
//! handshake is answered at once is handled in one event; its packets are stamped with their
//! modelled times (fractions of the round trip, clamped monotonic by the engine: invisible at
//! its 4 ms tick), and a pod that changes state within that round trip is not noticed.
//!
//! **Pods** (`[pods]`): Starting → Ready after `ready_after_s`; on termination, ready off at
//! once, still serving for `prestop_s`, then SIGTERM: the listener closes (new SYNs get RST
//! from the live pod, unless `accept_after_sigterm`; UDP keeps answering), and the pod exits
//! `exit_after_sigterm_s` later (SIGKILL at `grace_s`). A gone pod's address then answers as
//! `gone` says: `rst` (a live host: TCP RST, which crosses the engine's reply path; ICMP port
//! unreachable for UDP), `silence`, or `unreachable`: the director's neighbour resolution
//! fails after `arp_fail_s` (3 probes, 1 s apart) and every packet queued meanwhile gets ICMP
//! host unreachable; a packet after the failure starts a new resolution. That is why the VM's
//! `linkdown` rows mix timeouts (2 s timeout < 3 s resolution) and EHOSTUNREACH. ICMP errors
//! and the client's reaction are modelled at the client; they are not fed to the engine. A
//! held connection whose pod is gone is cut (counted in `resets`) when it closes.
//!
//! **Control plane** (`[control_plane]`): endpoint changes reach the proxy `sync_delay_ms`
//! later; syncs are at least `min_sync_period_ms` apart. The desired set is the ready
//! endpoints, or, if none, the serving terminating ones (KEP-1669).
//! * `kube-proxy` — graceful termination exactly as kube-proxy's
//!   `pkg/proxy/ipvs/graceful_termination.go` does it (kubernetes#81775): a real server that
//!   leaves the desired set is deleted at once if UDP, or if TCP and ActiveConn + InActConn is
//!   0; otherwise it gets weight 0 and joins a list re-checked every `check_interval_s`
//!   (random phase), deleted when its counts reach 0, with no deadline. A desired server found
//!   in the list is deleted and re-added.
//! * `lifecycle` — weight 0 when the pod is terminating, deletion when its endpoint is removed
//!   (the pod is gone) or after `deadline_s`.
//! * `none` — only `[[events]]` touch the table (the VM scenario's `ipvsadm` commands).
//!
//! **Rollout** (`[rollout]`): the Deployment controller creates new pods up to `replicas +
//! max_surge` and terminates old ones while `replicas - max_unavailable` stay ready,
//! reconciling whenever a pod becomes ready.
//!
//! **Profiles** ([`profile`]): `safe`, `linux-4.19-reuse0`, `linux-4.19-reuse1`, `linux-5.9`,
//! `linux-5.16`, each with kube-proxy's sysctls (`conntrack=1`, `expire_nodest_conn=1`,
//! `expire_quiescent_template=1`; `conn_reuse_mode` 0 where kube-proxy sets it, else left at
//! its default of 1) and netfilter conntrack tracking the flows. The profile is the
//! *director's* kernel; the clients' port choice is always 6.1's.
//!
//! ## What is reported
//!
//! Per profile (and variant), for TCP and UDP separately, overall and per phase (by attempt
//! start): attempts, failures (refused, timeout, unreachable), successes that took ≥ 1 s,
//! p50/p99/p99.9/max latency of successes (log-linear histograms, within 1.6 %), attempts that
//! reached a server at weight 0 (`to-drain`) or a pod no longer accepting (`to-gone`), the
//! packets sent to such servers, local-port exhaustion, and the longest drain (weight 0 to
//! deletion; `never` if a drained server is still listed at the end, the #81775 signature).
//! `--json` has everything, including time series and, for ranges of at most 64 ports, the
//! per-port view of the VM's logs. `--svg` plots failures per second and the p99 latency over
//! time, one series per run (p99 per bin within 12 %).
//!
//! ## Limits
//!
//! * One director, one service address, one port per protocol; no iptables/nftables mode,
//!   no node-level SNAT of client pods, no persistence in the built-in scenarios (the engine
//!   supports it; the scenario schema does not expose it yet).
//! * netfilter conntrack is the engine's model of it ([`rvs_core::conntrack`]): whether a
//!   reused SYN carries a confirmed entry follows the IPVS entry's state.
//! * No loss, congestion, bandwidth or server load: a live pod answers every SYN after one
//!   round trip. Server-side TIME_WAIT is ignored (Linux accepts a SYN with newer timestamps
//!   on it).
//! * The VM mirror's 1.5 ms round trip stands for its TCG-emulated latencies; its counts and
//!   1 s / 2 s effects are what compare, not milliseconds (the VM's `eaddrnotavail` is lower
//!   because its client was slower).
//! * Speed is dominated by the engine (≈ 5,000 instructions per connection of ≈ 6,500; see the
//!   crate's bench): ~1.5–2 M connections/s when the IPVS table is small, fewer when it holds
//!   millions of entries.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod balancer;
pub mod builtin;
pub mod chart;
pub mod cli;
pub mod hist;
pub mod ports;
pub mod profile;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod sweep;

pub use cli::{SimArgs, SimCommand, SweepArgs, run, simulate, simulate_one};
pub use profile::ProfileSpec;
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};
pub use sim::RunOptions;
pub use stats::RunResult;
