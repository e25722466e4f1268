//! Device HTTP API (ThingsBoard-compatible, with resumable `Range` downloads) and the
//! management REST API of the OTA library.
//!
//! The implementation follows the core engine; this crate is a workspace member now so that
//! the crate map is fixed.
#![warn(missing_docs)]
