//! Campaigns (rollouts): one package to a chosen set of devices, with a lifecycle, waves,
//! thresholds, pacing, maintenance windows and statistics.
//!
//! - [`Campaign`] is the definition and its runtime position; [`CampaignSpec`] is what an
//!   operator writes, validated by [`CampaignSpec::validate`].
//! - [`CampaignState`] is the lifecycle (DRAFT, SCHEDULED, RUNNING, PAUSED, FINISHED, STOPPED,
//!   FAILED, ARCHIVED) with [`CampaignState::check_transition`].
//! - [`rollout`] holds the pure rules: wave sizes, when a wave may start, the error threshold.
//! - [`CampaignStats`] are the counters a store keeps per campaign and wave, updated with every
//!   transition so that reading them costs the same at any fleet size.
//! - [`device_list`] parses the CSV device lists of explicit targets.
//!
//! The engine runs campaigns ([`crate::engine::Ota`]'s campaign methods); stores keep them
//! ([`crate::store::CampaignStore`]).
//!
//! ## Rules
//!
//! - **Lifecycle.** Only DRAFT and SCHEDULED are editable. Resume applies to a PAUSED campaign
//!   only: DRAFT and SCHEDULED answer with the illegal-transition error naming their state. A
//!   campaign started by hand (no start time, or one already past) must finish within the
//!   configured span (6 months by default) counted from now, like a scheduled one. Copying a
//!   campaign with an explicit device list copies the list.
//! - **Error threshold.** Only final failures count: an attempt that failed but still has an
//!   automatic retry pending counts neither as failed nor as finished until its retries are
//!   exhausted. When the threshold paused the campaign and an operator resumes it, the
//!   threshold counts only devices that finish after the resume
//!   ([`ThresholdBaseline`], stored in [`Campaign::threshold_baseline`]): the campaign runs on
//!   until new failures cross the threshold again. To tolerate more, stop the campaign and
//!   start a copy with another threshold.
//! - **Ending.** Stopping, the finish time and the error threshold with the fail action all
//!   end the campaign the same way: the new state (STOPPED, FINISHED, FAILED) is saved
//!   first, then every update it still holds (queued, in progress, and pending automatic
//!   retries) is canceled a page at a time, and devices that were told about their update get
//!   the withdrawal notice. Ending is **resumable**: when a process dies or a store call fails
//!   half-way, the engine's tick finds ended campaigns that still hold unfinished updates
//!   ([`crate::store::CampaignStore::ended_campaigns_with_live_updates`]) and finishes the
//!   cancelling; doing it twice changes nothing. Stopping a STOPPED campaign again is
//!   answered (it finishes any cancelling left over), never refused in a way that leaves
//!   updates stuck. No device stays QUEUED under an ended campaign, and a new campaign does
//!   not skip such devices as busy once the tick ran.
//! - **Busy devices.** A device with a live update of the kind, or a failed one waiting for
//!   its automatic retry, is skipped as busy when a campaign starts or a device joins.
//! - **Compatibility.** A campaign update is re-checked when its device changes profile or
//!   groups: a package no longer compatible is never released; the update is canceled with
//!   the reason "incompatible with the device's profile" and counted as canceled.
//! - **Dynamic campaigns** keep running until their finish time or an operator's stop, even
//!   when every device known so far is done: devices that join the target later are taken
//!   (created in, or moved to, the profile or a group, or reporting a targeted source version
//!   while they hold no live update).
//!
//! Who wins between a campaign's update and assignments is tabled in [`crate::precedence`].

mod definition;
pub mod device_list;
mod lifecycle;
pub mod rollout;
mod stats;

pub use definition::{Campaign, CampaignError, CampaignSpec, CampaignTarget, DEFAULT_MAX_SPAN};
pub use lifecycle::{CampaignState, IllegalTransition};
pub use rollout::{
    ErrorThreshold, ThresholdAction, ThresholdBaseline, Wave, WaveAdvance, WaveSize,
};
pub use stats::{CampaignStats, StateCounts};
