//! Example programs wiring the OTA crates together (a full server, a device-fleet simulator and
//! a minimal embedding). They hold configuration and glue only; every rule lives in `ota-core`.
//!
//! - `embed` (`src/bin/embed.rs`): the minimal embedding, the quick start of the README and
//!   of `ota-core`'s crate docs as a program of under 100 lines; on the memory store, or on
//!   PostgreSQL with `-- POSTGRES_URL SCHEMA`. `tests/embed.rs` runs it both ways.
//! - `ota-server` (`src/bin/ota-server.rs`, code in [`server`]): the server a user runs with
//!   one command: management API, device HTTP API, MQTT, metrics, health checks.
//! - `dashboard` ([`dashboard`]): the monitoring dashboard the server serves at `/`, a
//!   single-page app over the management API with its assets compiled in.
//! - `ota-sim` (`src/bin/ota-sim.rs`, code in [`sim`]): the device fleet simulator.
#![warn(missing_docs)]

pub mod dashboard;
pub mod server;
pub mod sim;
