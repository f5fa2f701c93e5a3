//! The OCI distribution backend: [`HttpRegistry`], which implements
//! [`Registry`] over the distribution API, made by an [`HttpClient`]
//! (`client.rs`: the shared pool and per-host state).
//!
//! Request flow: operation (retried as a whole on transient errors,
//! `retry.rs`) -> `HttpRegistry::call` (scheme discovery, `Authorization`,
//! one answer to a 401 challenge) -> `transport::send` (the per-host
//! limiter, `limit.rs`, and counters, `stats.rs`). This file holds that flow
//! and the manifest and blob reads; uploads live in `upload.rs`, listing,
//! inventory and referrers in `listing.rs`, authentication in `auth.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use crate::retry::is_transient_status;

use super::digest::Digest;
use super::error::{Error, Result};
use super::manifest::{self, Descriptor, MAX_MANIFEST_BYTES, Manifest};
use super::reference::{Reference, RepoName};
use super::stream::{Blob, BlobStream, Checked, Expected, Spooled, stream_from_bytes};
use super::{Inventory, Registry};

mod auth;
mod client;
mod headers;
mod limit;
mod listing;
mod quirks;
mod retry;
mod stats;
pub(crate) mod transport;
mod upload;

pub use client::{HttpClient, HttpOptions};
pub use limit::{LimiterMode, RateOptions};
pub use retry::RetryOptions;
pub use stats::HostStats;
pub use transport::USER_AGENT;

use client::HostState;

/// How to let `host` rewrite the signature tags where it refused to: what
/// the host is known to need (`quirks.rs`), else the general advice.
pub fn immutable_tags_hint(host: &str) -> &'static str {
    quirks::for_host(host)
        .immutable_tags_hint
        .unwrap_or(quirks::HARBOR_HINT)
}

/// One OCI distribution registry.
#[derive(Clone, Debug)]
pub struct HttpRegistry {
    http: transport::Transport,
    state: Arc<HostState>,
}

/// `repository:<repo>:pull` (and `,push`) scopes.
fn scope(repo: &RepoName, push: bool) -> String {
    if push {
        format!("repository:{repo}:pull,push")
    } else {
        format!("repository:{repo}:pull")
    }
}

impl HttpRegistry {
    /// Run one operation under the retry policy, counting retries on this
    /// registry's host.
    async fn retrying<T, F, Fut>(&self, what: &str, operation: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        retry::retrying(
            &self.state.retry,
            &self.state.limiter.counters,
            what,
            operation,
        )
        .await
    }

