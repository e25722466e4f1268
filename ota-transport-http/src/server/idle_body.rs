//! A request body that fails when it stalls: no frame for longer than a limit while it is
//! being read.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body failed because no bytes came for the limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for more than {0:?}")]
pub(crate) struct BodyStalled(Duration);

/// `inner`, failing with [`BodyStalled`] (and setting `timed_out`) when a read waits for more
/// than `limit`. The clock runs only while the body is read and restarts with every frame.
pub(crate) struct IdleTimeoutBody<B> {
    inner: B,
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl<B> IdleTimeoutBody<B> {
    pub(crate) fn new(inner: B, limit: Duration, timed_out: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            limit,
            sleep: None,
            timed_out,
        }
    }
}

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.sleep = None;
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let limit = this.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.sleep = None;
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyStalled(limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
