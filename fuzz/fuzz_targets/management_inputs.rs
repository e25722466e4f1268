//! Management API inputs (`ota_transport_http::management`): the bytes as the JSON body of
//! every route that takes one (with the handlers' own conversions and checks), as a device
//! import CSV, and as the query string of a package upload. Any input gives a value or a 4xx
//! error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ota_transport_http::fuzzing::management_inputs(data));
