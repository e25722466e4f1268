//! The audit log: who did what to which entity, and when.

use crate::clock::Timestamp;
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One management action, as written to the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The entry's id (UUID v7: entries sort by time).
    pub id: Uuid,
    /// The tenant acted on.
    pub tenant_id: TenantId,
    /// Who acted (a user, an API key's name, `scheduler`, `campaign ...`).
    pub actor: String,
    /// What was done, e.g. `package.upload`, `assignment.set`, `update.cancel`.
    pub action: String,
    /// What it was done to, e.g. `package 0190...`, `group 0190...`.
    pub target: String,
    /// When.
    pub at: Timestamp,
    /// Details (the new values, a reason).
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// A new entry with a fresh id.
    pub fn new(
        tenant_id: TenantId,
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        at: Timestamp,
        details: serde_json::Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            tenant_id,
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            at,
            details,
        }
    }
}
