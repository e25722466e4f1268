//! [`apply`]: the transition function of the update state machine.

use super::{
    EventSource, HistoryEntry, HistoryOutcome, ReportedStatus, Timeouts, Update, UpdateEvent,
    UpdatePolicy, UpdateState,
};
use crate::clock::Timestamp;

/// The result of applying an event. Every variant carries the history entry to store.
// Outcomes are short-lived values returned by value; boxing the update would cost an
// allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The update changed: store `update` (its `revision` is one more than before) and
    /// `history`.
    Applied {
        /// The update after the event.
        update: Update,
        /// The record of the event.
        history: HistoryEntry,
    },
    /// A duplicate or stale event; nothing changed but the history records it.
    Ignored {
        /// Why it was ignored.
        reason: String,
        /// The record of the event.
        history: HistoryEntry,
    },
    /// An event that makes no sense in the current state; nothing changed but the history
    /// records it.
    Rejected {
        /// Why it was rejected.
        reason: String,
        /// The record of the event.
        history: HistoryEntry,
    },
}

impl Outcome {
    /// The history entry to store.
    pub fn history(&self) -> &HistoryEntry {
        match self {
            Self::Applied { history, .. }
            | Self::Ignored { history, .. }
            | Self::Rejected { history, .. } => history,
        }
    }

    /// The new update, when applied.
    pub fn applied(&self) -> Option<&Update> {
        match self {
            Self::Applied { update, .. } => Some(update),
            _ => None,
        }
    }
}

/// When the current state of `update` times out under `timeouts`, if it can.
pub fn timeout_due(update: &Update, _now: Timestamp, timeouts: &Timeouts) -> Option<Timestamp> {
    if update.state.is_terminal() {
        return None;
    }
    let limit = timeouts.get(update.state)?;
    update.state_changed_at.checked_add_signed(limit)
}

/// Applies `event` to `update` at time `now` under `policy`. Pure and total: any update and
/// any event give an outcome, never a panic.
pub fn apply(
    update: &Update,
    event: &UpdateEvent,
    now: Timestamp,
    policy: &UpdatePolicy,
) -> Outcome {
    let step = Step {
        update,
        event,
        now,
        policy,
    };
    match event {
        UpdateEvent::Report(status) => step.report(status),
        UpdateEvent::Dispatched => step.dispatched(),
        UpdateEvent::Cancel { reason, .. } => step.cancel(reason),
        UpdateEvent::Fail { reason, .. } => step.fail(reason),
        UpdateEvent::CheckTimeout => step.check_timeout(),
        UpdateEvent::Retry { source } => step.retry(*source),
    }
}

struct Step<'a> {
    update: &'a Update,
    event: &'a UpdateEvent,
    now: Timestamp,
    policy: &'a UpdatePolicy,
}

