//! Replays the committed corpus of the `mqtt_messages` fuzz target (`fuzz/corpus/mqtt_messages`)
//! through the same calls as `fuzz/fuzz_targets/mqtt_messages.rs` (keep both in step), on the
//! stable toolchain: every input once found by a fuzzer still gives an answer, never a panic.

use ota_transport_mqtt::bridge::BridgeTopics;
use ota_transport_mqtt::protocol::{chunk, topic, DeviceSession, ProtocolLimits};
use std::path::PathBuf;

fn mqtt_messages(data: &[u8]) {
    let (topic_bytes, payload) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let topic_name = String::from_utf8_lossy(topic_bytes);
    let _ = topic::parse(&topic_name);
    let _ = chunk::parse_index(&topic_name);
    let _ = chunk::parse_size(payload, 64 * 1024);
    let mut session = DeviceSession::new(ProtocolLimits::default(), 0);
    let _ = session.route(&topic_name, payload, 1);
    let _ = session.route(&topic_name, &[], 2);
    if let Some((_, endpoint_topic)) = BridgeTopics::default().to_endpoint(&topic_name) {
        let _ = session.route(&endpoint_topic, payload, 3);
    }
}

#[test]
fn mqtt_messages_corpus_replays() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let Ok(entries) = std::fs::read_dir(fuzz.join("corpus/mqtt_messages")) else {
        // A packaged crate has no fuzz/ beside it.
        assert!(!fuzz.exists(), "fuzz/corpus/mqtt_messages is missing");
        return;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("corpus entry").path()).collect();
    paths.sort();
    assert!(!paths.is_empty(), "the corpus of mqtt_messages is empty");
    for path in paths {
        let bytes = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| mqtt_messages(&bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}
