//! Device HTTP API (ThingsBoard-compatible, with resumable `Range` downloads) and the
//! management REST API of the OTA library.
//!
//! The management API is in [`management`]: [`management_router`] builds it.
#![warn(missing_docs)]

pub mod management;

pub use management::{management_router, ManagementOptions};
