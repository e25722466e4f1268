//! `ota-server`: management API, device HTTP API, MQTT endpoint (and bridge), the engine
//! ticking in the background, Prometheus metrics and health checks. `ota-server --help`
//! lists the flags; the code is in `src/server/`.

fn main() -> std::process::ExitCode {
    ota_examples::server::main()
}
