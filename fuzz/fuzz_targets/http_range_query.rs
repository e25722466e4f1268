//! Device HTTP API inputs (`ota_transport_http`): a `Range` header with an `If-Range` value
//! (separated by the first NUL byte) planned against content sizes, and the same bytes as a
//! query string read as numbers and lists. Any input gives a plan or a 4xx error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ota_transport_http::fuzzing;

fuzz_target!(|data: &[u8]| {
    let (range, if_range) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    for size in [0, 1, 1000, u64::MAX] {
        fuzzing::range_plan(range, if_range, size);
    }
    fuzzing::query(&String::from_utf8_lossy(data));
});
