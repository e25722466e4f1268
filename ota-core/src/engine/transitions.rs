//! Applying events to stored updates: the state machine decides, the store's compare-and-set
//! makes it safe against concurrent writers, and the history records every event.

use super::{Ota, OtaError};
use crate::clock::Timestamp;
use crate::ids::{TenantId, UpdateId};
use crate::notifier::Notice;
use crate::store::{AuditOf, AuditedTransition, OutboxEntry, Release, StoreError, Transition};
use crate::update::{self, Outcome, Update, UpdateEvent, UpdatePolicy};
use std::sync::Arc;

impl Ota {
    /// The timeouts and retries that govern `update`: its campaign's policy (kept in memory
    /// once the campaign has started, see [`super::policy_cache`]), else the engine's.
    pub(super) async fn policy_for(&self, update: &Update) -> Result<Arc<UpdatePolicy>, OtaError> {
        if let Some(id) = update.campaign_id {
            if let Some(policy) = self.policies.get(update.tenant_id, id) {
                return Ok(policy);
            }
            match self.store.get_campaign(update.tenant_id, id).await {
                Ok(c) => return Ok(self.policies.remember(&c)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Arc::new(self.config.policy.clone()))
    }

    /// When the engine must look at `update` again: its automatic retry, or the timeout of its
    /// current state, whichever comes first.
    pub(super) fn wake_at(
        update: &Update,
        now: Timestamp,
        policy: &UpdatePolicy,
    ) -> Option<Timestamp> {
        let timeout = update::timeout_due(update, now, &policy.timeouts);
        match (update.retry_at, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies `event` to the stored update `id`: re-reads and decides again when another
    /// writer came first. Returns the outcome that was stored.
    pub(super) async fn drive(
        &self,
        tenant: TenantId,
        id: UpdateId,
        event: &UpdateEvent,
    ) -> Result<Outcome, OtaError> {
        let mut attempts = 0;
        loop {
            let current = self.store.get_update(tenant, id).await?;
            match self.apply_once(&current, event).await? {
                Some(outcome) => return Ok(outcome),
                None => {
                    attempts += 1;
                    if attempts > self.config.max_cas_retries {
                        return Err(OtaError::Contention {
                            device: current.device_id,
                        });
                    }
                }
            }
        }
    }

    /// Applies an operator's `event` to the stored update `id` like [`Ota::drive`]; when it
    /// applies, the transition is written in one atomic step with its audit entry (built by
    /// `audit` from the update as written) and, when given, `notice` (into the outbox,
    /// replacing older undelivered notices of the device and kind), so that a process that
    /// dies right after loses neither. Returns the outcome and, when this instance reaches the
    /// device, the notice (leased to it) to deliver now. An event that does not apply writes
    /// its history entry and no audit entry.
    pub(super) async fn drive_audited(
        &self,
        tenant: TenantId,
        id: UpdateId,
        event: &UpdateEvent,
        notice: Option<Notice>,
        audit: AuditOf<'_, Update>,
    ) -> Result<(Outcome, Option<OutboxEntry>), OtaError> {
        let mut attempts = 0;
        loop {
            let current = self.store.get_update(tenant, id).await?;
            let now = self.now();
            let policy = self.policy_for(&current).await?;
            match update::apply(&current, event, now, &policy) {
                Outcome::Applied { update, history } => {
                    let mut next = update;
                    next.wake_at = Self::wake_at(&next, now, &policy);
                    let entry = notice.clone().map(|n| OutboxEntry::new(n, now));
                    let mine = entry.is_some() && self.reach().contains(next.device_id);
                    let write = AuditedTransition {
                        transition: Transition {
                            update: next.clone(),
                            expected_revision: current.revision,
                            history: history.clone(),
                        },
                        audit: audit(&next),
                        notice: entry.clone(),
                        lease: mine.then(|| self.notice_lease()),
                    };
                    match self.write_audited(&write).await {
                        Ok(()) => {
                            let outcome = Outcome::Applied {
                                update: next,
                                history,
                            };
                            return Ok((outcome, entry.filter(|_| mine)));
                        }
                        Err(StoreError::PreconditionFailed { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                other => {
                    self.store.append_history(other.history()).await?;
                    return Ok((other, None));
                }
            }
            attempts += 1;
            if attempts > self.config.max_cas_retries {
                return Err(OtaError::Contention {
                    device: current.device_id,
                });
            }
        }
    }

    /// Writes `write` in one atomic step; with a store that has no such write
    /// ([`crate::store::UpdateStore::transition_audited`] answers `None`), the transition
    /// (with its notice) first, then the entry.
    async fn write_audited(&self, write: &AuditedTransition) -> Result<(), StoreError> {
        if let Some(answer) = self.store.transition_audited(write).await {
            return answer;
        }
        let t = &write.transition;
        match &write.notice {
            Some(notice) => {
                let release = Release {
                    transition: t.clone(),
                    notice: notice.clone(),
                    lease: write.lease.clone(),
                };
                self.store
                    .release_with_notices(std::slice::from_ref(&release))
                    .await
                    .pop()
                    .unwrap_or_else(|| {
                        Err(StoreError::Unavailable {
                            message: "the store gave no answer for the transition".into(),
                        })
                    })?;
            }
            None => {
                self.store
                    .transition(&t.update, t.expected_revision, &t.history)
                    .await?;
            }
        }
        self.store.append_audit(&write.audit).await
    }

    /// Applies `event` to `current` as read. `None` when the compare-and-set lost a race.
    pub(super) async fn apply_once(
        &self,
        current: &Update,
        event: &UpdateEvent,
    ) -> Result<Option<Outcome>, OtaError> {
        let now = self.now();
        let policy = self.policy_for(current).await?;
        let outcome = update::apply(current, event, now, &policy);
        match &outcome {
            Outcome::Applied { update, history } => {
                let mut next = update.clone();
                next.wake_at = Self::wake_at(&next, now, &policy);
                match self
                    .store
                    .transition(&next, current.revision, history)
                    .await
                {
                    Ok(()) => Ok(Some(Outcome::Applied {
                        update: next,
                        history: history.clone(),
                    })),
                    Err(crate::store::StoreError::PreconditionFailed { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Outcome::Ignored { history, .. } | Outcome::Rejected { history, .. } => {
                self.store.append_history(history).await?;
                Ok(Some(outcome))
            }
        }
    }

    /// Turns off the automatic retry of a failed update whose package is no longer wanted.
    pub(super) async fn drop_retry(&self, failed: &Update, reason: &str) -> Result<(), OtaError> {
        let event = UpdateEvent::Cancel {
            source: crate::update::EventSource::Server,
            reason: reason.to_string(),
        };
        self.drive(failed.tenant_id, failed.id, &event).await?;
        Ok(())
    }
}
