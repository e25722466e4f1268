//! The first contact with the server: the URL checked before anything is tried, one probe
//! connection with a short timeout whose failure keeps its cause (refused, DNS, timeout,
//! authentication, missing database), and dropping a schema.

use crate::error;
use crate::PgStoreOptions;
use ota_core::store::StoreError;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Duration;

/// The URL schemes PostgreSQL clients accept.
const SCHEMES: [&str; 2] = ["postgres", "postgresql"];

/// Parses a `postgres://` URL, refusing another scheme (`postgress:/x` would otherwise be read
/// as a database `x` on the default host and fail later as a missing database).
pub(crate) fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !scheme.is_some_and(|s| SCHEMES.iter().any(|k| s.eq_ignore_ascii_case(k))) {
        let found = url.split_once(':').map_or("none", |(s, _)| s);
        return Err(StoreError::Backend {
            message: format!(
                "invalid PostgreSQL URL {}: it must start with postgres:// or postgresql:// \
                 (scheme found: {found})",
                redact(url)
            ),
        });
    }
    PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend {
        message: format!("invalid PostgreSQL URL {}: {e}", redact(url)),
    })
}

/// `url` without its password.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// What a connection attempt tried: `user@host:port/database` (or the socket path).
pub(crate) fn target(options: &PgConnectOptions) -> String {
    let place = match options.get_socket() {
        Some(socket) => format!("socket {}", socket.display()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    format!(
        "user {} at {place}, database {}",
        options.get_username(),
        options.get_database().unwrap_or(options.get_username())
    )
}

/// Opens and closes one connection within `timeout`, so that a failure names its cause
/// instead of surfacing as a pool timeout.
pub(crate) async fn probe(options: &PgConnectOptions, timeout: Duration) -> Result<(), StoreError> {
    let tried = target(options);
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(connection)) => {
            // Closing is a courtesy; a failure here says nothing about the server.
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(error::connect_failed(e, &tried)),
        Err(_) => Err(StoreError::Unavailable {
            message: format!(
                "cannot connect to PostgreSQL ({tried}): no answer within {} ms \
                 (connect timeout); is the host reachable?",
                timeout.as_millis()
            ),
        }),
    }
}

/// Drops `options.schema` and everything in it.
pub(crate) async fn drop_schema(options: &PgStoreOptions) -> Result<(), StoreError> {
    let Some(schema) = &options.schema else {
        return Err(StoreError::Backend {
            message: "no schema named in the options: the store's tables are in the \
                      connection's default schema and are not dropped by this call"
                .into(),
        });
    };
    if !crate::valid_identifier(schema) {
        return Err(crate::invalid_schema(schema));
    }
    let connect = parse_url(&options.url)?;
    probe(&connect, options.connect_timeout).await?;
    let mut connection = connect.connect().await.map_err(error::map)?;
    let outcome = sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        crate::migrate::quote_identifier(schema)
    ))
    .execute(&mut connection)
    .await
    .map_err(error::map);
    let _ = connection.close().await;
    outcome.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_schemes_are_accepted() {
        for good in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgresql://u:p@db.example/x?sslmode=disable",
            "POSTGRES://h/x",
        ] {
            assert!(parse_url(good).is_ok(), "{good}");
        }
        for (bad, scheme) in [
            ("postgress:/x", "postgress"),
            ("postgress://h/x", "postgress"),
            ("mysql://h/x", "mysql"),
            ("127.0.0.1:5432/test", "127.0.0.1"),
            ("not a url", "none"),
            ("", "none"),
        ] {
            let err = parse_url(bad).expect_err(bad).to_string();
            assert!(err.contains("must start with postgres://"), "{bad}: {err}");
            assert!(
                err.contains(&format!("scheme found: {scheme}")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(
            redact("postgres://me:s3cret@h:5432/db?x=1"),
            "postgres://me:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://me@h/db"), "postgres://me@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        let err = parse_url("postgress://me:s3cret@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn the_target_names_user_host_port_and_database() {
        let options = parse_url("postgres://alice@db.example:6543/fleet").unwrap();
        assert_eq!(
            target(&options),
            "user alice at db.example:6543, database fleet"
        );
    }
}
