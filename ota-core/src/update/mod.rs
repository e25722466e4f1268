//! The per-device update: its record, the events that drive it and the state machine that
//! decides each transition.
//!
//! [`apply`] is a pure function: given an [`Update`] as stored, an [`UpdateEvent`], the time
//! and the [`UpdatePolicy`], it returns an [`Outcome`]: the new record and the history entry
//! to store (applied), or only the history entry (ignored: a duplicate or stale report;
//! rejected: an event that makes no sense in the current state). It never panics, whatever
//! the input.
//!
//! Rules (after ThingsBoard's states):
//! - Device reports move an update forward along QUEUED, INITIATED, DOWNLOADING, DOWNLOADED,
//!   VERIFIED, UPDATING, UPDATED; skipping forward is fine, a report that would move it back or
//!   that repeats the current state is ignored (devices and networks duplicate and reorder).
//!   Progress percentages are kept for DOWNLOADING and UPDATING.
//! - A report of the target title and version as current completes the update; `UPDATED`
//!   with another current version is a failure that says which version the device runs.
//! - A device's state reports are not taken while the attempt is QUEUED (the device was not
//!   told about it yet; such reports belong to an earlier attempt), but a report that it
//!   already runs the target completes the update.
//! - Each state may have a timeout; a timed-out update fails with a reason naming the state.
//! - A failure schedules an automatic retry when the [`RetryPolicy`] allows another attempt
//!   (exponential backoff); a retry is a new attempt of the same update, back to QUEUED.
//!
//! ## Rules under interference
//!
//! Devices, networks, operators and campaigns act at the same time; these rules hold whatever
//! the order (a property test drives random interleavings of them and checks the rules after
//! every step, on the memory store and on PostgreSQL):
//!
//! - **At most one live update per (device, kind).** Live means not UPDATED, FAILED or
//!   CANCELED, or FAILED with an automatic retry pending. Before any retry (automatic,
//!   operator, or a campaign's "retry all failed") the engine checks that the update is still
//!   the device's latest, that its package is still the device's effective package (an update
//!   of no campaign) or that its campaign is RUNNING or PAUSED, that the package is compatible
//!   with the device's profile and that the device does not already run it. Otherwise an
//!   automatic retry is dropped (the history says why), an operator's retry is refused with
//!   the reason, and a campaign retry skips the device. A device is never notified of two
//!   packages of one kind at once. Stores refuse to revive an update a newer one replaced.
//! - **A report about a replaced package does not touch the new update.** While an attempt is
//!   QUEUED the device has not been told about it, so a state it reports (a late `UPDATED`
//!   or `FAILED` of the package it replaced) is recorded in the history and ignored; only
//!   "I run the target" completes it. Once sent, an `UPDATED` naming as current the target of
//!   an earlier update of the device is about that earlier update and is ignored the same
//!   way; any other version is judged against the new update (a failure naming it).
//! - **Recovery counts:** a FAILED update whose device later reports running its target
//!   completes as UPDATED (the failure stays in the history). So does one whose automatic
//!   retry falls due while the device is recorded as running the target (its report was
//!   recorded but the transition was lost to a store failure between the two writes).
//! - **Timeouts for fresh work:** a QUEUED timeout counts from the update's creation, for
//!   fresh updates as for retried ones.
//! - **Devices are told when their update ends early:** an update the device was told about
//!   (released, or an earlier attempt was) that is canceled (operator cancel, campaign stop,
//!   finish time or failure, replacement, unassignment, incompatibility) sends the withdrawal
//!   notice (the update attributes deleted).
//!
//! Who wins between assignments and campaigns is tabled in [`crate::precedence`].

mod event;
mod history;
mod machine;
mod policy;
mod record;
mod state;
#[cfg(test)]
mod tests;

pub use event::{EventSource, ReportedStatus, UpdateEvent};
pub use history::{HistoryEntry, HistoryOutcome};
pub use machine::{apply, timeout_due, Outcome};
pub use policy::{
    RetryPolicy, Timeouts, UpdatePolicy, DEFAULT_INITIATED_TIMEOUT, DEFAULT_UNANSWERED_ATTEMPTS,
};
pub use record::Update;
pub use state::{UnknownState, UpdateState};
