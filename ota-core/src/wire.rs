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
mod tests;
