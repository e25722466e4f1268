//! ThingsBoard's OTA wire vocabulary, shared by every transport.
//!
//! - Devices report telemetry with the keys `fw_state`, `current_fw_title`,
//!   `current_fw_version`, `fw_error` and (our extension) `fw_progress`, or the same with `sw`
//!   for software. [`parse_reports`] turns a telemetry payload into [`DeviceReport`]s.
//! - The server pushes shared attributes `fw_title`, `fw_version`, `fw_size`, `fw_checksum`,
//!   `fw_checksum_algorithm`, optional `fw_tag` and, for external packages, `fw_url`;
//!   [`update_notice`] builds them and [`notice_keys`] / [`deletion_notice`] name them for
//!   deletion when a package is unassigned.
//!
//! Telemetry payloads are JSON in one of ThingsBoard's forms: an object of key/values
//! (`{"fw_state":"DOWNLOADING"}`), an object with a timestamp
//! (`{"ts":1700000000000,"values":{..}}`), or an array of such timestamped objects.

use crate::package::{Package, PackageKind, PackageSource, TitleVersion};
use crate::update::UpdateState;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What a device reported about one kind of package in one telemetry entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Firmware (`fw_*` keys) or software (`sw_*` keys).
    pub kind: PackageKind,
    /// The entry's timestamp in milliseconds since the Unix epoch, when the payload had one.
    pub ts: Option<i64>,
    /// `fw_state`: the update's state as the device sees it.
    pub state: Option<UpdateState>,
    /// `current_fw_title`: the title of the package the device runs.
    pub current_title: Option<String>,
    /// `current_fw_version`: the version of the package the device runs.
    pub current_version: Option<String>,
    /// `fw_error`: the device's error text.
    pub error: Option<String>,
    /// `fw_progress`: download or install progress in percent (0 to 100).
    pub progress: Option<u8>,
}

impl DeviceReport {
    /// An empty report of `kind` at `ts`.
    fn empty(kind: PackageKind, ts: Option<i64>) -> Self {
        Self {
            kind,
            ts,
            state: None,
            current_title: None,
            current_version: None,
            error: None,
            progress: None,
        }
    }

    /// The package the device says it runs, when it reported both title and version.
    pub fn current(&self) -> Option<TitleVersion> {
        match (&self.current_title, &self.current_version) {
            (Some(title), Some(version)) => Some(TitleVersion::new(title.clone(), version.clone())),
            _ => None,
        }
    }
}

/// A telemetry payload that cannot be read as OTA reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The payload is not UTF-8.
    #[error("payload is not valid UTF-8")]
    NotUtf8,
    /// The payload is not JSON.
    #[error("payload is not valid JSON: {message}")]
    InvalidJson {
        /// The parser's message.
        message: String,
    },
    /// The payload is JSON but neither an object nor an array of objects.
    #[error("payload must be a JSON object or an array of objects, found {found}")]
    NotAnObject {
        /// What was found instead (`string`, `array of numbers`, ...).
        found: &'static str,
    },
    /// A known key has a value of the wrong type or out of range.
    #[error("invalid value for {key}: {message}")]
    InvalidValue {
        /// The key (`fw_state`, `sw_progress`, `ts`, ...).
        key: String,
        /// What is wrong with the value.
        message: String,
    },
    /// An entry of a telemetry array has no `values` object.
    #[error("telemetry array entries must have a \"values\" object")]
    MissingValues,
}

/// A value of a device payload that was not taken, with why. The rest of the payload is
/// kept: one bad key never drops the other keys of its entry, nor the other kind's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredValue {
    /// The kind the key belongs to (`None` for `ts`).
    pub kind: Option<PackageKind>,
    /// The key (`fw_state`, `sw_progress`, `ts`, ...).
    pub key: String,
    /// The value as the device sent it (JSON text).
    pub value: String,
    /// Why it was not taken.
    pub reason: String,
    /// Whether the value is malformed (a wrong type, out of range, an unknown state name),
    /// rather than known device vocabulary that carries nothing for the engine (the `IDLE`
    /// state ThingsBoard's SDKs report between updates).
    pub malformed: bool,
}

