//! Device MQTT protocol of the OTA library, compatible with ThingsBoard's device API: an
//! endpoint that devices connect to, and a bridge that connects to an existing broker.
//!
//! - [`protocol`]: the protocol without I/O (topics, payload rules, limits, answers).
//! - `endpoint`: devices connect to the library (MQTT 3.1.1 and 5 on one port); cargo
//!   feature `endpoint`, on by default.
//! - [`bridge`]: the library serves devices through an existing broker.
//! - [`handler`]: runs a device message through the protocol and the engine.
//! - [`delivery`]: notices across server instances sharing one store (the outbox).
#![warn(missing_docs)]

pub mod bridge;
mod content_cache;
pub mod delivery;
#[cfg(feature = "endpoint")]
pub mod endpoint;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
pub mod protocol;
