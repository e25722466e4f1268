//! Entry points for the fuzz targets of `fuzz/` (feature `fuzzing`; not part of the API): the
//! parsers of outside input that are private to this crate. The targets call
//! [`http_range_query`] and [`management_inputs`]; the crate's tests replay the committed
//! corpora (`fuzz/corpus/<target>`) through the same functions.

use axum::http::{header, HeaderMap, HeaderValue};

/// The `http_range_query` target: a `Range` header and an `If-Range` value (separated by the
/// first NUL byte) planned against content sizes, and the same bytes as a query string.
pub fn http_range_query(data: &[u8]) {
    let (range, if_range) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    for size in [0, 1, 1000, u64::MAX] {
        range_plan(range, if_range, size);
    }
    query(&String::from_utf8_lossy(data));
}

/// The `management_inputs` target: the bytes as the JSON body of every management route that
/// takes one, as a device import CSV, as the query string of a package upload and of a list
/// route (states, kinds, ids), and as the `Range` header of a package content download.
pub fn management_inputs(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    crate::management::fuzz_inputs::json_bodies(data);
    crate::management::fuzz_inputs::devices_csv(data);
    crate::management::fuzz_inputs::upload_query(&text);
    crate::management::fuzz_inputs::list_query(&text);
    crate::management::fuzz_inputs::content_range(&text);
}

/// Plans the answer to a request with `range` as its `Range` header and `if_range` as its
/// `If-Range` header (when given and valid header values) for content of `size` bytes.
pub fn range_plan(range: &[u8], if_range: Option<&[u8]>, size: u64) {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(range) {
        headers.insert(header::RANGE, v);
    }
    if let Some(Ok(v)) = if_range.map(HeaderValue::from_bytes) {
        headers.insert(header::IF_RANGE, v);
    }
    let validators = crate::range::Validators {
        etag: Some("\"abc\""),
        last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT"),
    };
    if let Ok(crate::range::RangePlan::Partial(ranges)) =
        crate::range::plan(&headers, size, validators, 16)
    {
        assert!(!ranges.is_empty());
        for (start, end) in ranges {
            assert!(start < end && end <= size, "{start}..{end} of {size}");
        }
    }
}

/// Reads `raw` as a device API query string: numbers and lists of the parameters it has.
pub fn query(raw: &str) {
    let q = crate::device::query::Query::parse(Some(raw));
    for name in ["chunk", "size", "sharedKeys", "clientKeys", "timeout", ""] {
        let _ = q.first(name);
        let _ = q.list(name);
        let _ = q.u64(name);
    }
}

#[cfg(test)]
mod corpus_replay {
    //! Replays the committed corpora of this crate's fuzz targets (`fuzz/corpus/<target>`)
    //! through the functions the targets call, on the stable toolchain
    //! (`ota_core::fuzzing::replay_corpus`, feature `fuzzing` of ota-core in dev-dependencies).

    fn replay(target: &str, run: fn(&[u8])) {
        ota_core::fuzzing::replay_corpus(env!("CARGO_MANIFEST_DIR"), target, run);
    }

    #[test]
    fn http_range_query_corpus_replays() {
        replay("http_range_query", super::http_range_query);
    }

    #[test]
    fn management_inputs_corpus_replays() {
        replay("management_inputs", super::management_inputs);
    }
}
