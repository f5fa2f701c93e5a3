//! Blob uploads over HTTP: cross-repository mount, monolithic upload for
//! small blobs (POST, then one PUT with the bytes) and chunked upload for
//! large ones (POST, PATCH per chunk, PUT `?digest=`). The content is hashed
//! while it streams; on a mismatch the upload session is cancelled before the
//! final PUT, so the registry never commits the blob.
//!
//! What registries answer differs, and the answer is what counts, not the
//! registry's name: a PATCH may be acknowledged with 202 or 201 (ECR), the
//! final PUT with 201 or 204; each `Location` is resolved against the URL of
//! the response that carried it (RFC 3986: registries answer relative paths,
//! or absolute URLs on another host); the chunk size is 4 MiB, raised to the
//! registry's `OCI-Chunk-Min-Length` and capped by what the host is known to
//! accept (`quirks.rs`); a 416 is answered by resuming at the offset the
//! registry reports (its `Range`, else the session's status), with smaller
//! chunks when it took nothing. A mount that is not answered 201 (a 202
//! session, 400, 401, 403, a token endpoint refusing the source scope) is a
//! declined mount: the caller uploads instead.
//!
//! Retries: a small blob is in memory once verified, so a transient failure
//! retries the whole upload with a new session (new POST, new `Location`).
//! A large blob streams through in chunks: each request of its session (the
//! POST, every PATCH, whose chunk is in memory, and the commit) is retried
//! on its own; when the session cannot go on, it is cancelled and the error
//! goes to the caller. `mount` is retried as a whole by the trait method.
//! A token that expires during a long upload is renewed by `call`, which
//! answers one 401 per request.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::{HttpRegistry, scope, transport};
use crate::registry::digest::Digest;
use crate::registry::error::Result;
use crate::registry::reference::RepoName;
use crate::registry::stream::{BlobStream, Expected, verify_stream};

/// Blobs up to this size go in one PUT, buffered (after verification) in
/// memory: typical config blobs and small layers, one round trip fewer.
pub(crate) const MONOLITHIC_MAX: u64 = 8 * 1024 * 1024;

/// Chunk size of chunked uploads unless the registry asks for more
/// (`OCI-Chunk-Min-Length`): the most memory one upload holds. 4 MiB is the
/// largest PATCH GHCR accepts (oras-project/rust-oci-client#35) and keeps
/// per-request overhead near 1% on a fast link.
pub(crate) const CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// Smallest chunk tried after 416s that took nothing.
const CHUNK_FLOOR: usize = 256 * 1024;

/// 416s in a row without progress before the upload gives up.
const MAX_REFUSALS: usize = 6;

const OCTET_STREAM: &str = "application/octet-stream";

/// An open upload session.
struct Session {
    /// Where the next request goes.
    url: Url,
    /// `OCI-Chunk-Min-Length` of the POST answer.
    min_chunk: Option<usize>,
}

/// How a PATCH was answered.
enum Patched {
    /// Taken: the next URL, and the registry's `Range` end when it sent one.
    Taken(Url, Option<u64>),
    /// 416: the registry's `Range` end when it sent one.
    Refused(Option<u64>, Response),
}

/// The last byte a `Range: [bytes=]0-<end>` header reports the registry
/// holds, or `None` for none or a malformed header.
fn range_end(response: &Response) -> Option<u64> {
    let value = transport::header_str(response, "range")?;
    let value = value.trim().strip_prefix("bytes=").unwrap_or(value.trim());
    let (start, end) = value.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    end.trim().parse().ok()
}

