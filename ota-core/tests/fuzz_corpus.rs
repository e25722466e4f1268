//! Replays the committed fuzz corpora of the targets that feed ota-core's parsers
//! (`fuzz/corpus/{wire_payloads,device_list_csv,schedule_specs}`) through the very functions
//! the targets in `fuzz/fuzz_targets` call (`ota_core::fuzzing`, feature `fuzzing`), on the
//! stable toolchain: every input once found by a fuzzer still gives a value or a typed error,
//! never a panic.

use ota_core::fuzzing;
use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let Ok(entries) = std::fs::read_dir(fuzz.join("corpus").join(target)) else {
        // A packaged crate has no fuzz/ beside it.
        assert!(!fuzz.exists(), "fuzz/corpus/{target} is missing");
        return;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("corpus entry").path()).collect();
    paths.sort();
    assert!(!paths.is_empty(), "the corpus of {target} is empty");
    for path in paths {
        let bytes = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
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
