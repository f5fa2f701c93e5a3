//! The one door to the network: [`send`] executes every HTTP request of the
//! registry layer (registry calls and token fetches alike), each admitted by
//! the limiter of its host and operation class (`limit.rs`) and counted
//! (`stats.rs`). Retries wrap whole operations one level up (`retry.rs`).
//! Also: building the shared `reqwest` client with its timeouts and
//! redirect policy, reading bodies within a size and a deadline
//! ([`read_body`], [`BodyLimit`]), giving up on a host that asks for a
//! longer pause than promoter waits, and turning unexpected statuses into
//! errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::headers;
use super::limit::{Limiters, MAX_PAUSE, OpClass, RateOptions, host_key};
use super::stats::HostStats;
use crate::registry::error::{Error, Result};
use crate::registry::manifest::MAX_MANIFEST_BYTES;

/// `User-Agent` of every request: `promoter/<version>`.
pub const USER_AGENT: &str = concat!("promoter/", env!("CARGO_PKG_VERSION"));

/// A request, kept replayable: the body is in memory (at most one upload
/// chunk), so that an authentication challenge can be answered by sending it
/// again.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Request {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(name, v);
        }
        self
    }

    pub fn body(mut self, body: Bytes) -> Request {
        self.body = Some(body);
        self
    }
}

/// Default connect timeout: connecting takes well under 30 s on any
/// network a promotion runs on.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default stall timeout: 60 s without a single byte means the peer is gone
/// (kpromo once hung 9 hours on such a connection). It bounds each read,
/// not the transfer: a large blob streams for as long as bytes keep coming.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections stay pooled for the next request to the same host.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Redirects followed per request: RFC 9110 sets no number; 10 is what
/// reqwest, curl's `--max-redirs` advice and browsers use, and a blob
/// redirect to storage takes one or two.
pub(crate) const MAX_REDIRECTS: usize = 10;
/// The longest wait for a response's status and headers once the request
/// is sent, besides the per-read stall timeout: a registry that trickles
/// its headers a byte at a time would otherwise hold the request forever.
/// Two minutes is twice the stall timeout.
const HEADERS_DEADLINE: Duration = Duration::from_secs(120);
/// Request bodies (upload chunks of up to 8 MiB) are sent before the
/// headers can come back: one more second per this many bytes, a floor
/// of 64 KiB/s for the upload.
const UPLOAD_FLOOR_BYTES_PER_SEC: u64 = 64 * 1024;

/// Build the shared client: rustls, the system roots plus `extra_ca_pem`,
/// HTTP/1.1 with keep-alive. HTTP/1.1 because parallel blob transfers go
/// faster over several TCP connections than multiplexed in one HTTP/2
/// connection's flow-control window. `stall` is reqwest's read timeout,
/// which restarts with every read (checked by `tests/ratelimit_faults.rs`).
pub(crate) fn build_client(
    extra_ca_pem: &[Vec<u8>],
    connect: Duration,
    stall: Duration,
) -> Result<reqwest::Client> {
    let mut certs = Vec::new();
    for pem in extra_ca_pem {
        let bundle = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Setup(format!("extra CA certificate is not PEM: {e}")))?;
        if bundle.is_empty() {
            return Err(Error::Setup(
                "extra CA file holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
                    .into(),
            ));
        }
        certs.extend(bundle);
    }
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .http1_only()
        .connect_timeout(connect)
        .read_timeout(stall)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(60))
        // Credentials never follow a redirect to another host or port:
        // reqwest drops `Authorization` (and cookies) then. No `Referer`
        // either: the storage host a blob is sent to has no use for the
        // registry's URL.
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .referer(false)
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| Error::Setup(e.to_string()))
}

/// The connection pool and the per-host limiters: what [`send`] needs.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    limiters: Arc<Limiters>,
    /// Hosts given up on for this run, with what they sent.
    refused: Arc<Mutex<HashMap<String, Refusal>>>,
}

/// Why a host was given up on: it asked for a pause longer than
/// [`MAX_PAUSE`]. Every later request to it fails at once with this.
#[derive(Clone, Debug)]
struct Refusal {
    header: String,
    method: String,
    url: String,
    status: u16,
    pause_secs: u64,
}

