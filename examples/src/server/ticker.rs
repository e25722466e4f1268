//! The engine's background work: a tick every `--tick-interval`, the count of updates per
//! state for `/metrics` every `--metrics-interval`, and retention every
//! `--retention-interval` when it is on.

use super::metrics::{state_label, Metrics};
use ota_core::engine::{Ota, RetentionPolicy};
use ota_core::store::UpdateFilter;
use ota_core::update::UpdateState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Ticks `ota` every `interval` until `stop` is cancelled; a tick under way is finished,
/// never cut. Then delivers what still waits in the outbox (the final delivery).
pub async fn run(ota: Ota, metrics: Arc<Metrics>, interval: Duration, stop: CancellationToken) {
    let mut timer = tokio::time::interval(interval.max(Duration::from_millis(1)));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = timer.tick() => {}
        }
        let started = Instant::now();
        match ota.tick().await {
            Ok(report) => {
                metrics.record_tick(&report, started.elapsed());
                if report.released > 0 || report.timed_out > 0 || report.campaigns_ended > 0 {
                    tracing::debug!(?report, "tick");
                }
            }
            Err(e) => {
                metrics.tick_failures.inc();
                tracing::warn!(error = %e, "tick failed; trying again at the next one");
            }
        }
    }
    match ota.deliver_notices().await {
        Ok((delivered, failed)) => {
            tracing::info!(delivered, failed, "final delivery of waiting notices")
        }
        Err(e) => tracing::warn!(error = %e, "final delivery failed; the notices stay stored"),
    }
}

/// Applies `policy` every `interval` until `stop`; a run that did not finish (more was old
/// than its budget of batches) is followed by another at once.
pub async fn retention(
    ota: Ota,
    policy: RetentionPolicy,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut timer = tokio::time::interval(interval.max(Duration::from_secs(1)));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = timer.tick() => {}
        }
        loop {
            match ota.apply_retention(&policy).await {
                Ok(report) => {
                    if report.history_deleted > 0 || report.audit_deleted > 0 {
                        tracing::info!(
                            history = report.history_deleted,
                            audit = report.audit_deleted,
                            "retention deleted old entries"
                        );
                    }
                    if report.complete || stop.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention failed; trying again at the next run");
                    break;
                }
            }
        }
    }
}

/// Counts updates per state every `interval` into `metrics.updates` until `stop`.
pub async fn count_updates(
    ota: Ota,
    metrics: Arc<Metrics>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut timer = tokio::time::interval(interval.max(Duration::from_millis(100)));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = timer.tick() => {}
        }
        let started = Instant::now();
        for state in UpdateState::ALL {
            match ota
                .store()
                .count_updates(None, &UpdateFilter::in_state(state))
                .await
            {
                Ok(n) => {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    metrics.updates.get_or_create(&state_label(state)).set(n);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "counting updates failed");
                    break;
                }
            }
        }
        metrics.count_seconds.set(started.elapsed().as_secs_f64());
    }
}
