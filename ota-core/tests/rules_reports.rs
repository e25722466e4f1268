//! Rules 2 and 10 of the update rules under interference: reports about a replaced package
//! never touch the new update, and devices' real payloads never lose data.

mod support;

use ota_core::engine::OtaConfig;
use ota_core::store::{DeviceStore, UpdateStore};
use ota_core::update::HistoryOutcome;
use ota_core::{Device, PackageKind, TitleVersion, UpdateState};
use support::*;

/// A device whose update to fw 2.0 was sent and then replaced by fw 3.0 (QUEUED).
async fn replaced() -> (Harness, Device) {
    let h = Harness::new(OtaConfig::default());
    let (_, d) = h.one_device().await;
    let a = h.package("fw", "2.0").await;
    let b = h.package("fw", "3.0").await;
    h.assign_device(&d, &a).await;
    h.ota.tick().await.unwrap();
    h.ota
        .handle_report(h.tenant, d.id, &report(Some(UpdateState::Downloading)))
        .await
        .unwrap();
    h.advance_ms(1_000);
    h.assign_device(&d, &b).await;
    let u = h.latest(&d).await;
    assert_eq!(
        (u.state, u.target.version.as_str()),
        (UpdateState::Queued, "3.0")
    );
    (h, d)
}

fn updated_running(version: &str) -> ota_core::wire::DeviceReport {
    let mut r = running("fw", version);
    r.state = Some(UpdateState::Updated);
    r
}

#[tokio::test]
async fn a_late_updated_of_the_replaced_package_never_fails_the_queued_update() {
    let (h, d) = replaced().await;
    h.ota
        .handle_report(h.tenant, d.id, &updated_running("2.0"))
        .await
        .unwrap();
    let u = h.latest(&d).await;
    assert_eq!(u.state, UpdateState::Queued);
    let history = h.store.update_history(h.tenant, u.id).await.unwrap();
    assert!(history
        .iter()
        .any(|e| e.outcome == HistoryOutcome::Ignored && e.event == "report"));
    // The device's version is recorded all the same.
    let device = h.store.get_device(h.tenant, d.id).await.unwrap();
    assert_eq!(
        device.current.get(PackageKind::Firmware),
        Some(&TitleVersion::new("fw", "2.0"))
    );
}

#[tokio::test]
async fn a_late_failed_never_fails_the_queued_update() {
    let (h, d) = replaced().await;
    let mut r = report(Some(UpdateState::Failed));
    r.error = Some("checksum mismatch of 2.0".into());
    h.ota.handle_report(h.tenant, d.id, &r).await.unwrap();
    assert_eq!(h.latest(&d).await.state, UpdateState::Queued);
}

#[tokio::test]
async fn once_sent_an_updated_naming_the_replaced_version_is_about_the_replaced_update() {
    let (h, d) = replaced().await;
    h.ota.tick().await.unwrap();
    assert_eq!(h.latest(&d).await.state, UpdateState::Initiated);
    h.ota
        .handle_report(h.tenant, d.id, &updated_running("2.0"))
        .await
        .unwrap();
    assert_eq!(h.latest(&d).await.state, UpdateState::Initiated);
    // A version the device was never told about is judged against the new update.
    h.ota
        .handle_report(h.tenant, d.id, &updated_running("1.0"))
        .await
        .unwrap();
    let u = h.latest(&d).await;
    assert_eq!(u.state, UpdateState::Failed);
    assert!(u.error.unwrap().contains("fw 1.0"));
}

async fn one_sent_update() -> (Harness, Device) {
    let h = Harness::new(OtaConfig::default());
    let (d, _) = h.one_sent("2.0").await;
    (h, d)
}

#[tokio::test]
async fn an_idle_state_is_recorded_and_the_rest_of_the_payload_kept() {
    let (h, d) = one_sent_update().await;
    let payload = br#"{"fw_state": "IDLE", "current_fw_title": "fw", "current_fw_version": "2.0"}"#;
    h.ota.handle_payload(&d, payload).await.unwrap();
    let u = h.latest(&d).await;
    assert_eq!(u.state, UpdateState::Updated);
    let history = h.store.update_history(h.tenant, u.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.message.as_deref().is_some_and(|m| m.contains("IDLE"))),
        "{history:?}"
    );
}

#[tokio::test]
async fn one_bad_key_never_drops_the_report_of_the_other_kind() {
    let (h, d) = one_sent_update().await;
    let payload = br#"{"fw_state": "DOWNLOADING", "fw_progress": 42.5, "sw_progress": 101}"#;
    h.ota.handle_payload(&d, payload).await.unwrap();
    let u = h.latest(&d).await;
    assert_eq!((u.state, u.progress), (UpdateState::Downloading, Some(42)));
}

#[tokio::test]
async fn versions_as_json_numbers_keep_their_text_and_a_version_alone_is_recorded() {
    let (h, d) = one_sent_update().await;
    h.ota
        .handle_payload(
            &d,
            br#"{"current_fw_title": "fw", "current_fw_version": 1.10}"#,
        )
        .await
        .unwrap();
    let device = h.store.get_device(h.tenant, d.id).await.unwrap();
    assert_eq!(
        device.current.get(PackageKind::Firmware),
        Some(&TitleVersion::new("fw", "1.10"))
    );
    // Only the version: the known title is kept, and the update to fw 2.0 completes.
    h.ota
        .handle_payload(&d, br#"[{"current_fw_version": "2.0"}]"#)
        .await
        .unwrap();
    let device = h.store.get_device(h.tenant, d.id).await.unwrap();
    assert_eq!(
        device.current.get(PackageKind::Firmware),
        Some(&TitleVersion::new("fw", "2.0"))
    );
    assert_eq!(h.latest(&d).await.state, UpdateState::Updated);
}

#[tokio::test]
async fn a_version_alone_takes_the_update_title_when_none_is_known() {
    let (h, d) = one_sent_update().await;
    h.ota
        .handle_payload(&d, br#"{"current_fw_version": "1.0"}"#)
        .await
        .unwrap();
    let device = h.store.get_device(h.tenant, d.id).await.unwrap();
    assert_eq!(
        device.current.get(PackageKind::Firmware),
        Some(&TitleVersion::new("fw", "1.0"))
    );
    assert_eq!(h.latest(&d).await.state, UpdateState::Initiated);
}

#[tokio::test]
async fn idle_alone_is_fine_and_a_payload_of_only_bad_values_is_a_recorded_error() {
    let (h, d) = one_sent_update().await;
    assert!(h
        .ota
        .handle_payload(&d, br#"{"fw_state": "IDLE"}"#)
        .await
        .unwrap()
        .is_empty());
    let err = h
        .ota
        .handle_payload(&d, br#"{"fw_progress": 101}"#)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fw_progress"), "{err}");
    let u = h.latest(&d).await;
    assert_eq!(u.state, UpdateState::Initiated);
    let history = h.store.update_history(h.tenant, u.id).await.unwrap();
    assert!(history
        .iter()
        .any(|e| e.message.as_deref().is_some_and(|m| m.contains("101"))));
}
