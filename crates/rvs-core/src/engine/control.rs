//! Control-plane operations with the kernel's validation (kernel-semantics §8.8a) and semantics:
//! scheduler binding, real servers inserted newest-first, the trash and its revival (§1.3),
//! threshold edits (§4.15), and the 5.9+ flush of entries to removed real servers (§2.5).

use core::net::IpAddr;

use super::{Core, Engine, Fam};
use crate::addr::{V4, V6};
use crate::command::{AdmError, Command};
use crate::dest::{Dest, DestConfig, DestId, ForwardMethod, TunnelType};
use crate::sched::{self, Dests};
use crate::service::{Service, ServiceConfig, ServiceId, ServiceKey};
use crate::stats::Stats;
use crate::time::Instant;

/// Largest timeout the kernel accepts: `INT_MAX / HZ` seconds.
const MAX_TIMEOUT: u32 = (i32::MAX / 250) as u32;

pub(super) fn apply(e: &mut Engine, now: Instant, cmd: Command) -> Result<(), AdmError> {
    match cmd {
        Command::AddService(cfg) => e.core.add_service(cfg),
        Command::EditService(cfg) => e.core.edit_service(cfg),
        Command::DelService(key) => {
            let id = e.core.services.find_key(&key).ok_or(AdmError::NoService)?;
            e.core.del_service(id, now);
            e.flush_nodest();
            Ok(())
        }
        Command::Flush => {
            let ids = e.core.services.ids().to_vec();
            for id in ids {
                e.core.del_service(id, now);
            }
            e.flush_nodest();
            Ok(())
        }
        Command::Zero(None) => {
            e.core.totals.zero();
            for id in e.core.services.ids().to_vec() {
                e.core.zero_service(id);
            }
            Ok(())
        }
        Command::Zero(Some(key)) => {
            let id = e.core.services.find_key(&key).ok_or(AdmError::NoService)?;
            e.core.zero_service(id);
            Ok(())
        }
        Command::AddDest(key, cfg) => e.core.add_dest(key, cfg),
        Command::EditDest(key, cfg) => e.core.edit_dest(key, cfg),
        Command::DelDest(key, addr, port) => {
            e.core.del_dest(key, addr, port, now)?;
            e.flush_nodest();
            Ok(())
        }
        Command::SetTimeouts(t) => {
            for (name, v) in [("tcp", t.tcp), ("tcpfin", t.tcpfin), ("udp", t.udp)] {
                if v > MAX_TIMEOUT {
                    return Err(AdmError::Invalid(format!(
                        "{name} timeout {v} exceeds {MAX_TIMEOUT} s"
                    )));
                }
            }
            e.core.timeouts.set(t);
            Ok(())
        }
        Command::Sysctl(name, value) => e.core.sysctl.set(&name, &value).map_err(AdmError::Sysctl),
    }
}

impl Engine {
    /// Linux ≥ 5.9 with `expire_nodest_conn=1`: after a real server leaves its service, every
    /// entry bound to an unavailable real server is deleted at once (entries that control
    /// others are skipped; a template left controlling nothing goes too) (kernel-semantics §2.5).
    fn flush_nodest(&mut self) {
        if !self.core.profile.has_5_9_fixes() || self.core.sysctl.expire_nodest_conn == 0 {
            return;
        }
        self.flush_nodest_in::<V4>();
        self.flush_nodest_in::<V6>();
    }

    fn flush_nodest_in<A: Fam>(&mut self) {
        let victims: Vec<(u32, Option<u32>)> = {
            let tab = A::table(self);
            tab.iter()
                .filter(|(_, c)| {
                    c.n_control() == 0 && self.core.dests.get(c.dest).is_some_and(|d| !d.available)
                })
                .map(|(i, c)| (i, c.control()))
                .collect()
        };
        for (i, ctl) in victims {
            let (core, tab) = A::split(self);
            if tab.get(i).is_none() {
                continue;
            }
            core.expire(tab, i, false);
            if let Some(t) = ctl
                && tab.get(t).is_some_and(|t| t.n_control() == 0)
            {
                core.expire(tab, t, false);
            }
        }
    }
}

fn validate_service(cfg: &ServiceConfig) -> Result<(), AdmError> {
    if let ServiceKey::Fwmark { mark: 0, .. } = cfg.key {
        return Err(AdmError::Invalid("firewall mark 0".into()));
    }
    match (cfg.key.is_v6(), cfg.netmask) {
        (true, crate::addr::Netmask::V6(p)) if (1..=128).contains(&p) => {}
        (false, crate::addr::Netmask::V4(_)) => {}
        _ => {
            return Err(AdmError::Invalid(
                "netmask does not fit the address family".into(),
            ));
        }
    }
    if cfg.pe_name.is_some() {
        // The kernel has one persistence engine (sip); rvs has none yet.
        return Err(AdmError::NoScheduler);
    }
    Ok(())
}

impl Core {
    fn new_sched(&self, name: &str) -> Result<Option<Box<dyn sched::Scheduler>>, AdmError> {
        if name == "none" {
            return Ok(None);
        }
        sched::by_name(name, &self.sched_opts)
            .map(Some)
            .ok_or(AdmError::NoScheduler)
    }

