//! Retention: deleting old entries of the logs that grow with every event (update history and
//! the audit log) in bounded batches.

use super::StoreError;
use crate::clock::Timestamp;
use crate::ids::TenantId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A log that grows with every event and that retention trims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetainedLog {
    /// Update history: one entry per event applied to an update
    /// ([`HistoryEntry`](crate::update::HistoryEntry)).
    History,
    /// The audit log of management actions ([`AuditEntry`](crate::audit::AuditEntry)).
    Audit,
}

impl RetainedLog {
    /// Both logs.
    pub const ALL: [RetainedLog; 2] = [RetainedLog::History, RetainedLog::Audit];

    /// `history` or `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::History => "history",
            Self::Audit => "audit",
        }
    }
}

/// Deletes the oldest entries of a tenant's log, one bounded batch per call, so that a
/// retention run never holds locks on more than a batch of rows and never touches the rows
/// writers append.
///
/// A log is trimmed from its head in append order (history: the order entries were written;
/// audit: entry id order, which is time order for the UUID v7 ids of
/// [`AuditEntry::new`](crate::audit::AuditEntry::new)). A batch deletes the entries at the
/// head whose time (`at`) is before the cutoff and stops at the first entry that is not:
/// an entry is never deleted while an older-positioned entry is younger than the cutoff, so an
/// entry written out of time order (clocks of two instances apart) waits for a later run
/// rather than a younger entry being deleted. Deleting only ever removes whole entries; the
/// updates themselves (state, attempt, times) are kept.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes at most `limit` entries of `tenant`'s `log` from its head, as long as their time
    /// is before `before`; returns how many were deleted. Fewer than `limit` (with `limit` > 0)
    /// means the head now holds no entry older than `before`.
    async fn purge_log(
        &self,
        log: RetainedLog,
        tenant: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// The tenants that have entries in `log`, in ascending id order, starting after `after`,
    /// at most `limit` of them (a page; an empty answer means no more).
    async fn retention_tenants(
        &self,
        log: RetainedLog,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError>;
}
