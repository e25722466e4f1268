//! Long-polls and rate limits through a real socket, on the memory store and on PostgreSQL.

mod support;

use ota_core::{AssignmentTarget, PackageKind};
use ota_transport_http::RateLimit;
use serde_json::{json, Value};
use support::{content, json_error, Backend, Server, ACTOR};

async fn long_poll_is_woken_by_an_assignment(backend: Backend) {
    let server = Server::start(backend).await;
    let device = server.device().await;
    let other = server.device().await;
    let package = server
        .upload(PackageKind::Firmware, "fw", "4.2", content(321, 1), None)
        .await;
    let poll = |token: String| {
        let client = server.client.clone();
        let url = server.url(&token, "attributes/updates?timeout=600000");
        tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        })
    };
    let waiting = poll(device.access_token.clone());
    let bystander = poll(other.access_token.clone());
    server.until_waiting(&device, 1).await;
    server.until_waiting(&other, 1).await;

    server.assign(&device, &package).await;
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["fw_title"], "fw");
    assert_eq!(body["fw_version"], "4.2");
    assert_eq!(body["fw_size"], 321);
    assert_eq!(body["fw_checksum_algorithm"], "SHA256");
    // The other device's waiter is still waiting.
    assert_eq!(server.notifier.waiters(other.id), 1);
    assert_eq!(server.notifier.waiters(device.id), 0);

    // Unassigning deletes the attributes.
    let waiting = poll(device.access_token.clone());
    server.until_waiting(&device, 1).await;
    server
        .ota
        .unassign(
            ACTOR,
            server.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Device(device.id),
        )
        .await
        .unwrap();
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let deleted: Vec<&str> = body["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(deleted.contains(&"fw_title") && deleted.contains(&"fw_version"));

    // Shutting down answers the remaining waiter.
    server.stop().await;
    let (status, body) = bystander.await.unwrap();
    assert_eq!((status, body.len()), (200, 0));
}

async fn long_poll_times_out_with_an_empty_200(backend: Backend) {
    let server = Server::start(backend).await;
    let device = server.device().await;
    let r = server
        .client
        .get(server.url(&device.access_token, "attributes/updates?timeout=20"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(
        server.notifier.waiting_devices(),
        0,
        "nothing is left behind"
    );
    server.stop().await;
}

async fn many_waiters_and_notices_leave_nothing_behind(backend: Backend) {
    let server = Server::start(backend).await;
    let package = server
        .upload(PackageKind::Firmware, "fw", "1", content(10, 2), None)
        .await;
    let mut devices = Vec::new();
    for _ in 0..20 {
        devices.push(server.device().await);
    }
    let mut polls = Vec::new();
    for device in &devices {
        for _ in 0..10 {
            let client = server.client.clone();
            let url = server.url(&device.access_token, "attributes/updates?timeout=600000");
            polls.push(tokio::spawn(async move {
                let r = client.get(url).send().await.unwrap();
                (r.status().as_u16(), r.bytes().await.unwrap())
            }));
        }
    }
    for device in &devices {
        server.until_waiting(device, 10).await;
    }
    assert_eq!(server.notifier.waiting_devices(), 20);
    // Every device gets the package; each of its waiters hears of it.
    server
        .ota
        .assign(
            ACTOR,
            server.tenant,
            AssignmentTarget::Profile(server.profile.id),
            package.id,
        )
        .await
        .unwrap();
    server.ota.tick().await.unwrap();
    for poll in polls {
        let (status, body) = poll.await.unwrap();
        assert_eq!(status, 200);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["fw_title"], json!("fw"));
    }
    assert_eq!(server.notifier.waiting_devices(), 0);
    server.stop().await;
}

async fn requests_over_the_rate_limit_get_429(backend: Backend) {
    let limit: RateLimit = "3:3600,1000:60".parse().unwrap();
    let server = Server::start_with(backend, |o| o.rate_limit(Some(limit))).await;
    let device = server.device().await;
    let other = server.device().await;
    let url = server.url(&device.access_token, "attributes");
    for _ in 0..3 {
        assert_eq!(server.client.get(&url).send().await.unwrap().status(), 200);
    }
    for path in ["attributes", "telemetry", "firmware"] {
        let request = if path == "telemetry" {
            server
                .client
                .post(server.url(&device.access_token, path))
                .body("{}")
        } else {
            server.client.get(server.url(&device.access_token, path))
        };
        let r = request.send().await.unwrap();
        let retry_after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let (status, code, message) = json_error(r).await;
        assert_eq!((status, code.as_str()), (429, "rate_limited"), "{path}");
        // One request in 3600/3 = 1200 s comes back.
        assert!(retry_after > 1000 && retry_after <= 1200, "{retry_after}");
        assert!(message.contains("3:3600"), "{message}");
    }
    // Another device has its own allowance; unknown tokens are still 401.
    let r = server
        .client
        .get(server.url(&other.access_token, "attributes"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = server
        .client
        .get(server.url("nope", "attributes"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await.0, 401);
    server.stop().await;
}

on_both_stores!(
    long_poll_is_woken_by_an_assignment,
    long_poll_times_out_with_an_empty_200,
    many_waiters_and_notices_leave_nothing_behind,
    requests_over_the_rate_limit_get_429,
);
