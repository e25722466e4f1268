//! `ota-sim`: a fleet of simulated devices for the OTA server (see `ota_examples::sim`).
//!
//! ```text
//! cargo run -p ota-examples --bin ota-sim -- --api http://127.0.0.1:8080 --api-key KEY \
//!     --mqtt 127.0.0.1:1884 --mqtt-devices 100 --http http://127.0.0.1:8080 --http-devices 20
//! ```

use clap::Parser;
use ota_examples::sim::{self, cli::Args};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        on_signal.cancel();
    });
    match sim::run(args.clone(), stop).await {
        Ok(summary) => {
            sim::print_summary(&args, &summary);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ota-sim: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
