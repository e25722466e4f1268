//! The operator flow over the memory store, through a real socket.

mod management_support;

use management_support::{flow, Server};

#[tokio::test]
async fn the_whole_operator_flow_works_over_http() {
    let s = Server::memory().await;
    flow::operator_flow(&s).await;
    s.stop().await;
}
