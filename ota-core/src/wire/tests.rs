use super::*;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::ids::{PackageId, TenantId};
use crate::package::Compatibility;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;

fn parse(value: Value) -> Result<Vec<DeviceReport>, WireError> {
    parse_reports(value.to_string().as_bytes())
}

fn report(kind: PackageKind, ts: Option<i64>) -> DeviceReport {
    DeviceReport::empty(kind, ts)
}

#[test]
fn object_payload() {
    let reports = parse(json!({
        "fw_state": "DOWNLOADING",
        "current_fw_title": "sensor-fw",
        "current_fw_version": "1.0.0",
        "fw_progress": 42,
    }))
    .expect("valid");
    assert_eq!(
        reports,
        vec![DeviceReport {
            state: Some(UpdateState::Downloading),
            current_title: Some("sensor-fw".into()),
            current_version: Some("1.0.0".into()),
            progress: Some(42),
            ..report(PackageKind::Firmware, None)
        }]
    );
    assert_eq!(
        reports[0].current(),
        Some(TitleVersion::new("sensor-fw", "1.0.0"))
    );
}

#[test]
fn state_is_case_insensitive_and_error_is_kept() {
    let reports = parse(json!({"sw_state": "failed", "sw_error": "disk full"})).expect("ok");
    assert_eq!(
        reports,
        vec![DeviceReport {
            state: Some(UpdateState::Failed),
            error: Some("disk full".into()),
            ..report(PackageKind::Software, None)
        }]
    );
    assert_eq!(reports[0].current(), None);
}

#[test]
fn array_payload_with_several_entries_in_order() {
    let reports = parse(json!([
        {"ts": 1000, "values": {"fw_state": "DOWNLOADING", "fw_progress": "10"}},
        {"ts": 2000, "values": {"temperature": 21.5}},
        {"ts": 3000, "values": {"fw_state": "DOWNLOADED"}},
        {"values": {"sw_state": "UPDATED"}},
    ]))
    .expect("valid");
    assert_eq!(
        reports,
        vec![
            DeviceReport {
                state: Some(UpdateState::Downloading),
                progress: Some(10),
                ..report(PackageKind::Firmware, Some(1000))
            },
            DeviceReport {
                state: Some(UpdateState::Downloaded),
                ..report(PackageKind::Firmware, Some(3000))
            },
            DeviceReport {
                state: Some(UpdateState::Updated),
                ..report(PackageKind::Software, None)
            },
        ]
    );
}

#[test]
fn timestamped_object_at_top_level() {
    let reports = parse(json!({"ts": 1_700_000_000_000_i64, "values": {"fw_state": "UPDATING"}}))
        .expect("valid");
    assert_eq!(
        reports,
        vec![DeviceReport {
            state: Some(UpdateState::Updating),
            ..report(PackageKind::Firmware, Some(1_700_000_000_000))
        }]
    );
}

#[test]
fn both_kinds_in_one_object_firmware_first() {
    let reports = parse(json!({
        "sw_state": "UPDATED",
        "current_sw_title": "app",
        "current_sw_version": "3",
        "fw_state": "VERIFIED",
    }))
    .expect("valid");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].kind, PackageKind::Firmware);
    assert_eq!(reports[0].state, Some(UpdateState::Verified));
    assert_eq!(reports[1].kind, PackageKind::Software);
    assert_eq!(reports[1].current(), Some(TitleVersion::new("app", "3")));
}