    fn add_service(&mut self, cfg: ServiceConfig) -> Result<(), AdmError> {
        if self.services.find_key(&cfg.key).is_some() {
            return Err(AdmError::ServiceExists);
        }
        let sched = self.new_sched(&cfg.scheduler)?;
        validate_service(&cfg)?;
        let mut sched = sched;
        if let Some(s) = sched.as_mut() {
            s.init(Dests {
                order: &[],
                arena: &self.dests,
            });
        }
        self.services.insert(Service {
            cfg,
            dests: Vec::new(),
            sched,
            stats: Stats::default(),
        });
        Ok(())
    }

    fn edit_service(&mut self, cfg: ServiceConfig) -> Result<(), AdmError> {
        let id = self
            .services
            .find_key(&cfg.key)
            .ok_or(AdmError::NoService)?;
        let svc = self.services.get(id).ok_or(AdmError::NoService)?;
        let new_sched = if svc.cfg.scheduler != cfg.scheduler {
            Some(self.new_sched(&cfg.scheduler)?)
        } else {
            None
        };
        validate_service(&cfg)?;
        if cfg.scheduler == "mh" && svc.dests.len() > self.maglev_size() {
            return Err(AdmError::Invalid(
                "more real servers than Maglev table slots".into(),
            ));
        }
        let Core {
            services, dests, ..
        } = self;
        let Some(svc) = services.get_mut(id) else {
            return Err(AdmError::NoService);
        };
        if let Some(mut s) = new_sched {
            if let Some(s) = s.as_mut() {
                s.init(Dests {
                    order: &svc.dests,
                    arena: dests,
                });
            }
            svc.sched = s;
        }
        svc.cfg = cfg;
        Ok(())
    }

    fn maglev_size(&self) -> usize {
        self.sched_opts.maglev.unwrap_or_default().table_size as usize
    }

    /// Deletes a service: its real servers go to the trash; entries stay (kernel-semantics §2.10).
    fn del_service(&mut self, id: ServiceId, _now: Instant) {
        let Some(svc) = self.services.remove(id) else {
            return;
        };
        for d in svc.dests {
            self.trash_dest(d);
        }
    }

    fn zero_service(&mut self, id: ServiceId) {
        let Core {
            services, dests, ..
        } = self;
        if let Some(s) = services.get_mut(id) {
            s.stats.zero();
            for &d in &s.dests {
                dests[d].stats.zero();
            }
        }
    }

