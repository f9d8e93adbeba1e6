//! Statistics (kernel-semantics §6): counters per service, per real server and in total, and the
//! kernel's 2-second rate estimator.

mod estimator;

pub use estimator::{Estimator, Rates};

use serde::{Deserialize, Serialize};

/// The five counters IPVS keeps (kernel-semantics §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// New connections scheduled.
    pub conns: u64,
    /// Packets in (client to real server).
    pub inpkts: u64,
    /// Packets out (NAT replies).
    pub outpkts: u64,
    /// Bytes in (IP length, header included).
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
}

impl Counters {
    /// `self - base`, per field, wrapping.
    pub fn since(&self, base: &Counters) -> Counters {
        Counters {
            conns: self.conns.wrapping_sub(base.conns),
            inpkts: self.inpkts.wrapping_sub(base.inpkts),
            outpkts: self.outpkts.wrapping_sub(base.outpkts),
            inbytes: self.inbytes.wrapping_sub(base.inbytes),
            outbytes: self.outbytes.wrapping_sub(base.outbytes),
        }
    }
}

/// Counters plus what user space sees of them.
///
/// The packet path increments `live` (the kernel's per-CPU counters). User space reads
/// `shown - zero`: `shown` is copied from `live` only on the estimator's 2-second tick, as the
/// kernel does (kernel-semantics §6.2; golden `stats-refresh-lag.txt`), and `zero` is the snapshot
/// taken by `ipvsadm -Z`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Updated on every packet.
    pub live: Counters,
    /// Copied from `live` at each estimator tick.
    pub shown: Counters,
    /// Baseline subtracted from `shown` (set by zeroing).
    pub zero: Counters,
    /// The rate estimator.
    pub est: Estimator,
}

impl Stats {
    /// What `ipvsadm --stats` reports.
    pub fn reported(&self) -> Counters {
        self.shown.since(&self.zero)
    }
    /// What `ipvsadm --rate` reports.
    pub fn rates(&self) -> Rates {
        self.est.rates()
    }
    /// One estimator tick: publish the counters and update the rates.
    pub fn tick(&mut self) {
        self.shown = self.live;
        self.est.update(&self.shown);
    }
    /// `ipvsadm -Z`: the reported counters restart from 0 and the rates restart.
    pub fn zero(&mut self) {
        self.zero = self.shown;
        self.est.reset(&self.shown);
    }
}
