//! Prometheus metrics (`/metrics`, OpenMetrics text format through `prometheus-client`):
//! updates per state, transitions, releases, device reports, connected devices, bytes served,
//! store latency, ticks.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http_body::Body as _;
use ota_core::engine::TickReport;
use ota_core::update::UpdateState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Label of a store operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// The store call (`transition`, `claim_queued`, ...).
    pub op: &'static str,
}

/// Label of an update state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state, as devices report it (`QUEUED`, `DOWNLOADING`, ...).
    pub state: String,
}

/// Label of a transport.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    /// `http` or `mqtt`.
    pub transport: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 26 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// Every metric of the server. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    /// Updates per state, counted from the store every `--metrics-interval`.
    pub updates: Family<StateLabel, Gauge>,
    /// Applied transitions, by the state they led to.
    pub transitions: Family<StateLabel, Counter>,
    /// Queued updates released to their devices.
    pub releases: Counter,
    /// Device reports stored (applied, ignored or rejected).
    pub reports: Counter,
    /// Devices connected to the MQTT endpoint.
    pub mqtt_connected: Gauge,
    /// Devices waiting in an HTTP long-poll.
    pub http_waiting: Gauge,
    /// Bytes of package content sent to devices over HTTP.
    pub bytes_served: Family<TransportLabel, Counter>,
    /// Bytes of package content read from the store (every MQTT chunk, HTTP cache misses).
    pub content_read: Counter,
    /// Store call latency, by operation.
    pub store_latency: Family<OpLabel, Histogram, fn() -> Histogram>,
    /// Store calls that failed as unavailable (transient), by operation.
    pub store_unavailable: Family<OpLabel, Counter>,
    /// Engine tick duration.
    pub tick_seconds: Histogram,
    /// Ticks that failed.
    pub tick_failures: Counter,
    /// Notices the notifiers could not hand over.
    pub notify_failures: Counter,
    /// Updates failed by a timeout.
    pub timed_out: Counter,
    /// Automatic retries started.
    pub retried: Counter,
    /// Last time the updates-per-state count took, in seconds.
    pub count_seconds: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every metric registered under the `ota` prefix.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("ota");
        let m = Self {
            updates: Family::default(),
            transitions: Family::default(),
            releases: Counter::default(),
            reports: Counter::default(),
            mqtt_connected: Gauge::default(),
            http_waiting: Gauge::default(),
            bytes_served: Family::default(),
            content_read: Counter::default(),
            store_latency: Family::new_with_constructor(latency_histogram),
            store_unavailable: Family::default(),
            tick_seconds: latency_histogram(),
            tick_failures: Counter::default(),
            notify_failures: Counter::default(),
            timed_out: Counter::default(),
            retried: Counter::default(),
            count_seconds: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("updates", "Updates per state", m.updates.clone());
        r.register(
            "update_transitions",
            "Applied update transitions, by the state they led to",
            m.transitions.clone(),
        );
        r.register("releases", "Queued updates released", m.releases.clone());
        r.register("device_reports", "Device reports stored", m.reports.clone());
        r.register(
            "mqtt_connected_devices",
            "Devices connected to the MQTT endpoint",
            m.mqtt_connected.clone(),
        );
        r.register(
            "http_long_poll_devices",
            "Devices waiting in an HTTP long-poll",
            m.http_waiting.clone(),
        );
        r.register(
            "bytes_served",
            "Package bytes sent to devices over HTTP",
            m.bytes_served.clone(),
        );
        r.register(
            "content_read_bytes",
            "Package bytes read from the store (MQTT chunks, HTTP cache misses)",
            m.content_read.clone(),
        );
        r.register(
            "store_call_seconds",
            "Store call latency",
            m.store_latency.clone(),
        );
        r.register(
            "store_unavailable",
            "Store calls that failed as unavailable",
            m.store_unavailable.clone(),
        );
        r.register(
            "tick_seconds",
            "Engine tick duration",
            m.tick_seconds.clone(),
        );
        r.register("tick_failures", "Failed ticks", m.tick_failures.clone());
        r.register(
            "notify_failures",
            "Notices not handed over",
            m.notify_failures.clone(),
        );
        r.register(
            "timed_out",
            "Updates failed by a timeout",
            m.timed_out.clone(),
        );
        r.register("retried", "Automatic retries started", m.retried.clone());
        r.register(
            "update_count_seconds",
            "How long counting updates per state took",
            m.count_seconds.clone(),
        );
        for state in UpdateState::ALL {
            let _ = m.updates.get_or_create(&state_label(state));
        }
        Arc::new(Self { registry, ..m })
    }

    /// Records what a tick did and how long it took.
    pub fn record_tick(&self, report: &TickReport, took: Duration) {
        self.tick_seconds.observe(took.as_secs_f64());
        self.notify_failures
            .inc_by(u64::from(report.notify_failures));
        self.timed_out.inc_by(u64::from(report.timed_out));
        self.retried.inc_by(u64::from(report.retried));
    }

    /// Records a store call.
    pub fn store_call(&self, op: &'static str, took: Duration, unavailable: bool) {
        let label = OpLabel { op };
        self.store_latency
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if unavailable {
            self.store_unavailable.get_or_create(&label).inc();
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The label of `state`.
pub fn state_label(state: UpdateState) -> StateLabel {
    StateLabel {
        state: state.to_string(),
    }
}

/// What the `/metrics` handler reads besides the registry: live gauges.
#[derive(Clone)]
pub struct MetricsState {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Reads the live gauges before encoding.
    pub refresh: Arc<dyn Fn(&Metrics) + Send + Sync>,
}

/// `GET /metrics`.
pub async fn serve(State(state): State<MetricsState>) -> Response {
    (state.refresh)(&state.metrics);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Middleware of the device API: counts the body bytes of successful package downloads.
pub async fn count_bytes_served(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let download =
        path.ends_with("/firmware") || path.ends_with("/software") || path.ends_with("/content");
    let response = next.run(request).await;
    if !download || !response.status().is_success() {
        return response;
    }
    let counter = metrics
        .bytes_served
        .get_or_create(&TransportLabel { transport: "http" })
        .clone();
    if let Some(exact) = response.body().size_hint().exact() {
        // The usual case: the length is known, the body stays as it is (Content-Length).
        counter.inc_by(exact);
        return response;
    }
    let (parts, body) = response.into_parts();
    let counted = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counter.inc_by(bytes.len() as u64);
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(counted))
}
