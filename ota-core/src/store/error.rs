//! The one error type every store maps its backend's failures into.

use crate::checksum::ChecksumMismatch;

/// A store operation failed. Every store (memory, PostgreSQL, ...) maps its backend's errors
/// into these kinds, so that the engine and the transports can act on the kind alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The entity does not exist (or belongs to another tenant, which is the same to the
    /// caller).
    #[error("{entity} {key} not found")]
    NotFound {
        /// The kind of entity (`package`, `device`, ...).
        entity: &'static str,
        /// The key that was looked up.
        key: String,
    },
    /// A uniqueness rule would be broken (a package with the same title and version, a device
    /// with the same name or token, a second unfinished update of one device and kind).
    #[error("{entity} conflict: {message}")]
    Conflict {
        /// The kind of entity.
        entity: &'static str,
        /// What collides with what.
        message: String,
    },
    /// A condition of the write no longer holds: a compare-and-set saw another revision, a
    /// lease is held by someone else. Re-read and decide again.
    #[error("precondition failed: {message}")]
    PreconditionFailed {
        /// What did not hold.
        message: String,
    },
    /// Uploaded content did not match the checksum given for it; nothing was stored.
    #[error(transparent)]
    ChecksumMismatch(#[from] ChecksumMismatch),
    /// Uploaded content is larger than the configured limit; nothing was stored.
    #[error("content exceeds the size limit of {limit} bytes; nothing was stored")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A byte range outside the content was asked for.
    #[error("range {start}..{end} is not within the content of {size} bytes")]
    RangeNotSatisfiable {
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The content's size.
        size: u64,
    },
    /// The stream of bytes being uploaded failed (for example the client went away); nothing
    /// was stored.
    #[error("content source failed: {message}; nothing was stored")]
    SourceFailed {
        /// What the source reported.
        message: String,
    },
    /// The backend is unreachable or overloaded; the same call may succeed later.
    #[error("store unavailable (transient): {message}")]
    Unavailable {
        /// What the backend reported.
        message: String,
    },
    /// Any other backend failure. Not expected to go away by retrying.
    #[error("store backend error: {message}")]
    Backend {
        /// What the backend reported.
        message: String,
    },
}

impl StoreError {
    /// A [`StoreError::NotFound`] for `entity` and `key`.
    pub fn not_found(entity: &'static str, key: impl ToString) -> Self {
        Self::NotFound {
            entity,
            key: key.to_string(),
        }
    }

    /// A [`StoreError::Conflict`] for `entity`.
    pub fn conflict(entity: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            entity,
            message: message.into(),
        }
    }

    /// A [`StoreError::PreconditionFailed`].
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::PreconditionFailed {
            message: message.into(),
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether this is [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}
