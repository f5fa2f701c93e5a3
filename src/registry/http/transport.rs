//! The one door to the network: [`send`] executes every HTTP request of the
//! registry layer (registry calls and token fetches alike), so that rate
//! limiting and retries can be added in one place later. Also: building the
//! shared `reqwest` client, and turning unexpected statuses into errors.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use url::Url;

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

/// Timeouts: connecting should take well under 30 s on any network a
/// promotion runs on; 120 s without a single byte means the peer is gone
/// (large blobs still stream for as long as bytes keep flowing).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Idle connections stay pooled for the next request to the same host.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Build the shared client: rustls, the system roots plus `extra_ca_pem`,
/// HTTP/1.1 with keep-alive. HTTP/1.1 because parallel blob transfers go
/// faster over several TCP connections than multiplexed in one HTTP/2
/// connection's flow-control window.
pub(crate) fn build_client(extra_ca_pem: &[Vec<u8>]) -> Result<reqwest::Client> {
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
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(60))
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| Error::Setup(e.to_string()))
}

/// Execute one request. Every HTTP request of the registry layer passes
/// here, and only here; a later per-host limiter and retry policy go in this
/// function. A response is returned whatever its status.
pub(crate) async fn send(client: &reqwest::Client, request: Request) -> Result<Response> {
    let method = request.method.clone();
    let url = request.url.clone();
    let mut builder = client
        .request(request.method, request.url)
        .headers(request.headers);
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    tracing::debug!(%method, %url, "registry request");
    builder.send().await.map_err(|source| Error::Transport {
        method: method.to_string(),
        url: url.to_string(),
        cause: source,
    })
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
