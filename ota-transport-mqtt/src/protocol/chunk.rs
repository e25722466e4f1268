//! Chunk requests (`v2/fw/request/{requestId}/chunk/{chunk}`): the payload rules and what a
//! session remembers about each download.
//!
//! The payload is the chunk size in bytes as decimal text. An empty payload means the size
//! used before for that request id (the whole file when there was none); `0` means the whole
//! file. The chunk index counts chunks of that size from the start of the content.

use ota_core::{PackageId, PackageKind};
use std::collections::VecDeque;

/// How many downloads (request ids) a session remembers per kind; older ones are forgotten.
pub const REMEMBERED_REQUESTS: usize = 8;

/// A chunk request after parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRequest {
    /// Firmware or software.
    pub kind: PackageKind,
    /// The device's download id.
    pub request_id: String,
    /// The chunk index.
    pub chunk: u64,
    /// Chunk size in bytes; 0 is the whole file.
    pub size: u64,
}

impl ChunkRequest {
    /// The byte range `start..end` this request covers in content of `total` bytes: empty
    /// past the end, the whole content for size 0 (chunk 0 only: any other chunk of the whole
    /// file is past its end). `None` when the offset overflows.
    pub fn range(&self, total: u64) -> Option<(u64, u64)> {
        if self.size == 0 {
            return Some(if self.chunk == 0 {
                (0, total)
            } else {
                (total, total)
            });
        }
        let start = self.chunk.checked_mul(self.size)?;
        if start >= total {
            return Some((total, total));
        }
        Some((start, start.saturating_add(self.size).min(total)))
    }
}

/// Parses the chunk index of the topic.
pub fn parse_index(text: &str) -> Result<u64, String> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "chunk index must be a non-negative decimal integer, got {text:?}"
        ));
    }
    text.parse::<u64>()
        .map_err(|_| format!("chunk index {text} is out of range"))
}

/// Parses the payload: `Ok(None)` for an empty payload (use the remembered size).
pub fn parse_size(payload: &[u8], max_chunk: u32) -> Result<Option<u64>, String> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| "chunk size must be decimal text, got non-UTF-8 bytes".to_string())?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        let shown: String = text.chars().take(32).collect();
        return Err(format!(
            "chunk size must be a non-negative decimal integer, got {shown:?}"
        ));
    }
    let size: u64 = text
        .parse()
        .map_err(|_| format!("chunk size {text} is out of range"))?;
    if size > u64::from(max_chunk) {
        return Err(format!(
            "chunk size {size} exceeds the limit of {max_chunk} bytes"
        ));
    }
    Ok(Some(size))
}

#[derive(Clone, Debug)]
struct Remembered {
    kind: PackageKind,
    request_id: String,
    size: u64,
    package: Option<PackageId>,
}

/// What a session remembers about its downloads: the chunk size per request id and the
/// package each request id started on (a request id does not switch packages: when the
/// assignment changes mid-download, the device starts a new request).
#[derive(Clone, Debug, Default)]
pub struct Downloads {
    entries: VecDeque<Remembered>,
}

