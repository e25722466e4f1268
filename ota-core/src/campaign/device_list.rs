//! CSV device lists for campaigns with an explicit target: a header `DeviceName`, then one
//! device name per row.

use serde::{Deserialize, Serialize};

/// A row of a device list that was not taken, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    /// The name as written (trimmed).
    pub name: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A parsed device list: names in file order (each once) and the rows skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceList {
    /// Device names, first occurrence kept, with their line numbers.
    pub names: Vec<(usize, String)>,
    /// Rows that are not device names (empty names are ignored silently; duplicates are
    /// reported).
    pub skipped: Vec<SkippedRow>,
}

/// A device list that cannot be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceListError {
    /// The content is not UTF-8.
    #[error("the device list is not UTF-8 text")]
    NotUtf8,
    /// The first line is not the header `DeviceName`.
    #[error("the device list must start with the header DeviceName, found {found:?}")]
    MissingHeader {
        /// What the first line holds.
        found: String,
    },
}

/// Unquotes a CSV field: `"a ""b"""` is `a "b"`.
fn unquote(field: &str) -> String {
    let f = field.trim();
    if f.len() >= 2 && f.starts_with('"') && f.ends_with('"') {
        f[1..f.len() - 1].replace("\"\"", "\"")
    } else {
        f.to_string()
    }
}

/// Parses a device list. The header is `DeviceName` (case-insensitive, optionally quoted, a
/// UTF-8 byte-order mark allowed); only the first column is read; blank lines are ignored;
/// names are trimmed; a name seen twice is skipped the second time. There is no size limit.
pub fn parse(content: &[u8]) -> Result<DeviceList, DeviceListError> {
    let text = std::str::from_utf8(content).map_err(|_| DeviceListError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let header = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .map(|(_, l)| l)
        .unwrap_or("");
    let first = unquote(header.split(',').next().unwrap_or(""));
    if !first.eq_ignore_ascii_case("DeviceName") {
        return Err(DeviceListError::MissingHeader {
            found: header.chars().take(64).collect(),
        });
    }
    let mut list = DeviceList::default();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in lines {
        let name = unquote(first_field(line));
        if name.is_empty() {
            continue;
        }
        if seen.insert(name.clone()) {
            list.names.push((i + 1, name));
        } else {
            list.skipped.push(SkippedRow {
                line: i + 1,
                name,
                reason: "listed twice".to_string(),
            });
        }
    }
    Ok(list)
}

/// The first field of a CSV line (a quoted field may contain commas).
fn first_field(line: &str) -> &str {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('"') {
        let mut i = 0;
        let bytes = rest.as_bytes();
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return &t[..i + 2];
            }
            i += 1;
        }
        t
    } else {
        t.split(',').next().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_names_duplicates_and_quotes() {
        let csv = "\u{feff}DeviceName,Comment\r\nsensor-1,first\n\n\"sensor, 2\",x\nsensor-1\n  sensor-3  \n";
        let list = parse(csv.as_bytes()).unwrap();
        let names: Vec<_> = list.names.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["sensor-1", "sensor, 2", "sensor-3"]);
        assert_eq!(list.skipped.len(), 1);
        assert_eq!(
            (list.skipped[0].line, list.skipped[0].name.as_str()),
            (5, "sensor-1")
        );
    }

    #[test]
    fn bad_lists_are_typed_errors() {
        assert_eq!(parse(&[0xff, 0xfe]), Err(DeviceListError::NotUtf8));
        assert!(matches!(
            parse(b"name\nx"),
            Err(DeviceListError::MissingHeader { .. })
        ));
        assert!(matches!(
            parse(b""),
            Err(DeviceListError::MissingHeader { .. })
        ));
    }

    #[test]
    fn two_hundred_thousand_rows() {
        let mut csv = String::from("DeviceName\n");
        for i in 0..200_000 {
            csv.push_str(&format!("dev-{i}\n"));
        }
        let list = parse(csv.as_bytes()).unwrap();
        assert_eq!(list.names.len(), 200_000);
        assert_eq!(list.names[199_999], (200_001, "dev-199999".to_string()));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
            let mut with_header = b"DeviceName\n".to_vec();
            with_header.extend_from_slice(&bytes);
            prop_assert!(parse(&with_header).is_ok() || std::str::from_utf8(&with_header).is_err());
        }
    }
}
