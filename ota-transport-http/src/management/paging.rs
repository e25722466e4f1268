//! Keyset paging of every list: `limit` and an opaque `cursor` in, `items` and `next_cursor`
//! out.

use super::error::ApiError;
use base64::Engine as _;
use ota_core::store::PageRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 1_000;
/// The `limit` when none is given.
pub const DEFAULT_LIMIT: u32 = 100;

/// Paging parameters of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

const CURSOR_PREFIX: &[u8] = b"k1";

/// The cursor that resumes after `id`.
pub fn encode_cursor(id: Uuid) -> String {
    let mut raw = CURSOR_PREFIX.to_vec();
    raw.extend_from_slice(id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The id a cursor resumes after.
pub fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            format!("cursor {cursor:?} is not one this API gave out; pass a `next_cursor` from a previous page, or none for the first page"),
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let id = raw.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    Uuid::from_slice(id).map_err(|_| bad())
}

impl PageParams {
    /// The validated limit.
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit {n} is out of range; use 1 to {MAX_LIMIT}"),
            )),
        }
    }

    /// The store page this asks for.
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit()?;
        Ok(match &self.cursor {
            None => PageRequest::first(limit),
            Some(c) => PageRequest::after(decode_cursor(c)?, limit),
        })
    }
}

/// One page of a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageOf<T> {
    /// The items, in id order.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> PageOf<T> {
    /// A page of API items from a store page.
    pub fn from_store<S>(page: ota_core::store::Page<S>, map: impl FnMut(S) -> T) -> Self {
        Self {
            next_cursor: page.next.and_then(|n| n.after).map(encode_cursor),
            items: page.items.into_iter().map(map).collect(),
        }
    }

    /// A page of `items` (already in id order, at most `limit`), with the cursor after the
    /// last when the page is full.
    pub fn from_items(items: Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Self {
        let next_cursor = if items.len() as u32 >= limit {
            items.last().map(|l| encode_cursor(id(l)))
        } else {
            None
        };
        Self { items, next_cursor }
    }
}

/// Walks a store listing from `request`, keeping the items `keep` accepts, until `limit` are
/// kept or the listing ends. At most `max_scanned` items are read per call; when that bound
/// is hit first, the cursor points after the last item read, so paging goes on from there.
pub async fn filtered_page<T, Fut>(
    request: PageRequest,
    max_scanned: usize,
    mut read: impl FnMut(PageRequest) -> Fut,
    keep: impl Fn(&T) -> bool,
    id: impl Fn(&T) -> Uuid,
) -> Result<(Vec<T>, Option<String>), ApiError>
where
    Fut: std::future::Future<Output = Result<ota_core::store::Page<T>, ApiError>>,
{
    let limit = request.limit as usize;
    let mut kept = Vec::new();
    let mut scanned = 0usize;
    let mut page = PageRequest {
        after: request.after,
        limit: ota_core::store::MAX_PAGE_SIZE.min((limit * 4).max(100) as u32),
    };
    loop {
        let got = read(page).await?;
        let more = got.next;
        for item in got.items {
            scanned += 1;
            let item_id = id(&item);
            if keep(&item) {
                kept.push(item);
                if kept.len() == limit {
                    return Ok((kept, Some(encode_cursor(item_id))));
                }
            }
            page.after = Some(item_id);
        }
        if more.is_none() {
            return Ok((kept, None));
        }
        if scanned >= max_scanned {
            return Ok((kept, page.after.map(encode_cursor)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for bad in ["", "abc", "!!!", &encode_cursor(id)[..10]] {
            let e = decode_cursor(bad).unwrap_err();
            assert_eq!(e.code, "invalid_cursor");
        }
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        let p = |limit| PageParams {
            limit,
            cursor: None,
        };
        assert_eq!(p(None).limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(p(Some(MAX_LIMIT)).limit().unwrap(), MAX_LIMIT);
        assert!(p(Some(0)).limit().is_err());
        assert!(p(Some(MAX_LIMIT + 1)).limit().is_err());
    }
}
