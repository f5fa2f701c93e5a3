//! The one door to the network: [`send`] executes every HTTP request of the
//! registry layer (registry calls and token fetches alike), each admitted by
//! the limiter of its host and operation class (`limit.rs`) and counted
//! (`stats.rs`). Retries wrap whole operations one level up (`retry.rs`).
//! Also: building the shared
//! `reqwest` client with its timeouts, and turning unexpected statuses into
//! errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::limit::{Limiters, OpClass, RateOptions};
use super::stats::HostStats;
use crate::registry::error::{Error, Result};

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
}

impl Transport {
    pub fn new(http: reqwest::Client, rate: RateOptions) -> Transport {
        Transport {
            http,
            limiters: Arc::new(Limiters::new(rate)),
        }
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
/// headers go back to the limiter.
pub(crate) async fn send(transport: &Transport, request: Request) -> Result<Response> {
    let method = request.method.clone();
    let url = request.url.clone();
    let limiter = transport.limiters.for_url(&url);
    let class = OpClass::of(&method, &url);
    let mut builder = transport
        .http
        .request(request.method, request.url)
        .headers(request.headers);
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let _admission = limiter.admit(class).await;
    limiter.counters.request();
    tracing::debug!(%method, %url, "registry request");
    match builder.send().await {
        Ok(response) => {
            limiter.counters.response(response.status().as_u16());
            limiter.observe(class, response.status().as_u16(), response.headers());
            Ok(response)
        }
        Err(source) => {
            limiter.counters.transport_error();
            Err(Error::Transport {
                method: method.to_string(),
                url: url.to_string(),
                cause: source,
            })
        }
    }
}

/// How much of an error body to keep: enough for the registry's error code
/// and message.
const ERROR_BODY_LIMIT: usize = 512;

/// The error for a response the operation did not expect.
pub(crate) async fn unexpected(method: &Method, response: Response) -> Error {
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let body = response.bytes().await.unwrap_or_default();
    let mut text: String = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_LIMIT)])
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if body.len() > ERROR_BODY_LIMIT {
        text.push('…');
    }
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
