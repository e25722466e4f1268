//! Releasing queued updates in the same store step as their claim
//! ([`crate::store::NoticeOutbox::claim_and_release`]): when no pace has to be reserved
//! between the claim and the release, the engine hands the store its release plan and the
//! store claims and releases together (on PostgreSQL: one transaction, the claimed rows
//! locked instead of leased, one commit).

use super::delivery::Reach;
use super::tick::TickReport;
use super::{Ota, OtaError};
use crate::clock::Timestamp;
use crate::notifier::Notice;
use crate::package::Package;
use crate::store::{ClaimRequest, NoticeLease, OutboxEntry, QueueScope, Release, Transition};
use crate::update::{self, Outcome, Update, UpdateEvent, UpdatePolicy, UpdateState};
use crate::wire;

/// What the release of one claimed update needs besides the update and its package.
pub(super) struct ReleaseContext<'a> {
    /// The time of the release.
    pub(super) now: Timestamp,
    /// The devices this instance delivers to.
    pub(super) reach: &'a Reach,
    /// The lease on the notices this instance delivers itself.
    pub(super) lease: &'a NoticeLease,
}

impl ReleaseContext<'_> {
    /// The release of `u` (QUEUED -> INITIATED, with its notice) under `policy`, or `None`
    /// when it is not released after all (its package no longer exists, or the state
    /// machine decided otherwise).
    pub(super) fn plan(
        &self,
        u: &Update,
        package: Option<&Package>,
        policy: &UpdatePolicy,
    ) -> Option<Release> {
        let package = package?;
        match update::apply(u, &UpdateEvent::Dispatched, self.now, policy) {
            Outcome::Applied {
                update: mut next,
                history,
            } if next.state == UpdateState::Initiated => {
                next.wake_at = Ota::wake_at(&next, self.now, policy);
                let notice = Notice::Update {
                    tenant_id: next.tenant_id,
                    device_id: next.device_id,
                    kind: next.kind,
                    attributes: wire::update_notice(package),
                };
                let mine = self.reach.contains(next.device_id);
                Some(Release {
                    transition: Transition {
                        update: next,
                        expected_revision: u.revision,
                        history,
                    },
                    notice: OutboxEntry::new(notice, self.now),
                    lease: mine.then(|| self.lease.clone()),
                })
            }
            _ => None,
        }
    }
}

impl Ota {
    /// Claims up to `limit` queued updates of `scope` and releases them in the same store
    /// step, under `policy`; then delivers the notices this instance reaches and handles the
    /// updates that were not released (as [`Ota::dispatch_batch`] does). Only for claims
    /// whose releases need no pace reservation in between. Returns how many updates were
    /// claimed, or `None` when the store has no combined step (nothing was done).
    pub(super) async fn claim_and_release(
        &self,
        limit: u32,
        scope: QueueScope,
        policy: &UpdatePolicy,
        report: &mut TickReport,
    ) -> Result<Option<usize>, OtaError> {
        let reach = self.reach();
        let lease = self.notice_lease();
        let now = self.now();
        let context = ReleaseContext {
            now,
            reach: &reach,
            lease: &lease,
        };
        let request = ClaimRequest {
            now,
            limit,
            owner: self.config.instance_id.clone(),
            lease: self.config.claim_lease,
        };
        let plan = |u: &Update, package: Option<&Package>| context.plan(u, package, policy);
        let Some(answer) = self.store.claim_and_release(&request, scope, &plan).await else {
            return Ok(None);
        };
        let done = answer?;
        report.released += u32::try_from(done.released.len()).unwrap_or(u32::MAX);
        let claimed = done.released.len() + done.left.len();
        let to_deliver: Vec<OutboxEntry> = done
            .released
            .into_iter()
            .filter(|r| r.lease.is_some())
            .map(|r| r.notice)
            .collect();
        let mut first_error = None;
        for u in &done.left {
            let package = match self.store.get_package(u.tenant_id, u.package_id).await {
                Ok(p) => Some(p),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            if let Err(e) = self.dispatch_alone(u, package.as_ref()).await {
                first_error.get_or_insert(e);
            }
        }
        match self.deliver(to_deliver).await {
            Ok((_, failed)) => report.notify_failures += failed,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(Some(claimed)), Err)
    }
}
