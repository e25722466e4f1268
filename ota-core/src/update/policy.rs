//! How long each state may last and how failed attempts are retried.

use super::UpdateState;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A timeout per state: an update that stays longer in a state fails, with a reason naming
/// the state. States without an entry never time out. The default has none.
///
/// Serialized as a map from state name to milliseconds: `{"INITIATED": 600000}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timeouts {
    millis: BTreeMap<UpdateState, i64>,
}

impl Timeouts {
    /// No timeouts.
    pub fn none() -> Self {
        Self::default()
    }

    /// These timeouts with `state` limited to `limit` (a non-positive limit removes it;
    /// terminal states never time out and are ignored).
    pub fn with(mut self, state: UpdateState, limit: Duration) -> Self {
        self.set(state, Some(limit));
        self
    }

    /// Sets or removes the timeout of `state`.
    pub fn set(&mut self, state: UpdateState, limit: Option<Duration>) {
        match limit {
            Some(d) if d > Duration::zero() && !state.is_terminal() => {
                self.millis.insert(state, d.num_milliseconds().max(1));
            }
            _ => {
                self.millis.remove(&state);
            }
        }
    }

    /// The timeout of `state`, if any.
    pub fn get(&self, state: UpdateState) -> Option<Duration> {
        if state.is_terminal() {
            return None;
        }
        self.millis
            .get(&state)
            .and_then(|ms| Duration::try_milliseconds(*ms))
            .filter(|d| *d > Duration::zero())
    }

    /// Every state with a timeout.
    pub fn iter(&self) -> impl Iterator<Item = (UpdateState, Duration)> + '_ {
        UpdateState::ALL
            .into_iter()
            .filter_map(|s| self.get(s).map(|d| (s, d)))
    }
}

/// Automatic retries of failed attempts with exponential backoff.
///
/// Attempt `n` (counting from 1) that fails is retried after
/// `initial_backoff * multiplier^(n-1)`, at most `max_backoff`, as long as `n < max_attempts`.
/// The default, `max_attempts = 1`, never retries automatically; operators can always retry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 0 and 1 both mean no automatic retry.
    pub max_attempts: u32,
    /// Wait before the first retry.
    #[serde(with = "crate::duration_serde::millis")]
    pub initial_backoff: Duration,
    /// Factor applied to the wait for each further retry (1 keeps it constant).
    pub multiplier: u32,
    /// Longest wait.
    #[serde(with = "crate::duration_serde::millis")]
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::seconds(30),
            multiplier: 2,
            max_backoff: Duration::hours(1),
        }
    }
}

impl RetryPolicy {
    /// Sets the most attempts in all (1: no automatic retry).
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the wait before the first retry.
    pub fn initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// Sets the factor the wait grows by per attempt.
    pub fn multiplier(mut self, multiplier: u32) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the longest wait between attempts.
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// No automatic retry.
    pub fn never() -> Self {
        Self::default()
    }

    /// Up to `max_attempts` attempts in all, first retry after `initial_backoff`, doubling up
    /// to one hour.
    pub fn attempts(max_attempts: u32, initial_backoff: Duration) -> Self {
        Self {
            max_attempts,
            initial_backoff,
            ..Self::default()
        }
    }

    /// The wait before retrying after attempt `attempt` failed, or `None` when no automatic
    /// retry follows it.
    pub fn backoff_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let initial = self.initial_backoff.max(Duration::zero());
        let cap = self.max_backoff.max(initial);
        let mut wait = initial;
        for _ in 1..attempt {
            match wait.checked_mul(i32::try_from(self.multiplier.max(1)).unwrap_or(i32::MAX)) {
                Some(next) if next <= cap => wait = next,
                _ => return Some(cap),
            }
        }
        Some(wait.min(cap))
    }
}

/// How long an update may stay INITIATED (its device was told, and has reported nothing
/// since) under the default policy: one hour.
pub const DEFAULT_INITIATED_TIMEOUT: Duration = Duration::hours(1);

/// Attempts in all, under the default policy, for an update whose device does not answer
/// its notice: 3.
pub const DEFAULT_UNANSWERED_ATTEMPTS: u32 = 3;

/// The timeouts and retry policy that govern an update (a campaign's own, or the engine's
/// default for direct assignments).
///
/// The default is a safety net for notices that get no answer: INITIATED times out after
/// [`DEFAULT_INITIATED_TIMEOUT`], and such an attempt is retried (a new attempt is queued,
/// released and notified again) up to [`DEFAULT_UNANSWERED_ATTEMPTS`] attempts in all, even
/// though failures reported by devices are not retried by default. Notices are stored
/// durably and delivered at least once (see [`crate::store::NoticeOutbox`]), so the net
/// catches devices that were offline or dropped the notice, not lost notices. Set
/// `timeouts` to [`Timeouts::none`] and `unanswered_attempts` to 1 to turn it off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpdatePolicy {
    /// Timeouts per state. Default: INITIATED after [`DEFAULT_INITIATED_TIMEOUT`].
    #[serde(default = "default_timeouts")]
    pub timeouts: Timeouts,
    /// Automatic retries of failed attempts.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Attempts in all (the first included) for an update whose attempts fail because the
    /// device never answered the notice (INITIATED timed out), when that is more than
    /// `retry.max_attempts`; the backoff is `retry`'s. 0 and 1 add nothing to `retry`.
    /// Default: [`DEFAULT_UNANSWERED_ATTEMPTS`].
    #[serde(default = "default_unanswered_attempts")]
    pub unanswered_attempts: u32,
}

fn default_timeouts() -> Timeouts {
    Timeouts::none().with(UpdateState::Initiated, DEFAULT_INITIATED_TIMEOUT)
}

fn default_unanswered_attempts() -> u32 {
    DEFAULT_UNANSWERED_ATTEMPTS
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        Self {
            timeouts: default_timeouts(),
            retry: RetryPolicy::default(),
            unanswered_attempts: DEFAULT_UNANSWERED_ATTEMPTS,
        }
    }
}

impl UpdatePolicy {
    /// The retries that follow a failure of `state` timing out: `retry`, with at least
    /// `unanswered_attempts` attempts when the device never answered (INITIATED).
    pub fn retry_after_timeout(&self, state: UpdateState) -> RetryPolicy {
        let mut retry = self.retry.clone();
        if state == UpdateState::Initiated {
            retry.max_attempts = retry.max_attempts.max(self.unanswered_attempts);
        }
        retry
    }
}

impl UpdatePolicy {
    /// A policy of `timeouts` and `retry` (with the default
    /// [`unanswered_attempts`](Self::unanswered_attempts)).
    pub fn new(timeouts: Timeouts, retry: RetryPolicy) -> Self {
        Self {
            timeouts,
            retry,
            unanswered_attempts: DEFAULT_UNANSWERED_ATTEMPTS,
        }
    }

    /// Sets the attempts in all for an update whose device never answers its notice.
    pub fn unanswered_attempts(mut self, attempts: u32) -> Self {
        self.unanswered_attempts = attempts;
        self
    }

    /// Sets the timeouts per state.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}
