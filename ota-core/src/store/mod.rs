//! The store traits: small capability traits that every backend implements, one error type
//! they all map into, keyset paging and content streams.
//!
//! Every trait is object-safe and used as `Arc<dyn ...>`; [`Store`] bundles them for the
//! engine. `crate::memory` holds the reference implementation and `crate::conformance` the
//! suite every implementation must pass.
//!
//! # Audited writes
//!
//! A management action and its audit entry are written in one atomic step (one transaction on
//! a database), so that a process that dies half-way never leaves an action without its entry
//! or an entry without its action. The writes that are management actions take the entry
//! with them: an `audit: Option<&AuditEntry>` argument, or an [`AuditOf`] that builds it from
//! what the store wrote; an operator's transition of an update (a cancel, a retry) is
//! written with [`UpdateStore::transition_audited`]. `None` writes without an entry (the
//! engine's own changes). An entry whose id is stored already is refused with
//! [`StoreError::Conflict`], and so is its action: nothing is written. Only entries of
//! actions that write nothing else (a report that an action failed) are appended alone, with
//! [`AuditStore::append_audit`].

mod api_keys;
mod assignments;
mod audit_log;
mod audited_transition;
mod campaigns;
mod content;
mod devices;
mod error;
mod outbox;
mod pace;
mod packages;
mod paging;
mod retention;
mod schedules;
mod updates;

pub use crate::ids::NoticeId;
pub use api_keys::{ApiKeyDigest, ApiKeyRecord, ApiKeyStore};
pub use assignments::AssignmentStore;
pub use audit_log::{AuditOf, AuditStore};
pub use audited_transition::AuditedTransition;
pub use campaigns::{skip_reason, CampaignStore, Materialized};
pub use content::{ByteRange, ByteStream, ByteStreamExt, DEFAULT_READ_CHUNK};
pub use devices::{DeviceSelector, DeviceStore};
pub use error::StoreError;
pub use outbox::{
    ClaimRecovery, ClaimedReleases, NoticeClaim, NoticeLease, NoticeOutbox, OutboxEntry,
    PlanRelease, Release,
};
pub use pace::{PaceStore, VersionedPace};
pub use packages::PackageStore;
pub use paging::{Page, PageRequest, MAX_PAGE_SIZE};
pub use retention::{RetainedLog, RetentionStore};
pub use schedules::ScheduleStore;
pub use updates::{ClaimRequest, QueueScope, Transition, UpdateFilter, UpdateStore};

/// Every capability the engine needs, in one object-safe trait. Implemented for any type that
/// implements all of them.
///
/// Most platforms use a ready store ([`MemoryStore`](crate::memory::MemoryStore), or the
/// PostgreSQL store of the `ota-store-postgres` crate) and hand it to the engine as
/// `Arc<dyn Store>`. To write another backend, implement each capability trait
/// ([`PackageStore`], [`DeviceStore`], [`AssignmentStore`], [`UpdateStore`], [`AuditStore`],
/// [`PaceStore`], [`CampaignStore`], [`ScheduleStore`]) with `#[ota_core::async_trait]` on the
/// `impl` blocks, map the backend's failures into [`StoreError`] kinds, and run the
/// conformance suite (feature `conformance`) against it.
pub trait Store:
    PackageStore
    + DeviceStore
    + AssignmentStore
    + UpdateStore
    + AuditStore
    + PaceStore
    + CampaignStore
    + ScheduleStore
    + NoticeOutbox
    + ClaimRecovery
    + RetentionStore
{
}

impl<T> Store for T where
    T: PackageStore
        + DeviceStore
        + AssignmentStore
        + UpdateStore
        + AuditStore
        + PaceStore
        + CampaignStore
        + ScheduleStore
        + NoticeOutbox
        + ClaimRecovery
        + RetentionStore
{
}
