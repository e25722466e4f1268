//! Package content as streams of bytes, and byte ranges.

use super::StoreError;
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::io::{AsyncRead, AsyncReadExt};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// A stream of content chunks. Uploads come in as one; downloads go out as one. Content is
/// never held whole in memory.
///
/// Build one with the constructors of [`ByteStreamExt`] (in the
/// [prelude](crate::prelude)): [`from_bytes`](ByteStreamExt::from_bytes),
/// [`from_vec`](ByteStreamExt::from_vec), [`from_stream`](ByteStreamExt::from_stream) (any
/// stream of byte chunks) and [`from_reader`](ByteStreamExt::from_reader) (any
/// `futures::io::AsyncRead`: a file, a socket, a request body). Or box any stream of
/// `Result<Bytes, StoreError>` yourself with `Box::pin`.
///
/// ```
/// use ota_core::prelude::*;
///
/// let from_static: ByteStream = ByteStream::from_bytes(&b"firmware image"[..]);
/// let from_vec = ByteStream::from_vec(vec![0u8; 1024]);
/// # let _ = (from_static, from_vec);
/// ```
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send + 'static>>;

/// How many bytes [`ByteStreamExt::from_reader`] reads into one chunk: 64 KiB.
pub const DEFAULT_READ_CHUNK: usize = 64 * 1024;

/// Constructors (and a collector) for [`ByteStream`]. Implemented for `ByteStream` only; bring
/// it into scope (it is in the [prelude](crate::prelude)) and call
/// `ByteStream::from_vec(...)` and so on.
///
/// # Files and readers
///
/// [`from_reader`](ByteStreamExt::from_reader) takes the runtime-neutral
/// `futures::io::AsyncRead` (re-exported as `ota_core::futures_util::io::AsyncRead`), so that
/// this crate depends on no runtime. With tokio, adapt a `tokio::fs::File` (or any
/// `tokio::io::AsyncRead`) with `tokio_util::compat` (crate `tokio-util`, feature `compat`):
///
/// ```no_run
/// # async fn upload() -> std::io::Result<()> {
/// use ota_core::prelude::*;
/// use tokio_util::compat::TokioAsyncReadCompatExt;
///
/// let file = tokio::fs::File::open("firmware-2.0.bin").await?;
/// let content = ByteStream::from_reader(file.compat());
/// # let _ = content; Ok(()) }
/// ```
///
/// A read error ends the stream with [`StoreError::SourceFailed`] naming it; the upload then
/// stores nothing.
pub trait ByteStreamExt: Sized {
    /// One chunk of `bytes` (a `Bytes`, a `Vec<u8>`, a `&'static [u8]`, a `String`, ...).
    fn from_bytes(bytes: impl Into<Bytes>) -> Self;

    /// The bytes of `vec`, as one chunk (no copy).
    fn from_vec(vec: Vec<u8>) -> Self {
        Self::from_bytes(vec)
    }

    /// No bytes at all.
    fn empty() -> Self;

    /// Any stream of byte chunks. Each item is a chunk (anything that converts into `Bytes`)
    /// or an error, which becomes [`StoreError::SourceFailed`] with the error's text and ends
    /// the upload (nothing is stored).
    fn from_stream<S, B, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<B, E>> + Send + 'static,
        B: Into<Bytes>,
        E: std::fmt::Display;

    /// The bytes of `reader`, read in chunks of [`DEFAULT_READ_CHUNK`] until it ends. See the
    /// trait docs for tokio files.
    fn from_reader<R>(reader: R) -> Self
    where
        R: AsyncRead + Send + 'static,
    {
        Self::from_reader_chunked(reader, DEFAULT_READ_CHUNK)
    }

    /// The bytes of `reader`, read in chunks of `chunk_size` bytes (at least 1; the last may
    /// be shorter).
    fn from_reader_chunked<R>(reader: R, chunk_size: usize) -> Self
    where
        R: AsyncRead + Send + 'static;