impl Refusal {
    fn error(&self, host: &str) -> Error {
        Error::PauseTooLong {
            registry: host.to_owned(),
            sent: format!(
                "`{}` on {} {} (HTTP {})",
                self.header, self.method, self.url, self.status
            ),
            pause_secs: self.pause_secs,
            max_secs: MAX_PAUSE.as_secs(),
        }
    }
}

impl Transport {
    pub fn new(http: reqwest::Client, rate: RateOptions) -> Transport {
        Transport {
            http,
            limiters: Arc::new(Limiters::new(rate)),
            refused: Arc::default(),
        }
    }

    fn refusal(&self, host: &str) -> Option<Error> {
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.get(host).map(|r| r.error(host))
    }

    fn refuse(&self, host: &str, refusal: Refusal) -> Error {
        let error = refusal.error(host);
        tracing::warn!(host, %error, "registry asked for too long a pause: host given up");
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host.to_owned())
            .or_insert(refusal);
        error
    }

    /// The limiters, for retry counting.
    pub fn limiters(&self) -> &Limiters {
        &self.limiters
    }

    /// Counters of every host contacted so far.
    pub fn stats(&self) -> Vec<HostStats> {
        self.limiters.stats()
    }
}

/// Execute one request, once, after the limiter of its host and class
/// (read, blob write, manifest write) admits it.
/// Every HTTP request of the registry layer passes here, and only here. A
/// response is returned whatever its status; its status and rate-limit
/// headers go back to the limiter. A host that asked for a pause longer
/// than [`MAX_PAUSE`] fails this and every later request at once.
pub(crate) async fn send(transport: &Transport, request: Request) -> Result<Response> {
    let method = request.method.clone();
    let url = request.url.clone();
    let host = host_key(&url);
    if let Some(error) = transport.refusal(&host) {
        return Err(error);
    }
    let limiter = transport.limiters.for_url(&url);
    let upload = request.body.as_ref().map_or(0, |b| b.len() as u64);
    let deadline = HEADERS_DEADLINE + Duration::from_secs(upload / UPLOAD_FLOOR_BYTES_PER_SEC);
    let class = OpClass::of(&method, &url);
    let mut builder = transport
        .http
        .request(request.method, request.url)
        .headers(request.headers);
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let _admission = limiter.admit(class).await;
    // Refused while this request waited for its slot.
    if let Some(error) = transport.refusal(&host) {
        return Err(error);
    }
    limiter.counters.request();
    tracing::debug!(%method, %url, "registry request");
    match tokio::time::timeout(deadline, builder.send()).await {
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            limiter.counters.response(status);
            if let Some(refusal) = too_long_pause(&method, &response) {
                // Not passed to the limiter: nobody waits for a host
                // given up on.
                return Err(transport.refuse(&host, refusal));
            }
            limiter.observe(class, status, response.headers());
            Ok(response)
        }
        Ok(Err(source)) => {
            limiter.counters.transport_error();
            Err(Error::Transport {
                method: method.to_string(),
                url: url.to_string(),
                cause: source,
            })
        }
        Err(_) => {
            limiter.counters.transport_error();
            Err(Error::Deadline {
                method: method.to_string(),
                url: url.to_string(),
                what: "response headers",
                got: 0,
                seconds: deadline.as_secs(),
            })
        }
    }
}

/// A `Retry-After` (on a 429 or 503) or a `RateLimit-Reset` with nothing
/// remaining that asks for more than [`MAX_PAUSE`]: the limiter would
/// otherwise pause the host for five minutes, again and again.
fn too_long_pause(method: &Method, response: &Response) -> Option<Refusal> {
    let text = |name: &str| response.headers().get(name)?.to_str().ok();
    let now = SystemTime::now();
    let status = response.status().as_u16();
    let retry_after = text("retry-after")
        .filter(|_| matches!(status, 429 | 503))
        .and_then(|v| Some(("Retry-After", v, headers::retry_after(v, now)?)));
    let reset = text("ratelimit-reset")
        .filter(|_| text("ratelimit-remaining").and_then(headers::leading_number) == Some(0))
        .and_then(|v| {
            let n = headers::leading_number(v)?;
            Some(("RateLimit-Reset", v, headers::reset_delay(n, now)))
        });
    let (name, value, pause) = [retry_after, reset]
        .into_iter()
        .flatten()
        .find(|(_, _, pause)| *pause > MAX_PAUSE)?;
    Some(Refusal {
        header: format!("{name}: {}", headers::quote(value, 80)),
        method: method.to_string(),
        url: response.url().to_string(),
        status,
        pause_secs: pause.as_secs(),
    })
}

