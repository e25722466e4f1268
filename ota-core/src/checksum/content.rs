//! [`ContentHasher`]: what a store runs while package content streams in.

use super::hasher::ChecksumHasher;
use super::{to_hex, Checksum, ChecksumAlgorithm};
use sha2::{Digest, Sha256};

/// What was learned from content that streamed in and matched its checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentDigest {
    /// Number of bytes.
    pub size: u64,
    /// The checksum in the expected algorithm, or SHA256 when none was expected.
    pub checksum: Checksum,
    /// SHA-256 of the content, lowercase hex (the HTTP `ETag`).
    pub sha256: String,
}

/// Content did not match the checksum given for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "content does not match its {algorithm} checksum: expected {expected}, computed {actual} \
     over {size} bytes"
)]
pub struct ChecksumMismatch {
    /// The algorithm of the expected checksum.
    pub algorithm: ChecksumAlgorithm,
    /// The checksum that was given.
    pub expected: String,
    /// The checksum of the content, in the same algorithm and encoding.
    pub actual: String,
    /// Number of bytes hashed.
    pub size: u64,
}

/// Hashes content as it streams in: counts its bytes, computes the checksum to verify (or
/// SHA256 when none was given) and the SHA256 for the `ETag`, each byte hashed once per
/// algorithm (once in all when the checksum is SHA256).
///
/// ```
/// use ota_core::checksum::{checksum_of, ChecksumAlgorithm, ContentHasher};
/// let expected = checksum_of(ChecksumAlgorithm::Md5, b"firmware");
/// let mut hasher = ContentHasher::new(Some(expected.clone()));
/// hasher.update(b"firm");
/// hasher.update(b"ware");
/// let digest = hasher.finish().expect("the content matches");
/// assert_eq!((digest.size, digest.checksum), (8, expected));
/// ```
#[derive(Clone, Debug)]
pub struct ContentHasher {
    expected: Option<Checksum>,
    checksum: ChecksumHasher,
    /// A separate SHA-256, only when the checksum is in another algorithm.
    sha256: Option<Box<Sha256>>,
    size: u64,
}

impl ContentHasher {
    /// A hasher that will verify the content against `expected`, or compute its SHA256 when
    /// `None`.
    pub fn new(expected: Option<Checksum>) -> Self {
        let algorithm = expected
            .as_ref()
            .map_or(ChecksumAlgorithm::Sha256, |c| c.algorithm);
        let sha256 = (algorithm != ChecksumAlgorithm::Sha256).then(Box::default);
        Self {
            expected,
            checksum: ChecksumHasher::new(algorithm),
            sha256,
            size: 0,
        }
    }

    /// Feeds the next bytes of the content.
    pub fn update(&mut self, data: &[u8]) {
        self.checksum.update(data);
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(data);
        }
        self.size = self.size.saturating_add(data.len() as u64);
    }

    /// Number of bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.size
    }

    /// The digest of the content, or the mismatch when it does not have the expected checksum
    /// (compared ignoring case and surrounding whitespace).
    pub fn finish(self) -> Result<ContentDigest, ChecksumMismatch> {
        let checksum = self.checksum.finish();
        let sha256 = match self.sha256 {
            Some(sha256) => to_hex(&sha256.finalize()),
            None => checksum.value.clone(),
        };
        if let Some(expected) = self.expected {
            if !expected.matches(&checksum.value) {
                return Err(ChecksumMismatch {
                    algorithm: checksum.algorithm,
                    expected: expected.value,
                    actual: checksum.value,
                    size: self.size,
                });
            }
        }
        Ok(ContentDigest {
            size: self.size,
            checksum,
            sha256,
        })
    }
}