    /// Reads the whole stream into one buffer (for small content: tests, checks). Fails with
    /// [`StoreError::TooLarge`] as soon as more than `limit` bytes arrived, and with the
    /// stream's own error if it fails.
    fn collect_bytes(self, limit: u64) -> impl Future<Output = Result<Bytes, StoreError>> + Send;
}

impl ByteStreamExt for ByteStream {
    fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes: Bytes = bytes.into();
        Box::pin(futures_util::stream::once(std::future::ready(Ok(bytes))))
    }

    fn empty() -> Self {
        Box::pin(futures_util::stream::empty())
    }

    fn from_stream<S, B, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<B, E>> + Send + 'static,
        B: Into<Bytes>,
        E: std::fmt::Display,
    {
        Box::pin(stream.map(|item| {
            item.map(Into::into).map_err(|e| StoreError::SourceFailed {
                message: e.to_string(),
            })
        }))
    }

    fn from_reader_chunked<R>(reader: R, chunk_size: usize) -> Self
    where
        R: AsyncRead + Send + 'static,
    {
        let chunk_size = chunk_size.max(1);
        let state = Some(Box::pin(reader));
        Box::pin(futures_util::stream::unfold(
            state,
            move |state| async move {
                let mut reader = state?;
                let mut buf = BytesMut::zeroed(chunk_size);
                let mut filled = 0;
                while filled < chunk_size {
                    match reader.read(&mut buf[filled..]).await {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let failed = StoreError::SourceFailed {
                                message: format!("reading the content failed: {e}"),
                            };
                            return Some((Err(failed), None));
                        }
                    }
                }
                if filled == 0 {
                    return None;
                }
                buf.truncate(filled);
                // A short chunk means the reader ended; stop without another read.
                let next = (filled == chunk_size).then_some(reader);
                Some((Ok(buf.freeze()), next))
            },
        ))
    }

    async fn collect_bytes(mut self, limit: u64) -> Result<Bytes, StoreError> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(StoreError::TooLarge { limit });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// A range of bytes of a package's content: `start` inclusive, `end` exclusive (`None`: to the
/// end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte; `None` reads to the end of the content.
    pub end: Option<u64>,
}

impl ByteRange {
    /// The whole content.
    pub const FULL: ByteRange = ByteRange {
        start: 0,
        end: None,
    };

