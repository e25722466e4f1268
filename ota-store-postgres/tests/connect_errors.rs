//! Connecting with bad options or to a server that cannot serve gives typed errors that keep
//! their cause and say what was tried, never a panic, a hang or a bare "pool timed out".

use ota_core::store::{DeviceStore, StoreError};
use ota_core::{DeviceId, TenantId};
use ota_store_postgres::testing::{database_url, fresh_database};
use ota_store_postgres::{PgStore, PgStoreOptions};
use std::time::Duration;

/// The parts of the test database's URL: (scheme, user, host:port).
fn url_parts() -> (String, String, String) {
    let url = database_url();
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let (user, host) = match authority.rsplit_once('@') {
        Some((user_info, host)) => (user_info.split(':').next().unwrap_or(user_info), host),
        None => ("postgres", authority),
    };
    (scheme.to_string(), user.to_string(), host.to_string())
}

/// The test database's URL with its user and database replaced.
fn url_with(user: Option<&str>, database: &str) -> String {
    let (scheme, test_user, host) = url_parts();
    format!(
        "{scheme}://{}@{host}/{database}",
        user.unwrap_or(&test_user)
    )
}

async fn connect_err(options: PgStoreOptions) -> StoreError {
    PgStore::connect(options).await.expect_err("must fail")
}

#[tokio::test]
async fn a_malformed_url_is_a_backend_error_naming_the_url_problem() {
    let err = connect_err(PgStoreOptions::new("not a url")).await;
    assert!(
        matches!(&err, StoreError::Backend { message } if message.contains("invalid PostgreSQL URL")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_misspelt_scheme_is_refused_before_connecting() {
    for url in [
        "postgress:/x",
        "postgress://postgres@127.0.0.1:5432/test",
        "mysql://h/x",
    ] {
        let err = connect_err(PgStoreOptions::new(url)).await;
        let text = err.to_string();
        assert!(matches!(err, StoreError::Backend { .. }), "{url}: {err:?}");
        assert!(
            text.contains("must start with postgres://"),
            "{url}: {text}"
        );
        assert!(!text.contains("does not exist"), "{url}: {text}");
    }
}

#[tokio::test]
async fn an_unsafe_schema_name_is_refused_before_connecting() {
    let db = fresh_database().await;
    for bad in ["", "a;drop table x", "1abc", "has space", "x\"y"] {
        let err = connect_err(PgStoreOptions::new(db.url.clone()).schema(bad)).await;
        assert!(
            matches!(&err, StoreError::Backend { message } if message.contains("invalid schema name")),
            "{bad:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_connection_says_refused_and_where_and_is_transient() {
    // Port 1 on the loopback: nothing listens there. The connect timeout is long on purpose:
    // the refusal must come back as such, not as a timeout.
    let options = PgStoreOptions::new("postgres://postgres@127.0.0.1:1/test")
        .connect_timeout(Duration::from_secs(30));
    let err = connect_err(options).await;
    let text = err.to_string();
    assert!(err.is_transient(), "{err:?}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.contains("user postgres"), "{text}");
}

#[tokio::test]
async fn a_host_that_does_not_resolve_says_so() {
    // `.invalid` never resolves (RFC 2606).
    let err = connect_err(PgStoreOptions::new(
        "postgres://postgres@no-such-host.invalid:5432/test",
    ))
    .await;
    let text = err.to_string();
    assert!(text.contains("cannot be resolved"), "{text}");
    assert!(text.contains("no-such-host.invalid:5432"), "{text}");
}

#[tokio::test]
async fn a_role_that_cannot_log_in_is_an_authentication_failure() {
    let err = connect_err(PgStoreOptions::new(url_with(
        Some("ota_no_such_role"),
        "test",
    )))
    .await;
    let text = err.to_string();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("ota_no_such_role"), "{text}");
}

#[tokio::test]
async fn a_missing_database_is_named() {
    let err = connect_err(PgStoreOptions::new(url_with(None, "ota_no_such_database"))).await;
    let text = err.to_string();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(
        text.contains("database \"ota_no_such_database\" does not exist"),
        "{text}"
    );
    assert!(text.contains("SQLSTATE 3D000"), "{text}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_saying_what_it_tried() {
    // Accepts TCP connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options = PgStoreOptions::new(format!("postgres://postgres@127.0.0.1:{port}/test"))
        .connect_timeout(Duration::from_millis(300));
    let err = connect_err(options).await;
    let text = err.to_string();
    assert!(err.is_transient(), "{err:?}");
    assert!(text.contains("no answer within 300 ms"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    silent.abort();
}

#[tokio::test]
async fn a_dropped_schema_is_gone_and_a_closed_store_answers_unavailable() {
    let db = fresh_database().await;
    let options = db.options();
    let store = PgStore::connect(options.clone()).await.unwrap();
    // A plain pool (a store without a schema would migrate the default schema).
    let other = ota_store_postgres::sqlx::PgPool::connect(&db.url)
        .await
        .unwrap();
    let exists = |schema: String| {
        let pool = other.clone();
        async move {
            ota_store_postgres::sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            )
            .bind(schema)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert!(exists(db.schema.clone()).await);

    store.close().await;
    let err = store
        .get_device(TenantId::new(), DeviceId::new())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");

    PgStore::drop_schema(&options).await.unwrap();
    assert!(!exists(db.schema.clone()).await);
    // Dropping again is not an error; dropping without a schema is refused.
    PgStore::drop_schema(&options).await.unwrap();
    let err = PgStore::drop_schema(&PgStoreOptions::new(db.url.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no schema named"), "{err}");
    other.close().await;
}
