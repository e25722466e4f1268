//! Replays the committed corpus of the `mqtt_messages` fuzz target (`fuzz/corpus/mqtt_messages`)
//! through the very function the target calls (`ota_transport_mqtt::fuzzing::mqtt_messages`,
//! feature `fuzzing`), on the stable toolchain: every input once found by a fuzzer still gives
//! an answer, never a panic.

use ota_transport_mqtt::fuzzing::mqtt_messages;
use std::path::PathBuf;

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
