//! [`ChecksumHasher`]: one algorithm's checksum over content fed in chunks.

use super::murmur3::{Murmur3x64_128, Murmur3x86_32};
use super::{to_hex, Checksum, ChecksumAlgorithm};
use md5::Md5;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The running state of one algorithm. The SHA-2 states are boxed so that the enum stays
/// small whatever the algorithm.
#[derive(Clone, Debug)]
enum State {
    Md5(Box<Md5>),
    Sha256(Box<Sha256>),
    Sha384(Box<Sha384>),
    Sha512(Box<Sha512>),
    Crc32(crc32fast::Hasher),
    Murmur3_32(Murmur3x86_32),
    Murmur3_128(Box<Murmur3x64_128>),
}

/// Computes the checksum of content fed in chunks of any size, in ThingsBoard's encoding for
/// the algorithm (see the [module documentation](super)).
///
/// ```
/// use ota_core::checksum::{ChecksumHasher, ChecksumAlgorithm};
/// let mut hasher = ChecksumHasher::new(ChecksumAlgorithm::Crc32);
/// hasher.update(b"The quick brown fox ");
/// hasher.update(b"jumps over the lazy dog");
/// assert_eq!(hasher.finish().value, "39a34f41");
/// ```
#[derive(Clone, Debug)]
pub struct ChecksumHasher {
    state: State,
}

impl ChecksumHasher {
    /// A hasher for `algorithm` that has seen no bytes.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Md5 => State::Md5(Box::default()),
            ChecksumAlgorithm::Sha256 => State::Sha256(Box::default()),
            ChecksumAlgorithm::Sha384 => State::Sha384(Box::default()),
            ChecksumAlgorithm::Sha512 => State::Sha512(Box::default()),
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Murmur3_32 => State::Murmur3_32(Murmur3x86_32::with_seed(0)),
            ChecksumAlgorithm::Murmur3_128 => {
                State::Murmur3_128(Box::new(Murmur3x64_128::with_seed(0)))
            }
        };
        Self { state }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            State::Md5(_) => ChecksumAlgorithm::Md5,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
            State::Sha384(_) => ChecksumAlgorithm::Sha384,
            State::Sha512(_) => ChecksumAlgorithm::Sha512,
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Murmur3_32(_) => ChecksumAlgorithm::Murmur3_32,
            State::Murmur3_128(_) => ChecksumAlgorithm::Murmur3_128,
        }
    }

    /// Feeds the next bytes of the content.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Md5(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha512(h) => h.update(data),
            State::Crc32(h) => h.update(data),
            State::Murmur3_32(h) => h.update(data),
            State::Murmur3_128(h) => h.update(data),
        }
    }

    /// The checksum of everything fed.
    pub fn finish(self) -> Checksum {
        let algorithm = self.algorithm();
        let value = match self.state {
            State::Md5(h) => to_hex(&h.finalize()),
            State::Sha256(h) => to_hex(&h.finalize()),
            State::Sha384(h) => to_hex(&h.finalize()),
            State::Sha512(h) => to_hex(&h.finalize()),
            State::Crc32(h) => to_hex(&h.finalize().to_le_bytes()),
            State::Murmur3_32(h) => to_hex(&h.finish().to_le_bytes()),
            State::Murmur3_128(h) => to_hex(&h.finish_bytes()),
        };
        Checksum { algorithm, value }
    }
}

/// The checksum of `data` with `algorithm`.
pub fn checksum_of(algorithm: ChecksumAlgorithm, data: &[u8]) -> Checksum {
    let mut hasher = ChecksumHasher::new(algorithm);
    hasher.update(data);
    hasher.finish()
}
