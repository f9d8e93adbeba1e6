//! What the simulator drives: the real engine, or (for the benchmark baseline only) a stub.

use std::net::IpAddr;

use rvs_core::command::{AdmError, Command};
use rvs_core::service::ServiceKey;
use rvs_core::{Decision, Engine, Forward, Instant, PacketMeta, Xmit};

/// The interface the simulator needs from a load balancer.
pub trait Balancer {
    /// One packet (`now` in virtual nanoseconds).
    fn packet(&mut self, now: u64, p: &PacketMeta) -> Decision;
    /// A control-plane operation.
    fn apply(&mut self, now: u64, cmd: Command) -> Result<(), AdmError>;
    /// (ActiveConn, InActConn) of a real server, after running the timers due at `now`.
    fn counts(&mut self, now: u64, key: &ServiceKey, addr: IpAddr, port: u16)
    -> Option<(u32, u32)>;
    /// Drops the packets the engine wants sent on its own (resets towards removed servers
    /// under `safe`); returns how many.
    fn drain_output(&mut self) -> u64;
    /// Engine counters, for the report.
    fn counters(&self) -> Option<rvs_core::EngineCounters>;
}

impl Balancer for Engine {
    #[inline]
    fn packet(&mut self, now: u64, p: &PacketMeta) -> Decision {
        self.handle_packet(Instant::from_nanos(now), p)
    }
    fn apply(&mut self, now: u64, cmd: Command) -> Result<(), AdmError> {
        Engine::apply(self, Instant::from_nanos(now), cmd)
    }
    fn counts(
        &mut self,
        now: u64,
        key: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Option<(u32, u32)> {
        self.handle_timeout(Instant::from_nanos(now));
        self.dest(key, addr, port)
            .map(|d| (d.activeconns, d.inactconns))
    }
    fn drain_output(&mut self) -> u64 {
        let mut n = 0;
        while self.poll_output().is_some() {
            n += 1;
        }
        n
    }
    fn counters(&self) -> Option<rvs_core::EngineCounters> {
        Some(Engine::counters(self).clone())
    }
}

/// A stateless stand-in for the engine, used only to measure the simulator's own cost (the
/// benchmark's baseline): client packets to a virtual service go round robin to a real server
/// of non-zero weight, everything else is forwarded back. Its results mean nothing.
#[derive(Default)]
pub struct Stub {
    services: Vec<StubService>,
}

/// A stub service: key, (address, port, weight) of its servers, round-robin cursor.
type StubService = (ServiceKey, Vec<(IpAddr, u16, u32)>, usize);

impl Balancer for Stub {
    #[inline]
    fn packet(&mut self, _now: u64, p: &PacketMeta) -> Decision {
        for (key, dests, cursor) in &mut self.services {
            if let ServiceKey::Addr { addr, port, proto } = key
                && *addr == p.dst
                && *port == p.dport
                && proto.ipproto() == p.protocol
            {
                for _ in 0..dests.len() {
                    *cursor = (*cursor + 1) % dests.len();
                    let (a, port, w) = dests[*cursor];
                    if w > 0 {
                        return Decision::Forward(Forward {
                            xmit: Xmit::Nat {
                                src: None,
                                dst: Some((a, port)),
                            },
                            dest: None,
                            new_conn: true,
                        });
                    }
                }
                return Decision::Answer(rvs_core::Answer::IcmpPortUnreachable);
            }
        }
        Decision::Forward(Forward {
            xmit: Xmit::Nat {
                src: None,
                dst: None,
            },
            dest: None,
            new_conn: false,
        })
    }
    fn apply(&mut self, _now: u64, cmd: Command) -> Result<(), AdmError> {
        match cmd {
            Command::AddService(cfg) => self.services.push((cfg.key, Vec::new(), 0)),
            Command::AddDest(k, d) | Command::EditDest(k, d) => {
                if let Some(s) = self.services.iter_mut().find(|s| s.0 == k) {
                    match s.1.iter_mut().find(|x| x.0 == d.addr && x.1 == d.port) {
                        Some(x) => x.2 = d.weight,
                        None => s.1.push((d.addr, d.port, d.weight)),
                    }
                }
            }
            Command::DelDest(k, a, p) => {
                if let Some(s) = self.services.iter_mut().find(|s| s.0 == k) {
                    s.1.retain(|x| !(x.0 == a && x.1 == p));
                }
            }
            _ => {}
        }
        Ok(())
    }
    fn counts(&mut self, _: u64, _: &ServiceKey, _: IpAddr, _: u16) -> Option<(u32, u32)> {
        Some((0, 0))
    }
    fn drain_output(&mut self) -> u64 {
        0
    }
    fn counters(&self) -> Option<rvs_core::EngineCounters> {
        None
    }
}
