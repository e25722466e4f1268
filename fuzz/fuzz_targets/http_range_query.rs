//! Device HTTP API inputs (`ota_transport_http`): a `Range` header with an `If-Range` value
//! (separated by the first NUL byte) planned against content sizes, and the same bytes as a
//! query string read as numbers and lists. Any input gives a plan or a 4xx error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ota_transport_http::fuzzing::http_range_query(data));
