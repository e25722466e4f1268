//! [`UpdateEvent`]: what can happen to an update.

use super::UpdateState;
use crate::package::TitleVersion;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who or what caused an event; stored in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The device, through a report.
    Device,
    /// The engine itself (dispatch, replacement by a newer assignment, missing package).
    Server,
    /// An operator, through the management API.
    Operator,
    /// A campaign (stop, finish time, threshold).
    Campaign,
    /// A per-state timeout.
    Timeout,
    /// The automatic retry policy.
    Retry,
}

impl EventSource {
    /// The lowercase name (`device`, `operator`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Server => "server",
            Self::Operator => "operator",
            Self::Campaign => "campaign",
            Self::Timeout => "timeout",
            Self::Retry => "retry",
        }
    }
}

impl fmt::Display for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a device reported about its update (from `fw_state`, `current_fw_title`,
/// `current_fw_version`, `fw_error`, `fw_progress` or their `sw_` counterparts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedStatus {
    /// The reported state, if any.
    pub state: Option<UpdateState>,
    /// The title and version the device runs, if it said.
    pub current: Option<TitleVersion>,
    /// The error text, if any.
    pub error: Option<String>,
    /// Progress percentage, if any.
    pub progress: Option<u8>,
}

/// An event applied to an update by [`apply`](super::apply).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UpdateEvent {
    /// A device report.
    Report(ReportedStatus),
    /// The server notified the device (QUEUED to INITIATED).
    Dispatched,
    /// Cancel the update (or the pending automatic retry of a failed one).
    Cancel {
        /// Who cancels.
        source: EventSource,
        /// Why; kept as the update's error text.
        reason: String,
    },
    /// Fail the update (the server gave up on it, e.g. its package is gone).
    Fail {
        /// Who fails it.
        source: EventSource,
        /// Why; kept as the update's error text.
        reason: String,
    },
    /// Check whether the current state has timed out.
    CheckTimeout,
    /// Start a new attempt of a failed or canceled update.
    Retry {
        /// [`EventSource::Retry`] for the automatic retry (only taken once due), or the
        /// operator.
        source: EventSource,
    },
}

impl UpdateEvent {
    /// Who causes this event.
    pub fn source(&self) -> EventSource {
        match self {
            Self::Report(_) => EventSource::Device,
            Self::Dispatched => EventSource::Server,
            Self::Cancel { source, .. } | Self::Fail { source, .. } | Self::Retry { source } => {
                *source
            }
            Self::CheckTimeout => EventSource::Timeout,
        }
    }

    /// A short name of the event kind (`report`, `dispatch`, `cancel`, `fail`, `timeout`,
    /// `retry`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Report(_) => "report",
            Self::Dispatched => "dispatch",
            Self::Cancel { .. } => "cancel",
            Self::Fail { .. } => "fail",
            Self::CheckTimeout => "timeout",
            Self::Retry { .. } => "retry",
        }
    }
}
