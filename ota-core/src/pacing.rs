//! Release pacing (placeholder until the pacing rules land).

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// The stored state of a pace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaceState {
    /// The next slot.
    pub next_slot: Option<Timestamp>,
    /// Released so far.
    pub released: u64,
}
