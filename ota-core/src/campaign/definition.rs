//! What a campaign is: the operator's [`CampaignSpec`] and the stored [`Campaign`].

use super::rollout::{ErrorThreshold, ThresholdBaseline, Wave};
use super::CampaignState;
use crate::clock::Timestamp;
use crate::ids::{CampaignId, GroupId, PackageId, ProfileId, TenantId};
use crate::pacing::{Pacing, PacingError};
use crate::package::PackageKind;
use crate::update::UpdatePolicy;
use crate::window::MaintenanceWindow;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The longest time a campaign may run by default: 6 months (183 days).
pub const DEFAULT_MAX_SPAN: Duration = Duration::days(183);

/// Which devices a campaign updates. Only devices compatible with the package are taken;
/// the others are counted as skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CampaignTarget {
    /// Devices of a profile and/or members of groups: with both, devices of the profile that
    /// are in at least one of the groups. Optionally only devices currently running one of
    /// `source_versions` (compared with the reported current version of the package's kind).
    Selection {
        /// Only devices of this profile.
        profile: Option<ProfileId>,
        /// Only members of one of these groups (empty: no group condition).
        #[serde(default)]
        groups: BTreeSet<GroupId>,
        /// Only devices running one of these versions (empty: any version, or none).
        #[serde(default)]
        source_versions: BTreeSet<String>,
    },
    /// An explicit list of devices, imported with
    /// [`Ota::import_campaign_devices`](crate::engine::Ota::import_campaign_devices).
    DeviceList,
}

impl CampaignTarget {
    /// Every device of `profile`.
    pub fn profile(profile: ProfileId) -> Self {
        Self::Selection {
            profile: Some(profile),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        }
    }

    /// Every member of one of `groups`.
    pub fn groups(groups: impl IntoIterator<Item = GroupId>) -> Self {
        Self::Selection {
            profile: None,
            groups: groups.into_iter().collect(),
            source_versions: BTreeSet::new(),
        }
    }

    /// Narrows a selection to devices currently running one of `versions` (of the package's
    /// kind). A device list is returned unchanged.
    pub fn on_versions(mut self, versions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        if let Self::Selection {
            source_versions, ..
        } = &mut self
        {
            source_versions.extend(versions.into_iter().map(Into::into));
        }
        self
    }

    /// Whether `device` is selected (for [`CampaignTarget::Selection`]; a device list is
    /// decided by its members).
    pub fn selects(&self, device: &crate::device::Device, kind: PackageKind) -> bool {
        match self {
            Self::Selection {
                profile,
                groups,
                source_versions,
            } => {
                profile.is_none_or(|p| device.profile_id == p)
                    && (groups.is_empty() || groups.iter().any(|g| device.groups.contains(g)))
                    && (source_versions.is_empty()
                        || device
                            .current
                            .get(kind)
                            .is_some_and(|c| source_versions.contains(&c.version)))
            }
            Self::DeviceList => false,
        }
    }
}

/// What an operator defines: everything but the runtime position. Build it with
/// [`CampaignSpec::new`] and the setters (or set the public fields); new fields may be added
/// later (the struct is `#[non_exhaustive]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignSpec {
    /// Name (1 to 255 characters).
    pub name: String,
    /// Free text (at most 4096 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// The package devices are updated to.
    pub package_id: PackageId,
    /// Which devices.
    pub target: CampaignTarget,
    /// When it starts; `None` starts it when an operator starts it.
    #[serde(default)]
    pub start_at: Option<Timestamp>,
    /// When it ends at the latest: updates not yet terminal are canceled then. At most the
    /// configured span after the start (6 months by default).
    #[serde(default)]
    pub finish_at: Option<Timestamp>,
    /// Ordered waves; empty means one wave of every device.
    #[serde(default)]
    pub waves: Vec<Wave>,
    /// The error threshold, if any.
    #[serde(default)]
    pub error_threshold: Option<ErrorThreshold>,
    /// The campaign's own pace (always within the global pace).
    #[serde(default)]
    pub pacing: Pacing,
    /// Timeouts and retries of its updates.
    #[serde(default)]
    pub policy: UpdatePolicy,
    /// Devices are notified only inside one of these windows (none: any time).
    #[serde(default)]
    pub windows: Vec<MaintenanceWindow>,
    /// Whether devices that join the target while it runs are taken too.
    #[serde(default)]
    pub dynamic: bool,
}

impl CampaignSpec {
    /// A spec with defaults: no schedule, one wave, no threshold, no pace of its own.
    pub fn new(name: impl Into<String>, package_id: PackageId, target: CampaignTarget) -> Self {
        Self {
            name: name.into(),
            description: None,
            package_id,
            target,
            start_at: None,
            finish_at: None,
            waves: Vec::new(),
            error_threshold: None,
            pacing: Pacing::default(),
            policy: UpdatePolicy::default(),
            windows: Vec::new(),
            dynamic: false,
        }
    }

    /// Sets the free text.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Starts the campaign at `start_at` (it is SCHEDULED until then).
    pub fn start_at(mut self, start_at: Timestamp) -> Self {
        self.start_at = Some(start_at);
        self
    }

    /// Ends the campaign at `finish_at` at the latest.
    pub fn finish_at(mut self, finish_at: Timestamp) -> Self {
        self.finish_at = Some(finish_at);
        self
    }

    /// Sets the ordered waves.
    pub fn waves(mut self, waves: Vec<Wave>) -> Self {
        self.waves = waves;
        self
    }

    /// Sets the error threshold.
    pub fn error_threshold(mut self, error_threshold: ErrorThreshold) -> Self {
        self.error_threshold = Some(error_threshold);
        self
    }