#[test]
fn numbers_are_accepted_as_title_and_version() {
    let reports = parse(json!({"current_fw_title": 7, "current_fw_version": 2})).expect("ok");
    assert_eq!(reports[0].current(), Some(TitleVersion::new("7", "2")));
    let reports = parse_reports(br#"{"current_fw_version": 1.5}"#).expect("ok");
    assert_eq!(reports[0].current_version.as_deref(), Some("1.5"));
}

#[test]
fn unknown_keys_and_nulls_are_ignored() {
    assert_eq!(
        parse(json!({"temperature": 20, "fw_foo": "x", "fw_title": "t", "fw_state": null})),
        Ok(vec![])
    );
    assert_eq!(parse(json!({})), Ok(vec![]));
    assert_eq!(parse(json!([])), Ok(vec![]));
}

fn ignored_keys(payload: Value) -> Vec<String> {
    parse_telemetry(payload.to_string().as_bytes())
        .expect("readable payload")
        .ignored
        .into_iter()
        .map(|i| i.key)
        .collect()
}

#[test]
fn progress_bounds() {
    for (value, expected) in [
        (json!(0), 0),
        (json!(100), 100),
        (json!("55"), 55),
        (json!(" 7 "), 7),
        (json!(42.5), 42),
        (json!("99.9"), 99),
    ] {
        let reports = parse(json!({ "fw_progress": value })).expect("valid progress");
        assert_eq!(reports[0].progress, Some(expected));
    }
    for bad in [
        json!(101),
        json!(-1),
        json!(100.5),
        json!("101"),
        json!("-3"),
        json!("1e2"),
        json!(""),
        json!("."),
        json!("99999999999999999999999"),
        json!(u64::MAX),
        json!(true),
        json!([50]),
    ] {
        let payload = json!({ "sw_progress": bad, "sw_state": "DOWNLOADING" });
        assert_eq!(ignored_keys(payload.clone()), vec!["sw_progress"], "{bad}");
        let reports = parse(payload).expect("the rest is kept");
        assert_eq!(
            (reports[0].state, reports[0].progress),
            (Some(UpdateState::Downloading), None),
            "{bad}"
        );
    }
}

#[test]
fn an_unknown_state_is_ignored_and_the_rest_kept() {
    // ThingsBoard's Python SDK reports IDLE between updates.
    let t = parse_telemetry(
        br#"{"fw_state": "IDLE", "current_fw_title": "fw", "current_fw_version": "1.0"}"#,
    )
    .expect("readable");
    assert_eq!(t.reports.len(), 1);
    assert_eq!(t.reports[0].state, None);
    assert_eq!(t.reports[0].current(), Some(TitleVersion::new("fw", "1.0")));
    assert_eq!(t.ignored.len(), 1);
    assert_eq!(t.ignored[0].key, "fw_state");
    assert_eq!(t.ignored[0].value, "\"IDLE\"");
    assert!(t.ignored[0].reason.contains("IDLE"), "{}", t.ignored[0]);
    assert!(
        !t.ignored[0].malformed,
        "IDLE is device vocabulary, not bad input"
    );
    let t = parse_telemetry(br#"{"fw_state": "FLYING"}"#).expect("readable");
    assert!(t.ignored[0].malformed);
}

#[test]
fn one_bad_key_never_drops_the_other_kind() {
    let t =
        parse_telemetry(br#"{"fw_state": "DOWNLOADING", "fw_progress": 30, "sw_progress": 101}"#)
            .expect("readable");
    assert_eq!(
        t.reports,
        vec![DeviceReport {
            state: Some(UpdateState::Downloading),
            progress: Some(30),
            ..report(PackageKind::Firmware, None)
        }]
    );
    assert_eq!(t.ignored[0].kind, Some(PackageKind::Software));
}

#[test]
fn versions_sent_as_numbers_keep_their_exact_text() {
    let t = parse_telemetry(
        br#"{"current_fw_title": 7, "current_fw_version": 1.10,
             "current_sw_title": "app", "current_sw_version": 123456789012345678901234567890.50}"#,
    )
    .expect("readable");
    assert_eq!(t.reports[0].current(), Some(TitleVersion::new("7", "1.10")));
    assert_eq!(
        t.reports[1].current_version.as_deref(),
        Some("123456789012345678901234567890.50")
    );
    assert!(t.ignored.is_empty());
}

#[test]
fn arrays_of_plain_objects_are_accepted() {
    let reports = parse(json!([
        {"fw_state": "DOWNLOADING"},
        {"ts": 5, "values": {"fw_state": "DOWNLOADED"}},
        {"ts": 6, "fw_state": "VERIFIED"},
    ]))
    .expect("valid");
    let states: Vec<_> = reports.iter().map(|r| (r.ts, r.state)).collect();
    assert_eq!(
        states,
        vec![
            (None, Some(UpdateState::Downloading)),
            (Some(5), Some(UpdateState::Downloaded)),
            (None, Some(UpdateState::Verified)),
        ]
    );
}

#[test]
fn error_not_utf8() {
    assert_eq!(parse_reports(&[0x7b, 0xff, 0x7d]), Err(WireError::NotUtf8));
}

#[test]
fn error_invalid_json() {
    assert!(matches!(
        parse_reports(b"{\"fw_state\": "),
        Err(WireError::InvalidJson { .. })
    ));
    assert!(matches!(
        parse_reports(b""),
        Err(WireError::InvalidJson { .. })
    ));
}

#[test]
fn error_not_an_object() {
    assert_eq!(
        parse(json!("UPDATED")),
        Err(WireError::NotAnObject { found: "string" })
    );
    assert_eq!(
        parse(json!(5)),
        Err(WireError::NotAnObject { found: "number" })
    );
    assert_eq!(
        parse(json!(null)),
        Err(WireError::NotAnObject { found: "null" })
    );
    assert_eq!(
        parse(json!([1, 2])),
        Err(WireError::NotAnObject {
            found: "array of numbers"
        })
    );
    assert_eq!(
        parse(json!([{"ts": 1, "values": {}}, "x"])),
        Err(WireError::NotAnObject {
            found: "array of strings"
        })
    );
}

#[test]
fn invalid_values_are_listed_and_never_fail_the_payload() {
    for (payload, key) in [
        (json!({"fw_state": "EXPLODED"}), "fw_state"),
        (json!({"fw_state": 3}), "fw_state"),
        (json!({"current_sw_title": true}), "current_sw_title"),
        (
            json!({"current_fw_version": {"major": 1}}),
            "current_fw_version",
        ),
        (json!({"sw_error": 500}), "sw_error"),
        (json!({"ts": "yesterday", "values": {}}), "ts"),
        (json!([{"ts": 1.5, "values": {}}]), "ts"),
    ] {
        assert_eq!(ignored_keys(payload.clone()), vec![key], "{payload}");
    }
    let t = parse_telemetry(br#"{"fw_state": "EXPLODED"}"#).expect("readable");
    let text = t.ignored[0].to_string();
    assert!(
        text.contains("fw_state") && text.contains("EXPLODED"),
        "{text}"
    );
}

#[test]
fn error_missing_values() {
    assert_eq!(
        parse(json!([{"ts": 1, "values": [1]}])),
        Err(WireError::MissingValues)
    );
    assert_eq!(
        parse(json!({"ts": 1, "values": "fw_state=UPDATED"})),
        Err(WireError::MissingValues)
    );
}

fn package(kind: PackageKind, source: PackageSource) -> Package {
    Package {
        id: PackageId::new(),
        tenant_id: TenantId::new(),
        kind,
        title: "sensor-fw".into(),
        version: "1.2.0".into(),
        compatibility: Compatibility::AnyProfile,
        source,
        size: None,
        checksum: None,
        sha256: None,
        content_type: None,
        file_name: None,
        description: None,
        tag: None,
        created_at: Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        created_by: "test".into(),
    }
}

#[test]
fn update_notice_for_stored_package() {
    let mut p = package(PackageKind::Firmware, PackageSource::Stored);
    p.size = Some(1024);
    p.checksum = Some(crate::checksum::checksum_of(
        ChecksumAlgorithm::Murmur3_128,
        b"abc",
    ));
    p.tag = Some("sensor-fw 1.2.0".into());
    let checksum = p.checksum.clone().map(|c| c.value).unwrap_or_default();
    let notice = update_notice(&p);
    assert_eq!(
        Value::Object(notice.clone()),
        json!({
            "fw_title": "sensor-fw",
            "fw_version": "1.2.0",
            "fw_size": 1024,
            "fw_checksum": checksum,
            "fw_checksum_algorithm": "MURMUR3_128",
            "fw_tag": "sensor-fw 1.2.0",
        })
    );
    for key in notice.keys() {
        assert!(notice_keys(PackageKind::Firmware).contains(&key.as_str()));
    }
}

#[test]
fn update_notice_for_external_package() {
    let mut p = package(
        PackageKind::Software,
        PackageSource::External {
            url: "https://cdn.example.com/app.bin".into(),
        },
    );
    assert_eq!(
        Value::Object(update_notice(&p)),
        json!({
            "sw_title": "sensor-fw",
            "sw_version": "1.2.0",
            "sw_url": "https://cdn.example.com/app.bin",
        })
    );
    p.checksum = Checksum::new(ChecksumAlgorithm::Sha256, &"A".repeat(64)).ok();
    let notice = update_notice(&p);
    assert_eq!(notice["sw_checksum"], json!("a".repeat(64)));
    assert_eq!(notice["sw_checksum_algorithm"], json!("SHA256"));
    assert!(!notice.contains_key("sw_size"));
}

#[test]
fn notice_keys_cover_seven_attributes_per_kind() {
    for kind in PackageKind::ALL {
        let keys = notice_keys(kind);
        assert_eq!(keys.len(), 7);
        let p = kind.prefix();
        for suffix in [
            "title",
            "version",
            "size",
            "checksum",
            "checksum_algorithm",
            "tag",
            "url",
        ] {
            assert!(keys.contains(&format!("{p}_{suffix}").as_str()), "{suffix}");
        }
        assert_eq!(
            deletion_notice(kind),
            keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()
        );
    }
}

fn any_json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0u8..=120).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        proptest::sample::select(vec!["UPDATED", "failed", "50", "-1", "101", ""])
            .prop_map(Value::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    any_json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn known_key() -> impl Strategy<Value = String> {
    let keys: Vec<String> = PackageKind::ALL
        .iter()
        .flat_map(|kind| {
            let p = kind.prefix();
            [
                format!("{p}_state"),
                format!("current_{p}_title"),
                format!("current_{p}_version"),
                format!("{p}_error"),
                format!("{p}_progress"),
            ]
        })
        .chain(["ts".to_string(), "values".to_string(), "other".to_string()])
        .collect();
    proptest::sample::select(keys)
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_reports(&bytes);
    }

    #[test]
    fn never_panics_on_known_keys_with_random_values(
        entries in proptest::collection::vec((known_key(), any_json()), 0..8),
        wrap in 0u8..3,
        ts in any_json_leaf(),
    ) {
        let values: Map<String, Value> = entries.into_iter().collect();
        let payload = match wrap {
            0 => Value::Object(values),
            1 => json!({"ts": ts, "values": values}),
            _ => json!([{"ts": ts, "values": values}]),
        };
        if let Ok(reports) = parse_reports(payload.to_string().as_bytes()) {
            for r in reports {
                prop_assert!(r.progress.is_none_or(|p| p <= 100));
            }
        }
    }
}
