//! Example programs wiring the OTA crates together (a full server, a device-fleet simulator and
//! a minimal embedding). They hold configuration and glue only; every rule lives in `ota-core`.
#![warn(missing_docs)]
