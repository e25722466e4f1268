//! The management API over the PostgreSQL store: the whole operator flow, and a store that
//! goes away answering 503 with `Retry-After`.

mod management_support;

use management_support::{flow, Server};
use ota_transport_http::ManagementOptions;
use std::sync::Arc;

#[tokio::test]
async fn the_whole_operator_flow_works_on_postgres() {
    let store = Arc::new(ota_store_postgres::testing::fresh_store().await);
    let s = Server::start(store.clone(), ManagementOptions::default()).await;
    flow::operator_flow(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn a_store_that_is_down_answers_503_with_retry_after() {
    let store = Arc::new(ota_store_postgres::testing::fresh_store().await);
    let s = Server::start(store.clone(), ManagementOptions::default()).await;
    let admin = s.a.admin.clone();
    s.get(&admin, "/devices").await.expect(200);
    store.close().await;
    for path in ["/devices", "/packages", "/campaigns", "/audit"] {
        let down = s.get(&admin, path).await;
        down.expect_error(503, "unavailable");
        assert_eq!(down.headers["retry-after"], "5", "{path}");
    }
    let create = s
        .post(&admin, "/profiles", serde_json::json!({"name": "p"}))
        .await;
    create.expect_error(503, "unavailable");
    assert!(create.headers.contains_key("retry-after"));
    s.stop().await;
}
