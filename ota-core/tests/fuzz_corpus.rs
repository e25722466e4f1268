//! Replays the committed fuzz corpora of the targets that feed ota-core's parsers
//! (`fuzz/corpus/{wire_payloads,device_list_csv,schedule_specs}`) through the very functions
//! the targets in `fuzz/fuzz_targets` call (`ota_core::fuzzing`, feature `fuzzing`), on the
//! stable toolchain: every input once found by a fuzzer still gives a value or a typed error,
//! never a panic.

use ota_core::fuzzing;

fn replay(target: &str, run: fn(&[u8])) {
    fuzzing::replay_corpus(env!("CARGO_MANIFEST_DIR"), target, run);
}

#[test]
fn wire_payloads_corpus_replays() {
    replay("wire_payloads", fuzzing::wire_payloads);
}

#[test]
fn device_list_csv_corpus_replays() {
    replay("device_list_csv", fuzzing::device_list_csv);
}

#[test]
fn schedule_specs_corpus_replays() {
    replay("schedule_specs", fuzzing::schedule_specs);
}
