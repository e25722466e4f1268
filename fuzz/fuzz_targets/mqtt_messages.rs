//! MQTT messages of a device (`ota_transport_mqtt::protocol`): the input is a topic and a
//! payload separated by the first NUL byte (no NUL: all topic). Topics, chunk indexes, chunk
//! sizes and whole messages routed through a device session give an answer, never a panic;
//! so does a bridge-mode topic (`v1/devices/{device}/...`) translated to endpoint form.
//! `ota-transport-mqtt/tests/fuzz_corpus.rs` replays the corpus with the same calls.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ota_transport_mqtt::bridge::BridgeTopics;
use ota_transport_mqtt::protocol::{chunk, topic, DeviceSession, ProtocolLimits};

fuzz_target!(|data: &[u8]| {
    let (topic_bytes, payload) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let topic_name = String::from_utf8_lossy(topic_bytes);
    let _ = topic::parse(&topic_name);
    let _ = chunk::parse_index(&topic_name);
    let _ = chunk::parse_size(payload, 64 * 1024);
    let mut session = DeviceSession::new(ProtocolLimits::default(), 0);
    // Twice: the second request may reuse the first's chunk size.
    let _ = session.route(&topic_name, payload, 1);
    let _ = session.route(&topic_name, &[], 2);
    if let Some((_, endpoint_topic)) = BridgeTopics::default().to_endpoint(&topic_name) {
        let _ = session.route(&endpoint_topic, payload, 3);
    }
});
