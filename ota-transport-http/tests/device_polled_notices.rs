//! Outbox notices of polling devices delivered by their reads
//! (`DeviceApiOptions::deliver_notices_on_read`), when the engine reaches only the devices
//! whose long-polls wait on this instance (as when several instances share the store).

mod support;

use ota_core::PackageKind;
use serde_json::Value;
use support::{content, Backend, Server};

async fn undelivered(server: &Server) -> u64 {
    server.ota.store().count_undelivered(None).await.unwrap()
}

async fn reads_take_the_notices_waiting_for_them(backend: Backend) {
    let server = Server::start_across(backend, |o| o.deliver_notices_on_read(true)).await;
    let reader = server.device().await;
    let poller = server.device().await;
    let package = server
        .upload(PackageKind::Firmware, "fw", "5.0", content(100, 3), None)
        .await;
    // Neither device waits in a long-poll: both notices stay in the outbox.
    server.assign(&reader, &package).await;
    server.assign(&poller, &package).await;
    assert_eq!(undelivered(&server).await, 2);

    // An attribute read answers the update and takes the device's notice with it.
    let read = server
        .client
        .get(server.url(&reader.access_token, "attributes?sharedKeys=fw_title"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["shared"]["fw_title"], "fw", "{read}");
    assert_eq!(undelivered(&server).await, 1);

    // A long-poll is answered at once with the notice that waited for it.
    let poll = server
        .client
        .get(server.url(&poller.access_token, "attributes/updates?timeout=600000"))
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 200);
    let poll: Value = poll.json().await.unwrap();
    assert_eq!(poll["fw_title"], "fw", "{poll}");
    assert_eq!(poll["fw_version"], "5.0", "{poll}");
    assert_eq!(undelivered(&server).await, 0);
    server.stop().await;
}

async fn without_the_option_reads_leave_the_outbox_alone(backend: Backend) {
    let server = Server::start_across(backend, |o| o).await;
    let device = server.device().await;
    let package = server
        .upload(PackageKind::Firmware, "fw", "5.0", content(100, 3), None)
        .await;
    server.assign(&device, &package).await;
    assert_eq!(undelivered(&server).await, 1);
    let read = server
        .client
        .get(server.url(&device.access_token, "attributes?sharedKeys=fw_title"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["shared"]["fw_title"], "fw", "{read}");
    assert_eq!(undelivered(&server).await, 1);
    server.stop().await;
}

on_both_stores!(
    reads_take_the_notices_waiting_for_them,
    without_the_option_reads_leave_the_outbox_alone
);
