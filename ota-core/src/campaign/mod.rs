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
