//! Conditional and range requests on immutable content (RFC 9110 §13 and §14): `If-None-Match`,
//! `If-Range` and `Range` (parsed by `http-range-header`) decide between the whole body, a 304,
//! one or several ranges (206, `multipart/byteranges` for several) and a 416.

use crate::error::ApiError;
use axum::http::{header, HeaderMap};
use std::num::NonZeroUsize;

/// What to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RangePlan {
    /// 200 with the whole content.
    Full,
    /// 304: the client has it.
    NotModified,
    /// 206 with these byte ranges (`start..end`, end exclusive, at least one).
    Partial(Vec<(u64, u64)>),
}

/// The validators of one representation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Validators<'a> {
    /// The strong entity tag, quoted (`"abc.."`).
    pub etag: Option<&'a str>,
    /// The `Last-Modified` value as sent.
    pub last_modified: Option<&'a str>,
}

fn opaque(tag: &str) -> &str {
    tag.trim().trim_start_matches("W/")
}

/// `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`.
fn none_match(headers: &HeaderMap, etag: Option<&str>) -> bool {
    let Some(etag) = etag else { return false };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == etag)
}

/// `If-Range` uses the strong comparison; a date must equal `Last-Modified`.
fn if_range_holds(value: &str, v: Validators<'_>) -> bool {
    let value = value.trim();
    if value.starts_with("W/") {
        return false;
    }
    if value.starts_with('"') {
        return v.etag == Some(value);
    }
    v.last_modified == Some(value)
}

/// Decides the answer for content of `size` bytes with validators `v`.
pub(crate) fn plan(
    headers: &HeaderMap,
    size: u64,
    v: Validators<'_>,
    max_ranges: usize,
) -> Result<RangePlan, ApiError> {
    if none_match(headers, v.etag) {
        return Ok(RangePlan::NotModified);
    }
    let Some(range) = headers.get(header::RANGE) else {
        return Ok(RangePlan::Full);
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        match if_range.to_str() {
            Ok(value) if if_range_holds(value, v) => {}
            // A stale or unreadable validator: the client gets the whole, current content.
            _ => return Ok(RangePlan::Full),
        }
    }
    let Ok(text) = range.to_str() else {
        return Ok(RangePlan::Full);
    };
    let max = NonZeroUsize::new(max_ranges.max(1)).unwrap_or(NonZeroUsize::MIN);
    use http_range_header::RangeUnsatisfiableError as E;
    let parsed = match http_range_header::parse_range_header_with_max_ranges(text, max) {
        Ok(parsed) => parsed,
        // A malformed Range header is ignored (RFC 9110 §14.2).
        Err(E::Invalid(_)) => return Ok(RangePlan::Full),
        Err(e) => {
            return Err(ApiError::range_not_satisfiable(
                size,
                format!("Range {text:?} refused: {e} (at most {max_ranges} ranges)"),
            ))
        }
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.is_empty() => Ok(RangePlan::Full),
        Ok(ranges) => Ok(RangePlan::Partial(
            ranges
                .into_iter()
                .map(|r| (*r.start(), r.end().saturating_add(1)))
                .collect(),
        )),
        Err(E::Invalid(_)) => Ok(RangePlan::Full),
        Err(e) => Err(ApiError::range_not_satisfiable(
            size,
            format!("Range {text:?} is not satisfiable for content of {size} bytes: {e}"),
        )),
    }
}

/// `Content-Disposition: attachment` with the file name as ASCII (`filename`) and as UTF-8
/// (`filename*`, RFC 6266 / 8187).
pub(crate) fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '/' => c,
            _ => '_',
        })
        .collect();
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(file_name, ATTR);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const ETAG: &str = "\"abc\"";
    const DATE: &str = "Mon, 01 Jan 2024 00:00:00 GMT";
    const V: Validators<'static> = Validators {
        etag: Some(ETAG),
        last_modified: Some(DATE),
    };

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn ranges_conditions_and_errors() {
        let p = |h: &[(header::HeaderName, &str)]| plan(&headers(h), 100, V, 4);
        assert_eq!(p(&[]).unwrap(), RangePlan::Full);
        assert_eq!(
            p(&[(header::RANGE, "bytes=0-9")]).unwrap(),
            RangePlan::Partial(vec![(0, 10)])
        );
        assert_eq!(
            p(&[(header::RANGE, "bytes=-10, 20-")]).unwrap(),
            RangePlan::Partial(vec![(90, 100), (20, 100)])
        );
        assert_eq!(
            p(&[(header::RANGE, "bytes=0-999")]).unwrap(),
            RangePlan::Partial(vec![(0, 100)])
        );
        // Malformed: ignored.
        assert_eq!(p(&[(header::RANGE, "items=0-9")]).unwrap(), RangePlan::Full);
        assert_eq!(p(&[(header::RANGE, "bytes=9-0")]).unwrap(), RangePlan::Full);
        // Unsatisfiable and too many: 416 with the size.
        let e = p(&[(header::RANGE, "bytes=100-")]).unwrap_err();
        assert_eq!((e.status.as_u16(), e.unsatisfied_size), (416, Some(100)));
        let e = p(&[(header::RANGE, "bytes=0-1,2-3,4-5,6-7,8-9")]).unwrap_err();
        assert_eq!(e.status.as_u16(), 416);
        // If-None-Match: weak comparison, lists and *.
        for inm in [ETAG, "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert_eq!(
                p(&[(header::IF_NONE_MATCH, inm)]).unwrap(),
                RangePlan::NotModified
            );
        }
        assert_eq!(
            p(&[(header::IF_NONE_MATCH, "\"x\"")]).unwrap(),
            RangePlan::Full
        );
        // If-Range: strong comparison or the exact date; otherwise the whole content.
        let r = (header::RANGE, "bytes=5-");
        assert_eq!(
            p(&[r.clone(), (header::IF_RANGE, ETAG)]).unwrap(),
            RangePlan::Partial(vec![(5, 100)])
        );
        assert_eq!(
            p(&[r.clone(), (header::IF_RANGE, DATE)]).unwrap(),
            RangePlan::Partial(vec![(5, 100)])
        );
        for stale in ["\"old\"", "W/\"abc\"", "Tue, 02 Jan 2024 00:00:00 GMT"] {
            assert_eq!(
                p(&[r.clone(), (header::IF_RANGE, stale)]).unwrap(),
                RangePlan::Full
            );
        }
        // Empty content: a range is ignored or unsatisfiable, never a panic.
        assert_eq!(
            plan(&headers(&[(header::RANGE, "bytes=-5")]), 0, V, 4).unwrap(),
            RangePlan::Full
        );
        assert!(plan(&headers(&[(header::RANGE, "bytes=0-")]), 0, V, 4).is_err());
    }

    #[test]
    fn file_names_are_safe_in_both_forms() {
        assert_eq!(
            content_disposition("fw-1.0.bin"),
            "attachment; filename=\"fw-1.0.bin\"; filename*=UTF-8''fw-1.0.bin"
        );
        assert_eq!(
            content_disposition("a\"b/é.bin"),
            "attachment; filename=\"a_b__.bin\"; filename*=UTF-8''a%22b%2F%C3%A9.bin"
        );
    }
}
