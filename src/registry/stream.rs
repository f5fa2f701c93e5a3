//! Blob content: [`BlobStream`] and [`verify_stream`], which hashes every
//! chunk as it passes and turns the end of the stream into an error when the
//! bytes do not match the digest and size they were addressed by; a [`Blob`]
//! read from a registry, which always checks itself; and what a read blob
//! becomes when it goes to several destinations, hashed once as it was read:
//! [`Checked`] bytes in memory, or a [`Spooled`] file.
//!
//! Streams are collected only by [`Blob::collect`], which the caller bounds.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::digest::{Digest, Hasher};
use super::error::{Error, Result};

/// A stream of blob chunks. Errors end the stream.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A blob being read: its size, when known up front, and a stream that fails
/// at its end unless the bytes match the digest it was read by. Made only by
/// [`Blob::verifying`], so every `Blob` checks itself, and what it yields
/// need not be hashed again ([`Blob::collect`]).
pub struct Blob {
    /// Size in bytes, when the source announced it.
    pub size: Option<u64>,
    digest: Digest,
    location: String,
    stream: BlobStream,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("size", &self.size)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl Blob {
    /// `raw` as a blob that must be `expected`, of `expected.size` when the
    /// source announced one.
    pub fn verifying(raw: BlobStream, expected: Expected) -> Blob {
        Blob {
            size: expected.size,
            digest: expected.digest,
            location: expected.location.clone(),
            stream: verify_stream(raw, expected),
        }
    }

    /// The verifying stream.
    pub fn into_stream(self) -> BlobStream {
        self.stream
    }

    /// The same blob, calling `watch` on each chunk as it passes (counters,
    /// progress); the bytes and their check are unchanged.
    pub fn inspect(self, mut watch: impl FnMut(&Bytes) + Send + 'static) -> Blob {
        Blob {
            stream: Box::pin(self.stream.inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    watch(chunk);
                }
            })),
            ..self
        }
    }

    fn size_error(&self, expected: u64, actual: u64) -> Error {
        Error::SizeMismatch {
            location: self.location.clone(),
            digest: self.digest,
            expected,
            actual,
        }
    }

    /// The next chunk of a blob that must be `size` bytes, counted into
    /// `seen`: an error as soon as `seen` passes `size`, and at the end
    /// unless it is `size`.
    async fn next_within(&mut self, size: u64, seen: &mut u64) -> Result<Option<Bytes>> {
        match self.stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                *seen += chunk.len() as u64;
                if *seen > size {
                    return Err(self.size_error(size, *seen));
                }
                Ok(Some(chunk))
            }
            None if *seen != size => Err(self.size_error(size, *seen)),
            None => Ok(None),
        }
    }

    /// The whole blob in memory, which must be `size` bytes: more is refused
    /// as soon as it arrives. Hashed once, here, as it streams in.
    pub async fn collect(mut self, size: u64) -> Result<Checked> {
        let mut buffer = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut seen = 0;
        while let Some(chunk) = self.next_within(size, &mut seen).await? {
            buffer.extend_from_slice(&chunk);
        }
        Ok(Checked {
            digest: self.digest,
            bytes: buffer.freeze(),
        })
    }

    /// The whole blob in a new private file in `dir`, which must be `size`
    /// bytes, as for [`Blob::collect`]: a [`Spooled`] exists only for
    /// complete, matching content, and the file goes when it is dropped.
    pub async fn spool(mut self, size: u64, dir: &Path) -> Result<Spooled> {
        let io = |e| Error::io(dir, e);
        let file = tempfile::Builder::new()
            .prefix("promoter-blob-")
            .tempfile_in(dir)
            .map_err(io)?;
        let (file, path) = file.into_parts();
        let mut writer =
            tokio::io::BufWriter::with_capacity(SPOOL_CHUNK, tokio::fs::File::from_std(file));
        let mut written = 0;
        while let Some(chunk) = self.next_within(size, &mut written).await? {
            writer.write_all(&chunk).await.map_err(io)?;
        }
        writer.flush().await.map_err(io)?;
        Ok(Spooled {
            digest: self.digest,
            size,
            path,
        })
    }
}

/// A blob in a temporary file written by [`Blob::spool`] from its verifying
/// stream: read back for each destination without another hash
/// ([`crate::registry::Registry::push_spooled`]).
#[derive(Debug)]
pub struct Spooled {
    digest: Digest,
    size: u64,
    path: tempfile::TempPath,
}

