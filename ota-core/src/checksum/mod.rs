//! Checksums of package content: the algorithms ThingsBoard devices verify, computed as
//! streams, with ThingsBoard's exact hex encodings.
//!
//! - [`ChecksumHasher`] computes one algorithm's checksum over content fed in chunks;
//!   [`checksum_of`] does it for bytes in memory.
//! - [`ContentHasher`] is what a store runs while package content streams in: size, the
//!   checksum to verify (or SHA256 when none was given) and the SHA256 used as HTTP `ETag`.
//! - [`Checksum::new`] validates a checksum given by a user.
//!
//! Encodings (lowercase hex): digests (MD5, SHA*) as their bytes; CRC32 and MURMUR3_32 as the
//! 32-bit number's bytes little-endian first (`0x414fa339` is `39a34f41`); MURMUR3_128 as
//! `h1` little-endian then `h2` little-endian, like Guava's `HashCode` and Python's
//! `mmh3.hash_bytes`.

mod content;
mod hasher;
pub mod murmur3;

pub use content::{ChecksumMismatch, ContentDigest, ContentHasher};
pub use hasher::{checksum_of, ChecksumHasher};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A checksum algorithm. Names parse case-insensitively (`SHA256`, `sha256`, `MURMUR3_128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumAlgorithm {
    /// MD5 (128 bits).
    Md5,
    /// SHA-256; the default when the uploader gives no checksum.
    #[default]
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// CRC-32 (IEEE), hex of the number's bytes little-endian first.
    Crc32,
    /// MurmurHash3 x86 32-bit, seed 0, hex of the number's bytes little-endian first.
    #[serde(rename = "MURMUR3_32")]
    Murmur3_32,
    /// MurmurHash3 x64 128-bit, seed 0, hex of the two 64-bit halves little-endian first.
    #[serde(rename = "MURMUR3_128")]
    Murmur3_128,
}

impl ChecksumAlgorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [ChecksumAlgorithm; 7] = [
        Self::Md5,
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
        Self::Crc32,
        Self::Murmur3_32,
        Self::Murmur3_128,
    ];

    /// The wire name (`SHA256`, `MURMUR3_128`, ...), as ThingsBoard writes it in
    /// `fw_checksum_algorithm`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA256",
            Self::Sha384 => "SHA384",
            Self::Sha512 => "SHA512",
            Self::Crc32 => "CRC32",
            Self::Murmur3_32 => "MURMUR3_32",
            Self::Murmur3_128 => "MURMUR3_128",
        }
    }

    /// The length in characters of this algorithm's hex checksum.
    pub const fn hex_len(self) -> usize {
        match self {
            Self::Md5 | Self::Murmur3_128 => 32,
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
            Self::Crc32 | Self::Murmur3_32 => 8,
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for an algorithm name that is not one of [`ChecksumAlgorithm::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown checksum algorithm {0:?}; expected one of MD5, SHA256, SHA384, SHA512, CRC32, MURMUR3_32, MURMUR3_128")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for ChecksumAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}

/// A checksum: an algorithm and its lowercase hex value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Lowercase hex, in ThingsBoard's encoding for the algorithm.
    pub value: String,
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.value)
    }
}

impl Checksum {
    /// A checksum of `algorithm` from user input: surrounding whitespace is trimmed, letters
    /// are lowercased, and the value must be exactly [`ChecksumAlgorithm::hex_len`] hex digits.
    pub fn new(algorithm: ChecksumAlgorithm, value: &str) -> Result<Checksum, InvalidChecksum> {
        let trimmed = value.trim();
        if let Some((position, character)) = trimmed
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(InvalidChecksum::NotHex {
                algorithm,
                value: value.to_string(),
                character,
                position,
            });
        }
        // Only ASCII remains, so the byte length is the number of digits.
        if trimmed.len() != algorithm.hex_len() {
            return Err(InvalidChecksum::WrongLength {
                algorithm,
                value: value.to_string(),
                expected: algorithm.hex_len(),
                actual: trimmed.len(),
            });
        }
        Ok(Checksum {
            algorithm,
            value: trimmed.to_ascii_lowercase(),
        })
    }

    /// Whether `value` is this checksum, ignoring case and surrounding whitespace.
    pub fn matches(&self, value: &str) -> bool {
        self.value.trim().eq_ignore_ascii_case(value.trim())
    }
}

/// A checksum value that cannot be one of its algorithm.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidChecksum {
    /// The value has a character that is not a hex digit.
    #[error(
        "{algorithm} checksum {value:?} is not hexadecimal: {character:?} at position {position}"
    )]
    NotHex {
        /// The algorithm the value was given for.
        algorithm: ChecksumAlgorithm,
        /// The value as given.
        value: String,
        /// The first character that is not a hex digit.
        character: char,
        /// Its position (in characters) in the trimmed value.
        position: usize,
    },
    /// The value has the wrong number of hex digits for its algorithm.
    #[error(
        "{algorithm} checksum {value:?} has {actual} hex digits; {algorithm} needs {expected}"
    )]
    WrongLength {
        /// The algorithm the value was given for.
        algorithm: ChecksumAlgorithm,
        /// The value as given.
        value: String,
        /// The number of digits the algorithm needs.
        expected: usize,
        /// The number of digits given (after trimming).
        actual: usize,
    },
}

/// Lowercase hex of `bytes`, in order.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests;
