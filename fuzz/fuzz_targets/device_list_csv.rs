//! CSV device lists of campaign targets (`ota_core::campaign::device_list::parse`). The body
//! is `ota_core::fuzzing::device_list_csv` (feature `fuzzing`), which
//! `ota-core/tests/fuzz_corpus.rs` replays the corpus through.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ota_core::fuzzing::device_list_csv(data));
