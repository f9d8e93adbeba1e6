//! `rvs daemon` with a `[kubernetes]` section: the Kubernetes driver (`rvs-kubernetes`),
//! attached to the daemon through its admin handle, the path `rvs adm` takes.

use std::collections::HashSet;

use rvs_control::proto::{Request, Response, SourceRanges};
use rvs_core::command::{AdmError, Command};
use rvs_core::service::ServiceKey;
use rvs_core::snapshot::ServiceView;
use rvs_dataplane::{Admin, Attach};
use rvs_kubernetes::driver::DriverOptions;

/// The daemon, as the driver's [`rvs_kubernetes::Target`].
#[derive(Clone)]
struct Daemon(Admin);

impl rvs_kubernetes::Target for Daemon {
    async fn services(&self) -> Result<Vec<ServiceView>, String> {
        match self.0.call(Request::Services).await {
            Response::Services(v) => Ok(v),
            Response::Error(e) => Err(e),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    async fn apply(&self, cmds: Vec<Command>) -> Result<Vec<Option<AdmError>>, String> {
        match self.0.call(Request::Batch(cmds)).await {
            Response::Batch(v) => Ok(v),
            Response::Error(e) => Err(e),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    fn set_owned(&self, keys: HashSet<ServiceKey>) {
        self.0.set_owned(keys);
    }

    async fn set_source_ranges(&self, ranges: SourceRanges) -> Result<(), String> {
        match self.0.call(Request::SetSourceRanges(ranges)).await {
            Response::Done => Ok(()),
            Response::Error(e) => Err(e),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    async fn metrics(&self) -> String {
        self.0.metrics().await
    }
}

/// The driver, started if the daemon's config has a `[kubernetes]` section.
pub fn attach() -> Attach {
    Box::new(|admin: Admin| {
        Box::pin(async move {
            let cfg = admin.config().await;
            let Some(section) = cfg.kubernetes.clone() else {
                return Ok(());
            };
            let opts = DriverOptions {
                section,
                file_services: cfg.services.iter().map(|s| s.cfg.key).collect(),
                fullnat_addrs: cfg.engine.fullnat_addrs.clone(),
            };
            let a = admin.clone();
            let extra: rvs_kubernetes::health::ExtraMetrics = std::sync::Arc::new(move || {
                let a = a.clone();
                Box::pin(async move { a.metrics().await })
            });
            rvs_kubernetes::run(opts, Daemon(admin), extra)
                .await
                .map_err(|e| format!("Kubernetes: {e}"))
        })
    })
}
