//! `ota_transport_http::serve` under hostile clients, with small configured limits: headers
//! sent byte by byte, idle connections, bodies that stop midway, more connections than
//! allowed, oversized bodies. Raw TCP clients; timeouts in the tests are only hang guards.

mod support;

use axum::routing::{get, post};
use axum::Router;
use ota_transport_http::{serve, ServerLimits};
use std::net::SocketAddr;
use std::time::Duration;
use support::{Backend, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Far longer than any limit below: a test that reaches it hangs, it does not measure.
const GUARD: Duration = Duration::from_secs(60);

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(router: Router, limits: ServerLimits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, router, limits, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(GUARD, self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

fn echo_router() -> Router {
    Router::new().route("/", get(|| async { "ok" })).route(
        "/echo",
        post(|body: axum::body::Bytes| async move { body.len().to_string() }),
    )
}

/// Everything the server sends until it closes the connection (a reset counts as closed).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// One request on a fresh connection; the answer's head and body.
async fn request(addr: SocketAddr, raw: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    until_closed(&mut stream).await
}

#[tokio::test]
async fn headers_sent_byte_by_byte_are_cut_at_the_header_timeout() {
    let limits = ServerLimits::default().header_timeout(Duration::from_millis(300));
    let server = Running::start(echo_router(), limits).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    // Endless headers, one byte every 20 ms: steady, but never done.
    let trickle = async {
        let head = b"GET / HTTP/1.1\r\nhost: x\r\n";
        for b in head.iter().chain(b"x-slow: y\r\n".iter().cycle()) {
            if writer.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut answer = Vec::new();
    let closed = async {
        let _ = reader.read_to_end(&mut answer).await;
    };
    tokio::time::timeout(GUARD, async {
        tokio::select! {
            _ = trickle => {}
            _ = closed => {}
        }
    })
    .await
    .expect("the slow client is disconnected");
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains(" 200 "), "{answer}");
    // The server serves others all along.
    let ok = request(
        server.addr,
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    server.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let limits = ServerLimits::default().header_timeout(Duration::from_millis(200));
    let server = Running::start(echo_router(), limits).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let answer = until_closed(&mut idle).await;
    assert!(!answer.contains(" 200 "), "{answer}");
    // Also after a first request: a kept-alive connection that goes quiet is closed.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_midway_is_answered_408_and_the_connection_closed() {
    let limits = ServerLimits::default().body_timeout(Duration::from_millis(300));
    let server = Running::start(echo_router(), limits).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    // A body that keeps coming, slowly, is fine.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(
        b"POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 10\r\n\r\n",
    )
    .await
    .unwrap();
    for b in b"0123456789" {
        tokio::time::sleep(Duration::from_millis(20)).await;
        slow.write_all(&[*b]).await.unwrap();
    }
    let answer = until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("10"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_maximum_are_refused_and_the_server_keeps_serving() {
    let limits = ServerLimits::default()
        .max_connections(3)
        .header_timeout(Duration::from_secs(600));
    let server = Running::start(echo_router(), limits).await;
    // Three kept-alive connections, each served once, hold every slot.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(GUARD, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // A flood over the maximum: every connection is answered 503 (or reset) and closed.
    for _ in 0..50 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let answer = until_closed(&mut s).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
            "{answer}"
        );
        if !answer.is_empty() {
            assert!(answer.contains("retry-after: 1"), "{answer}");
            assert!(answer.contains("too_many_connections"), "{answer}");
        }
    }
    // One slot freed: a new client is served.
    drop(held.pop());
    let served = tokio::time::timeout(GUARD, async {
        loop {
            let answer = request(
                server.addr,
                "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .await;
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "a freed slot serves a new client");
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn the_device_api_answers_oversized_and_stalled_bodies() {
    let limits = ServerLimits::default().body_timeout(Duration::from_millis(300));
    let s = Server::start_limited(Backend::Memory, |o| o.max_body_bytes(1024), limits).await;
    let device = s.device().await;
    let addr: SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let path = format!("/api/v1/{}/telemetry", device.access_token);
    // Over the limit: 413 with a message, whatever the body's length says.
    let big = "x".repeat(4096);
    let answer = request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{big}",
            big.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"message\""), "{answer}");
    // A body that stops: 408, connection closed.
    let answer = request(
        addr,
        &format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"a\":"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    s.stop().await;
}
