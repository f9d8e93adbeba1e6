//! A small lab for engine tests: an engine, a virtual clock, and helpers that play clients and
//! real servers exchanging TCP, UDP and SCTP packets through it.
#![allow(dead_code)]

use std::net::IpAddr;

use rvs_core::command::Command;
use rvs_core::dest::{DestConfig, ForwardMethod};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{Decision, Engine, EngineConfig, Forward, Instant, PacketMeta, Profile, Xmit};
use rvs_packet::TcpFlags;

pub const SYN: u8 = TcpFlags::SYN;
pub const ACK: u8 = TcpFlags::ACK;
pub const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
pub const FINACK: u8 = TcpFlags::FIN | TcpFlags::ACK;
pub const RST: u8 = TcpFlags::RST;
pub const PSHACK: u8 = TcpFlags::PSH | TcpFlags::ACK;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub struct Lab {
    pub e: Engine,
    pub now: Instant,
}

impl Lab {
    pub fn new(profile: Profile) -> Self {
        Self::with(EngineConfig {
            profile,
            ..EngineConfig::default()
        })
    }

    pub fn with(cfg: EngineConfig) -> Self {
        let now = cfg.start;
        Lab {
            e: Engine::new(cfg),
            now,
        }
    }

    /// Moves the clock forward by `secs` and runs the timers.
    pub fn advance(&mut self, secs: f64) {
        self.now = self.now.add_nanos((secs * 1e9) as u64);
        self.e.handle_timeout(self.now);
    }

    pub fn cmd(&mut self, c: Command) {
        self.e
            .apply(self.now, c)
            .unwrap_or_else(|e| panic!("command failed: {e}"));
    }

    pub fn sysctl(&mut self, name: &str, v: &str) {
        self.cmd(Command::Sysctl(name.into(), v.into()));
    }

    pub fn tcp_service(&mut self, vip: &str, port: u16, sched: &str) -> ServiceKey {
        let key = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: ip(vip),
            port,
        };
        self.cmd(Command::AddService(
            ServiceConfig::new(key).scheduler(sched),
        ));
        key
    }

    pub fn udp_service(&mut self, vip: &str, port: u16, sched: &str) -> ServiceKey {
        let key = ServiceKey::Addr {
            proto: Protocol::Udp,
            addr: ip(vip),
            port,
        };
        self.cmd(Command::AddService(
            ServiceConfig::new(key).scheduler(sched),
        ));
        key
    }

    pub fn add_rs(
        &mut self,
        key: ServiceKey,
        rs: &str,
        port: u16,
        weight: u32,
        fwd: ForwardMethod,
    ) {
        self.cmd(Command::AddDest(
            key,
            DestConfig::new(ip(rs), port).fwd(fwd).weight(weight),
        ));
    }

    pub fn nat_rs(&mut self, key: ServiceKey, rs: &str, port: u16, weight: u32) {
        self.add_rs(key, rs, port, weight, ForwardMethod::Masq);
    }

    pub fn set_weight(&mut self, key: ServiceKey, rs: &str, port: u16, weight: u32) {
        let d = self
            .e
            .dest(&key, ip(rs), port)
            .expect("no such real server");
        let cfg = DestConfig {
            addr: d.addr,
            port: d.port,
            fwd: d.fwd,
            weight,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
            tunnel: d.tunnel,
        };
        self.cmd(Command::EditDest(key, cfg));
    }

    pub fn del_rs(&mut self, key: ServiceKey, rs: &str, port: u16) {
        self.cmd(Command::DelDest(key, ip(rs), port));
    }

    pub fn tcp(&mut self, src: (&str, u16), dst: (&str, u16), flags: u8) -> Decision {
        self.tcp_seq(src, dst, flags, 1000, 2000)
    }

    pub fn tcp_seq(
        &mut self,
        src: (&str, u16),
        dst: (&str, u16),
        flags: u8,
        seq: u32,
        ack: u32,
    ) -> Decision {
        let p = PacketMeta::tcp((ip(src.0), src.1), (ip(dst.0), dst.1), flags, seq, ack);
        self.e.handle_packet(self.now, &p)
    }

    pub fn udp(&mut self, src: (&str, u16), dst: (&str, u16)) -> Decision {
        let p = PacketMeta::udp((ip(src.0), src.1), (ip(dst.0), dst.1), 32);
        self.e.handle_packet(self.now, &p)
    }

    /// A client opens a TCP connection: SYN, the real server's SYN-ACK, the client's ACK.
    /// Returns the real server's address and port.
    pub fn connect(&mut self, client: (&str, u16), vip: (&str, u16)) -> Option<(IpAddr, u16)> {
        let d = self.tcp(client, vip, SYN);
        let rs = nat_target(&d)?;
        let r = self.tcp((&rs.0.to_string(), rs.1), client, SYNACK);
        assert!(
            matches!(r, Decision::Forward(_)),
            "SYN-ACK from {rs:?} was not forwarded: {r:?}"
        );
        let a = self.tcp(client, vip, ACK);
        assert_eq!(nat_target(&a), Some(rs));
        Some(rs)
    }

    /// The client closes first (FIN, server ACK+FIN, client ACK): IPVS ends in TIME_WAIT.
    pub fn close_client_first(&mut self, client: (&str, u16), vip: (&str, u16), rs: (IpAddr, u16)) {
        let rss = rs.0.to_string();
        let _ = self.tcp(client, vip, FINACK);
        let _ = self.tcp((&rss, rs.1), client, FINACK);
        let _ = self.tcp(client, vip, ACK);
    }

    /// Counts (ActiveConn, InActConn) of a real server.
    pub fn counts(&self, key: ServiceKey, rs: &str, port: u16) -> (u32, u32) {
        let d = self
            .e
            .dest(&key, ip(rs), port)
            .expect("no such real server");
        (d.activeconns, d.inactconns)
    }

    /// States of the connection entries from a client port.
    pub fn states_of(&self, cport: u16) -> Vec<String> {
        self.e
            .conns()
            .into_iter()
            .filter(|c| c.cport == cport && !c.template)
            .map(|c| c.state)
            .collect()
    }
}

/// The real server a forwarded client packet goes to (NAT, full NAT, tunnel, DR).
pub fn nat_target(d: &Decision) -> Option<(IpAddr, u16)> {
    match d {
        Decision::Forward(Forward {
            xmit: Xmit::Nat { dst: Some(t), .. },
            ..
        }) => Some(*t),
        _ => None,
    }
}

pub fn is_forward(d: &Decision) -> bool {
    matches!(d, Decision::Forward(_))
}
