//! Engine configuration.

use crate::pacing::Pacing;
use crate::update::UpdatePolicy;
use crate::validation::ValidationRules;
use chrono::Duration;

/// How the engine behaves. `Default` gives sensible values for a single process (each field
/// says its default); change what you need with the setters, which can be chained:
///
/// ```
/// use ota_core::prelude::*;
/// use ota_core::chrono::Duration;
///
/// let config = OtaConfig::default()
///     .global_pacing(Pacing::default().rate(Rate::new(100, Duration::minutes(1)).unwrap()))
///     .instance_id("ota-1")
///     .max_package_size(Some(512 * 1024 * 1024));
/// assert_eq!(config.instance_id, "ota-1");
/// ```
///
/// New fields may be added in later versions (the struct is `#[non_exhaustive]`): build it
/// from `Default` and the setters, not with a struct literal.
#[derive(Clone, Debug)]
#[non_exhaustive]
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

impl OtaConfig {
    /// Sets [`OtaConfig::global_pacing`].
    pub fn global_pacing(mut self, global_pacing: Pacing) -> Self {
        self.global_pacing = global_pacing;
        self
    }

    /// Sets [`OtaConfig::policy`].
    pub fn policy(mut self, policy: UpdatePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`OtaConfig::validation`].
    pub fn validation(mut self, validation: ValidationRules) -> Self {
        self.validation = validation;
        self
    }

    /// Sets [`OtaConfig::max_package_size`] (`None`: no limit).
    pub fn max_package_size(mut self, max_package_size: Option<u64>) -> Self {
        self.max_package_size = max_package_size;
        self
    }

    /// Sets [`OtaConfig::instance_id`].
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = instance_id.into();
        self
    }

    /// Sets [`OtaConfig::claim_lease`].
    pub fn claim_lease(mut self, claim_lease: Duration) -> Self {
        self.claim_lease = claim_lease;
        self
    }

    /// Sets [`OtaConfig::claim_batch`].
    pub fn claim_batch(mut self, claim_batch: u32) -> Self {
        self.claim_batch = claim_batch;
        self
    }

    /// Sets [`OtaConfig::max_batches_per_tick`].
    pub fn max_batches_per_tick(mut self, max_batches_per_tick: u32) -> Self {
        self.max_batches_per_tick = max_batches_per_tick;
        self
    }

    /// Sets [`OtaConfig::max_cas_retries`].
    pub fn max_cas_retries(mut self, max_cas_retries: u32) -> Self {
        self.max_cas_retries = max_cas_retries;
        self
    }

    /// Sets [`OtaConfig::campaign_max_span`].
    pub fn campaign_max_span(mut self, campaign_max_span: Duration) -> Self {
        self.campaign_max_span = campaign_max_span;
        self
    }

    /// Sets [`OtaConfig::concurrency`] (at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }
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
