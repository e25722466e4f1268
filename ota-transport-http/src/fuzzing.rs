//! Entry points for the fuzz targets of `fuzz/` (feature `fuzzing`; not part of the API): the
//! parsers of outside input that are private to this crate.

use axum::http::{header, HeaderMap, HeaderValue};

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
