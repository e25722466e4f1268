//! Pure rollout rules: wave sizes, when the next wave starts, the error threshold.

use super::StateCounts;
use crate::clock::Timestamp;
use crate::update::UpdateState;
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// How many devices a wave takes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum WaveSize {
    /// A fixed number of devices.
    Count(u64),
    /// A percentage (0 < p <= 100) of the campaign's devices, rounded up.
    Percent(f64),
    /// Every device not taken by an earlier wave.
    Rest,
}

/// When a wave after the first starts. Whatever comes first of: the earlier waves reaching
/// `success_percent` of their devices UPDATED, `after` elapsed since the previous wave
/// started, or an operator starting it. With both `None`, only an operator starts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WaveAdvance {
    /// Start when this percentage of the devices of the earlier waves is UPDATED.
    pub success_percent: Option<f64>,
    /// Start this long after the previous wave started.
    #[serde(default, with = "crate::duration_serde::millis_opt")]
    pub after: Option<Duration>,
}

/// One wave of a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    /// Its size.
    pub size: WaveSize,
    /// When it starts (ignored for the first wave, which starts with the campaign).
    #[serde(default)]
    pub advance: WaveAdvance,
}

impl Wave {
    /// A wave of `size` that only an operator starts (for the first wave: that starts with
    /// the campaign).
    pub fn new(size: WaveSize) -> Self {
        Self {
            size,
            advance: WaveAdvance::default(),
        }
    }

    /// A wave of `size` started by the earlier waves reaching `success_percent` UPDATED.
    pub fn after_success(size: WaveSize, success_percent: f64) -> Self {
        Self {
            size,
            advance: WaveAdvance {
                success_percent: Some(success_percent),
                after: None,
            },
        }
    }

    /// Checks the wave's numbers; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self.size {
            WaveSize::Count(0) => return Err("a wave of 0 devices".into()),
            WaveSize::Percent(p) if !(p > 0.0 && p <= 100.0) => {
                return Err(format!("percentage {p} is not in (0, 100]"))
            }
            _ => {}
        }
        if let Some(p) = self.advance.success_percent {
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!("success threshold {p} is not in (0, 100]"));
            }
        }
        if let Some(d) = self.advance.after {
            if d <= Duration::zero() {
                return Err("the wait before a wave must be positive".into());
            }
        }
        Ok(())
    }
}

/// The sizes of the waves for a campaign of `total` devices: one size per wave of `waves`, in
/// order, plus a last size for the devices left over when the last wave is not
/// [`WaveSize::Rest`] (dropped when nothing is left). Sizes add up to `total`; a wave never
/// gets more than its count or its percentage (rounded up) of `total`; no waves at all means
/// one wave of everything.
pub fn plan_waves(waves: &[Wave], total: u64) -> Vec<u64> {
    let mut sizes = Vec::with_capacity(waves.len() + 1);
    let mut left = total;
    for (i, w) in waves.iter().enumerate() {
        let last = i + 1 == waves.len();
        let wanted = match w.size {
            WaveSize::Count(c) => c,
            WaveSize::Percent(p) => percent_of(p, total),
            WaveSize::Rest => left,
        };
        let size = wanted.min(left);
        sizes.push(size);
        left -= size;
        if last && left > 0 {
            sizes.push(left);
            left = 0;
        }
    }
    if waves.is_empty() {
        sizes.push(total);
    }
    sizes
}

/// `p` percent of `total`, rounded up, at most `total`.
fn percent_of(p: f64, total: u64) -> u64 {
    if p.is_nan() || p <= 0.0 {
        return 0;
    }
    let exact = (p / 100.0) * total as f64;
    let up = exact.ceil();
    if up >= total as f64 {
        total
    } else {
        up as u64
    }
}