impl Downloads {
    fn find(&self, kind: PackageKind, request_id: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.kind == kind && e.request_id == request_id)
    }

    /// The size to use for a request: the given one (remembered), else the remembered one,
    /// else 0 (the whole file) for chunk 0. `None` for an empty payload on a later chunk of a
    /// request id this session does not know (another server instance served its start, or
    /// it was forgotten): the size cannot be guessed, and taking the whole file would end
    /// the download early.
    pub fn resolve_size(
        &mut self,
        kind: PackageKind,
        request_id: &str,
        chunk: u64,
        given: Option<u64>,
    ) -> Option<u64> {
        match (self.find(kind, request_id), given) {
            (Some(i), Some(size)) => {
                self.entries[i].size = size;
                Some(size)
            }
            (Some(i), None) => Some(self.entries[i].size),
            (None, None) if chunk > 0 => None,
            (None, given) => {
                let size = given.unwrap_or(0);
                self.remember(Remembered {
                    kind,
                    request_id: request_id.to_string(),
                    size,
                    package: None,
                });
                Some(size)
            }
        }
    }

    fn remember(&mut self, entry: Remembered) {
        let same_kind = self.entries.iter().filter(|e| e.kind == entry.kind).count();
        if same_kind >= REMEMBERED_REQUESTS {
            if let Some(oldest) = self.entries.iter().position(|e| e.kind == entry.kind) {
                self.entries.remove(oldest);
            }
        }
        self.entries.push_back(entry);
    }

    /// Binds a request id to the package it downloads. `Err(previous)` when the request id
    /// already downloads another package.
    pub fn bind(
        &mut self,
        kind: PackageKind,
        request_id: &str,
        package: PackageId,
    ) -> Result<(), PackageId> {
        match self.find(kind, request_id) {
            Some(i) => match self.entries[i].package {
                Some(p) if p != package => Err(p),
                _ => {
                    self.entries[i].package = Some(package);
                    Ok(())
                }
            },
            None => {
                self.remember(Remembered {
                    kind,
                    request_id: request_id.to_string(),
                    size: 0,
                    package: Some(package),
                });
                Ok(())
            }
        }
    }

    /// The package `request_id` is bound to.
    pub fn bound(&self, kind: PackageKind, request_id: &str) -> Option<PackageId> {
        self.find(kind, request_id)
            .and_then(|i| self.entries[i].package)
    }

    /// How many request ids are remembered (all kinds).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(chunk: u64, size: u64) -> ChunkRequest {
        ChunkRequest {
            kind: PackageKind::Firmware,
            request_id: "r".into(),
            chunk,
            size,
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(request(0, 4).range(10), Some((0, 4)));
        assert_eq!(request(2, 4).range(10), Some((8, 10)));
        assert_eq!(request(3, 4).range(10), Some((10, 10)));
        assert_eq!(request(0, 0).range(10), Some((0, 10)));
        assert_eq!(request(1, 0).range(10), Some((10, 10)));
        assert_eq!(request(u64::MAX, 2).range(10), None);
        assert_eq!(request(0, 4).range(0), Some((0, 0)));
    }

    #[test]
    fn payload_rules() {
        assert_eq!(parse_size(b"4096", 65536), Ok(Some(4096)));
        assert_eq!(parse_size(b" 12\n", 65536), Ok(Some(12)));
        assert_eq!(parse_size(b"", 65536), Ok(None));
        assert_eq!(parse_size(b"0", 65536), Ok(Some(0)));
        assert!(parse_size(b"65537", 65536)
            .unwrap_err()
            .contains("exceeds the limit of 65536"));
        for bad in [
            &b"-1"[..],
            b"1.5",
            b"abc",
            b"0x10",
            &[0xff, 0xfe],
            b"99999999999999999999",
        ] {
            assert!(parse_size(bad, 65536).is_err(), "{bad:?}");
        }
        assert_eq!(parse_index("0"), Ok(0));
        assert_eq!(parse_index("255"), Ok(255));
        for bad in ["", "-1", "a", "1e3", "99999999999999999999"] {
            assert!(parse_index(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remembered_sizes_and_bindings() {
        let fw = PackageKind::Firmware;
        let mut d = Downloads::default();
        assert_eq!(d.resolve_size(fw, "a", 0, None), Some(0));
        assert_eq!(d.resolve_size(fw, "a", 1, Some(100)), Some(100));
        assert_eq!(d.resolve_size(fw, "a", 2, None), Some(100));
        assert_eq!(d.resolve_size(PackageKind::Software, "a", 0, None), Some(0));
        // A later chunk of an unknown request id without a size: unknown, not the whole file.
        assert_eq!(d.resolve_size(fw, "z", 3, None), None);
        assert_eq!(d.resolve_size(fw, "z", 3, Some(10)), Some(10));
        let p1 = PackageId::new();
        let p2 = PackageId::new();
        assert_eq!(d.bind(fw, "a", p1), Ok(()));
        assert_eq!(d.bind(fw, "a", p1), Ok(()));
        assert_eq!(d.bind(fw, "a", p2), Err(p1));
        assert_eq!(d.bind(fw, "b", p2), Ok(()));
        assert_eq!(d.resolve_size(fw, "b", 0, None), Some(0));
    }

    proptest! {
        /// Memory stays bounded and the latest request id of each kind is always remembered
        /// with its latest size.
        #[test]
        fn bounded_memory(ops in proptest::collection::vec((0u8..2, 0u8..30, proptest::option::of(0u64..100)), 1..300)) {
            let mut d = Downloads::default();
            for (k, id, size) in ops {
                let kind = if k == 0 { PackageKind::Firmware } else { PackageKind::Software };
                let id = id.to_string();
                let got = d.resolve_size(kind, &id, 0, size);
                if let Some(s) = size {
                    prop_assert_eq!(got, Some(s));
                }
                prop_assert!(got.is_some());
                prop_assert_eq!(d.resolve_size(kind, &id, 1, None), got);
                prop_assert!(d.len() <= 2 * REMEMBERED_REQUESTS);
            }
        }

        #[test]
        fn range_within_content(chunk in any::<u64>(), size in 0u64..100_000, total in 0u64..1_000_000) {
            if let Some((start, end)) = request(chunk, size).range(total) {
                prop_assert!(start <= end && end <= total);
                let limit = if size == 0 { total } else { size };
                prop_assert!(end - start <= limit);
            }
        }
    }
}
