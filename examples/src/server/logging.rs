//! Structured logs on standard error (standard output carries the machine-readable lines).

use tracing_subscriber::EnvFilter;

/// Starts logging with `filter` (`info`, `ota_examples=debug,info`), as JSON lines when
/// `json`.
pub fn init(filter: &str, json: bool) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(filter).map_err(|e| format!("bad log filter {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| format!("cannot start logging: {e}"))
}
