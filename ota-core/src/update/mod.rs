//! The per-device update: its states, the transition function, timeouts and retries.

mod state;

pub use state::{UnknownState, UpdateState};
