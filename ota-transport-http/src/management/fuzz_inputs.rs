//! The management API's parsers of request bodies and upload parameters, run without a
//! server: entry points for the fuzz targets of `fuzz/` (feature `fuzzing`) and for the tests
//! that replay their corpora. Any input gives a value or an [`ApiError`](super::ApiError),
//! never a panic.

use super::extract::AppState;
use super::{api_keys, assignments, campaign_actions, campaigns, common, content, device_edits};
use super::{devices, fleet, packages, schedules, updates, ApiKeys, ManagementOptions};
use ota_core::chrono::{Duration, TimeZone, Utc};
use ota_core::engine::{Ota, OtaConfig};
use ota_core::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// Reads `data` as the JSON body of every route that takes one; whatever parses goes on
/// through the same conversions and checks the handlers apply before the engine is called.
pub(crate) fn json_bodies(data: &[u8]) {
    use serde_json::from_slice;
    if let Ok(body) = from_slice::<campaigns::CampaignBody>(data) {
        if let Ok(spec) = body.into_spec() {
            let _ = spec.validate(OtaConfig::default().campaign_max_span);
        }
    }
    if let Ok(body) = from_slice::<schedules::ScheduleBody>(data) {
        if let Ok((_, recurrence, _)) = body.parts() {
            if recurrence.validate().is_ok() {
                let at = Utc.with_ymd_and_hms(2024, 10, 27, 1, 30, 0).unwrap();
                let _ = recurrence.next_after(at);
                let _ = recurrence.occurrences_between(at, at + Duration::days(30), 20);
            }
        }
    }
    if let Ok(body) = from_slice::<packages::NewExternalPackage>(data) {
        let _ = common::parse_kind(&body.kind);
        let _ =
            packages::checksum_from(body.checksum_algorithm.as_deref(), body.checksum.as_deref());
    }
    if let Ok(body) = from_slice::<api_keys::NewApiKey>(data) {
        let _ = api_keys::check_name(&body.name);
    }
    let _ = from_slice::<assignments::AssignBody>(data);
    let _ = from_slice::<campaign_actions::ScheduleBody>(data);
    let _ = from_slice::<campaigns::CopyBody>(data);
    let _ = from_slice::<updates::CancelBody>(data);
    let _ = from_slice::<devices::NewDevice>(data);
    let _ = from_slice::<devices::DevicePatch>(data);
    let _ = from_slice::<device_edits::TokenChange>(data);
    let _ = from_slice::<fleet::NewNamed>(data);
}

/// Reads `raw` as the query string of a package upload, and its values as the handler does.
pub(crate) fn upload_query(raw: &str) {
    let Ok(uri) = format!("/packages?{raw}").parse::<axum::http::Uri>() else {
        return;
    };
    if let Ok(axum::extract::Query(params)) =
        axum::extract::Query::<packages::UploadParams>::try_from_uri(&uri)
    {
        let _ = common::parse_kind(&params.kind);
        let _ = packages::checksum_from(
            params.checksum_algorithm.as_deref(),
            params.checksum.as_deref(),
        );
        let _ = common::parse_ids("compatible_profiles", params.compatible_profiles.as_deref());
    }
}

/// Reads `raw` as the query string of a management list route (`?state=..&kind=..`) and each
/// of its values as the state, kind and id lists those routes take.
pub(crate) fn list_query(raw: &str) {
    let Ok(uri) = format!("/updates?{raw}").parse::<axum::http::Uri>() else {
        return;
    };
    let Ok(axum::extract::Query(params)) =
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&uri)
    else {
        return;
    };
    for value in params.values() {
        let _ = common::parse_update_states(Some(value));
        let _ = common::parse_campaign_states(Some(value));
        let _ = common::parse_opt_kind(Some(value));
        let _ = common::parse_ids("ids", Some(value));
    }
}

/// Reads `value` as the `Range` header of a package content download, against content of a
/// few sizes: a planned range is never empty and lies inside the content.
pub(crate) fn content_range(value: &str) {
    for size in [0, 1, 1000, u64::MAX] {
        if let Ok(Some((start, end))) = content::parse_range(value, size) {
            assert!(start < end && end <= size, "{start}..{end} of {size}");
        }
    }
}

/// Two profiles and two groups a device CSV may name, by name or id.
fn csv_context() -> &'static (AppState, devices::CsvContext) {
    static CONTEXT: OnceLock<(AppState, devices::CsvContext)> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let ota = Ota::new(
            Arc::new(ota_core::memory::MemoryStore::new()),
            Arc::new(ota_core::notifier::RecordingNotifier::new()),
            Arc::new(ota_core::SystemClock),
            OtaConfig::default(),
        );
        let state = AppState {
            ota,
            auth: Arc::new(ApiKeys::new()),
            options: Arc::new(ManagementOptions::default()),
        };
        let named = |names: [&str; 2]| -> HashMap<String, Uuid> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), Uuid::from_u128(i as u128 + 1)))
                .collect()
        };
        let ctx = devices::CsvContext {
            tenant: TenantId::new(),
            profiles: named(["p1", "p2"]),
            groups: named(["g1", "g2"]),
        };
        (state, ctx)
    })
}

/// Reads `data` as a device import CSV (`POST /devices/import`).
pub(crate) fn devices_csv(data: &[u8]) {
    let (state, ctx) = csv_context();
    let _ = devices::parse_devices_csv(state, ctx, data);
}
