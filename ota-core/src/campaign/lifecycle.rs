//! The campaign lifecycle.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a campaign is in its life.
///
/// ```text
/// DRAFT -> SCHEDULED -> RUNNING <-> PAUSED -> FINISHED | STOPPED | FAILED -> ARCHIVED
/// ```
/// DRAFT may also go straight to RUNNING (start now); SCHEDULED and PAUSED may be stopped;
/// SCHEDULED may go back to DRAFT (unscheduled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignState {
    /// Being written; editable.
    Draft,
    /// Waiting for its start time; editable.
    Scheduled,
    /// Releasing updates.
    Running,
    /// Releasing nothing until resumed; devices already notified go on.
    Paused,
    /// Every device finished, or the finish time came.
    Finished,
    /// Stopped by an operator: pending and ongoing updates were canceled.
    Stopped,
    /// The error threshold was reached with the fail action.
    Failed,
    /// Hidden from default listings, kept in full.
    Archived,
}

impl CampaignState {
    /// Every state.
    pub const ALL: [CampaignState; 8] = [
        Self::Draft,
        Self::Scheduled,
        Self::Running,
        Self::Paused,
        Self::Finished,
        Self::Stopped,
        Self::Failed,
        Self::Archived,
    ];

    /// The name (`DRAFT`, `RUNNING`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Scheduled => "SCHEDULED",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Finished => "FINISHED",
            Self::Stopped => "STOPPED",
            Self::Failed => "FAILED",
            Self::Archived => "ARCHIVED",
        }
    }

    /// Whether the definition may still be edited (DRAFT and SCHEDULED).
    pub const fn is_editable(self) -> bool {
        matches!(self, Self::Draft | Self::Scheduled)
    }

    /// Whether the campaign has ended (FINISHED, STOPPED, FAILED, ARCHIVED).
    pub const fn is_ended(self) -> bool {
        matches!(
            self,
            Self::Finished | Self::Stopped | Self::Failed | Self::Archived
        )
    }

    /// Whether the engine has work to do for it (SCHEDULED, RUNNING, PAUSED).
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Scheduled | Self::Running | Self::Paused)
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub const fn can_become(self, to: CampaignState) -> bool {
        use CampaignState::*;
        matches!(
            (self, to),
            (Draft, Scheduled)
                | (Draft, Running)
                | (Scheduled, Draft)
                | (Scheduled, Running)
                | (Scheduled, Stopped)
                | (Running, Paused)
                | (Paused, Running)
                | (Running, Finished)
                | (Paused, Finished)
                | (Running, Stopped)
                | (Paused, Stopped)
                | (Running, Failed)
                | (Paused, Failed)
                | (Finished, Archived)
                | (Stopped, Archived)
                | (Failed, Archived)
        )
    }

    /// `Ok` when the lifecycle allows going to `to`, else the error naming both states.
    pub fn check_transition(self, to: CampaignState) -> Result<(), IllegalTransition> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A lifecycle step the campaign's current state does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} campaign cannot become {to}")]
pub struct IllegalTransition {
    /// The campaign's current state.
    pub from: CampaignState,
    /// The state asked for.
    pub to: CampaignState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_path_is_allowed_and_ended_campaigns_only_archive() {
        use CampaignState::*;
        for (a, b) in [
            (Draft, Scheduled),
            (Scheduled, Running),
            (Running, Paused),
            (Paused, Running),
            (Running, Finished),
            (Finished, Archived),
        ] {
            assert!(a.can_become(b), "{a} -> {b}");
        }
        for ended in [Finished, Stopped, Failed] {
            for to in CampaignState::ALL {
                assert_eq!(ended.can_become(to), to == Archived, "{ended} -> {to}");
            }
        }
        for to in CampaignState::ALL {
            assert!(!Archived.can_become(to));
        }
        let err = Draft.check_transition(Paused).unwrap_err();
        assert_eq!(err.to_string(), "a DRAFT campaign cannot become PAUSED");
    }
}
