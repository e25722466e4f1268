//! The states of a device's update, with their wire names (`fw_state` / `sw_state` values).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The state of one device's update. The names are ThingsBoard's and are the wire values of
/// `fw_state` / `sw_state`. The declaration order is the forward order of an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateState {
    /// Created, waiting for its turn under pacing (server).
    Queued,
    /// Device notified: attributes pushed (server).
    Initiated,
    /// Device is fetching the content (device).
    Downloading,
    /// Content received (device).
    Downloaded,
    /// Checksum verified (device).
    Verified,
    /// Installing (device).
    Updating,
    /// Running the new version (terminal).
    Updated,
    /// Failed, with an error text (terminal for the attempt).
    Failed,
    /// Canceled by an operator, a campaign or a newer assignment (terminal).
    Canceled,
}

impl UpdateState {
    /// Every state, in declaration order.
    pub const ALL: [UpdateState; 9] = [
        Self::Queued,
        Self::Initiated,
        Self::Downloading,
        Self::Downloaded,
        Self::Verified,
        Self::Updating,
        Self::Updated,
        Self::Failed,
        Self::Canceled,
    ];

    /// The wire name (`QUEUED`, `DOWNLOADING`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Initiated => "INITIATED",
            Self::Downloading => "DOWNLOADING",
            Self::Downloaded => "DOWNLOADED",
            Self::Verified => "VERIFIED",
            Self::Updating => "UPDATING",
            Self::Updated => "UPDATED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }

    /// Whether no report can move the update out of this state (only a retry can, from
    /// `FAILED` or `CANCELED`).
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Updated | Self::Failed | Self::Canceled)
    }

    /// Whether the device has been notified and not yet finished.
    pub const fn is_in_progress(self) -> bool {
        matches!(
            self,
            Self::Initiated
                | Self::Downloading
                | Self::Downloaded
                | Self::Verified
                | Self::Updating
        )
    }

    /// Position along the forward order QUEUED .. UPDATED (terminal failure states rank last).
    pub const fn rank(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for UpdateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a state name that is not one of [`UpdateState::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown update state {0:?}; expected one of QUEUED, INITIATED, DOWNLOADING, DOWNLOADED, VERIFIED, UPDATING, UPDATED, FAILED, CANCELED")]
pub struct UnknownState(pub String);

impl FromStr for UpdateState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Self::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}
