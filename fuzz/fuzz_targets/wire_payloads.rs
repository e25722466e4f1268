//! Telemetry and client-attribute payloads as devices send them (`ota_core::wire`): any bytes
//! give reports or a typed error, never a panic. The body is `ota_core::fuzzing::wire_payloads`
//! (feature `fuzzing`), which `ota-core/tests/fuzz_corpus.rs` replays the corpus through.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ota_core::fuzzing::wire_payloads(data));