/// `fw_state` / `sw_state` values devices send that are not update states but are not wrong
/// either (ThingsBoard's SDKs report `IDLE` between updates).
const IDLE_STATES: [&str; 1] = ["IDLE"];

impl std::fmt::Display for IgnoredValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {} ignored: {}", self.key, self.value, self.reason)
    }
}

/// A parsed device payload: the OTA reports it holds and the values that were not taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    /// The reports, in payload order (per entry, firmware before software).
    pub reports: Vec<DeviceReport>,
    /// Known keys whose values could not be taken (an `fw_state` that is not an update state
    /// such as `IDLE`, a progress of 101, ...), for the record.
    pub ignored: Vec<IgnoredValue>,
}

/// Parses a device telemetry payload into OTA reports (see [`parse_telemetry`]; the ignored
/// values are dropped).
pub fn parse_reports(payload: &[u8]) -> Result<Vec<DeviceReport>, WireError> {
    parse_telemetry(payload).map(|t| t.reports)
}

/// Parses a device telemetry payload into OTA reports and the values it could not take.
///
/// The payload is UTF-8 JSON, in any of ThingsBoard's forms: an object of key/values, an
/// object `{"ts": <ms>, "values": {..}}`, or an array whose entries are either (an empty array
/// gives no reports). For each entry, in payload order, one report is produced per kind that
/// has at least one valid key (`{p}_state`, `current_{p}_title`, `current_{p}_version`,
/// `{p}_error`, `{p}_progress` with `p` = `fw` or `sw`), firmware before software. Other keys
/// are ignored, and so is a known key whose value is `null`.
///
/// Values: `{p}_state` is a state name ([`UpdateState`], case-insensitive); titles and versions
/// are strings, or numbers taken as their exact text (`1.10` stays `1.10`, a 30-digit number
/// keeps its 30 digits); `{p}_error` is a string; `{p}_progress` is a number from 0 to 100,
/// fractions allowed and rounded down (`42.5` gives 42), as a number or a string. `ts`, when
/// present, is an integer.
///
/// Devices' real payloads never lose data: a value that does not fit (an `fw_state` of `IDLE`,
/// as ThingsBoard's SDKs send, a progress of 101, a title that is an object, a `ts` that is
/// not an integer) is listed in [`Telemetry::ignored`] and the other keys are kept. Only a
/// payload that cannot be read at all is an error: not UTF-8, not JSON, not an object or an
/// array of objects, or a `{"ts", "values"}` entry whose `values` is not an object.
pub fn parse_telemetry(payload: &[u8]) -> Result<Telemetry, WireError> {
    let text = std::str::from_utf8(payload).map_err(|_| WireError::NotUtf8)?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| WireError::InvalidJson {
        message: e.to_string(),
    })?;
    let mut out = Telemetry::default();
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => {
            let object = object_of(raw)?;
            if object.contains_key("ts") && object.contains_key("values") {
                parse_timestamped(&object, &mut out)?;
            } else {
                parse_values(&object, None, &mut out);
            }
        }
        Some(b'[') => {
            let entries: Vec<&RawValue> =
                serde_json::from_str(raw.get()).map_err(|e| WireError::InvalidJson {
                    message: e.to_string(),
                })?;
            for entry in entries {
                if !entry.get().trim_start().starts_with('{') {
                    return Err(WireError::NotAnObject {
                        found: array_of(&leaf_of(entry)),
                    });
                }
                let object = object_of(entry)?;
                if object.contains_key("values") {
                    parse_timestamped(&object, &mut out)?;
                } else {
                    // A plain object in an array, as ThingsBoard accepts it.
                    parse_values(&object, None, &mut out);
                }
            }
        }
        _ => {
            return Err(WireError::NotAnObject {
                found: type_name(&leaf_of(raw)),
            })
        }
    }
    Ok(out)
}

/// An object's members with their values as raw JSON text (duplicate keys: the last wins).
type RawObject<'a> = HashMap<String, &'a RawValue>;

