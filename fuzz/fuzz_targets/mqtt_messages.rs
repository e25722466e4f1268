//! MQTT messages of a device (`ota_transport_mqtt::protocol`): the input is a topic and a
//! payload separated by the first NUL byte (no NUL: all topic). Topics, chunk indexes, chunk
//! sizes and whole messages routed through a device session give an answer, never a panic;
//! so does a bridge-mode topic (`v1/devices/{device}/...`) translated to endpoint form. The
//! body is `ota_transport_mqtt::fuzzing::mqtt_messages` (feature `fuzzing`), which
//! `ota-transport-mqtt/tests/fuzz_corpus.rs` replays the corpus through.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ota_transport_mqtt::fuzzing::mqtt_messages(data));
