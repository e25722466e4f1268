//! SIGTERM stops the real `ota-server` gracefully: requests in flight finish (an upload
//! whose body is still coming, a long-poll answered at once), then it exits 0.

mod server_support;

use server_support::{metrics, sample, Api, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Reads an HTTP/1.1 response head from `reader`; its status and headers.
fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<String>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            return (status, headers);
        }
        headers.push(line.trim().to_ascii_lowercase());
    }
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_and_exits_0() {
    let server = Server::start(&[]);
    let key = server.admin_key.clone().unwrap();
    let api = Api::new(&server, &key);
    // A device with nothing assigned, so that its long-poll waits.
    let (status, profile) = api
        .post("/profiles", serde_json::json!({"name": "p"}))
        .await;
    assert_eq!(status, 201);
    let device = serde_json::json!({
        "name": "waiting", "profile_id": profile["id"], "access_token": "waiting-device"
    });
    assert_eq!(api.post("/devices", device).await.0, 201);

    // 1. A long-poll in flight: the gauge shows it waiting.
    let poll_url = server.url("/api/v1/waiting-device/attributes/updates?timeout=600000");
    let long_poll = tokio::spawn(async move { reqwest::get(poll_url).await });
    for _ in 0..600 {
        let text = metrics(&server).await;
        if sample(&text, "ota_http_long_poll_devices") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sample(&metrics(&server).await, "ota_http_long_poll_devices"),
        Some(1.0)
    );

    // 2. An upload in flight: the server has started reading its body (it answered
    // `100 Continue`), half of the body is sent.
    let body = vec![7u8; 64 * 1024];
    let stream = TcpStream::connect(&server.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    write!(
        writer,
        "POST /api/ota/v1/packages?kind=FIRMWARE&title=in-flight&version=1 HTTP/1.1\r\n\
         Host: {}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        server.http,
        body.len()
    )
    .unwrap();
    let (status, _) = read_head(&mut reader);
    assert_eq!(status, 100, "the server reads the body");
    writer.write_all(&body[..body.len() / 2]).unwrap();
    writer.flush().unwrap();

    // 3. SIGTERM. Shutdown has begun once the long-poll is answered.
    server.sigterm();
    let polled = long_poll.await.unwrap().expect("the long-poll is answered");
    assert_eq!(polled.status(), 200);

    writer.write_all(&body[body.len() / 2..]).unwrap();
    writer.flush().unwrap();
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 201, "the upload in flight is stored");
    let length: usize = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a sized answer");
    let mut answer = vec![0u8; length];
    reader.read_exact(&mut answer).unwrap();
    let package: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(package["title"], "in-flight");
    assert_eq!(package["size"], 64 * 1024);

    let mut server = server;
    let (status, lines) = server.wait_exit();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        server.stderr()
    );
    let stopped = lines.last().expect("a stopped line");
    assert_eq!(stopped["event"], "stopped");
    assert_eq!(stopped["clean"], true, "stderr:\n{}", server.stderr());
}
