//! Cron expressions of maintenance windows and schedule specs (`ota_core::window`,
//! `ota_core::schedule`): a window built from `cron`, NUL, time zone, and the whole input as
//! the JSON of a window, a recurrence or a scheduled event; whatever parses is evaluated. The
//! body is `ota_core::fuzzing::schedule_specs` (feature `fuzzing`), which
//! `ota-core/tests/fuzz_corpus.rs` replays the corpus through.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ota_core::fuzzing::schedule_specs(data));
