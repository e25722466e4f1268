//! Replays the committed corpus of the `mqtt_messages` fuzz target (`fuzz/corpus/mqtt_messages`)
//! through the very function the target calls (`ota_transport_mqtt::fuzzing::mqtt_messages`,
//! feature `fuzzing`), on the stable toolchain: every input once found by a fuzzer still gives
//! an answer, never a panic.

use ota_core::fuzzing::replay_corpus;
use ota_transport_mqtt::fuzzing::mqtt_messages;

#[test]
fn mqtt_messages_corpus_replays() {
    replay_corpus(env!("CARGO_MANIFEST_DIR"), "mqtt_messages", mqtt_messages);
}
