//! Entry point for the `mqtt_messages` fuzz target of `fuzz/` (feature `fuzzing`; not part of
//! the API). The target calls [`mqtt_messages`] and `tests/fuzz_corpus.rs` replays the
//! committed corpus (`fuzz/corpus/mqtt_messages`) through it on the stable toolchain, so both
//! run the same code.

use crate::bridge::BridgeTopics;
use crate::protocol::{chunk, topic, DeviceSession, ProtocolLimits};

/// The `mqtt_messages` target: the input is a topic and a payload separated by the first NUL
/// byte (no NUL: all topic). Topics, chunk indexes, chunk sizes and whole messages routed
/// through a device session give an answer, never a panic; so does a bridge-mode topic
/// (`v1/devices/{device}/...`) translated to endpoint form.
pub fn mqtt_messages(data: &[u8]) {
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
}
