//! Telemetry and client-attribute payloads as devices send them (`ota_core::wire`): any bytes
//! give reports or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reports) = ota_core::wire::parse_reports(data) {
        for r in &reports {
            let _ = format!("{r:?}");
        }
    }
    let _ = ota_core::wire::parse_telemetry(data);
});
