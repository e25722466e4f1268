//! Device HTTP API (ThingsBoard-compatible, with resumable `Range` downloads) and the
//! management REST API of the OTA library.
//!
//! The device API: [`device_router`] with [`DeviceApiOptions`] and the [`HttpNotifier`] that
//! wakes long-polling devices; see [`device`].
//!
//! The management API is in [`management`]: [`management_router`] builds it.
#![warn(missing_docs)]

pub mod device;
mod error;
pub mod management;
mod range;

pub use device::{device_router, DeviceApiOptions, HttpNotifier, RateLimit};
pub use error::ApiError;
pub use management::{management_router, ManagementOptions};