fn object_of(raw: &RawValue) -> Result<RawObject<'_>, WireError> {
    serde_json::from_str(raw.get()).map_err(|e| WireError::InvalidJson {
        message: e.to_string(),
    })
}

/// The value of a raw JSON text (valid JSON always parses).
fn leaf_of(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// Parses `{"ts": .., "values": {..}}`.
fn parse_timestamped(entry: &RawObject<'_>, out: &mut Telemetry) -> Result<(), WireError> {
    let values = match entry.get("values") {
        Some(v) if v.get().trim_start().starts_with('{') => object_of(v)?,
        _ => return Err(WireError::MissingValues),
    };
    let ts = match entry.get("ts").map(|v| (v, leaf_of(v))) {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::Number(n))) if n.as_i64().is_some() => n.as_i64(),
        Some((raw, other)) => {
            out.ignored.push(IgnoredValue {
                kind: None,
                key: "ts".into(),
                value: raw.get().to_string(),
                reason: format!(
                    "expected an integer number of milliseconds, got {}",
                    describe(&other)
                ),
                malformed: true,
            });
            None
        }
    };
    parse_values(&values, ts, out);
    Ok(())
}

/// A value taken from a payload.
enum Taken {
    State(UpdateState),
    Text(String),
    Progress(u8),
}

/// Reads one key's raw value into what it means, or says why not.
type Reader = fn(&RawValue, &Value) -> Result<Taken, String>;

/// Parses one entry's key/values into at most one report per kind.
fn parse_values(values: &RawObject<'_>, ts: Option<i64>, out: &mut Telemetry) {
    for kind in PackageKind::ALL {
        let p = kind.prefix();
        let mut report = DeviceReport::empty(kind, ts);
        let mut any = false;
        let mut take = |key: String, read: Reader| -> Option<Taken> {
            let raw = values.get(&key)?;
            let value = leaf_of(raw);
            if value.is_null() {
                return None;
            }
            match read(raw, &value) {
                Ok(taken) => {
                    any = true;
                    Some(taken)
                }
                Err(reason) => {
                    let idle = matches!(&value, Value::String(v)
                        if IDLE_STATES.iter().any(|i| v.trim().eq_ignore_ascii_case(i)));
                    out.ignored.push(IgnoredValue {
                        kind: Some(kind),
                        key,
                        value: raw.get().to_string(),
                        reason,
                        malformed: !idle,
                    });
                    None
                }
            }
        };
        if let Some(Taken::State(s)) = take(format!("{p}_state"), read_state) {
            report.state = Some(s);
        }
        if let Some(Taken::Text(t)) = take(format!("current_{p}_title"), read_text) {
            report.current_title = Some(t);
        }
        if let Some(Taken::Text(t)) = take(format!("current_{p}_version"), read_text) {
            report.current_version = Some(t);
        }
        if let Some(Taken::Text(t)) = take(format!("{p}_error"), read_error) {
            report.error = Some(t);
        }
        if let Some(Taken::Progress(n)) = take(format!("{p}_progress"), read_progress) {
            report.progress = Some(n);
        }
        if any {
            out.reports.push(report);
        }
    }
}

fn read_state(_raw: &RawValue, value: &Value) -> Result<Taken, String> {
    match value {
        Value::String(name) => name
            .parse()
            .map(Taken::State)
            .map_err(|_| format!("{name:?} is not an update state")),
        other => Err(format!("expected a state name, got {}", describe(other))),
    }
}

/// A string, or a number taken as its exact text.
fn read_text(raw: &RawValue, value: &Value) -> Result<Taken, String> {
    match value {
        Value::String(s) => Ok(Taken::Text(s.clone())),
        Value::Number(_) => Ok(Taken::Text(raw.get().trim().to_string())),
        other => Err(format!(
            "expected a string or a number, got {}",
            describe(other)
        )),
    }
}

fn read_error(_raw: &RawValue, value: &Value) -> Result<Taken, String> {
    match value {
        Value::String(s) => Ok(Taken::Text(s.clone())),
        other => Err(format!("expected a string, got {}", describe(other))),
    }
}