/// How much of one response body promoter reads, and for how long.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimit {
    /// What the body is, for errors: `manifest`, `token response`...
    pub what: &'static str,
    /// The most bytes read.
    pub max_bytes: usize,
    /// The whole body must arrive within this, however it trickles.
    pub deadline: Duration,
}

/// Manifests and indexes: 4 MiB, the limit distribution enforces on push
/// (`registry/handlers/manifests.go`, `maxManifestBodySize`); a minute, 70
/// KB/s for the largest, when typical manifests are a few KB.
pub(crate) const MANIFEST_BODY: BodyLimit = BodyLimit {
    what: "manifest",
    max_bytes: MAX_MANIFEST_BYTES,
    deadline: Duration::from_secs(60),
};

/// Token responses: a JWT with its certificate chain is a few KB. 1 MiB,
/// as skopeo's `containers/image` (`iolimits.MaxAuthTokenBodySize`, its
/// fix of CVE-2020-1702, a registry exhausting the client's memory).
pub(crate) const TOKEN_BODY: BodyLimit = BodyLimit {
    what: "token response",
    max_bytes: 1024 * 1024,
    deadline: Duration::from_secs(30),
};

/// Error bodies: an OCI error document is a few hundred bytes; promoter
/// quotes 512 of them. 1 MiB, as `containers/image`
/// (`iolimits.MaxErrorBodySize`), then the connection is dropped.
pub(crate) const ERROR_BODY: BodyLimit = BodyLimit {
    what: "error body",
    max_bytes: 1024 * 1024,
    deadline: Duration::from_secs(10),
};

/// One `tags/list` page: 1,000 tags of the longest legal length (128
/// characters) are 135 KB; the GCR / Artifact Registry `manifest` map adds
/// about 300 bytes per digest, so 32 MiB holds a page of 100,000 digests.
/// Two minutes: 280 KB/s for the largest.
pub(crate) const TAGS_PAGE_BODY: BodyLimit = BodyLimit {
    what: "tags/list page",
    max_bytes: 32 * 1024 * 1024,
    deadline: Duration::from_secs(120),
};

/// Why [`collect`] stopped before the end of a body.
enum Stop {
    TooLarge,
    Deadline,
    Transport(reqwest::Error),
}

/// Read `response`'s body up to `limit`: the bytes read, and why it stopped
/// early if it did. Never holds more than `limit.max_bytes` (plus one read).
async fn collect(response: Response, limit: BodyLimit) -> (Bytes, Option<Stop>) {
    if headers::content_length(
        response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    )
    .is_some_and(|n| n > limit.max_bytes as u64)
    {
        return (Bytes::new(), Some(Stop::TooLarge));
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(Stop::Transport)?;
            let room = limit.max_bytes - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Err(Stop::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    let stop = match tokio::time::timeout(limit.deadline, read).await {
        Ok(Ok(())) => None,
        Ok(Err(stop)) => Some(stop),
        Err(_) => Some(Stop::Deadline),
    };
    (body.freeze(), stop)
}

/// The whole body of `response`, within `limit`, or an error naming the
/// URL (so the registry), what was read and the limit it broke.
pub(crate) async fn read_body(
    method: &Method,
    response: Response,
    limit: BodyLimit,
) -> Result<Bytes> {
    let url = response.url().to_string();
    let (body, stop) = collect(response, limit).await;
    match stop {
        None => Ok(body),
        Some(Stop::TooLarge) => Err(Error::BodyTooLarge {
            url,
            what: limit.what,
            limit: limit.max_bytes,
        }),
        Some(Stop::Deadline) => Err(Error::Deadline {
            method: method.to_string(),
            url,
            what: limit.what,
            got: body.len() as u64,
            seconds: limit.deadline.as_secs(),
        }),
        Some(Stop::Transport(cause)) => Err(Error::Transport {
            method: method.to_string(),
            url,
            cause,
        }),
    }
}

/// How much of an error body to quote: enough for the registry's error
/// code and message.
const ERROR_BODY_QUOTE: usize = 512;

/// The start of an error body (at most [`ERROR_BODY`]), whatever stopped
/// its reading: it only serves to explain the status.
pub(crate) async fn error_body(response: Response) -> Bytes {
    collect(response, ERROR_BODY).await.0
}

/// The error for a response the operation did not expect.
pub(crate) async fn unexpected(method: &Method, response: Response) -> Error {
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let body = error_body(response).await;
    let text = headers::quote(
        &String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_QUOTE + 4)]),
        ERROR_BODY_QUOTE,
    );
    Error::Status {
        method: method.to_string(),
        url,
        status,
        body: text,
    }
}

