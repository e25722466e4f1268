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
