//! The notice outbox: notices written in the same atomic step as the release they announce,
//! delivered from there and removed once delivered, so that a process that dies between the
//! two loses no notice.
//!
//! The life of a notice:
//! 1. A release (QUEUED -> INITIATED) is written with
//!    [`NoticeOutbox::release_with_notices`]: the transition, its history and its notice
//!    commit together or not at all. A withdrawal is written with
//!    [`NoticeOutbox::enqueue_notice`].
//! 2. The writer may lease the notice to itself at once ([`NoticeLease`]) and deliver it
//!    straight away; otherwise (or when its lease lapses: the writer died or its transport
//!    failed) any engine takes it with [`NoticeOutbox::claim_notices`], which never gives one
//!    notice to two claimers while a lease holds.
//! 3. Once handed to the transport, [`NoticeOutbox::mark_delivered`] removes it.
//!
//! Delivery is at least once: a notice handed to the transport by a process that died
//! before marking it delivered is delivered again. A notice for a device and kind replaces
//! every older undelivered one for the same device and kind (a notice carries the current
//! attributes, so only the newest matters and an old one is never delivered after it).

use super::{ClaimRequest, QueueScope, StoreError, Transition};
use crate::clock::Timestamp;
use crate::ids::{DeviceId, NoticeId, TenantId};
use crate::notifier::Notice;
use crate::package::Package;
use crate::update::Update;
use async_trait::async_trait;
use chrono::Duration;

/// A notice in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// Its id (time-ordered: claims take the oldest first).
    pub id: NoticeId,
    /// What the device is told.
    pub notice: Notice,
    /// When it was written.
    pub created_at: Timestamp,
}

impl OutboxEntry {
    /// A new entry for `notice`, written at `now`.
    pub fn new(notice: Notice, now: Timestamp) -> Self {
        Self {
            id: NoticeId::new(),
            notice,
            created_at: now,
        }
    }

    /// The notice's tenant.
    pub fn tenant_id(&self) -> TenantId {
        match &self.notice {
            Notice::Update { tenant_id, .. } | Notice::Withdrawal { tenant_id, .. } => *tenant_id,
        }
    }
}

/// A lease on a notice: who delivers it, and until when others keep off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeLease {
    /// The delivering engine instance.
    pub owner: String,
    /// When the lease lapses.
    pub until: Timestamp,
}

/// A release: a compare-and-set transition written together with the notice that announces
/// it.
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    /// The transition (QUEUED -> INITIATED).
    pub transition: Transition,
    /// The notice for the device.
    pub notice: OutboxEntry,
    /// `Some`: the notice is leased to its writer at once (it delivers it itself); `None`:
    /// left for any claimer.
    pub lease: Option<NoticeLease>,
}

/// A request to claim undelivered notices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeClaim {
    /// The current time.
    pub now: Timestamp,
    /// At most this many.
    pub limit: u32,
    /// Who claims (an engine instance's id).
    pub owner: String,
    /// How long the claim holds.
    pub lease: Duration,
    /// Only notices for these devices (`None`: for any device). An instance that holds the
    /// connections of some devices only takes theirs.
    pub devices: Option<Vec<DeviceId>>,
}

/// Decides the release of a claimed update, given its package (`None`: the package no longer
/// exists): the release to write, or `None` to leave the update claimed by the caller (see
/// [`NoticeOutbox::claim_and_release`]).
pub type PlanRelease<'a> = dyn Fn(&Update, Option<&Package>) -> Option<Release> + Send + Sync + 'a;

/// What [`NoticeOutbox::claim_and_release`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimedReleases {
    /// The releases written (each with its notice), in claim order.
    pub released: Vec<Release>,
    /// Claimed updates the planner did not release, leased to the claimer as
    /// [`super::UpdateStore::claim_queued`] leases them, in claim order.
    pub left: Vec<Update>,
}

/// Stores undelivered notices.
#[async_trait]
pub trait NoticeOutbox: Send + Sync {
    /// Writes each release: its transition exactly as [`super::UpdateStore::transition`]
    /// would, and, in the same atomic step, its notice into the outbox (replacing older
    /// undelivered notices of the device and kind). A transition that is refused writes no
    /// notice. One answer per release, in order; not atomic as a whole.
    async fn release_with_notices(&self, releases: &[Release]) -> Vec<Result<(), StoreError>>;

    /// Claims queued updates as [`super::UpdateStore::claim_queued`] would (same `request`
    /// and `scope`, same order, never an update another claimer holds) and, in the same
    /// atomic step, writes the release `plan` gives for each (as
    /// [`NoticeOutbox::release_with_notices`] would, notice included); the updates `plan`
    /// leaves out stay claimed by the caller. A claim followed at once by its release then
    /// costs no lease write and no second commit. An error writes nothing (no claim, no
    /// release). `plan` is called once per claimed update, with the store locked or a
    /// transaction open: it must not call the store. `None` (the default): the store has no
    /// such combined step; the caller claims, then releases.
    async fn claim_and_release(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
        plan: &PlanRelease<'_>,
    ) -> Option<Result<ClaimedReleases, StoreError>> {
        let _ = (request, scope, plan);
        None
    }

    /// Puts one notice into the outbox (replacing older undelivered notices of the device and
    /// kind), leased to `lease`'s owner when given.
    async fn enqueue_notice(
        &self,
        entry: &OutboxEntry,
        lease: Option<&NoticeLease>,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` undelivered notices that nobody holds, oldest first, leased to
    /// the claimer until `now + lease`. Two claimers never get the same notice while a lease
    /// holds.
    async fn claim_notices(&self, request: &NoticeClaim) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Removes delivered notices. Ids that are not (or no longer) in the outbox are ignored.
    async fn mark_delivered(&self, ids: &[NoticeId]) -> Result<(), StoreError>;

    /// How many notices wait for delivery, in one tenant or (`None`) in all.
    async fn count_undelivered(&self, tenant: Option<TenantId>) -> Result<u64, StoreError>;
}

/// Claims held by an engine instance, as a whole.
#[async_trait]
pub trait ClaimRecovery: Send + Sync {
    /// Gives back every claim `owner` holds, on updates and on notices, so that the work is
    /// taken again at once instead of when the leases lapse. An engine calls it for its own
    /// id when it starts: whatever an earlier process under the same id held died with it.
    /// Returns how many claims were given back.
    async fn release_claims_of(&self, owner: &str) -> Result<u64, StoreError>;
}