    /// Bytes `start..end`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end: Some(end),
        }
    }

    /// Bytes from `start` to the end.
    pub const fn from(start: u64) -> Self {
        Self { start, end: None }
    }

    /// Resolves the range against content of `size` bytes: the concrete `start..end`, with
    /// `end` clamped to `size`. A range starting at or past the end of non-empty content, or
    /// with `end < start`, is [`StoreError::RangeNotSatisfiable`]. The full range of empty
    /// content is `0..0`.
    pub fn resolve(&self, size: u64) -> Result<(u64, u64), StoreError> {
        let end = self.end.unwrap_or(size).min(size);
        let unsatisfiable = match self.end {
            Some(e) if e < self.start => true,
            _ => self.start > size || (self.start == size && size > 0 && self.end != Some(size)),
        };
        if unsatisfiable {
            return Err(StoreError::RangeNotSatisfiable {
                start: self.start,
                end: self.end.unwrap_or(size),
                size,
            });
        }
        Ok((self.start, end.max(self.start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("ready without a runtime")
    }

    /// A reader that hands out at most `step` bytes per read and fails after `fail_after`
    /// bytes when set, with an interruption before every read.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_after: Option<usize>,
        interrupt: bool,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            use std::task::Poll;
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Poll::Ready(Err(std::io::ErrorKind::Interrupted.into()));
            }
            if self.fail_after.is_some_and(|f| self.at >= f) {
                return Poll::Ready(Err(std::io::Error::other("disk on fire")));
            }
            let n = self.step.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    fn chunks(stream: ByteStream) -> Vec<Result<Bytes, StoreError>> {
        block_on(stream.collect::<Vec<_>>())
    }

    #[test]
    fn bytes_and_vectors_are_one_chunk() {
        let got = chunks(ByteStream::from_bytes(&b"abc"[..]));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap(), &Bytes::from_static(b"abc"));
        let got = block_on(ByteStream::from_vec(vec![7; 10]).collect_bytes(10)).unwrap();
        assert_eq!(&got[..], &[7; 10]);
        assert!(chunks(ByteStream::empty()).is_empty());
    }

    #[test]
    fn a_stream_of_chunks_keeps_them_and_turns_errors_into_source_failures() {
        let source = futures_util::stream::iter(vec![
            Ok(vec![1u8, 2]),
            Ok(vec![3]),
            Err(std::io::Error::other("client went away")),
        ]);
        let got = chunks(ByteStream::from_stream(source));
        assert_eq!(got.len(), 3);
        assert_eq!(&got[0].as_ref().unwrap()[..], &[1, 2]);
        assert_eq!(&got[1].as_ref().unwrap()[..], &[3]);
        assert!(
            matches!(&got[2], Err(StoreError::SourceFailed { message }) if message == "client went away"),
            "{:?}",
            got[2]
        );
    }

    #[test]
    fn a_reader_is_read_in_full_chunks_whatever_its_read_sizes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for (step, chunk) in [
            (1, 1000),
            (7, 4096),
            (5000, 3),
            (20_000, 10_000),
            (3, 20_000),
        ] {
            let reader = Trickle {
                data: data.clone(),
                at: 0,
                step,
                fail_after: None,
                interrupt: false,
            };
            let got = chunks(ByteStream::from_reader_chunked(reader, chunk));
            let sizes: Vec<usize> = got.iter().map(|c| c.as_ref().unwrap().len()).collect();
            assert!(
                sizes[..sizes.len() - 1].iter().all(|s| *s == chunk),
                "{sizes:?}"
            );
            let joined: Vec<u8> = got.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
            assert_eq!(joined, data, "step {step} chunk {chunk}");
        }
        let empty = Trickle {
            data: Vec::new(),
            at: 0,
            step: 4,
            fail_after: None,
            interrupt: false,
        };
        assert!(chunks(ByteStream::from_reader(empty)).is_empty());
    }

    #[test]
    fn a_failing_reader_ends_the_stream_with_its_error() {
        let reader = Trickle {
            data: vec![0; 100],
            at: 0,
            step: 10,
            fail_after: Some(30),
            interrupt: false,
        };
        let got = chunks(ByteStream::from_reader_chunked(reader, 20));
        assert_eq!(got.len(), 2, "one full chunk, then the error");
        assert_eq!(got[0].as_ref().unwrap().len(), 20);
        assert!(
            matches!(&got[1], Err(StoreError::SourceFailed { message }) if message.contains("disk on fire")),
            "{:?}",
            got[1]
        );
    }

    #[test]
    fn collecting_stops_at_the_limit() {
        let stream = ByteStream::from_stream(futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(vec![0u8; 6]),
            Ok(vec![0u8; 6]),
        ]));
        assert!(matches!(
            block_on(stream.collect_bytes(10)),
            Err(StoreError::TooLarge { limit: 10 })
        ));
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(ByteRange::FULL.resolve(10).unwrap(), (0, 10));
        assert_eq!(ByteRange::FULL.resolve(0).unwrap(), (0, 0));
        assert_eq!(ByteRange::new(2, 5).resolve(10).unwrap(), (2, 5));
        assert_eq!(ByteRange::new(2, 50).resolve(10).unwrap(), (2, 10));
        assert_eq!(ByteRange::from(9).resolve(10).unwrap(), (9, 10));
        assert_eq!(ByteRange::new(10, 10).resolve(10).unwrap(), (10, 10));
        assert!(matches!(
            ByteRange::from(10).resolve(10),
            Err(StoreError::RangeNotSatisfiable { .. })
        ));
        assert!(ByteRange::from(11).resolve(10).is_err());
        assert!(ByteRange::new(5, 2).resolve(10).is_err());
    }
}
