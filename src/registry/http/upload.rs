//! Blob uploads over HTTP: cross-repository mount, monolithic upload for
//! small blobs (POST, then one PUT with the bytes) and chunked upload for
//! large ones (POST, PATCH per chunk, PUT `?digest=`). The content is hashed
//! while it streams; on a mismatch the upload session is cancelled before the
//! final PUT, so the registry never commits the blob.
//!
//! Retries: an upload session that failed is never resumed or reused. A
//! small blob is in memory once verified, so a transient failure retries the
//! whole upload with a new session (new POST, new `Location`). A large blob
//! streams through in chunks and its stream cannot be replayed from here:
//! the session is cancelled and the error, transient when the failure was
//! (a 5xx, a reset, a stall), goes to the caller, which retries the blob
//! with a fresh stream. `mount` is retried as a whole by the trait method.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::{HttpRegistry, scope, transport};
use crate::registry::digest::Digest;
use crate::registry::error::{Error, Result};
use crate::registry::reference::RepoName;
use crate::registry::stream::{BlobStream, Expected, verify_stream};

/// Blobs up to this size go in one PUT, buffered (after verification) in
/// memory: typical config blobs and small layers, one round trip fewer.
pub(crate) const MONOLITHIC_MAX: u64 = 8 * 1024 * 1024;

/// Chunk size of chunked uploads: the most memory one upload holds. 8 MiB
/// keeps per-request overhead under 1% on a fast link and memory flat with
/// many uploads in flight.
pub(crate) const CHUNK_SIZE: usize = 8 * 1024 * 1024;

const OCTET_STREAM: &str = "application/octet-stream";

/// Take up to `limit` bytes from `stream` into one buffer. An empty buffer
/// means the stream is done. Errors (including the verifier's final
/// mismatch) come out as they are.
async fn fill(
    stream: &mut BlobStream,
    buffer: &mut BytesMut,
    limit: usize,
    pending: &mut Option<Bytes>,
) -> Result<()> {
    buffer.clear();
    while buffer.len() < limit {
        let chunk = match pending.take() {
            Some(chunk) => chunk,
            None => match stream.next().await {
                Some(chunk) => chunk?,
                None => break,
            },
        };
        let room = limit - buffer.len();
        if chunk.len() > room {
            buffer.extend_from_slice(&chunk[..room]);
            *pending = Some(chunk.slice(room..));
        } else {
            buffer.extend_from_slice(&chunk);
        }
    }
    Ok(())
}

impl HttpRegistry {
    /// Start an upload session; returns its URL.
    async fn start_upload(&self, repo: &RepoName) -> Result<Url> {
        let url = self.url(repo, "blobs/uploads/").await?;
        let request = transport::Request::new(Method::POST, url).header(CONTENT_LENGTH, "0");
        let response = self.call(request, &[scope(repo, true)], repo).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.fail(&Method::POST, repo, response, "push").await);
        }
        self.resolve_location(&response).await
    }

    /// Cancel an upload session, best effort: the registry also expires it.
    async fn cancel_upload(&self, repo: &RepoName, session: Url) {
        let request = transport::Request::new(Method::DELETE, session);
        if let Err(e) = self.call(request, &[scope(repo, true)], repo).await {
            tracing::debug!(error = %e, "cancelling an upload failed");
        }
    }

    /// Commit: `PUT <session>?digest=<digest>` with the last bytes (or none).
    async fn finish_upload(
        &self,
        repo: &RepoName,
        session: Url,
        digest: &Digest,
        last: Bytes,
    ) -> Result<()> {
        let mut url = session;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let request = transport::Request::new(Method::PUT, url)
            .header(CONTENT_TYPE, OCTET_STREAM)
            .header(CONTENT_LENGTH, &last.len().to_string())
            .body(last);
        let response = self.call(request, &[scope(repo, true)], repo).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.fail(&Method::PUT, repo, response, "push").await);
        }
        Ok(())
    }

    /// Push a blob, monolithic or chunked by size. See the module header.
    pub(super) async fn upload(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        content: BlobStream,
    ) -> Result<()> {
        let mut verified = verify_stream(
            content,
            Expected {
                digest: *digest,
                size: Some(size),
                location: format!("{}@{digest} (upload)", self.location(repo)),
            },
        );
        if size <= MONOLITHIC_MAX {
            // Read and verify everything before the registry sees a byte.
            let mut buffer = BytesMut::with_capacity(size as usize);
            let mut pending = None;
            fill(
                &mut verified,
                &mut buffer,
                MONOLITHIC_MAX as usize + 1,
                &mut pending,
            )
            .await?;
            let bytes = buffer.freeze();
            return self
                .retrying("blob upload", || async {
                    let session = self.start_upload(repo).await?;
                    self.finish_upload(repo, session, digest, bytes.clone())
                        .await
                })
                .await;
        }
        let session = self.start_upload(repo).await?;
        match self
            .upload_chunks(repo, session.clone(), &mut verified)
            .await
        {
            Ok(session) => {
                self.finish_upload(repo, session, digest, Bytes::new())
                    .await
            }
            Err((session, e)) => {
                self.cancel_upload(repo, session).await;
                Err(e)
            }
        }
    }

    /// PATCH every chunk; returns the session URL to commit to. On error,
    /// returns the session URL to cancel with the error.
    async fn upload_chunks(
        &self,
        repo: &RepoName,
        mut session: Url,
        content: &mut BlobStream,
    ) -> std::result::Result<Url, (Url, Error)> {
        let mut buffer = BytesMut::with_capacity(CHUNK_SIZE);
        let mut pending = None;
        let mut offset: u64 = 0;
        loop {
            if let Err(e) = fill(content, &mut buffer, CHUNK_SIZE, &mut pending).await {
                return Err((session, e));
            }
            if buffer.is_empty() {
                return Ok(session);
            }
            // No reserve here: the buffer regrows while the next chunk is
            // read, after this one has been sent and freed (one chunk of
            // memory, not two).
            let chunk = buffer.split().freeze();
            let end = offset + chunk.len() as u64 - 1;
            let request = transport::Request::new(Method::PATCH, session.clone())
                .header(CONTENT_TYPE, OCTET_STREAM)
                .header(CONTENT_LENGTH, &chunk.len().to_string())
                .header(reqwest::header::CONTENT_RANGE, &format!("{offset}-{end}"))
                .body(chunk);
            let response: Response = match self.call(request, &[scope(repo, true)], repo).await {
                Ok(r) => r,
                Err(e) => return Err((session, e)),
            };
            if response.status() != StatusCode::ACCEPTED {
                return Err((
                    session,
                    self.fail(&Method::PATCH, repo, response, "push").await,
                ));
            }
            session = match self.resolve_location(&response).await {
                Ok(next) => next,
                Err(e) => return Err((session, e)),
            };
            offset = end + 1;
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`. The token
    /// must carry `repository:<from>:pull` besides push on `repo`, or token
    /// registries silently fall back to a new upload session.
    pub(super) async fn mount(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> Result<bool> {
        let mut url = self.url(repo, "blobs/uploads/").await?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.as_str());
        let request = transport::Request::new(Method::POST, url).header(CONTENT_LENGTH, "0");
        let scopes = [scope(repo, true), scope(from, false)];
        let response = self.call(request, &scopes, repo).await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // Declined: the registry opened an upload session instead.
                if let Ok(session) = self.resolve_location(&response).await {
                    self.cancel_upload(repo, session).await;
                }
                Ok(false)
            }
            _ => Err(self.fail(&Method::POST, repo, response, "push").await),
        }
    }
}
