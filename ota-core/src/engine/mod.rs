//! The engine: what a platform calls. It turns assignments and device reports into updates,
//! releases them to devices under pacing, and keeps every update's state and history in a
//! store. It talks to the outside only through [`Store`] and [`Notifier`]; time comes from a
//! [`Clock`].
//!
//! Driving time is the embedder's job: call [`Ota::tick`] regularly (every 100 ms to 1 s). A
//! tick claims due work from the store with a lease, so several engines may share one store.

mod campaign_end;
mod campaign_tick;
mod campaigns;
mod config;
mod delivery;
mod error;
mod fleet;
mod packages;
mod policy_cache;
mod queries;
mod reevaluate;
mod release_together;
mod reports;
pub mod retention;
mod retry_guard;
mod schedules;
mod tick;
mod transitions;

pub use campaigns::ImportReport;
pub use config::OtaConfig;
pub use error::{OtaError, PackageUse, Result};
pub use packages::NewPackage;
pub use queries::{LatestUpdates, UpdateHistory, MAX_HISTORY_PAGE};
pub use reports::ReportOutcome;
pub use retention::{RetentionPolicy, RetentionReport, RetentionRule};
pub use tick::TickReport;

use crate::audit::AuditEntry;
use crate::clock::{Clock, Timestamp};
use crate::ids::TenantId;
use crate::notifier::Notifier;
use crate::store::Store;
use std::sync::Arc;

/// The OTA engine over a store, a notifier and a clock.
#[derive(Clone)]
pub struct Ota {
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    config: Arc<OtaConfig>,
    /// Whether the claims of an earlier process under this instance id were given back.
    claims_recovered: Arc<std::sync::atomic::AtomicBool>,
    /// Policies of started campaigns, read once per campaign.
    policies: Arc<policy_cache::PolicyCache>,
}

impl std::fmt::Debug for Ota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ota")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Ota {
    /// An engine over `store`, telling devices through `notifier`, with time from `clock`.
    pub fn new(
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: OtaConfig,
    ) -> Self {
        Self {
            store,
            notifier,
            clock,
            config: Arc::new(config),
            claims_recovered: Arc::default(),
            policies: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &OtaConfig {
        &self.config
    }

    /// The current time of the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The audit entry of a management action, stamped now: handed to the store write that
    /// performs the action, which writes both in one atomic step.
    fn audit_entry(
        &self,
        tenant: TenantId,
        actor: &str,
        action: &str,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry::new(tenant, actor, action, target, self.now(), details)
    }

    /// `details` of an audit entry with `note` added as `schedule` (what a scheduled run
    /// tells about the action it performs: its event and occurrence).
    fn noted(
        mut details: serde_json::Value,
        note: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        if let (Some(note), Some(map)) = (note, details.as_object_mut()) {
            map.insert("schedule".into(), note.clone());
        }
        details
    }

    /// Appends the entry of an action that has no store write of its own to carry it (a
    /// scheduled run whose action failed, a stop that only finished an earlier stop).
    async fn audit(
        &self,
        tenant: TenantId,
        actor: &str,
        action: &str,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> Result<(), OtaError> {
        let entry = self.audit_entry(tenant, actor, action, target, details);
        self.store.append_audit(&entry).await?;
        Ok(())
    }
}
