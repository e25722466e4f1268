//! Package content for downloads: streamed from the store with bounded memory, or served from
//! an in-memory cache of hot content identified by its SHA256, within a configured budget.
//!
//! The first download of a package that fits the budget streams from the store as usual and
//! starts one background fill (read whole, checked against size and SHA256); later downloads
//! slice the cached pieces without copying. The least recently used entries make room.

use crate::error::ApiError;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use ota_core::checksum::ContentHasher;
use ota_core::store::{ByteRange, Store};
use ota_core::Package;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A stream of body bytes.
pub(crate) type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Content held whole, as the pieces it was read in.
#[derive(Debug)]
struct Cached {
    pieces: Vec<Bytes>,
    /// Offset of each piece's first byte.
    offsets: Vec<u64>,
}

impl Cached {
    fn slices(&self, start: u64, end: u64) -> Vec<Bytes> {
        let first = self
            .offsets
            .partition_point(|&o| o <= start)
            .saturating_sub(1);
        let mut out = Vec::new();
        for (piece, &offset) in self.pieces[first..].iter().zip(&self.offsets[first..]) {
            if offset >= end {
                break;
            }
            let from = start.saturating_sub(offset) as usize;
            let to = ((end - offset) as usize).min(piece.len());
            if from < to {
                out.push(piece.slice(from..to));
            }
        }
        out
    }
}

#[derive(Debug)]
enum Entry {
    Loading {
        size: u64,
    },
    Ready {
        data: Arc<Cached>,
        size: u64,
        used: u64,
    },
}

impl Entry {
    fn size(&self) -> u64 {
        match self {
            Self::Loading { size } | Self::Ready { size, .. } => *size,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    bytes: u64,
    clock: u64,
}

/// The content cache (see the module documentation).
#[derive(Debug)]
pub(crate) struct ContentCache {
    budget: u64,
    state: Mutex<State>,
}

/// Largest piece handed to the connection at once from the cache.
const SERVE_PIECE: usize = 1 << 20;

impl ContentCache {
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            budget,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(package: &Package) -> Option<String> {
        Some(format!("{}:{}", package.sha256.as_deref()?, package.size?))
    }

    /// The cached content of `package`, or `None`; when it is not cached and fits, claims
    /// the room for it and returns `Err(())` so that the caller starts the fill.
    fn lookup(&self, key: &str, size: u64) -> Result<Option<Arc<Cached>>, ()> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        match state.entries.get_mut(key) {
            Some(Entry::Ready { data, used, .. }) => {
                *used = now;
                return Ok(Some(data.clone()));
            }
            Some(Entry::Loading { .. }) => return Ok(None),
            None => {}
        }
        if size > self.budget || size == 0 {
            return Ok(None);
        }
        // Make room from the least recently used ready entries.
        while state.bytes + size > self.budget {
            let victim = state
                .entries
                .iter()
                .filter_map(|(k, e)| match e {
                    Entry::Ready { used, .. } => Some((*used, k.clone())),
                    Entry::Loading { .. } => None,
                })
                .min();
            let Some((_, victim)) = victim else {
                return Ok(None);
            };
            if let Some(e) = state.entries.remove(&victim) {
                state.bytes -= e.size();
            }
        }
        state.bytes += size;
        state
            .entries
            .insert(key.to_string(), Entry::Loading { size });
        Err(())
    }

    fn finish(&self, key: &str, loaded: Option<Cached>) {
        let mut state = self.lock();
        let now = state.clock;
        let Some(entry) = state.entries.get_mut(key) else {
            return;
        };
        let size = entry.size();
        match loaded {
            Some(data) => {
                *entry = Entry::Ready {
                    data: Arc::new(data),
                    size,
                    used: now,
                }
            }
            None => {
                state.entries.remove(key);
                state.bytes -= size;
            }
        }
    }

    /// Bytes `start..end` of `package`'s content as a stream.
    pub(crate) async fn stream(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        package: &Package,
        start: u64,
        end: u64,
    ) -> Result<BodyStream, ApiError> {
        if let (Some(key), Some(size)) = (Self::key(package), package.size) {
            match self.lookup(&key, size) {
                Ok(Some(cached)) => {
                    let slices = cached.slices(start, end);
                    let pieces = slices.into_iter().flat_map(|s| {
                        (0..s.len())
                            .step_by(SERVE_PIECE)
                            .map(move |at| Ok(s.slice(at..(at + SERVE_PIECE).min(s.len()))))
                            .collect::<Vec<_>>()
                    });
                    return Ok(stream::iter(pieces.collect::<Vec<_>>()).boxed());
                }
                Ok(None) => {}
                Err(()) => {
                    let cache = self.clone();
                    let store = store.clone();
                    let package = package.clone();
                    tokio::spawn(async move {
                        let loaded = load(&store, &package).await;
                        cache.finish(&key, loaded);
                    });
                }
            }
        }
        let content = store
            .read_content(package.tenant_id, package.id, ByteRange::new(start, end))
            .await?;
        Ok(content
            .map(|piece| piece.map_err(std::io::Error::other))
            .boxed())
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> u64 {
        self.lock().bytes
    }
}

/// Reads `package`'s whole content, checking its size and SHA256; `None` on any failure.
async fn load(store: &Arc<dyn Store>, package: &Package) -> Option<Cached> {
    let mut content = store
        .read_content(package.tenant_id, package.id, ByteRange::FULL)
        .await
        .ok()?;
    let mut hasher = ContentHasher::new(None);
    let mut pieces = Vec::new();
    let mut offsets = Vec::new();
    let mut offset = 0u64;
    while let Some(piece) = content.next().await {
        let piece = piece.ok()?;
        hasher.update(&piece);
        offsets.push(offset);
        offset += piece.len() as u64;
        if Some(offset) > package.size {
            return None;
        }
        pieces.push(piece);
    }
    let digest = hasher.finish().ok()?;
    if Some(digest.size) != package.size || package.sha256.as_deref() != Some(&digest.sha256) {
        tracing::warn!(package = %package.id, "stored content does not match its size or SHA256; not cached");
        return None;
    }
    Some(Cached { pieces, offsets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(pieces: &[&[u8]]) -> Cached {
        let mut offsets = Vec::new();
        let mut at = 0;
        for p in pieces {
            offsets.push(at);
            at += p.len() as u64;
        }
        Cached {
            pieces: pieces.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
            offsets,
        }
    }

    #[test]
    fn slices_cover_exactly_the_range() {
        let c = cached(&[b"abc", b"defg", b"h", b"ijk"]);
        let all = b"abcdefghijk";
        for start in 0..=11u64 {
            for end in start..=11u64 {
                let got: Vec<u8> = c.slices(start, end).concat();
                assert_eq!(got, &all[start as usize..end as usize], "{start}..{end}");
            }
        }
    }

    #[test]
    fn the_budget_holds_and_least_recently_used_goes_first() {
        let cache = ContentCache::new(100);
        assert!(cache.lookup("a", 60).is_err());
        // Loading entries are not evicted: no room for b.
        assert!(cache.lookup("b", 60).unwrap().is_none());
        cache.finish("a", Some(cached(&[&[0; 60]])));
        assert!(cache.lookup("a", 60).unwrap().is_some());
        assert!(cache.lookup("b", 60).is_err());
        assert!(cache.cached_bytes() <= 100);
        cache.finish("b", None);
        assert_eq!(cache.cached_bytes(), 0);
        assert!(cache.lookup("big", 101).unwrap().is_none());
    }
}