fn read_progress(_raw: &RawValue, value: &Value) -> Result<Taken, String> {
    let percent = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let t = s.trim();
            // Plain decimal notation only: an optional sign, digits, at most one point.
            let digits = t.strip_prefix('-').unwrap_or(t);
            let plain = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && digits.bytes().filter(|b| *b == b'.').count() <= 1
                && digits.bytes().any(|b| b.is_ascii_digit());
            if plain {
                t.parse::<f64>().ok()
            } else {
                None
            }
        }
        other => {
            return Err(format!(
                "expected a number from 0 to 100, got {}",
                describe(other)
            ))
        }
    };
    match percent {
        Some(p) if (0.0..=100.0).contains(&p) => Ok(Taken::Progress(p.floor() as u8)),
        _ => Err("not a percentage from 0 to 100".into()),
    }
}

/// "a string", "an object", ... for messages.
fn describe(value: &Value) -> String {
    let name = type_name(value);
    let article = if matches!(name.as_bytes().first(), Some(b'a' | b'o')) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
fn array_of(element: &Value) -> &'static str {
    match element {
        Value::Null => "array of nulls",
        Value::Bool(_) => "array of booleans",
        Value::Number(_) => "array of numbers",
        Value::String(_) => "array of strings",
        Value::Array(_) => "array of arrays",
        Value::Object(_) => "array of objects",
    }
}

/// The shared attributes that tell a device to update to `package`: `{p}_title`,
/// `{p}_version`, `{p}_size` (when known), `{p}_checksum` and `{p}_checksum_algorithm` (when
/// known), `{p}_tag` (when the package has one) and `{p}_url` (for external packages).
pub fn update_notice(package: &Package) -> Map<String, Value> {
    let p = package.kind.prefix();
    let mut map = Map::new();
    map.insert(format!("{p}_title"), Value::from(package.title.clone()));
    map.insert(format!("{p}_version"), Value::from(package.version.clone()));
    if let Some(size) = package.size {
        map.insert(format!("{p}_size"), Value::from(size));
    }
    if let Some(checksum) = &package.checksum {
        map.insert(format!("{p}_checksum"), Value::from(checksum.value.clone()));
        map.insert(
            format!("{p}_checksum_algorithm"),
            Value::from(checksum.algorithm.name()),
        );
    }
    if let Some(tag) = &package.tag {
        map.insert(format!("{p}_tag"), Value::from(tag.clone()));
    }
    if let PackageSource::External { url } = &package.source {
        map.insert(format!("{p}_url"), Value::from(url.clone()));
    }
    map
}

const FW_KEYS: [&str; 7] = [
    "fw_title",
    "fw_version",
    "fw_size",
    "fw_checksum",
    "fw_checksum_algorithm",
    "fw_tag",
    "fw_url",
];

const SW_KEYS: [&str; 7] = [
    "sw_title",
    "sw_version",
    "sw_size",
    "sw_checksum",
    "sw_checksum_algorithm",
    "sw_tag",
    "sw_url",
];

/// Every shared attribute key [`update_notice`] can set for `kind` (title, version, size,
/// checksum, checksum_algorithm, tag, url): the keys to delete when a package is unassigned.
pub fn notice_keys(kind: PackageKind) -> &'static [&'static str] {
    match kind {
        PackageKind::Firmware => &FW_KEYS,
        PackageKind::Software => &SW_KEYS,
    }
}

/// [`notice_keys`] as owned strings, for an "attributes deleted" notification.
pub fn deletion_notice(kind: PackageKind) -> Vec<String> {
    notice_keys(kind).iter().map(|k| (*k).to_string()).collect()
}

#[cfg(test)]
mod tests {
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
        let reports =
            parse(json!({"ts": 1_700_000_000_000_i64, "values": {"fw_state": "UPDATING"}}))
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
        let t = parse_telemetry(
            br#"{"fw_state": "DOWNLOADING", "fw_progress": 30, "sw_progress": 101}"#,
        )
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
}
