//! Campaign statistics: counts per update state, kept by the store.

use crate::update::UpdateState;
use serde::{Deserialize, Serialize};

/// Number of updates in each [`UpdateState`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateCounts {
    counts: [u64; 9],
}

impl StateCounts {
    /// The count of `state`.
    pub fn get(&self, state: UpdateState) -> u64 {
        self.counts[state as usize]
    }

    /// Adds `n` to the count of `state`.
    pub fn add(&mut self, state: UpdateState, n: u64) {
        let c = &mut self.counts[state as usize];
        *c = c.saturating_add(n);
    }

    /// Takes `n` from the count of `state` (never below zero).
    pub fn remove(&mut self, state: UpdateState, n: u64) {
        let c = &mut self.counts[state as usize];
        *c = c.saturating_sub(n);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &StateCounts) {
        for s in UpdateState::ALL {
            self.add(s, other.get(s));
        }
    }

    /// Every update counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// QUEUED: not started.
    pub fn not_started(&self) -> u64 {
        self.get(UpdateState::Queued)
    }

    /// INITIATED through UPDATING: ongoing.
    pub fn ongoing(&self) -> u64 {
        UpdateState::ALL
            .into_iter()
            .filter(|s| s.is_in_progress())
            .map(|s| self.get(s))
            .sum()
    }

    /// UPDATED.
    pub fn successful(&self) -> u64 {
        self.get(UpdateState::Updated)
    }

    /// FAILED (including attempts waiting for an automatic retry).
    pub fn failed(&self) -> u64 {
        self.get(UpdateState::Failed)
    }

    /// CANCELED.
    pub fn canceled(&self) -> u64 {
        self.get(UpdateState::Canceled)
    }

    /// Successful plus failed.
    pub fn finished(&self) -> u64 {
        self.successful() + self.failed()
    }

    /// Pairs of (state, count) for every state.
    pub fn iter(&self) -> impl Iterator<Item = (UpdateState, u64)> + '_ {
        UpdateState::ALL.into_iter().map(|s| (s, self.get(s)))
    }
}

/// The statistics of one campaign: counts per state for the whole campaign and per wave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignStats {
    /// Counts over every wave.
    pub counts: StateCounts,
    /// Counts per wave, index = wave number.
    pub waves: Vec<StateCounts>,
}

impl CampaignStats {
    /// Builds the statistics from per-wave counts.
    pub fn from_waves(waves: Vec<StateCounts>) -> Self {
        let mut counts = StateCounts::default();
        for w in &waves {
            counts.merge(w);
        }
        Self { counts, waves }
    }

    /// Counts of the waves `0..=wave`.
    pub fn up_to_wave(&self, wave: usize) -> StateCounts {
        let mut c = StateCounts::default();
        for w in self.waves.iter().take(wave + 1) {
            c.merge(w);
        }
        c
    }
}
