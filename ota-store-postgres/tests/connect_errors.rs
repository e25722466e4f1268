//! Connecting with bad options gives typed errors, never a panic or a hang.

use ota_core::store::StoreError;
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::{PgStore, PgStoreOptions};
use std::time::Duration;

#[tokio::test]
async fn a_malformed_url_is_a_backend_error_naming_the_url_problem() {
    let err = PgStore::connect(PgStoreOptions::new("not a url"))
        .await
        .expect_err("malformed");
    assert!(
        matches!(&err, StoreError::Backend { message } if message.contains("invalid PostgreSQL URL")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unsafe_schema_name_is_refused_before_connecting() {
    let db = fresh_database().await;
    for bad in ["", "a;drop table x", "1abc", "has space", "x\"y"] {
        let err = PgStore::connect(PgStoreOptions::new(db.url.clone()).schema(bad))
            .await
            .expect_err(bad);
        assert!(
            matches!(&err, StoreError::Backend { message } if message.contains("invalid schema name")),
            "{bad:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_error() {
    let mut options = PgStoreOptions::new("postgres://postgres@127.0.0.1:1/test");
    options.acquire_timeout = Duration::from_secs(2);
    let err = PgStore::connect(options)
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_transient(), "{err:?}");
}
