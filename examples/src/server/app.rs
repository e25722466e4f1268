//! Starting the server (store, engine, transports, listeners, background work) and stopping
//! it gracefully.

use super::config::Config;
use super::health::Readiness;
use super::metered::MeteredStore;
use super::metrics::Metrics;
use super::routes::{self, RouterParts};
use super::transports::{self, Transports};
use super::{emit, keys, shutdown, store, ticker};
use ota_core::engine::{Ota, OtaConfig};
use ota_core::store::Store;
use ota_core::SystemClock;
use ota_transport_http::ServerLimits;
use ota_transport_mqtt::delivery::OutboxDelivery;
use ota_transport_mqtt::endpoint::MqttEndpoint;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Runs the server until SIGINT or SIGTERM, then stops it gracefully.
pub async fn run(config: Config) -> Result<(), String> {
    let stopping = CancellationToken::new();
    shutdown::cancel_on_signal(stopping.clone());
    run_until(config, stopping).await
}

async fn bind(what: &str, address: std::net::SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen for {what} on {address}: {e}"))
}

/// Runs the server until `stopping` is cancelled, then stops it gracefully: the listeners
/// stop taking connections, requests in flight finish (long-polls are answered at once),
/// the tick under way finishes, waiting notices are delivered, the transports close and the
/// store's connections are closed.
pub async fn run_until(config: Config, stopping: CancellationToken) -> Result<(), String> {
    let metrics = Metrics::new();
    let opened = store::open(&config).await?;
    let backend = opened.backend.clone();
    let store: Arc<dyn Store> = Arc::new(
        MeteredStore::new(opened.store, metrics.clone()).package_ttl(config.package_cache_ttl),
    );

    let mut engine_config = OtaConfig::default()
        .global_pacing(config.pacing())
        .max_package_size(Some(config.max_upload_size));
    if let Some(id) = &config.instance_id {
        engine_config = engine_config.instance_id(id.clone());
    }
    let instance = engine_config.instance_id.clone();
    // On PostgreSQL other instances may share the store: notices go to the instance that
    // reaches the device.
    let across = matches!(backend, store::Backend::Postgres(_));
    let mut transports = Transports::new(&config, &store, &instance, across)?;
    let ota = Ota::new(
        store,
        Arc::new(transports.fan_out.clone()),
        Arc::new(SystemClock),
        engine_config,
    );
    let keys = keys::setup(opened.api_keys, config.tenant, &config.api_keys).await?;

    let http_listener = bind("HTTP", config.http_listen).await?;
    let mqtt_listener = match transports.mqtt {
        Some(_) => Some(bind("MQTT", config.mqtt_listen).await?),
        None => None,
    };
    let router = routes::build(RouterParts {
        config: &config,
        ota: ota.clone(),
        keys: keys.auth.clone(),
        transports: &transports,
        metrics: metrics.clone(),
        readiness: Readiness {
            backend: backend.clone(),
            stopping: stopping.clone(),
        },
    })?;

    if let Some(key) = &keys.created {
        tracing::info!(
            "no API key configured or stored: made an admin key (printed once on stdout)"
        );
        emit(&json!({
            "event": "admin_key",
            "key": key,
            "tenant": config.tenant.to_string(),
            "role": "admin",
        }));
    }
    let http_address = local(&http_listener)?;
    let mqtt_address = mqtt_listener.as_ref().map(local).transpose()?;
    emit(&json!({
        "event": "listening",
        "http": http_address,
        "mqtt": mqtt_address,
        "store": backend.name(),
        "tenant": config.tenant.to_string(),
        "instance_id": instance,
        "management": config.management_prefix,
    }));
    tracing::info!(http = %http_address, mqtt = mqtt_address.as_deref().unwrap_or("off"), store = backend.name(), instance_id = %instance, "listening");

    // Transports other than HTTP stop after the final delivery.
    let transports_stop = CancellationToken::new();
    let http_limits = ServerLimits::default()
        .max_connections(config.http_max_connections)
        .header_timeout(config.http_header_timeout)
        .body_timeout(config.http_body_timeout);
    let http_task = tokio::spawn(ota_transport_http::serve(
        http_listener,
        router,
        http_limits,
        stopping.clone().cancelled_owned(),
    ));
    let mqtt_task = match (mqtt_listener, &transports.mqtt) {
        (Some(listener), Some(notifier)) => {
            let endpoint =
                MqttEndpoint::new(ota.clone(), notifier, transports::endpoint_config(&config));
            let stop = transports_stop.clone().cancelled_owned();
            Some(tokio::spawn(endpoint.serve(listener, stop)))
        }
        _ => None,
    };
    let bridge_task = transports.bridge.take().map(|bridge| {
        let stop = transports_stop.clone().cancelled_owned();
        tokio::spawn(bridge.run(ota.clone(), stop))
    });
    // Notices written by other instances for devices reached here, when the store says so.
    let delivery_task = match &backend {
        store::Backend::Postgres(pg) => {
            let delivery = OutboxDelivery::new(ota.clone(), &transports.fan_out);
            let stop = transports_stop.clone().cancelled_owned();
            Some(tokio::spawn(delivery.run(pg.outbox_wakeups(), stop)))
        }
        store::Backend::Memory => None,
    };
    let tick_task = tokio::spawn(ticker::run(
        ota.clone(),
        metrics.clone(),
        config.tick_interval,
        stopping.clone(),
    ));
    // Retention runs beside the tick (off unless a retention flag is set); stopping ends it.
    if let Some(policy) = config.retention() {
        tokio::spawn(ticker::retention(
            ota.clone(),
            policy,
            config.retention_interval,
            stopping.clone(),
        ));
    }
    let count_task = tokio::spawn(ticker::count_updates(
        ota.clone(),
        metrics.clone(),
        config.metrics_interval,
        stopping.clone(),
    ));

    stopping.cancelled().await;
    let deadline = Instant::now() + config.shutdown_grace;
    // Long-polls would hold their requests open until their timeout: answer them now, and
    // again while the requests in flight finish.
    let http_notifier = transports.http.clone();
    let releaser = tokio::spawn(async move {
        loop {
            http_notifier.release_all();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (tick_done, _) = tokio::join!(
        wait("engine ticks", tick_task, deadline),
        wait("metrics counter", count_task, deadline)
    );
    transports_stop.cancel();
    let http_done = wait("HTTP requests", http_task, deadline).await;
    releaser.abort();
    let mut clean = tick_done && http_done;
    if let Some(task) = mqtt_task {
        // The endpoint bounds its own wait by the grace period.
        clean &= wait("MQTT connections", task, deadline + config.shutdown_grace).await;
    }
    if let Some(task) = delivery_task {
        clean &= wait("outbox delivery", task, deadline).await;
    }
    if let Some(task) = bridge_task {
        clean &= wait("MQTT bridge", task, deadline).await;
    }
    backend.close().await;
    emit(&json!({ "event": "stopped", "clean": clean }));
    tracing::info!(clean, "stopped");
    Ok(())
}

fn local(listener: &TcpListener) -> Result<String, String> {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .map_err(|e| format!("cannot read the bound address: {e}"))
}

/// Waits for `task` until `deadline`; whether it finished by itself (it is aborted
/// otherwise).
async fn wait<T>(what: &str, mut task: JoinHandle<T>, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, &mut task).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "{what} ended abnormally");
            false
        }
        Err(_) => {
            tracing::warn!("{what} did not finish within the shutdown grace period; cut");
            task.abort();
            false
        }
    }
}