/// Whether the wave after `current` should start now. `waves` is the campaign's spec,
/// `released` the counts of the devices in waves `0..=current`, `wave_started_at` when
/// `current` started. The operator's action is handled by the engine, not here.
pub fn next_wave_due(
    waves: &[Wave],
    current: usize,
    released: &StateCounts,
    wave_started_at: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    // The wave after `current` in the spec; a trailing implicit rest wave follows the rule of
    // the last declared wave.
    let Some(next) = waves.get(current + 1).or_else(|| waves.last()) else {
        return false;
    };
    if let Some(p) = next.advance.success_percent {
        let total = released.total();
        if total > 0 && released.successful() as f64 * 100.0 >= p * total as f64 {
            return true;
        }
    }
    if let (Some(wait), Some(started)) = (next.advance.after, wave_started_at) {
        if started.checked_add_signed(wait).is_some_and(|t| t <= now) {
            return true;
        }
    }
    false
}

/// What reaching the error threshold does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdAction {
    /// Pause the campaign (an operator resumes or stops it).
    Pause,
    /// Fail the campaign: nothing more is released.
    Fail,
}

/// The error threshold: once at least `min_finished` devices finished (UPDATED or FAILED),
/// a share of FAILED at or above `percent` triggers `action`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorThreshold {
    /// Percentage of failed among finished devices (0 < p <= 100).
    pub percent: f64,
    /// Finished devices needed before the threshold applies (at least 1 is always needed).
    pub min_finished: u64,
    /// What happens when it is reached.
    pub action: ThresholdAction,
}

impl ErrorThreshold {
    /// Checks the numbers; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.percent > 0.0 && self.percent <= 100.0) {
            return Err(format!("percentage {} is not in (0, 100]", self.percent));
        }
        Ok(())
    }

    /// The action due for these counts, if the threshold is reached.
    pub fn decide(&self, counts: &StateCounts) -> Option<ThresholdAction> {
        let failed = counts.failed();
        let finished = counts.successful() + failed;
        if finished == 0 || finished < self.min_finished {
            return None;
        }
        // failed / finished >= percent / 100, without rounding trouble for whole percents.
        let reached = (failed as f64) * 100.0 >= self.percent * finished as f64;
        reached.then_some(self.action)
    }
}

/// What had finished when an operator resumed a campaign that its error threshold paused.
/// From then on the threshold counts only the devices that finish after the resume, so a
/// resumed campaign keeps running until new failures cross the threshold again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdBaseline {
    /// Final failures (no automatic retry pending) at the resume.
    pub failed: u64,
    /// UPDATED devices at the resume.
    pub successful: u64,
}