impl Spooled {
    /// The digest the file's bytes hash to.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Its size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's bytes, read in chunks.
    pub async fn open(&self) -> Result<BlobStream> {
        let path = self.path.to_path_buf();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::io(&path, e))?;
        Ok(Box::pin(
            tokio_util::io::ReaderStream::with_capacity(file, SPOOL_CHUNK)
                .map(move |r| r.map_err(|e| Error::io(&path, e))),
        ))
    }
}

/// Bytes known to hash to their digest: made by [`Checked::of`], which
/// hashes them, or by [`Blob::collect`], whose stream did. An upload of a
/// `Checked` sends it without hashing it again
/// ([`crate::registry::Registry::push_checked`]).
#[derive(Clone)]
pub struct Checked {
    digest: Digest,
    bytes: Bytes,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("digest", &self.digest)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Checked {
    /// `bytes`, addressed by their own digest.
    pub fn of(bytes: Bytes) -> Checked {
        Checked {
            digest: Digest::of(&bytes),
            bytes,
        }
    }

    /// The digest the bytes hash to.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The bytes (a cheap, shared handle).
    pub fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// Their size.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Read size when streaming a spooled blob back, and the write buffer that
/// spools it.
const SPOOL_CHUNK: usize = 256 * 1024;

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

    fn blob(parts: &[&'static [u8]], content: &[u8]) -> Blob {
        Blob::verifying(chunks(parts), expected(content, None))
    }

    #[tokio::test]
    async fn collect_keeps_the_digest_the_blob_was_read_by() {
        let checked = blob(&[b"ab", b"cd"], b"abcd").collect(4).await.unwrap();
        assert_eq!(checked.digest(), Digest::of(b"abcd"));
        assert_eq!(&checked.bytes()[..], b"abcd");
        assert_eq!(checked.size(), 4);
    }

    #[tokio::test]
    async fn collect_refuses_other_bytes_and_other_sizes() {
        let other = blob(&[b"ab", b"cX"], b"abcd").collect(4).await;
        assert!(
            matches!(other, Err(Error::DigestMismatch { .. })),
            "{other:?}"
        );
        // More than the descriptor's size fails at the chunk that passes
        // it, before the stream's end (its digest) is reached.
        let longer = blob(&[b"abcd", b"e", b"f"], b"abcdef").collect(4).await;
        assert!(
            matches!(longer, Err(Error::SizeMismatch { actual: 5, .. })),
            "{longer:?}"
        );
        let shorter = blob(&[b"ab"], b"ab").collect(4).await;
        assert!(
            matches!(shorter, Err(Error::SizeMismatch { actual: 2, .. })),
            "{shorter:?}"
        );
    }

    #[tokio::test]
    async fn inspect_sees_every_chunk_and_keeps_the_check() {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        let watched = blob(&[b"ab", b"cX"], b"abcd").inspect(move |c| {
            counter.fetch_add(c.len(), std::sync::atomic::Ordering::Relaxed);
        });
        assert!(matches!(
            drain(watched.into_stream()).await,
            Err(Error::DigestMismatch { .. })
        ));
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn spool_writes_a_file_only_for_matching_content_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let files = || std::fs::read_dir(dir.path()).unwrap().count();
        let spooled = blob(&[b"ab", b"cd"], b"abcd")
            .spool(4, dir.path())
            .await
            .unwrap();
        assert_eq!((spooled.digest(), spooled.size()), (Digest::of(b"abcd"), 4));
        assert_eq!(drain(spooled.open().await.unwrap()).await.unwrap(), b"abcd");
        drop(spooled);
        assert_eq!(files(), 0, "the file goes with the Spooled");

        let other = blob(&[b"ab", b"cX"], b"abcd").spool(4, dir.path()).await;
        assert!(
            matches!(other, Err(Error::DigestMismatch { .. })),
            "{other:?}"
        );
        let longer = blob(&[b"abcd", b"e"], b"abcde").spool(4, dir.path()).await;
        assert!(
            matches!(longer, Err(Error::SizeMismatch { actual: 5, .. })),
            "{longer:?}"
        );
        assert_eq!(files(), 0, "no file is left for refused content");
    }
}
