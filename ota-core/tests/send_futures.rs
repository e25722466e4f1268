//! The engine's futures are `Send`, so an embedding can run them on a multi-threaded runtime
//! (`tokio::spawn`, axum handlers) without wrapping them.

use ota_core::prelude::*;
use std::sync::Arc;

fn assert_send<T: Send>(_: &T) {}

#[test]
fn engine_futures_are_send() {
    let ota = Ota::new(
        Arc::new(MemoryStore::new()),
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let tick = ota.tick();
    assert_send(&tick);
    let deliver = ota.deliver_notices();
    assert_send(&deliver);
}
