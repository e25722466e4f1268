//! What a simulated device knows about firmware: the update a notice names, and the check of
//! downloaded content against its checksum.

use ota_core::checksum::{ChecksumAlgorithm, ChecksumHasher};
use serde_json::{Map, Value};
use std::str::FromStr;

/// The keys a device asks for in an attribute request.
pub const SHARED_KEYS: &str =
    "fw_title,fw_version,fw_size,fw_checksum,fw_checksum_algorithm,fw_tag,fw_url";

/// The firmware a notice tells the device to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `fw_title`.
    pub title: String,
    /// `fw_version`.
    pub version: String,
    /// `fw_size` (absent for packages at an external URL).
    pub size: Option<u64>,
    /// `fw_checksum_algorithm` and `fw_checksum`.
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// `fw_url`, for packages the server does not hold.
    pub url: Option<String>,
}

/// What a shared-attributes message (push, attribute response, long-poll answer) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Install this.
    Update(Target),
    /// The update attributes were deleted (unassigned).
    Withdrawn,
    /// Nothing about firmware.
    Nothing,
}

impl Notice {
    /// Reads `{"fw_title":..,..}` or `{"deleted":["fw_title",..]}` (a `{"shared":{..}}`
    /// wrapper is looked through).
    pub fn read(message: &Map<String, Value>) -> Result<Self, String> {
        if let Some(Value::Object(shared)) = message.get("shared") {
            return Self::read(shared);
        }
        if let Some(Value::Array(deleted)) = message.get("deleted") {
            let fw = deleted
                .iter()
                .any(|k| k.as_str().is_some_and(|k| k.starts_with("fw_")));
            return Ok(if fw { Self::Withdrawn } else { Self::Nothing });
        }
        let text = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_string);
        let (Some(title), Some(version)) = (text("fw_title"), text("fw_version")) else {
            return Ok(Self::Nothing);
        };
        let size = match message.get("fw_size") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| format!("fw_size is not a byte count: {v}"))?,
            ),
        };
        let checksum = match (text("fw_checksum_algorithm"), text("fw_checksum")) {
            (Some(algorithm), Some(value)) => Some((
                ChecksumAlgorithm::from_str(&algorithm).map_err(|e| e.to_string())?,
                value.to_ascii_lowercase(),
            )),
            (None, Some(value)) => Some((ChecksumAlgorithm::Sha256, value.to_ascii_lowercase())),
            _ => None,
        };
        Ok(Self::Update(Target {
            title,
            version,
            size,
            checksum,
            url: text("fw_url"),
        }))
    }
}

/// Checks `content` against the target's size and checksum; `Err` says what differs.
pub fn verify(target: &Target, content: &[u8]) -> Result<(), String> {
    if let Some(size) = target.size {
        if content.len() as u64 != size {
            return Err(format!(
                "size mismatch: got {} bytes, expected {size}",
                content.len()
            ));
        }
    }
    if let Some((algorithm, expected)) = &target.checksum {
        let mut hasher = ChecksumHasher::new(*algorithm);
        hasher.update(content);
        let got = hasher.finish();
        if !got.value.eq_ignore_ascii_case(expected) {
            return Err(format!(
                "{} checksum mismatch: got {}, expected {expected}",
                algorithm.name(),
                got.value
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::checksum::checksum_of;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn reads_a_notice_and_an_attribute_response() {
        let notice = map(json!({"fw_title":"fw","fw_version":"2","fw_size":3,
            "fw_checksum":"ABC","fw_checksum_algorithm":"crc32"}));
        let Notice::Update(t) = Notice::read(&notice).unwrap() else {
            panic!("not an update")
        };
        assert_eq!((t.title.as_str(), t.version.as_str()), ("fw", "2"));
        assert_eq!(t.size, Some(3));
        assert_eq!(t.checksum, Some((ChecksumAlgorithm::Crc32, "abc".into())));
        let response = map(json!({ "shared": notice }));
        assert_eq!(Notice::read(&response).unwrap(), Notice::Update(t));
    }

    #[test]
    fn reads_deletions_and_empty_answers() {
        let deleted = map(json!({"deleted":["fw_title","fw_version"]}));
        assert_eq!(Notice::read(&deleted).unwrap(), Notice::Withdrawn);
        let other = map(json!({"deleted":["sw_title"]}));
        assert_eq!(Notice::read(&other).unwrap(), Notice::Nothing);
        assert_eq!(
            Notice::read(&map(json!({"shared":{}}))).unwrap(),
            Notice::Nothing
        );
    }

    #[test]
    fn bad_values_are_errors() {
        let bad = map(json!({"fw_title":"fw","fw_version":"2","fw_size":"big"}));
        assert!(Notice::read(&bad).is_err());
        let bad = map(json!({"fw_title":"fw","fw_version":"2","fw_checksum":"x",
            "fw_checksum_algorithm":"ROT13"}));
        assert!(Notice::read(&bad).is_err());
    }

    #[test]
    fn verify_checks_size_and_every_algorithm() {
        let content = b"firmware bytes".to_vec();
        for algorithm in ChecksumAlgorithm::ALL {
            let t = Target {
                title: "fw".into(),
                version: "1".into(),
                size: Some(content.len() as u64),
                checksum: Some((algorithm, checksum_of(algorithm, &content).value)),
                url: None,
            };
            assert!(verify(&t, &content).is_ok(), "{algorithm:?}");
            let mut corrupt = content.clone();
            corrupt[3] ^= 0x01;
            assert!(verify(&t, &corrupt).unwrap_err().contains("mismatch"));
            assert!(verify(&t, &content[1..]).unwrap_err().contains("size"));
        }
    }
}
