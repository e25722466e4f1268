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

/// Maps the failure of a first connection to `tried` (`user .. at host:port, database ..`),
/// keeping its cause: refused, name resolution, authentication, missing database, TLS.
/// Causes that may go away by themselves (refused, a temporary DNS failure, a server starting
/// up or out of connections) are [`StoreError::Unavailable`]; the rest need a fix of the URL,
/// the server or its roles and are [`StoreError::Backend`].
pub(crate) fn connect_failed(e: sqlx::Error, tried: &str) -> StoreError {
    let unavailable = |why: String| StoreError::Unavailable {
        message: format!("cannot connect to PostgreSQL ({tried}): {why}"),
    };
    let backend = |why: String| StoreError::Backend {
        message: format!("cannot connect to PostgreSQL ({tried}): {why}"),
    };
    match &e {
        sqlx::Error::Io(io) => {
            let text = io.to_string();
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => unavailable(format!(
                    "connection refused ({text}); is PostgreSQL running and listening there?"
                )),
                std::io::ErrorKind::NotFound if text.contains("No such file") => backend(format!(
                    "no server socket ({text}); is PostgreSQL running on this host?"
                )),
                _ if text.contains("lookup address") || text.contains("resolve") => {
                    let why = format!("the host name cannot be resolved ({text})");
                    if text.contains("Temporary failure") || text.contains("try again") {
                        unavailable(why)
                    } else {
                        backend(why)
                    }
                }
                _ => unavailable(text),
            }
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let text = db.message();
            match code.as_str() {
                "28P01" | "28000" => backend(format!(
                    "authentication failed: {text} (SQLSTATE {code}); check the user and \
                     password in the URL and the server's pg_hba.conf"
                )),
                "3D000" => backend(format!(
                    "{text} (SQLSTATE {code}); create it (CREATE DATABASE) or fix the URL's \
                     database name"
                )),
                _ if transient_code(&code) => unavailable(format!("{text} (SQLSTATE {code})")),
                _ => backend(format!("{text} (SQLSTATE {code})")),
            }
        }
        sqlx::Error::Tls(tls) => backend(format!("TLS failed: {tls}")),
        _ => match map(e) {
            StoreError::Unavailable { message } => unavailable(message),
            StoreError::Backend { message } => backend(message),
            other => other,
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
    fn connection_failures_keep_their_cause() {
        let tried = "user u at h:1, database d";
        let io = |kind: std::io::ErrorKind, text: &str| {
            sqlx::Error::Io(std::io::Error::new(kind, text.to_string()))
        };
        let refused = connect_failed(io(std::io::ErrorKind::ConnectionRefused, "refused"), tried);
        assert!(refused.is_transient(), "{refused}");
        assert!(
            refused.to_string().contains("connection refused"),
            "{refused}"
        );
        assert!(refused.to_string().contains(tried), "{refused}");
        let dns = connect_failed(
            io(
                std::io::ErrorKind::Other,
                "failed to lookup address information: Name or service not known",
            ),
            tried,
        );
        assert!(!dns.is_transient(), "{dns}");
        assert!(dns.to_string().contains("cannot be resolved"), "{dns}");
        let dns_later = connect_failed(
            io(
                std::io::ErrorKind::Other,
                "failed to lookup address information: Temporary failure in name resolution",
            ),
            tried,
        );
        assert!(dns_later.is_transient(), "{dns_later}");
    }

    #[test]
    fn pool_timeouts_are_transient() {
        assert!(map(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!map(sqlx::Error::RowNotFound).is_transient());
    }
}
