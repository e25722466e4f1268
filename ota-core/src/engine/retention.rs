//! Retention of update history and the audit log: [`Ota::apply_retention`] with a
//! [`RetentionPolicy`].
//!
//! Both logs grow with every event. A policy says, per tenant, how old an entry may get
//! before it is deleted (`None`: kept forever). A run deletes in batches of
//! [`RetentionPolicy::batch_size`] entries, each batch one short store call (one statement
//! on PostgreSQL), so writers are never blocked behind a retention run: they append at the
//! tail while retention deletes at the head, and no batch holds more than `batch_size` rows.
//! A run stops after [`RetentionPolicy::max_batches`] batches and says so
//! ([`RetentionReport::complete`]); the next run goes on where it stopped.
//!
//! The engine does not run retention by itself: the embedder calls
//! [`Ota::apply_retention`] on its own timer (every few minutes is plenty; the same loop that
//! calls [`Ota::tick`] works, with a coarser period). Several engine instances may run it at
//! once: each batch deletes what is old at its head, and a row deleted by another is simply
//! not counted.
//!
//! ```
//! # async fn run(ota: ota_core::Ota, tenant: ota_core::TenantId) -> ota_core::Result<()> {
//! use ota_core::chrono::Duration;
//! use ota_core::engine::{RetentionPolicy, RetentionRule};
//!
//! let policy = RetentionPolicy::new(RetentionRule::keep_for(Duration::days(90)))
//!     // one tenant keeps its audit log for 7 years and its history for a year
//!     .tenant(tenant, RetentionRule::new(Some(Duration::days(365)), Some(Duration::days(7 * 365))));
//! let report = ota.apply_retention(&policy).await?;
//! if !report.complete {
//!     // more is old than one run's budget: call again soon
//! }
//! # Ok(()) }
//! ```

use super::{Ota, OtaError};
use crate::ids::TenantId;
use crate::store::RetainedLog;
use chrono::Duration;
use std::collections::BTreeMap;

/// How long one tenant keeps each log. `None` keeps the log's entries forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionRule {
    /// The longest an update history entry is kept, counted from its time (`at`).
    pub history: Option<Duration>,
    /// The longest an audit entry is kept, counted from its time (`at`).
    pub audit: Option<Duration>,
}

impl RetentionRule {
    /// A rule with the given ages (`None`: forever).
    pub fn new(history: Option<Duration>, audit: Option<Duration>) -> Self {
        Self { history, audit }
    }

    /// The same age for both logs.
    pub fn keep_for(age: Duration) -> Self {
        Self::new(Some(age), Some(age))
    }

    /// Keeps everything (the default).
    pub fn forever() -> Self {
        Self::default()
    }

    /// The age of `log` under this rule.
    pub fn age(&self, log: RetainedLog) -> Option<Duration> {
        match log {
            RetainedLog::History => self.history,
            RetainedLog::Audit => self.audit,
        }
    }
}

/// Retention for every tenant: a default rule, rules of named tenants, and the size of the
/// work one run does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// The rule of tenants not named in [`RetentionPolicy::tenants`]. Default: keep forever.
    pub default: RetentionRule,
    /// Rules of single tenants, replacing the default for them.
    pub tenants: BTreeMap<TenantId, RetentionRule>,
    /// Most entries one batch (one store call) deletes (at least 1). Default: 1,000.
    pub batch_size: u32,
    /// Most batches one run makes over every tenant and log (at least 1). Default: 100.
    pub max_batches: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self::new(RetentionRule::default())
    }
}

impl RetentionPolicy {
    /// A policy with `default` for every tenant, batches of 1,000 entries, 100 batches per
    /// run.
    pub fn new(default: RetentionRule) -> Self {
        Self {
            default,
            tenants: BTreeMap::new(),
            batch_size: 1000,
            max_batches: 100,
        }
    }

    /// Gives `tenant` its own rule.
    pub fn tenant(mut self, tenant: TenantId, rule: RetentionRule) -> Self {
        self.tenants.insert(tenant, rule);
        self
    }

    /// Sets [`RetentionPolicy::batch_size`] (at least 1).
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Sets [`RetentionPolicy::max_batches`] (at least 1).
    pub fn max_batches(mut self, n: u32) -> Self {
        self.max_batches = n.max(1);
        self
    }

    /// The rule of `tenant`.
    pub fn rule(&self, tenant: TenantId) -> RetentionRule {
        self.tenants.get(&tenant).copied().unwrap_or(self.default)
    }
}

/// What one retention run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// History entries deleted.
    pub history_deleted: u64,
    /// Audit entries deleted.
    pub audit_deleted: u64,
    /// Batches (store calls that delete) made.
    pub batches: u32,
    /// Whether the run got through every tenant and log; `false` when it stopped at
    /// [`RetentionPolicy::max_batches`] with old entries possibly left.
    pub complete: bool,
}

/// How many tenants one listing call asks for.
const TENANT_PAGE: u32 = 500;

impl Ota {
    /// Deletes the history and audit entries that `policy` says are too old, at most
    /// `policy.max_batches` batches of `policy.batch_size` entries (see the
    /// [module](crate::engine::retention) for how it spares writers and how to schedule it).
    ///
    /// Ages count back from the engine's clock. Tenants without entries are not visited;
    /// when the default rule keeps a log forever, only the named tenants are.
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
    ) -> Result<RetentionReport, OtaError> {
        let now = self.now();
        let batch = policy.batch_size.max(1);
        let budget = policy.max_batches.max(1);
        let mut report = RetentionReport {
            complete: true,
            ..RetentionReport::default()
        };
        for log in RetainedLog::ALL {
            let mut after = None;
            loop {
                let tenants: Vec<TenantId> = if policy.default.age(log).is_some() {
                    self.store
                        .retention_tenants(log, after, TENANT_PAGE)
                        .await?
                } else {
                    let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
                    policy
                        .tenants
                        .range((from, std::ops::Bound::Unbounded))
                        .map(|(t, _)| *t)
                        .take(TENANT_PAGE as usize)
                        .collect()
                };
                let Some(last) = tenants.last().copied() else {
                    break;
                };
                for tenant in tenants {
                    let Some(age) = policy.rule(tenant).age(log) else {
                        continue;
                    };
                    let before = now - age;
                    loop {
                        if report.batches >= budget {
                            report.complete = false;
                            return Ok(report);
                        }
                        let n = self.store.purge_log(log, tenant, before, batch).await?;
                        report.batches += 1;
                        match log {
                            RetainedLog::History => report.history_deleted += n,
                            RetainedLog::Audit => report.audit_deleted += n,
                        }
                        if n < u64::from(batch) {
                            break;
                        }
                    }
                }
                after = Some(last);
            }
        }
        Ok(report)
    }
}