    /// The base URL, `https://host` or, for loopback and insecure hosts that
    /// do not speak TLS, `http://host`. Found once by pinging `/v2/`, which
    /// also yields the authentication challenge.
    async fn base(&self) -> Result<&Url> {
        self.state
            .base
            .get_or_try_init(|| async {
                match self.ping("https").await {
                    Ok((url, _)) => Ok(url),
                    Err(e @ Error::Transport { .. }) if self.state.allow_plain_http => {
                        tracing::debug!(host = %self.state.host, error = %e, "no TLS, trying plain HTTP");
                        // Only a registry answer counts: a TLS server answering
                        // plain HTTP with 400 means the TLS error was the real one.
                        match self.ping("http").await {
                            Ok((url, status)) if status == StatusCode::OK || status == StatusCode::UNAUTHORIZED => Ok(url),
                            // A busy or failing registry (429, 5xx): say so,
                            // transiently, so that the operation is retried.
                            Ok((url, status)) if is_transient_status(status.as_u16()) => Err(Error::Status {
                                method: "GET".into(),
                                url: format!("{url}v2/"),
                                status: status.as_u16(),
                                body: String::new(),
                            }),
                            _ => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn ping(&self, scheme: &str) -> Result<(Url, StatusCode)> {
        let base = Url::parse(&format!("{scheme}://{}/", self.state.endpoint))
            .map_err(|e| Error::Setup(format!("{}: {e}", self.state.host)))?;
        let url = base.join("v2/").map_err(|e| Error::Setup(e.to_string()))?;
        let response =
            transport::send(&self.http, transport::Request::new(Method::GET, url)).await?;
        self.note_challenge(&response);
        Ok((base, response.status()))
    }

    fn note_challenge(&self, response: &Response) {
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(value) = transport::header_str(response, WWW_AUTHENTICATE.as_str())
        {
            self.state.auth.set_challenge(headers::challenge(value));
        }
    }

    /// `<base>/v2/<repo>/<rest>`.
    async fn url(&self, repo: &RepoName, rest: &str) -> Result<Url> {
        let base = self.base().await?;
        base.join(&format!("v2/{repo}/{rest}"))
            .map_err(|e| Error::Setup(format!("{}: {e}", self.state.host)))
    }

    /// Resolve a `Location` header (often relative) against the URL of the
    /// response that carried it (RFC 3986 section 5): a session on another
    /// host, or a path relative to the session's own, lands where the
    /// registry meant.
    fn resolve_location(&self, response: &Response) -> Result<Url> {
        let location =
            transport::header_str(response, "location").ok_or_else(|| Error::InvalidResponse {
                url: response.url().to_string(),
                reason: "upload response has no Location header".into(),
            })?;
        headers::location(response.url(), location).map_err(|e| Error::InvalidResponse {
            url: response.url().to_string(),
            reason: format!("bad Location header: {e}"),
        })
    }

    /// Send `request` with the authorization `scopes` need, answering one
    /// 401 challenge. A second 401 is [`Error::Unauthorized`].
    async fn call(
        &self,
        request: transport::Request,
        scopes: &[String],
        repo: &RepoName,
    ) -> Result<Response> {
        self.base().await?;
        let auth = &self.state.auth;
        let mut retried = false;
        loop {
            let mut attempt = request.clone();
            // Upload locations may point at another host (a storage
            // backend): registry credentials go to the registry only.
            if same_origin(&attempt.url, self.base().await?)
                && let Some(header) = auth.header(&self.http, scopes, repo.as_str()).await?
            {
                attempt
                    .headers
                    .insert(reqwest::header::AUTHORIZATION, header);
            }
            let response = transport::send(&self.http, attempt).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if retried {
                return Err(Error::Unauthorized {
                    registry: self.state.host.clone(),
                    repository: repo.to_string(),
                    had_credentials: auth.credential().await?.is_some(),
                });
            }
            retried = true;
            self.note_challenge(&response);
            auth.forget(scopes).await;
        }
    }

    fn location(&self, repo: &RepoName) -> String {
        format!("{}/{}", self.state.host, repo)
    }

    fn not_found(&self, repo: &RepoName, what: String) -> Error {
        Error::NotFound {
            registry: self.state.host.clone(),
            repository: repo.to_string(),
            what,
        }
    }

    /// Turn 403 into [`Error::Denied`] and anything else unexpected into
    /// [`Error::Status`].
    /// Sends a read (pull-scoped) request: `Ok(None)` when the registry
    /// answers 404, an error naming the repository for any other failure,
    /// else the successful response.
    async fn pull(&self, repo: &RepoName, request: transport::Request) -> Result<Option<Response>> {
        let method = request.method.clone();
        let response = self.call(request, &[scope(repo, false)], repo).await?;
        if transport::is_not_found(response.status()) {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.fail(&method, repo, response, "pull").await);
        }
        Ok(Some(response))
    }

    async fn fail(
        &self,
        method: &Method,
        repo: &RepoName,
        response: Response,
        action: &'static str,
    ) -> Error {
        if response.status() == StatusCode::FORBIDDEN {
            return Error::Denied {
                registry: self.state.host.clone(),
                repository: repo.to_string(),
                action,
            };
        }
        transport::unexpected(method, response).await
    }

    fn manifest_request(&self, method: Method, url: Url) -> transport::Request {
        transport::Request::new(method, url)
            .header(ACCEPT, &manifest::MANIFEST_MEDIA_TYPES.join(", "))
    }

    /// Read a manifest body, refusing more than [`MAX_MANIFEST_BYTES`] and
    /// a body that takes longer than its deadline (`transport::MANIFEST_BODY`).
    async fn read_manifest_body(&self, response: Response, location: &str) -> Result<Bytes> {
        match transport::read_body(&Method::GET, response, transport::MANIFEST_BODY).await {
            Err(Error::BodyTooLarge { .. }) => Err(Error::ManifestTooLarge {
                location: location.to_owned(),
                limit: MAX_MANIFEST_BYTES,
            }),
            other => other,
        }
    }
}

/// True when `a` and `b` share scheme, host and port.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// The `Content-Length` header. Read from the header itself: for HEAD
/// responses `Response::content_length` reports the (empty) body instead.
fn header_length(response: &Response) -> Option<u64> {
    headers::content_length(transport::header_str(response, "content-length")?)
}

/// The `Docker-Content-Digest` header, when present and well-formed.
fn content_digest(response: &Response) -> Option<Digest> {
    headers::content_digest(transport::header_str(response, "docker-content-digest")?)
}

/// The media type of a response, without parameters such as `charset`.
fn content_type(response: &Response) -> Option<String> {
    Some(headers::media_type(transport::header_str(
        response,
        CONTENT_TYPE.as_str(),
    )?))
}

/// Single attempts of the operations; the trait methods retry them.
impl HttpRegistry {
    async fn head_manifest_once(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<Descriptor>> {
        let url = self.url(repo, &format!("manifests/{reference}")).await?;
        let Some(response) = self
            .pull(repo, self.manifest_request(Method::HEAD, url))
            .await?
        else {
            return Ok(None);
        };
        let digest = content_digest(&response);
        let media_type = content_type(&response).filter(|m| manifest::is_manifest_type(m));
        let size = header_length(&response).filter(|&n| n > 0);
        match (reference, digest, media_type, size) {
            (Reference::Digest(wanted), Some(got), _, _) if got != *wanted => {
                Err(Error::DigestMismatch {
                    location: format!("{}@{wanted} (HEAD)", self.location(repo)),
                    expected: *wanted,
                    actual: got,
                })
            }
            (_, Some(digest), Some(media_type), Some(size)) => {
                Ok(Some(Descriptor::new(media_type, digest, size)))
            }
            // Some registries omit a header on HEAD: fall back to GET, which
            // yields all three from the bytes.
            _ => Ok(Some(
                self.get_manifest_once(repo, reference).await?.descriptor(),
            )),
        }
    }

    async fn get_manifest_once(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        let url = self.url(repo, &format!("manifests/{reference}")).await?;
        let Some(response) = self
            .pull(repo, self.manifest_request(Method::GET, url))
            .await?
        else {
            return Err(self.not_found(repo, format!("manifest {reference}")));
        };
        let location = format!("{}:{reference}", self.location(repo));
        let header_digest = content_digest(&response);
        let media_type = content_type(&response);
        let body = self.read_manifest_body(response, &location).await?;
        let manifest = match reference {
            Reference::Digest(d) => Manifest::verified(media_type.as_deref(), body, d, &location)?,
            Reference::Tag(_) => Manifest::new(media_type.as_deref(), body)?,
        };
        if let Some(claimed) = header_digest
            && claimed != manifest.digest()
        {
            return Err(Error::DigestMismatch {
                location,
                expected: claimed,
                actual: manifest.digest(),
            });
        }
        Ok(manifest)
    }

    /// HEAD the blob. A 401 or 403 to the HEAD means "unknown", not
    /// "refused": ECR Public answers HEAD with 401
    /// (aws/containers-roadmap#2671) and a storage redirect may refuse a
    /// HEAD with 403. A GET, whose body is not read, then tells; when it is
    /// refused too, the blob is taken as absent and the upload that follows
    /// reports what the registry says.
    async fn blob_exists_once(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(repo, &format!("blobs/{digest}")).await?;
        let head = transport::Request::new(Method::HEAD, url.clone());
        let response = match self.call(head, &[scope(repo, false)], repo).await {
            Ok(r) if !matches!(r.status(), StatusCode::FORBIDDEN) => r,
            Ok(_) | Err(Error::Unauthorized { .. }) => {
                return self.blob_exists_by_get(repo, url).await;
            }
            Err(e) => return Err(e),
        };
        if transport::is_not_found(response.status()) {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.fail(&Method::HEAD, repo, response, "pull").await);
        }
        header_length(&response)
            .map(Some)
            .ok_or_else(|| Error::InvalidResponse {
                url: response.url().to_string(),
                reason: "blob HEAD without Content-Length".into(),
            })
    }

    /// The GET behind a refused blob HEAD: its headers only.
    async fn blob_exists_by_get(&self, repo: &RepoName, url: Url) -> Result<Option<u64>> {
        let get = transport::Request::new(Method::GET, url);
        let response = match self.call(get, &[scope(repo, false)], repo).await {
            Ok(r) => r,
            Err(Error::Unauthorized { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let status = response.status();
        if transport::is_not_found(status) || status == StatusCode::FORBIDDEN {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.fail(&Method::GET, repo, response, "pull").await);
        }
        // Dropping the response closes the body unread.
        Ok(response.content_length().or(Some(0)))
    }

    async fn get_blob_once(&self, repo: &RepoName, digest: &Digest) -> Result<Blob> {
        let url = self.url(repo, &format!("blobs/{digest}")).await?;
        let Some(response) = self
            .pull(repo, transport::Request::new(Method::GET, url))
            .await?
        else {
            return Err(self.not_found(repo, format!("blob {digest}")));
        };
        let size = response.content_length();
        let url = response.url().to_string();
        let raw = response.bytes_stream().map(move |r| {
            r.map_err(|source| Error::Transport {
                method: "GET".into(),
                url: url.clone(),
                cause: source,
            })
        });
        Ok(Blob::verifying(
            Box::pin(raw),
            Expected {
                digest: *digest,
                size,
                location: format!("{}@{digest}", self.location(repo)),
            },
        ))
    }

    /// Push once; `Ok(true)` when the answer carries `OCI-Subject`.
    async fn push_manifest_once(
        &self,
        repo: &RepoName,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<bool> {
        if let Reference::Digest(d) = reference
            && *d != manifest.digest()
        {
            return Err(Error::DigestMismatch {
                location: self.location(repo),
                expected: *d,
                actual: manifest.digest(),
            });
        }
        let url = self.url(repo, &format!("manifests/{reference}")).await?;
        let request = transport::Request::new(Method::PUT, url)
            .header(CONTENT_TYPE, manifest.media_type())
            .body(manifest.bytes().clone());
        let response = self.call(request, &[scope(repo, true)], repo).await?;
        if !response.status().is_success() {
            return Err(self.fail(&Method::PUT, repo, response, "push").await);
        }
        if let Some(stored) = content_digest(&response)
            && stored != manifest.digest()
        {
            return Err(Error::DigestMismatch {
                location: format!("{}:{reference} (stored)", self.location(repo)),
                expected: manifest.digest(),
                actual: stored,
            });
        }
        Ok(transport::header_str(&response, "oci-subject").is_some())
    }
}

#[async_trait]
impl Registry for HttpRegistry {
    fn name(&self) -> &str {
        &self.state.host
    }

    async fn list_tags(&self, repo: &RepoName) -> Result<Vec<String>> {
        Ok(self.tags_pages(repo).await?.tags)
    }

    async fn inventory(&self, repo: &RepoName) -> Result<Inventory> {
        self.read_inventory(repo, &|_| true).await
    }

    async fn inventory_of(
        &self,
        repo: &RepoName,
        wanted: &(dyn for<'t> Fn(&'t str) -> bool + Sync + '_),
    ) -> Result<Inventory> {
        self.read_inventory(repo, wanted).await
    }

    async fn head_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<Descriptor>> {
        self.retrying("HEAD manifest", || self.head_manifest_once(repo, reference))
            .await
    }

    async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        self.retrying("GET manifest", || self.get_manifest_once(repo, reference))
            .await
    }

    async fn blob_exists(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        self.retrying("HEAD blob", || self.blob_exists_once(repo, digest))
            .await
    }

    /// Retried until the response headers arrive; an error while the caller
    /// streams the body is its to retry (it is transient).
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Blob> {
        self.retrying("GET blob", || self.get_blob_once(repo, digest))
            .await
    }

    async fn mount_blob(&self, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<bool> {
        self.retrying("mount blob", || self.mount(repo, digest, from))
            .await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        content: BlobStream,
    ) -> Result<()> {
        self.upload(repo, digest, size, content).await
    }

    /// Small blobs go in one PUT straight from memory, not hashed again
    /// (each destination of a fan-out would otherwise hash every byte once
    /// more); larger ones stream in chunks as any other content.
    async fn push_checked(&self, repo: &RepoName, blob: &Checked) -> Result<()> {
        if blob.size() <= upload::MONOLITHIC_MAX {
            return self.upload_whole(repo, &blob.digest(), blob.bytes()).await;
        }
        let stream = stream_from_bytes(blob.bytes());
        self.upload_checked(repo, &blob.digest(), blob.size(), stream)
            .await
    }

    /// Streamed from the file as a chunked upload; the registry still
    /// checks the digest when the upload is committed.
    async fn push_spooled(&self, repo: &RepoName, blob: &Spooled) -> Result<()> {
        let stream = blob.open().await?;
        self.upload_checked(repo, &blob.digest(), blob.size(), stream)
            .await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<()> {
        self.retrying("PUT manifest", || {
            self.push_manifest_once(repo, reference, manifest)
        })
        .await
        .map(|_| ())
    }

    async fn push_referrer(&self, repo: &RepoName, manifest: &Manifest) -> Result<bool> {
        let reference = Reference::Digest(manifest.digest());
        self.retrying("PUT manifest", || {
            self.push_manifest_once(repo, &reference, manifest)
        })
        .await
    }

    async fn list_referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.retrying("referrers", || self.referrers(repo, subject))
            .await
    }
}
