//! Serving the routers over HTTP/1.1 with limits against slow clients and connection floods
//! ([`serve`], [`ServerLimits`]). `axum::serve` works too, but it has no header or body
//! timeouts and no bound on connections.
//!
//! ```no_run
//! # async fn run(router: axum::Router) -> std::io::Result<()> {
//! use ota_transport_http::server::{serve, ServerLimits};
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! let limits = ServerLimits::default().max_connections(20_000);
//! serve(listener, router, limits, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Bodies larger than the routes accept are refused by the routes themselves (413, see
//! [`DeviceApiOptions::max_body_bytes`](crate::DeviceApiOptions::max_body_bytes) and
//! [`ManagementOptions`](crate::ManagementOptions)).

mod idle_body;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use idle_body::IdleTimeoutBody;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The limits of [`serve`]. `Default` gives the values documented per field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Most connections open at once. A connection over it is answered `503` with
    /// `Retry-After: 1` and closed at once (a client that had already sent its request may
    /// see the connection reset instead): it costs no task and no buffer. Default: 10,000.
    pub max_connections: usize,
    /// How long a client may take to send a request's line and headers, counted from the
    /// moment the server waits for them (a new connection, or a kept-alive one after its
    /// previous answer); a client that takes longer, however steadily it trickles bytes, is
    /// disconnected. Default: 30 s.
    pub header_timeout: Duration,
    /// Longest pause while a request body arrives: a body that stalls for longer is answered
    /// `408` (`{"code":"request_timeout",...}`) and the connection is closed. Long uploads
    /// are fine as long as bytes keep coming. Default: 30 s.
    pub body_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerLimits {
    /// Sets [`Self::max_connections`] (at least 1).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`Self::header_timeout`].
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Sets [`Self::body_timeout`].
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }
}

/// Serves `router` on `listener` (HTTP/1.1) within `limits` until `shutdown` completes; then
/// takes no new connection, lets the requests in flight finish and returns. Failing accepts
/// (out of file descriptors and the like) are logged and retried after a short pause.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(&stream, limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            handle(router.clone(), body_timeout, request)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One request through the router, its body cut when it stalls for `body_timeout`.
async fn handle(
    router: Router,
    body_timeout: Duration,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = timed_out.clone();
    let request = request.map(|body| Body::new(IdleTimeoutBody::new(body, body_timeout, flag)));
    let response = router.oneshot(request).await?;
    if timed_out.load(Ordering::Relaxed) {
        return Ok(error_response(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            &format!(
                "the request body stalled for more than {} ms; send it again",
                body_timeout.as_millis()
            ),
            None,
        ));
    }
    Ok(response)
}

fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response<Body> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Answers a connection over the maximum with 503 without waiting for it (whatever does not
/// fit in the socket's buffer is dropped), then closes it.
fn refuse(stream: &TcpStream, max: usize) {
    let body = serde_json::json!({
        "code": "too_many_connections",
        "message": format!("the server has its maximum of {max} connections open; retry later"),
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    tracing::debug!(
        max,
        "connection refused: the server is at its maximum of connections"
    );
}
