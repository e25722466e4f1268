//! Device HTTP API (ThingsBoard-compatible, with resumable `Range` downloads) and the
//! management REST API of the OTA library.
//!
//! The device API: [`device_router`] with [`DeviceApiOptions`] and the [`HttpNotifier`] that
//! wakes long-polling devices; see [`device`].
#![warn(missing_docs)]

pub mod device;
mod error;
mod range;

pub use device::{device_router, DeviceApiOptions, HttpNotifier, RateLimit};
pub use error::ApiError;