    /// Moves an unlinked real server to the trash (or frees it when nothing references it).
    fn trash_dest(&mut self, d: DestId) {
        let Some(dest) = self.dests.get_mut(d) else {
            return;
        };
        dest.available = false;
        dest.trash_idle_since = None;
        if dest.cfg.fwd == ForwardMethod::Masq
            && let ServiceKey::Addr { proto, .. } = dest.svc_key
        {
            let k = (proto, dest.cfg.addr, dest.cfg.port);
            if let Some(n) = self.rs_index.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.rs_index.remove(&k);
                }
            }
        }
        if dest.refs == 0 {
            self.dests.remove(d);
        } else {
            self.trash.push(d);
        }
    }

    fn validate_dest(&self, svc: &Service, cfg: &DestConfig) -> Result<(), AdmError> {
        if cfg.weight > i32::MAX as u32 {
            return Err(AdmError::Range(format!(
                "weight {} is above {}",
                cfg.weight,
                i32::MAX
            )));
        }
        if cfg.l_threshold > cfg.u_threshold {
            return Err(AdmError::Range(format!(
                "lower threshold {} is above upper threshold {}",
                cfg.l_threshold, cfg.u_threshold
            )));
        }
        if cfg.addr.is_ipv6() != svc.cfg.key.is_v6() {
            // The kernel allows mixed families for tunnels; rvs keeps one family per entry.
            return Err(AdmError::AddressFamily);
        }
        if cfg.addr.is_unspecified() || cfg.addr.is_multicast() {
            return Err(AdmError::Invalid(format!(
                "{} is not a unicast address",
                cfg.addr
            )));
        }
        if cfg.fwd == ForwardMethod::Tunnel
            && cfg.tunnel.kind == TunnelType::Gue
            && cfg.tunnel.port == 0
        {
            return Err(AdmError::Invalid("GUE tunnel needs a port".into()));
        }
        if cfg.fwd == ForwardMethod::FullNat {
            let pool = if cfg.addr.is_ipv4() {
                &self.ports_v4
            } else {
                &self.ports_v6
            };
            if pool.addresses() == 0 {
                return Err(AdmError::Invalid(
                    "full NAT needs local addresses (fullnat_addrs)".into(),
                ));
            }
        }
        Ok(())
    }

    fn add_dest(&mut self, key: ServiceKey, cfg: DestConfig) -> Result<(), AdmError> {
        let id = self
            .services
            .find_key(&key)
            .ok_or(AdmError::ServiceNotDefined)?;
        let svc = self.services.get(id).ok_or(AdmError::ServiceNotDefined)?;
        self.validate_dest(svc, &cfg)?;
        if svc
            .dests
            .iter()
            .any(|&d| self.dests[d].cfg.addr == cfg.addr && self.dests[d].cfg.port == cfg.port)
        {
            return Err(AdmError::DestExists);
        }
        if svc.cfg.scheduler == "mh" && svc.dests.len() + 1 > self.maglev_size() {
            return Err(AdmError::Invalid(
                "more real servers than Maglev table slots".into(),
            ));
        }
        // Revive a trashed real server with the same service key, address and port.
        let revived = self.trash.iter().position(|&t| {
            let d = &self.dests[t];
            d.svc_key == key && d.cfg.addr == cfg.addr && d.cfg.port == cfg.port
        });
        let did = match revived {
            Some(pos) => {
                let did = self.trash.swap_remove(pos);
                let d = &mut self.dests[did];
                d.svc = id;
                d.available = true;
                d.trash_idle_since = None;
                update_dest(d, &cfg);
                d.last_weight = if cfg.weight > 0 {
                    cfg.weight
                } else {
                    d.last_weight
                };
                did
            }
            None => self.dests.insert(Dest::new(id, key, cfg)),
        };
        if cfg.fwd == ForwardMethod::Masq
            && let ServiceKey::Addr { proto, .. } = key
        {
            *self
                .rs_index
                .entry((proto, cfg.addr, cfg.port))
                .or_insert(0) += 1;
        }
        let Core {
            services, dests, ..
        } = self;
        let Some(svc) = services.get_mut(id) else {
            return Err(AdmError::ServiceNotDefined);
        };
        svc.dests.insert(0, did);
        if let Some(s) = svc.sched.as_mut() {
            s.add_dest(
                Dests {
                    order: &svc.dests,
                    arena: dests,
                },
                did,
            );
        }
        Ok(())
    }

    fn find_dest(&self, id: ServiceId, addr: IpAddr, port: u16) -> Option<(usize, DestId)> {
        let svc = self.services.get(id)?;
        svc.dests
            .iter()
            .enumerate()
            .find(|(_, d)| self.dests[**d].cfg.addr == addr && self.dests[**d].cfg.port == port)
            .map(|(pos, &d)| (pos, d))
    }

    fn edit_dest(&mut self, key: ServiceKey, cfg: DestConfig) -> Result<(), AdmError> {
        let id = self
            .services
            .find_key(&key)
            .ok_or(AdmError::ServiceNotDefined)?;
        let svc = self.services.get(id).ok_or(AdmError::ServiceNotDefined)?;
        self.validate_dest(svc, &cfg)?;
        let (_, did) = self
            .find_dest(id, cfg.addr, cfg.port)
            .ok_or(AdmError::NoDest)?;
        let old_fwd = self.dests[did].cfg.fwd;
        if let ServiceKey::Addr { proto, .. } = key {
            let k = (proto, cfg.addr, cfg.port);
            if old_fwd == ForwardMethod::Masq && cfg.fwd != ForwardMethod::Masq {
                if let Some(n) = self.rs_index.get_mut(&k) {
                    *n -= 1;
                    if *n == 0 {
                        self.rs_index.remove(&k);
                    }
                }
            } else if old_fwd != ForwardMethod::Masq && cfg.fwd == ForwardMethod::Masq {
                *self.rs_index.entry(k).or_insert(0) += 1;
            }
        }
        let d = &mut self.dests[did];
        update_dest(d, &cfg);
        if cfg.weight > 0 {
            d.last_weight = cfg.weight;
        }
        let Core {
            services, dests, ..
        } = self;
        let Some(svc) = services.get_mut(id) else {
            return Err(AdmError::ServiceNotDefined);
        };
        if let Some(s) = svc.sched.as_mut() {
            s.upd_dest(
                Dests {
                    order: &svc.dests,
                    arena: dests,
                },
                did,
            );
        }
        Ok(())
    }

    fn del_dest(
        &mut self,
        key: ServiceKey,
        addr: IpAddr,
        port: u16,
        _now: Instant,
    ) -> Result<(), AdmError> {
        let id = self
            .services
            .find_key(&key)
            .ok_or(AdmError::ServiceNotDefined)?;
        let (pos, did) = self.find_dest(id, addr, port).ok_or(AdmError::NoDest)?;
        let Core {
            services, dests, ..
        } = self;
        let Some(svc) = services.get_mut(id) else {
            return Err(AdmError::ServiceNotDefined);
        };
        svc.dests.remove(pos);
        if let Some(s) = svc.sched.as_mut() {
            s.del_dest(
                Dests {
                    order: &svc.dests,
                    arena: dests,
                },
                did,
                pos,
            );
        }
        self.trash_dest(did);
        Ok(())
    }
}

/// The kernel's `__ip_vs_update_dest`: new settings; OVERLOAD cleared when the upper
/// threshold is removed or raised (kernel-semantics §4.15).
fn update_dest(d: &mut Dest, cfg: &DestConfig) {
    if cfg.u_threshold == 0 || cfg.u_threshold > d.cfg.u_threshold {
        d.overload = false;
    }
    d.cfg = *cfg;
}