    /// Sets the campaign's own pace.
    pub fn pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// Sets the timeouts and retries of its updates.
    pub fn policy(mut self, policy: UpdatePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Notifies devices only inside these windows.
    pub fn windows(mut self, windows: Vec<MaintenanceWindow>) -> Self {
        self.windows = windows;
        self
    }

    /// Whether devices that join the target while it runs are taken too.
    pub fn dynamic(mut self, dynamic: bool) -> Self {
        self.dynamic = dynamic;
        self
    }

    /// Checks every field; the error names the first that is wrong. `max_span` is the
    /// longest allowed time from start to finish.
    pub fn validate(&self, max_span: Duration) -> Result<(), CampaignError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(CampaignError::InvalidName {
                reason: "the name is empty".into(),
            });
        }
        if self.name.chars().count() > 255 {
            return Err(CampaignError::InvalidName {
                reason: "the name is longer than 255 characters".into(),
            });
        }
        if self.name.chars().any(char::is_control) {
            return Err(CampaignError::InvalidName {
                reason: "the name contains control characters".into(),
            });
        }
        if let Some(d) = &self.description {
            if d.chars().count() > 4096 {
                return Err(CampaignError::InvalidDescription {
                    reason: "the description is longer than 4096 characters".into(),
                });
            }
        }
        if let Some(finish) = self.finish_at {
            if let Some(start) = self.start_at {
                if finish <= start {
                    return Err(CampaignError::FinishBeforeStart { start, finish });
                }
                if finish - start > max_span {
                    return Err(CampaignError::SpanTooLong {
                        span_days: (finish - start).num_days(),
                        max_days: max_span.num_days(),
                    });
                }
            }
        }
        match &self.target {
            CampaignTarget::Selection {
                profile, groups, ..
            } => {
                if profile.is_none() && groups.is_empty() {
                    return Err(CampaignError::InvalidTarget {
                        reason: "name a profile, groups, or both".into(),
                    });
                }
            }
            CampaignTarget::DeviceList => {
                if self.dynamic {
                    return Err(CampaignError::InvalidTarget {
                        reason: "a campaign over an explicit device list cannot be dynamic".into(),
                    });
                }
            }
        }
        for (index, wave) in self.waves.iter().enumerate() {
            wave.validate()
                .map_err(|reason| CampaignError::InvalidWave { index, reason })?;
        }
        if let Some(t) = &self.error_threshold {
            t.validate()
                .map_err(|reason| CampaignError::InvalidThreshold { reason })?;
        }
        self.pacing.validate()?;
        Ok(())
    }
}

/// A campaign field that is not valid.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The name.
    #[error("invalid campaign name: {reason}")]
    InvalidName {
        /// What is wrong.
        reason: String,
    },
    /// The description.
    #[error("invalid campaign description: {reason}")]
    InvalidDescription {
        /// What is wrong.
        reason: String,
    },
    /// Finish at or before start.
    #[error("the finish time {finish} is not after the start time {start}")]
    FinishBeforeStart {
        /// Start.
        start: Timestamp,
        /// Finish.
        finish: Timestamp,
    },
    /// Finish too long after start.
    #[error("the campaign would run {span_days} days; at most {max_days} are allowed")]
    SpanTooLong {
        /// Days from start to finish.
        span_days: i64,
        /// The limit.
        max_days: i64,
    },
    /// The target.
    #[error("invalid campaign target: {reason}")]
    InvalidTarget {
        /// What is wrong.
        reason: String,
    },
    /// A wave.
    #[error("invalid wave {index}: {reason}")]
    InvalidWave {
        /// Position of the wave (from 0).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The error threshold.
    #[error("invalid error threshold: {reason}")]
    InvalidThreshold {
        /// What is wrong.
        reason: String,
    },
    /// The pacing.
    #[error("invalid campaign pacing: {0}")]
    InvalidPacing(#[from] PacingError),
}

/// A stored campaign: the spec and where it is in its life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// Identifier.
    pub id: CampaignId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The package's kind.
    pub kind: PackageKind,
    /// The definition.
    pub spec: CampaignSpec,
    /// Lifecycle state.
    pub state: CampaignState,
    /// Why it is in this state, when not by an operator's plain action (threshold reached,
    /// finish time, ...).
    pub state_reason: Option<String>,
    /// The wave being released (from 0).
    pub current_wave: u32,
    /// When the current wave started.
    pub wave_started_at: Option<Timestamp>,
    /// Devices per wave, fixed when the campaign started.
    pub wave_sizes: Vec<u64>,
    /// Devices of the target that were not taken, per reason, counted when it started.
    pub skipped: Vec<(String, u64)>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it started running.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// Set when an operator resumes a campaign its error threshold paused: the threshold
    /// then counts only devices that finish after the resume.
    #[serde(default)]
    pub threshold_baseline: Option<ThresholdBaseline>,
    /// Incremented by every stored change; the compare-and-set token.
    pub revision: u64,
}

impl Campaign {
    /// A new DRAFT campaign.
    pub fn new(
        tenant_id: TenantId,
        kind: PackageKind,
        spec: CampaignSpec,
        created_by: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: CampaignId::new(),
            tenant_id,
            kind,
            spec,
            state: CampaignState::Draft,
            state_reason: None,
            current_wave: 0,
            wave_started_at: None,
            wave_sizes: Vec::new(),
            skipped: Vec::new(),
            created_by: created_by.into(),
            created_at: now,
            updated_at: now,
            started_at: None,
            ended_at: None,
            threshold_baseline: None,
            revision: 0,
        }
    }

    /// The store key of the campaign's pace.
    pub fn pace_key(&self) -> String {
        format!("campaign:{}", self.id)
    }

    /// Whether the last wave is being released.
    pub fn in_last_wave(&self) -> bool {
        (self.current_wave as usize) + 1 >= self.wave_sizes.len()
    }
}
