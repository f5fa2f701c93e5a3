//! Blob content in motion: [`BlobStream`] and [`verify_stream`], which hashes
//! every chunk as it passes and turns the end of the stream into an error when
//! the bytes do not match the digest and size they were addressed by.
//!
//! Streams are never collected here: memory stays at one chunk per stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::digest::{Digest, Hasher};
use super::error::{Error, Result};

/// A stream of blob chunks. Errors end the stream.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A blob being read: its size, when known up front, and its content.
pub struct Blob {
    /// Size in bytes, when the source announced it.
    pub size: Option<u64>,
    /// The content, already wrapped in [`verify_stream`] by every backend.
    pub stream: BlobStream,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What the bytes of a stream must be.
#[derive(Clone, Debug)]
pub struct Expected {
    /// The digest the content is addressed by.
    pub digest: Digest,
    /// The size, when known.
    pub size: Option<u64>,
    /// Where the bytes come from, for error messages.
    pub location: String,
}

struct Verifying {
    inner: BlobStream,
    hasher: Option<Hasher>,
    expected: Expected,
}

/// Wrap `inner` so that it yields the same chunks, then an error instead of a
/// clean end when the bytes do not hash to `expected.digest` or exceed or fall
/// short of `expected.size`. An oversized stream fails as soon as it passes
/// the size, so a lying server cannot make us buffer or store more.
pub fn verify_stream(inner: BlobStream, expected: Expected) -> BlobStream {
    Box::pin(Verifying {
        inner,
        hasher: Some(Hasher::new()),
        expected,
    })
}

impl Verifying {
    fn size_error(&self, actual: u64) -> Error {
        Error::SizeMismatch {
            location: self.expected.location.clone(),
            digest: self.expected.digest,
            expected: self.expected.size.unwrap_or_default(),
            actual,
        }
    }
}

impl Stream for Verifying {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = &mut *self;
        let Some(hasher) = this.hasher.as_mut() else {
            return Poll::Ready(None);
        };
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                hasher.update(&chunk);
                let seen = hasher.len();
                if this.expected.size.is_some_and(|size| seen > size) {
                    this.hasher = None;
                    return Poll::Ready(Some(Err(this.size_error(seen))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.hasher = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                let Some(hasher) = this.hasher.take() else {
                    return Poll::Ready(None);
                };
                let seen = hasher.len();
                if this.expected.size.is_some_and(|size| seen != size) {
                    return Poll::Ready(Some(Err(this.size_error(seen))));
                }
                let actual = hasher.finish();
                if actual != this.expected.digest {
                    return Poll::Ready(Some(Err(Error::DigestMismatch {
                        location: this.expected.location.clone(),
                        expected: this.expected.digest,
                        actual,
                    })));
                }
                Poll::Ready(None)
            }
        }
    }
}

/// A stream over chunks already in memory (small blobs, tests).
pub fn stream_from_bytes(bytes: Bytes) -> BlobStream {
    Box::pin(futures_util::stream::iter([Ok(bytes)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    async fn drain(mut s: BlobStream) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    fn chunks(parts: &[&'static [u8]]) -> BlobStream {
        let items: Vec<Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    fn expected(content: &[u8], size: Option<u64>) -> Expected {
        Expected {
            digest: Digest::of(content),
            size,
            location: "test".into(),
        }
    }

    #[tokio::test]
    async fn passes_matching_content_through() {
        let s = verify_stream(chunks(&[b"ab", b"cd"]), expected(b"abcd", Some(4)));
        assert_eq!(drain(s).await.unwrap(), b"abcd");
    }

    #[tokio::test]
    async fn fails_on_other_content() {
        let s = verify_stream(chunks(&[b"ab", b"cX"]), expected(b"abcd", None));
        assert!(matches!(drain(s).await, Err(Error::DigestMismatch { .. })));
    }

    #[tokio::test]
    async fn fails_as_soon_as_the_size_is_passed() {
        let s = verify_stream(chunks(&[b"abcd", b"e"]), expected(b"abcd", Some(4)));
        assert!(matches!(
            drain(s).await,
            Err(Error::SizeMismatch { actual: 5, .. })
        ));
        let s = verify_stream(chunks(&[b"ab"]), expected(b"ab", Some(4)));
        assert!(matches!(
            drain(s).await,
            Err(Error::SizeMismatch { actual: 2, .. })
        ));
    }
}