impl ErrorThreshold {
    /// The action due, counting only final failures: `pending_retries` of the FAILED count
    /// still have an automatic retry pending and are not counted (as failed nor as finished)
    /// until their retries are exhausted. With a `baseline`, only what finished after it
    /// counts.
    pub fn decide_final(
        &self,
        counts: &StateCounts,
        pending_retries: u64,
        baseline: Option<&ThresholdBaseline>,
    ) -> Option<ThresholdAction> {
        let mut c = *counts;
        c.remove(UpdateState::Failed, pending_retries);
        if let Some(b) = baseline {
            c.remove(UpdateState::Failed, b.failed);
            c.remove(UpdateState::Updated, b.successful);
        }
        self.decide(&c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(updated: u64, failed: u64, queued: u64) -> StateCounts {
        let mut c = StateCounts::default();
        c.add(UpdateState::Updated, updated);
        c.add(UpdateState::Failed, failed);
        c.add(UpdateState::Queued, queued);
        c
    }

    #[test]
    fn canary_ten_percent_and_the_rest() {
        let waves = [
            Wave::after_success(WaveSize::Percent(1.0), 100.0),
            Wave::after_success(WaveSize::Percent(10.0), 95.0),
            Wave::after_success(WaveSize::Rest, 95.0),
        ];
        assert_eq!(plan_waves(&waves, 1000), vec![10, 100, 890]);
        assert_eq!(plan_waves(&waves, 5), vec![1, 1, 3]);
        assert_eq!(plan_waves(&waves, 0), vec![0, 0, 0]);
        assert_eq!(plan_waves(&[], 7), vec![7]);
        let counted = [Wave::after_success(WaveSize::Count(3), 50.0)];
        assert_eq!(
            plan_waves(&counted, 10),
            vec![3, 7],
            "an implicit rest wave"
        );
        assert_eq!(plan_waves(&counted, 2), vec![2]);
    }

    #[test]
    fn threshold_needs_the_minimum_of_finished_devices() {
        let t = ErrorThreshold {
            percent: 20.0,
            min_finished: 10,
            action: ThresholdAction::Pause,
        };
        assert_eq!(t.decide(&counts(5, 4, 100)), None, "9 finished");
        assert_eq!(
            t.decide(&counts(8, 2, 100)),
            Some(ThresholdAction::Pause),
            "2/10 = 20%"
        );
        assert_eq!(t.decide(&counts(9, 2, 100)), None, "2/11 < 20%");
    }

    #[test]
    fn waves_advance_on_success_or_after_a_wait() {
        let t0 = crate::clock::ManualClock::at_epoch_2024();
        let t0 = crate::clock::Clock::now(&t0);
        let waves = [
            Wave::after_success(WaveSize::Count(10), 100.0),
            Wave {
                size: WaveSize::Rest,
                advance: WaveAdvance {
                    success_percent: Some(80.0),
                    after: Some(Duration::hours(1)),
                },
            },
        ];
        assert!(!next_wave_due(&waves, 0, &counts(7, 0, 3), Some(t0), t0));
        assert!(next_wave_due(&waves, 0, &counts(8, 0, 2), Some(t0), t0));
        assert!(next_wave_due(
            &waves,
            0,
            &counts(0, 0, 10),
            Some(t0),
            t0 + Duration::hours(1)
        ));
        let manual = [
            Wave::after_success(WaveSize::Count(1), 50.0),
            Wave {
                size: WaveSize::Rest,
                advance: WaveAdvance::default(),
            },
        ];
        assert!(!next_wave_due(
            &manual,
            0,
            &counts(1, 0, 0),
            Some(t0),
            t0 + Duration::days(300)
        ));
    }

    fn any_size() -> impl Strategy<Value = WaveSize> {
        prop_oneof![
            (0u64..2_000).prop_map(WaveSize::Count),
            (0.01f64..=100.0).prop_map(WaveSize::Percent),
            Just(WaveSize::Rest),
        ]
    }

    proptest! {
        #[test]
        fn wave_sizes_add_up_and_never_exceed_their_spec(
            sizes in proptest::collection::vec(any_size(), 0..6),
            total in 0u64..1_000_000,
        ) {
            let waves: Vec<Wave> = sizes.iter().map(|s| Wave { size: *s, advance: WaveAdvance::default() }).collect();
            let plan = plan_waves(&waves, total);
            prop_assert_eq!(plan.iter().sum::<u64>(), total);
            prop_assert!(plan.len() == waves.len() || plan.len() == waves.len() + 1 || waves.is_empty());
            for (size, wave) in plan.iter().zip(&waves) {
                match wave.size {
                    WaveSize::Count(c) => prop_assert!(*size <= c),
                    WaveSize::Percent(p) => prop_assert!((*size as f64) <= (p / 100.0 * total as f64).ceil()),
                    WaveSize::Rest => {}
                }
            }
        }

        #[test]
        fn threshold_decisions_equal_the_reference(
            updated in 0u64..10_000,
            failed in 0u64..10_000,
            others in 0u64..10_000,
            percent in 1u32..=100,
            min_finished in 0u64..500,
        ) {
            let t = ErrorThreshold { percent: f64::from(percent), min_finished, action: ThresholdAction::Fail };
            // Reference in integers: failed / (updated + failed) >= percent / 100.
            let finished = updated + failed;
            let reference = finished > 0
                && finished >= min_finished
                && u128::from(failed) * 100 >= u128::from(percent) * u128::from(finished);
            prop_assert_eq!(t.decide(&counts(updated, failed, others)).is_some(), reference);
        }
    }
}
