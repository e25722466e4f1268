//! CSV device lists of campaign targets (`ota_core::campaign::device_list::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = ota_core::campaign::device_list::parse(data) {
        let _ = format!("{list:?}");
    }
});
