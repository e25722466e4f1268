//! The `ota-server` program: the OTA library as a server, in small modules.
//!
//! - [`config`]: flags and environment variables (clap).
//! - [`store`]: the in-memory store, or PostgreSQL with `--database-url`; readiness.
//! - [`metered`]: the store measured for [`metrics`] (store latency, transitions, releases,
//!   reports).
//! - [`transports`]: HTTP long-polls, the MQTT endpoint and bridge, one notifier over them.
//! - [`package_cache`]: package records remembered by [`metered`] (they never change).
//! - [`routes`]: management API, device API, `/metrics`, [`health`], and the dashboard
//!   ([`crate::dashboard`]) at `/`.
//! - [`keys`]: API keys (configured, or one made and printed at first start).
//! - [`ticker`]: the engine ticking in the background.
//! - [`shutdown`], [`app`]: starting, and stopping gracefully on SIGINT/SIGTERM.
//!
//! Standard output carries only JSON lines for machines (see [`emit`]); logs go to standard
//! error.

pub mod app;
pub mod config;
pub mod health;
pub mod keys;
pub mod logging;
pub mod metered;
mod metered_work;
pub mod metrics;
pub mod notify;
pub mod package_cache;
pub mod routes;
pub mod shutdown;
pub mod store;
pub mod ticker;
pub mod transports;

pub use config::Config;

use std::io::Write;

/// Prints one JSON line on standard output (the machine-readable events: `admin_key`,
/// `listening`, `stopped`) and flushes it.
pub fn emit(event: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{event}");
    let _ = out.flush();
}

/// The program: parses the flags, starts logging, runs until a signal. Exit code 0 after
/// a graceful stop, 1 when the server could not start, 2 for bad flags.
pub fn main() -> std::process::ExitCode {
    use clap::Parser;
    let config = Config::parse();
    if let Err(e) = logging::init(&config.log, config.log_json) {
        eprintln!("ota-server: {e}");
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ota-server: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ota-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
