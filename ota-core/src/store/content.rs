//! Package content as streams of bytes, and byte ranges.

use super::StoreError;
use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use std::pin::Pin;

/// A stream of content chunks. Uploads come in as one; downloads go out as one. Content is
/// never held whole in memory.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send + 'static>>;

/// A range of bytes of a package's content: `start` inclusive, `end` exclusive (`None`: to the
/// end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte; `None` reads to the end of the content.
    pub end: Option<u64>,
}

impl ByteRange {
    /// The whole content.
    pub const FULL: ByteRange = ByteRange {
        start: 0,
        end: None,
    };

    /// Bytes `start..end`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end: Some(end),
        }
    }

    /// Bytes from `start` to the end.
    pub const fn from(start: u64) -> Self {
        Self { start, end: None }
    }

    /// Resolves the range against content of `size` bytes: the concrete `start..end`, with
    /// `end` clamped to `size`. A range starting at or past the end of non-empty content, or
    /// with `end < start`, is [`StoreError::RangeNotSatisfiable`]. The full range of empty
    /// content is `0..0`.
    pub fn resolve(&self, size: u64) -> Result<(u64, u64), StoreError> {
        let end = self.end.unwrap_or(size).min(size);
        let unsatisfiable = match self.end {
            Some(e) if e < self.start => true,
            _ => self.start > size || (self.start == size && size > 0 && self.end != Some(size)),
        };
        if unsatisfiable {
            return Err(StoreError::RangeNotSatisfiable {
                start: self.start,
                end: self.end.unwrap_or(size),
                size,
            });
        }
        Ok((self.start, end.max(self.start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(ByteRange::FULL.resolve(10).unwrap(), (0, 10));
        assert_eq!(ByteRange::FULL.resolve(0).unwrap(), (0, 0));
        assert_eq!(ByteRange::new(2, 5).resolve(10).unwrap(), (2, 5));
        assert_eq!(ByteRange::new(2, 50).resolve(10).unwrap(), (2, 10));
        assert_eq!(ByteRange::from(9).resolve(10).unwrap(), (9, 10));
        assert_eq!(ByteRange::new(10, 10).resolve(10).unwrap(), (10, 10));
        assert!(matches!(
            ByteRange::from(10).resolve(10),
            Err(StoreError::RangeNotSatisfiable { .. })
        ));
        assert!(ByteRange::from(11).resolve(10).is_err());
        assert!(ByteRange::new(5, 2).resolve(10).is_err());
    }
}
