//! Mapping of sqlx errors into [`StoreError`].

use ota_core::store::StoreError;

/// SQLSTATE classes and codes that mean "try again later".
fn transient_code(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, ...)
        || matches!(
            code,
            "40001" // serialization failure
            | "40P01" // deadlock detected
            | "55P03" // lock not available
            | "57014" // query canceled (statement timeout)
            | "57P01" // admin shutdown
            | "57P02" // crash shutdown
            | "57P03" // cannot connect now (starting up)
        )
}

/// Maps any sqlx error. Unique violations become [`StoreError::Conflict`] (entity `record`,
/// with the constraint's name), foreign key violations [`StoreError::NotFound`].
pub(crate) fn map(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if code == "23505" {
                return StoreError::conflict(
                    "record",
                    format!(
                        "{} ({})",
                        db.message(),
                        db.constraint().unwrap_or("unique constraint")
                    ),
                );
            }
            if code == "23503" {
                return StoreError::NotFound {
                    entity: "referenced record",
                    key: db.message().to_string(),
                };
            }
            if transient_code(&code) {
                return StoreError::Unavailable {
                    message: format!("{} (SQLSTATE {code})", db.message()),
                };
            }
            StoreError::Backend {
                message: format!("{} (SQLSTATE {code})", db.message()),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable {
            message: e.to_string(),
        },
        _ => StoreError::Backend {
            message: e.to_string(),
        },
    }
}

/// Maps a unique violation to a conflict on `entity` with `message`; anything else as [`map`].
pub(crate) fn conflict_as(
    entity: &'static str,
    message: impl Into<String>,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    let message = message.into();
    move |e| match map(e) {
        StoreError::Conflict { .. } => StoreError::conflict(entity, message),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        for code in ["08006", "08001", "40001", "40P01", "57P01", "53300"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!transient_code(code), "{code}");
        }
    }

    #[test]
    fn pool_timeouts_are_transient() {
        assert!(map(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!map(sqlx::Error::RowNotFound).is_transient());
    }
}
