//! [`HistoryEntry`]: the record of one event applied to an update.

use super::{EventSource, UpdateState};
use crate::clock::Timestamp;
use crate::ids::{DeviceId, TenantId, UpdateId};
use crate::package::PackageKind;
use serde::{Deserialize, Serialize};

/// What became of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryOutcome {
    /// The update changed.
    Applied,
    /// A duplicate or stale event: recorded, nothing changed.
    Ignored,
    /// An event that makes no sense in the update's state: recorded, nothing changed.
    Rejected,
}

/// One event applied to an update, whatever its outcome: time, attempt, old and new state,
/// source and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The update.
    pub update_id: UpdateId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The device.
    pub device_id: DeviceId,
    /// Firmware or software.
    pub kind: PackageKind,
    /// The attempt the event belongs to (the new attempt for a retry).
    pub attempt: u32,
    /// When the event was applied.
    pub at: Timestamp,
    /// State before.
    pub from: UpdateState,
    /// State after (equal to `from` unless applied and the state changed).
    pub to: UpdateState,
    /// Who or what caused it.
    pub source: EventSource,
    /// The event kind (`report`, `dispatch`, `cancel`, `fail`, `timeout`, `retry`).
    pub event: String,
    /// What happened, in words (error text, reason, why it was ignored).
    pub message: Option<String>,
    /// Applied, ignored or rejected.
    pub outcome: HistoryOutcome,
}
