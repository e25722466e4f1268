//! An operator's transition of one update written with its audit entry:
//! [`UpdateStore::transition_audited`](super::UpdateStore::transition_audited).

use super::{NoticeLease, OutboxEntry, Transition};
use crate::audit::AuditEntry;

/// An operator's transition of one update (a cancel, a retry) with its audit entry and, when
/// it changes what the device is told (a cancel withdraws its update attributes), the
/// device's notice: written together or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditedTransition {
    /// The compare-and-set transition, written as [`super::UpdateStore::transition`] writes
    /// it.
    pub transition: Transition,
    /// The management action's audit entry (append only: its id must be new).
    pub audit: AuditEntry,
    /// The notice for the device, written into the outbox as
    /// [`super::NoticeOutbox::release_with_notices`] writes a release's notice (replacing
    /// older undelivered notices of the device and kind); `None`: no notice.
    pub notice: Option<OutboxEntry>,
    /// `Some`: the notice is leased to its writer at once (it delivers it itself); `None`:
    /// left for any claimer. Ignored without a notice.
    pub lease: Option<NoticeLease>,
}