/// The bytes the registry holds when its `Range` says `end`: `0-0` is what
/// a fresh session reports, so it means nothing when nothing was sent.
fn held(end: u64, sent_before: u64) -> u64 {
    if end == 0 && sent_before == 0 {
        0
    } else {
        end + 1
    }
}

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
    /// Start an upload session.
    async fn start_upload(&self, repo: &RepoName) -> Result<Session> {
        let url = self.url(repo, "blobs/uploads/").await?;
        let request = transport::Request::new(Method::POST, url).header(CONTENT_LENGTH, "0");
        let response = self.call(request, &[scope(repo, true)], repo).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.fail(&Method::POST, repo, response, "push").await);
        }
        let min_chunk = transport::header_str(&response, "oci-chunk-min-length")
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n: &usize| n > 0);
        Ok(Session {
            url: self.resolve_location(&response)?,
            min_chunk,
        })
    }

    /// Cancel an upload session, best effort: the registry also expires it.
    async fn cancel_upload(&self, repo: &RepoName, session: Url) {
        let request = transport::Request::new(Method::DELETE, session);
        if let Err(e) = self.call(request, &[scope(repo, true)], repo).await {
            tracing::debug!(error = %e, "cancelling an upload failed");
        }
    }

    /// Commit: `PUT <session>?digest=<digest>` with the last bytes (or none).
    /// 201 is the distribution spec's answer; 204 is also seen.
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
        if !matches!(
            response.status(),
            StatusCode::CREATED | StatusCode::NO_CONTENT
        ) {
            return Err(self.fail(&Method::PUT, repo, response, "push").await);
        }
        Ok(())
    }

    /// Push a blob, monolithic or chunked by size, hashing it as it goes.
    /// See the module header.
    pub(super) async fn upload(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        content: BlobStream,
    ) -> Result<()> {
        let verified = verify_stream(
            content,
            Expected {
                digest: *digest,
                size: Some(size),
                location: format!("{}@{digest} (upload)", self.location(repo)),
            },
        );
        self.upload_checked(repo, digest, size, verified).await
    }

    /// Push content that is already verified, or verifies itself: a
    /// stream error (the verifier's mismatch among them) comes before the
    /// commit, so the registry never commits the blob.
    pub(super) async fn upload_checked(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        mut content: BlobStream,
    ) -> Result<()> {
        if size <= MONOLITHIC_MAX {
            // Read and verify everything before the registry sees a byte.
            let mut buffer = BytesMut::with_capacity(size as usize);
            let mut pending = None;
            fill(
                &mut content,
                &mut buffer,
                MONOLITHIC_MAX as usize + 1,
                &mut pending,
            )
            .await?;
            return self.upload_whole(repo, digest, buffer.freeze()).await;
        }
        let mut session = self
            .retrying("blob upload", || self.start_upload(repo))
            .await?;
        match self.upload_chunks(repo, &mut session, &mut content).await {
            Ok(()) => {
                let url = session.url;
                self.retrying("blob commit", || {
                    self.finish_upload(repo, url.clone(), digest, Bytes::new())
                })
                .await
            }
            Err(e) => {
                self.cancel_upload(repo, session.url).await;
                Err(e)
            }
        }
    }

    /// Push bytes in memory that hash to `digest`: POST, then one PUT with
    /// all of them, the whole upload retried with a new session.
    pub(super) async fn upload_whole(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<()> {
        self.retrying("blob upload", || async {
            let session = self.start_upload(repo).await?;
            self.finish_upload(repo, session.url, digest, bytes.clone())
                .await
        })
        .await
    }

    /// The chunk size of a new session: 4 MiB, or less where the host is
    /// known (or was found) to take less, or more where the registry asks
    /// for more. The registry's own minimum wins over what we know.
    fn chunk_size(&self, session: &Session) -> usize {
        let quirks = &self.state.quirks;
        let learned = self
            .state
            .learned_chunk_max
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut size = CHUNK_SIZE;
        for cap in [quirks.max_chunk, (learned > 0).then_some(learned)]
            .into_iter()
            .flatten()
        {
            size = size.min(cap);
        }
        let floor = session.min_chunk.or(quirks.min_chunk).unwrap_or(0);
        size.max(floor)
    }

    /// PATCH every chunk, following the session's `Location`. The bytes
    /// the registry has not acknowledged stay in `window` (one chunk at
    /// most), so that a 416 resumes at the offset the registry reports.
    async fn upload_chunks(
        &self,
        repo: &RepoName,
        session: &mut Session,
        content: &mut BlobStream,
    ) -> Result<()> {
        let mut size = self.chunk_size(session);
        let mut buffer = BytesMut::new();
        let mut pending = None;
        let mut window = Bytes::new();
        let mut offset: u64 = 0;
        let mut refusals = 0;
        loop {
            if window.is_empty() {
                fill(content, &mut buffer, size, &mut pending).await?;
                if buffer.is_empty() {
                    return Ok(());
                }
                // No reserve here: the buffer regrows while the next chunk
                // is read, after this one has been sent and freed (one chunk
                // of memory, not two).
                window = buffer.split().freeze();
            }
            let chunk = window.slice(..window.len().min(size));
            let sent = chunk.len() as u64;
            // A PATCH refused as a whole (429, 5xx, a reset) is sent again:
            // its bytes are still here. Had the registry taken them after
            // all, it answers 416 with what it holds, and the upload resumes
            // there.
            let url = session.url.clone();
            let patched = self
                .retrying("blob chunk", || {
                    self.patch(repo, &url, offset, chunk.clone())
                })
                .await?;
            let taken = match patched {
                Patched::Taken(next, end) => {
                    session.url = next;
                    // A registry may take less than was sent; never more.
                    end.map_or(sent, |end| held(end, offset).saturating_sub(offset))
                        .min(sent)
                }
                Patched::Refused(end, response) => {
                    let end = match end {
                        Some(end) => Some(end),
                        None => self.upload_status(repo, &session.url).await,
                    };
                    let Some(held) = end.map(|end| held(end, offset)) else {
                        return Err(self.fail(&Method::PATCH, repo, response, "push").await);
                    };
                    if held < offset {
                        // It lost bytes it had acknowledged: start over.
                        return Err(self.fail(&Method::PATCH, repo, response, "push").await);
                    }
                    let taken = (held - offset).min(sent);
                    if taken == 0 {
                        refusals += 1;
                        let floor = session.min_chunk.unwrap_or(CHUNK_FLOOR).max(CHUNK_FLOOR);
                        if refusals > MAX_REFUSALS || size <= floor {
                            return Err(self.fail(&Method::PATCH, repo, response, "push").await);
                        }
                        size = (size / 2).max(floor);
                        self.state
                            .learned_chunk_max
                            .store(size, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(size, "416 on PATCH: smaller chunks");
                    }
                    taken
                }
            };
            if taken > 0 {
                refusals = 0;
            }
            window = window.slice(taken as usize..);
            offset += taken;
        }
    }

    /// One PATCH of `chunk` at `offset`. 202 is the distribution spec's
    /// answer; ECR answers 201 (aws/containers-roadmap#2831).
    async fn patch(
        &self,
        repo: &RepoName,
        session: &Url,
        offset: u64,
        chunk: Bytes,
    ) -> Result<Patched> {
        let end = offset + chunk.len() as u64 - 1;
        let request = transport::Request::new(Method::PATCH, session.clone())
            .header(CONTENT_TYPE, OCTET_STREAM)
            .header(CONTENT_LENGTH, &chunk.len().to_string())
            .header(reqwest::header::CONTENT_RANGE, &format!("{offset}-{end}"))
            .body(chunk);
        let response = self.call(request, &[scope(repo, true)], repo).await?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::CREATED => {
                let next = self.resolve_location(&response)?;
                Ok(Patched::Taken(next, range_end(&response)))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                Ok(Patched::Refused(range_end(&response), response))
            }
            _ => Err(self.fail(&Method::PATCH, repo, response, "push").await),
        }
    }

    /// `GET <session>`: the `Range` end of what the registry holds (the
    /// distribution spec's upload status), `None` when it does not say.
    async fn upload_status(&self, repo: &RepoName, session: &Url) -> Option<u64> {
        let request = transport::Request::new(Method::GET, session.clone());
        let response = self.call(request, &[scope(repo, true)], repo).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        range_end(&response)
    }

    /// `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`. The token
    /// must carry `repository:<from>:pull` besides push on `repo`, or token
    /// registries silently fall back to a new upload session. Anything but
    /// 201 is a declined mount (`Ok(false)`): a 202 session (cancelled), a
    /// 400 or 404 (Docker Hub when `from` is unknown:
    /// google/go-containerregistry#1679), a 401 or 403 (GHCR, Harbor, ECR
    /// without blob mounting), or a token endpoint that refuses the source
    /// scope. Only a transient failure is an error, for the retry loop.
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
        let response = match self.call(request, &scopes, repo).await {
            Ok(response) => response,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::debug!(%digest, %from, error = %e, "mount refused; uploading instead");
                return Ok(false);
            }
        };
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // Declined: the registry opened an upload session instead.
                if let Ok(session) = self.resolve_location(&response) {
                    self.cancel_upload(repo, session).await;
                }
                Ok(false)
            }
            status if crate::retry::is_transient_status(status.as_u16()) => {
                Err(transport::unexpected(&Method::POST, response).await)
            }
            status => {
                tracing::debug!(%digest, %from, %status, "mount declined; uploading instead");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_from_range() {
        // A fresh session reports 0-0 and holds nothing.
        assert_eq!(held(0, 0), 0);
        assert_eq!(held(0, 1), 1);
        assert_eq!(held(4_194_303, 4_194_304), 4_194_304);
    }
}
