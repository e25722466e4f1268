//! The device protocol without I/O: what a device's message on a topic means, which engine
//! call it asks for, and what the device is sent back. Both the endpoint and the bridge run
//! on it; topics here are in endpoint form (`v1/devices/me/...`, `v2/fw/...`).
//!
//! - [`session::DeviceSession::route`] turns (topic, payload) into a [`session::Routed`]: an
//!   immediate reply (RPC answers and errors), an [`session::EngineCall`], or a disconnect.
//! - [`replies`] builds the answers to engine calls and the shared attribute notices.
//! - [`chunk`] holds the chunk request payload rules, [`limits`] the per-device limits.

pub mod chunk;
pub mod limits;
pub mod replies;
pub mod session;
pub mod topic;

pub use chunk::ChunkRequest;
pub use limits::{ProtocolLimits, RateLimiter};
pub use replies::Outgoing;
pub use session::{DeviceSession, EngineCall, Routed};
