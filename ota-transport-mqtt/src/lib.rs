//! Device MQTT protocol of the OTA library: an endpoint that devices connect to, and a bridge
//! that connects to an existing broker.
//!
//! The implementation follows the core engine; this crate is a workspace member now so that
//! the crate map is fixed.
#![warn(missing_docs)]
