//! Outbox notices of polling devices delivered by their reads
//! (`DeviceApiOptions::deliver_notices_on_read`), when the engine reaches only the devices
//! whose long-polls wait on this instance (as when several instances share the store).

mod support;

use ota_core::{Device, Package, PackageKind};
use ota_transport_http::DeviceApiOptions;
use serde_json::Value;
use support::{content, Backend, Server};

async fn undelivered(server: &Server) -> u64 {
    server.ota.store().count_undelivered(None).await.unwrap()
}

/// A server over `backend` with `options` and a firmware package fw 5.0.
async fn with_package(
    backend: Backend,
    options: impl FnOnce(DeviceApiOptions) -> DeviceApiOptions,
) -> (Server, Package) {
    let server = Server::start_across(backend, options).await;
    let package = server
        .upload(PackageKind::Firmware, "fw", "5.0", content(100, 3), None)
        .await;
    (server, package)
}

/// GETs `path` of the device API as `device`: a 200 answer, its JSON body.
async fn get_json(server: &Server, device: &Device, path: &str) -> Value {
    let answer = server
        .client
        .get(server.url(&device.access_token, path))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

/// Reads the `fw_title` shared attribute as `device`: the assigned package's title.
async fn read_fw_title(server: &Server, device: &Device) {
    let read = get_json(server, device, "attributes?sharedKeys=fw_title").await;
    assert_eq!(read["shared"]["fw_title"], "fw", "{read}");
}

async fn reads_take_the_notices_waiting_for_them(backend: Backend) {
    let (server, package) = with_package(backend, |o| o.deliver_notices_on_read(true)).await;
    let reader = server.device().await;
    let poller = server.device().await;
    // Neither device waits in a long-poll: both notices stay in the outbox.
    server.assign(&reader, &package).await;
    server.assign(&poller, &package).await;
    assert_eq!(undelivered(&server).await, 2);

    // An attribute read answers the update and takes the device's notice with it.
    read_fw_title(&server, &reader).await;
    assert_eq!(undelivered(&server).await, 1);

    // A long-poll is answered at once with the notice that waited for it.
    let poll = get_json(&server, &poller, "attributes/updates?timeout=600000").await;
    assert_eq!(poll["fw_title"], "fw", "{poll}");
    assert_eq!(poll["fw_version"], "5.0", "{poll}");
    assert_eq!(undelivered(&server).await, 0);
    server.stop().await;
}

async fn without_the_option_reads_leave_the_outbox_alone(backend: Backend) {
    let (server, package) = with_package(backend, |o| o).await;
    let device = server.device().await;
    server.assign(&device, &package).await;
    assert_eq!(undelivered(&server).await, 1);
    read_fw_title(&server, &device).await;
    assert_eq!(undelivered(&server).await, 1);
    server.stop().await;
}

on_both_stores!(
    reads_take_the_notices_waiting_for_them,
    without_the_option_reads_leave_the_outbox_alone
);
