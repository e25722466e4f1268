//! Keyset paging: every listing is ordered by id and resumes after the last id seen, so that
//! walking 1,000,000 devices costs the same per page at the end as at the start.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The largest page a store returns, whatever the request says.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// Which page to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Resume after this id (exclusive); `None` starts at the beginning.
    pub after: Option<Uuid>,
    /// At most this many items (clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub limit: u32,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }

    /// The page after `id`.
    pub fn after(id: Uuid, limit: u32) -> Self {
        Self {
            after: Some(id),
            limit,
        }
    }

    /// The limit clamped to 1..=[`MAX_PAGE_SIZE`].
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE_SIZE) as usize
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(100)
    }
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, ordered by id.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this is the last page.
    pub next: Option<PageRequest>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items read in id order: when there is one more
    /// than the limit, the page is full and `next` resumes after its last item.
    pub fn from_overfetch(
        mut items: Vec<T>,
        request: &PageRequest,
        id: impl Fn(&T) -> Uuid,
    ) -> Self {
        let limit = request.effective_limit();
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|last| PageRequest::after(id(last), request.limit))
        } else {
            None
        };
        Self { items, next }
    }
}