/// A header as text, when present and printable.
pub(crate) fn header_str<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response.headers().get(name)?.to_str().ok()
}

/// True for the statuses that mean "not there".
pub(crate) fn is_not_found(status: StatusCode) -> bool {
    status == StatusCode::NOT_FOUND
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: reqwest::Body, length: Option<usize>) -> Response {
        let mut builder = http::Response::builder().status(200);
        if let Some(length) = length {
            builder = builder.header("content-length", length.to_string());
        }
        Response::from(builder.body(body).unwrap())
    }

    fn limit(max_bytes: usize, deadline: Duration) -> BodyLimit {
        BodyLimit {
            what: "test body",
            max_bytes,
            deadline,
        }
    }

    #[tokio::test]
    async fn bodies_stop_at_their_size() {
        let small = response(reqwest::Body::from(vec![b'x'; 1000]), Some(1000));
        let got = read_body(&Method::GET, small, limit(1000, Duration::from_secs(5))).await;
        assert_eq!(got.unwrap().len(), 1000);
        // Announced too large: refused before reading.
        let announced = response(reqwest::Body::from(vec![b'x'; 10]), Some(2_000_000));
        let err = read_body(&Method::GET, announced, limit(1000, Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::BodyTooLarge { limit: 1000, .. }),
            "{err}"
        );
        // Unannounced: cut while streaming, holding no more than the limit.
        let chunks = futures_util::stream::iter(
            (0..100).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 100]))),
        );
        let streamed = response(reqwest::Body::wrap_stream(chunks), None);
        let (body, stop) = collect(streamed, limit(1050, Duration::from_secs(5))).await;
        assert_eq!(body.len(), 1050);
        assert!(matches!(stop, Some(Stop::TooLarge)));
    }

    #[tokio::test]
    async fn bodies_meet_a_deadline_however_they_trickle() {
        let trickle = futures_util::stream::unfold(0u8, |n| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![n])),
                n.wrapping_add(1),
            ))
        });
        let slow = response(reqwest::Body::wrap_stream(trickle), None);
        let started = std::time::Instant::now();
        let err = read_body(
            &Method::GET,
            slow,
            limit(1 << 20, Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        let Error::Deadline {
            got, seconds: 0, ..
        } = err
        else {
            panic!("{err}");
        };
        assert!((5..=10).contains(&got), "{got} bytes");
    }

    #[tokio::test]
    async fn error_bodies_are_quoted_short() {
        let mut body = b"{\"errors\":[{\"code\":\"DENIED\",\"message\":\"".to_vec();
        body.extend(std::iter::repeat_n(b'z', 3 << 20));
        let r = response(reqwest::Body::from(body), None);
        let err = unexpected(&Method::GET, r).await;
        let Error::Status { body, .. } = &err else {
            panic!("{err}")
        };
        assert!(body.starts_with("{\"errors\""), "{body}");
        assert!(
            body.chars().count() <= ERROR_BODY_QUOTE + 1,
            "{}",
            body.len()
        );
        assert!(body.ends_with('…'));
    }
}