impl Step<'_> {
    fn entry(
        &self,
        next: &Update,
        message: Option<String>,
        outcome: HistoryOutcome,
    ) -> HistoryEntry {
        HistoryEntry {
            update_id: self.update.id,
            tenant_id: self.update.tenant_id,
            device_id: self.update.device_id,
            kind: self.update.kind,
            attempt: next.attempt,
            at: self.now,
            from: self.update.state,
            to: next.state,
            source: self.event.source(),
            event: self.event.name().to_string(),
            message,
            outcome,
        }
    }

    fn ignored(&self, reason: impl Into<String>) -> Outcome {
        let reason = reason.into();
        let history = self.entry(self.update, Some(reason.clone()), HistoryOutcome::Ignored);
        Outcome::Ignored { reason, history }
    }

    fn rejected(&self, reason: impl Into<String>) -> Outcome {
        let reason = reason.into();
        let history = self.entry(self.update, Some(reason.clone()), HistoryOutcome::Rejected);
        Outcome::Rejected { reason, history }
    }

    /// The update with the bookkeeping every change shares.
    fn changed(&self) -> Update {
        let mut next = self.update.clone();
        next.revision = next.revision.wrapping_add(1);
        next.updated_at = self.now;
        next
    }

    fn to_state(&self, state: UpdateState) -> Update {
        let mut next = self.changed();
        if next.state != state {
            next.state = state;
            next.state_changed_at = self.now;
            next.progress = None;
        }
        next
    }

    fn applied(&self, update: Update, message: Option<String>) -> Outcome {
        let history = self.entry(&update, message, HistoryOutcome::Applied);
        Outcome::Applied { update, history }
    }

    fn report(&self, status: &ReportedStatus) -> Outcome {
        let current = self.update.state;
        if current == UpdateState::Failed && status.current.as_ref() == Some(&self.update.target) {
            // Recovery: the device runs the target after all. The failure stays in the
            // history; the update completes.
            let mut next = self.to_state(UpdateState::Updated);
            next.error = None;
            next.retry_at = None;
            return self.applied(
                next,
                Some(format!(
                    "device runs {} after the failure; completed",
                    self.update.target
                )),
            );
        }
        if current.is_terminal() {
            return self.ignored(format!("the attempt is over ({current})"));
        }
        if let Some(running) = &status.current {
            if *running == self.update.target {
                let mut next = self.to_state(UpdateState::Updated);
                next.error = None;
                next.retry_at = None;
                return self.applied(
                    next,
                    Some(format!("device runs {} {}", running.title, running.version)),
                );
            }
        }
        let Some(reported) = status.state else {
            return self.ignored("the report names no state");
        };
        match reported {
            UpdateState::Queued | UpdateState::Initiated | UpdateState::Canceled => self.rejected(
                format!("{reported} is set by the server, not reported by devices"),
            ),
            // The device was not told about this attempt yet: whatever state it reports is
            // about an earlier update or attempt (a late UPDATED or FAILED of a replaced
            // package), never about this one.
            _ if current == UpdateState::Queued => self.ignored(format!(
                "{reported} reported before the device was notified of this update"
            )),
            UpdateState::Failed => {
                let text = status
                    .error
                    .clone()
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| "the device reported FAILED".to_string());
                self.failed(text)
            }
            UpdateState::Updated => match &status.current {
                Some(running) => self.failed(format!(
                    "the device reported UPDATED but runs {} {}, not {} {}",
                    running.title,
                    running.version,
                    self.update.target.title,
                    self.update.target.version
                )),
                None => {
                    let mut next = self.to_state(UpdateState::Updated);
                    next.error = None;
                    next.retry_at = None;
                    self.applied(next, Some("the device reported UPDATED".to_string()))
                }
            },
            _ if reported.rank() < current.rank() => {
                self.ignored(format!("stale: {reported} reported while {current}"))
            }
            _ if reported == current => {
                let progress = status.progress.map(|p| p.min(100));
                let keeps_progress =
                    matches!(reported, UpdateState::Downloading | UpdateState::Updating);
                match progress {
                    Some(p) if keeps_progress && self.update.progress.is_none_or(|old| p > old) => {
                        let mut next = self.changed();
                        next.progress = Some(p);
                        self.applied(next, Some(format!("progress {p}%")))
                    }
                    _ => self.ignored(format!("duplicate: already {current}")),
                }
            }
            _ => {
                let mut next = self.to_state(reported);
                if matches!(reported, UpdateState::Downloading | UpdateState::Updating) {
                    next.progress = status.progress.map(|p| p.min(100));
                }
                self.applied(next, None)
            }
        }
    }

    /// Fails the current attempt, scheduling an automatic retry when the policy allows one.
    fn failed(&self, text: String) -> Outcome {
        self.failed_with(text, &self.policy.retry)
    }

    /// Fails the current attempt, scheduling an automatic retry when `retry` allows one.
    fn failed_with(&self, text: String, retry: &super::RetryPolicy) -> Outcome {
        let mut next = self.to_state(UpdateState::Failed);
        next.error = Some(text.clone());
        next.retry_at = retry
            .backoff_after(next.attempt)
            .and_then(|wait| self.now.checked_add_signed(wait));
        let message = match next.retry_at {
            Some(at) => format!(
                "{text}; retry {} at {}",
                next.attempt.saturating_add(1),
                at.to_rfc3339()
            ),
            None => text,
        };
        self.applied(next, Some(message))
    }

    fn dispatched(&self) -> Outcome {
        if self.update.state != UpdateState::Queued {
            return self.rejected(format!(
                "only a QUEUED update can be dispatched; this one is {}",
                self.update.state
            ));
        }
        self.applied(self.to_state(UpdateState::Initiated), None)
    }

    fn cancel(&self, reason: &str) -> Outcome {
        let state = self.update.state;
        if state == UpdateState::Failed && self.update.retry_at.is_some() {
            let mut next = self.changed();
            next.retry_at = None;
            return self.applied(next, Some(format!("automatic retry canceled: {reason}")));
        }
        if state.is_terminal() {
            return self.rejected(format!("the update is already finished ({state})"));
        }
        let mut next = self.to_state(UpdateState::Canceled);
        next.error = Some(reason.to_string());
        next.retry_at = None;
        self.applied(next, Some(reason.to_string()))
    }

    fn fail(&self, reason: &str) -> Outcome {
        let state = self.update.state;
        if state.is_terminal() {
            return self.rejected(format!("the update is already finished ({state})"));
        }
        self.failed(reason.to_string())
    }

    fn check_timeout(&self) -> Outcome {
        let state = self.update.state;
        match timeout_due(self.update, self.now, &self.policy.timeouts) {
            Some(due) if due <= self.now => {
                let limit = self
                    .policy
                    .timeouts
                    .get(state)
                    .map(|d| format!(" after {} s", d.num_seconds()))
                    .unwrap_or_default();
                self.failed_with(
                    format!("timed out in {state}{limit}"),
                    &self.policy.retry_after_timeout(state),
                )
            }
            Some(due) => self.ignored(format!("{state} times out at {}", due.to_rfc3339())),
            None => self.ignored(format!("no timeout applies to {state}")),
        }
    }

    fn retry(&self, source: EventSource) -> Outcome {
        let state = self.update.state;
        match state {
            UpdateState::Failed | UpdateState::Canceled => {}
            UpdateState::Updated => return self.rejected("the update succeeded; nothing to retry"),
            _ => return self.rejected(format!("the update is still in progress ({state})")),
        }
        if source == EventSource::Retry {
            match self.update.retry_at {
                Some(at) if at <= self.now => {}
                Some(at) => {
                    return self.ignored(format!("the retry is due at {}", at.to_rfc3339()))
                }
                None => return self.ignored("no automatic retry is scheduled"),
            }
        }
        let mut next = self.to_state(UpdateState::Queued);
        next.attempt = next.attempt.saturating_add(1);
        next.error = None;
        next.retry_at = None;
        let message = format!("attempt {}", next.attempt);
        self.applied(next, Some(message))
    }
}
