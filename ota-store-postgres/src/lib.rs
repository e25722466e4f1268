//! PostgreSQL store for the OTA library (in progress: the store lands with its own issue).
#![warn(missing_docs)]
