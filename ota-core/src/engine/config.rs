//! Engine configuration.

use crate::pacing::Pacing;
use crate::update::UpdatePolicy;
use crate::validation::ValidationRules;
use chrono::Duration;

/// How the engine behaves. `Default` gives sensible values for a single process.
#[derive(Clone, Debug)]
pub struct OtaConfig {
    /// The pace every release obeys, across campaigns and engine instances sharing a store.
    /// Default: unlimited rate, unlimited in progress.
    pub global_pacing: Pacing,
    /// Timeouts and retries of updates that belong to no campaign. Default:
    /// [`UpdatePolicy::default`], whose safety net times INITIATED out after an hour and
    /// retries such attempts (3 attempts in all).
    pub policy: UpdatePolicy,
    /// Rules for package titles, versions, descriptions, tags and URLs.
    pub validation: ValidationRules,
    /// Largest package content accepted, in bytes (`None`: no limit). Default: 4 GiB.
    pub max_package_size: Option<u64>,
    /// This engine instance's name, used as the owner of its claims (of updates and of
    /// notices). Default: a fresh UUID.
    ///
    /// It must be unique among the engines sharing a store (two live engines under one id
    /// would give back each other's claims) and stable across restarts of one instance
    /// (a host name, a pod name of a stateful set): the first tick of an engine gives back
    /// every claim held under its id, so a restarted instance takes its unfinished work
    /// and undelivered notices again at once. Under a fresh id, the claims of the process
    /// that died are taken by others only when their lease ([`OtaConfig::claim_lease`])
    /// lapses.
    pub instance_id: String,
    /// How long a claim of due work holds before others may take it. Default: 30 s.
    pub claim_lease: Duration,
    /// How many updates one claim takes at most. Default: 500.
    pub claim_batch: u32,
    /// How many claim batches one tick processes at most, per kind of work. Default: 20.
    pub max_batches_per_tick: u32,
    /// How often a compare-and-set that lost a race is retried before giving up. Default: 8.
    pub max_cas_retries: u32,
    /// The longest a campaign may run from start to finish. Default: 6 months (183 days).
    pub campaign_max_span: Duration,
    /// How many store calls one engine makes at once while dispatching a claimed batch or
    /// re-evaluating a page of devices (at least 1). Default: 8.
    pub concurrency: usize,
}

impl Default for OtaConfig {
    fn default() -> Self {
        Self {
            global_pacing: Pacing::default(),
            policy: UpdatePolicy::default(),
            validation: ValidationRules::default(),
            max_package_size: Some(4 * 1024 * 1024 * 1024),
            instance_id: uuid::Uuid::now_v7().to_string(),
            claim_lease: Duration::seconds(30),
            claim_batch: 500,
            max_batches_per_tick: 20,
            max_cas_retries: 8,
            campaign_max_span: crate::campaign::DEFAULT_MAX_SPAN,
            concurrency: 8,
        }
    }
}
