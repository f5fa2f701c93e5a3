//! What the clouds' token exchanges share: the HTTP client they use (plain
//! reqwest, retried by the one policy of `crate::retry`), the token caches
//! that make a run exchange once per credential source and again only
//! shortly before the token expires (and never again after a failure), the
//! service's own error out of an answer, and the error a failed exchange
//! turns into (registry, source, step, what the service said, what to
//! configure; never a secret).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use tokio::sync::Mutex;

use super::{Env, Secret};
use crate::registry::error::Error;
use crate::retry::{Backoff, HttpFailure, Policy};

/// A cloud token and the instant to exchange it anew.
#[derive(Clone, Debug)]
pub(super) struct Token {
    pub secret: Secret,
    pub refresh_at: Instant,
}

/// State shared by every clone of a `CredentialStore`.
#[derive(Default)]
pub(crate) struct Clouds {
    http: OnceLock<reqwest::Client>,
    /// What each credential source (by key) gave this run.
    tokens: Mutex<HashMap<String, Exchanged>>,
}

/// What a credential source's exchange gave.
#[derive(Clone, Debug)]
enum Exchanged {
    /// A token, or "this source has none".
    Token(Option<Token>),
    /// The exchange failed, for this reason: not tried again in this run,
    /// so that every registry request after the first fails at once, with
    /// the same message, instead of repeating the exchange and its retries.
    Failed(String),
}

impl std::fmt::Debug for Clouds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clouds")
    }
}

/// One lookup's view: the registry host, the environment, the shared state,
/// and whether the registry refused the last credential.
pub(super) struct Context<'a> {
    pub host: &'a str,
    pub env: &'a Env,
    pub clouds: &'a Clouds,
    pub refresh: bool,
}

/// Stop using a token this long before it expires: a quarter of its
/// lifetime, at most five minutes (Google's clients refresh 3 m 45 s early,
/// the AWS SDKs 5 minutes early).
const MAX_MARGIN: Duration = Duration::from_secs(300);
/// A token whose expiry is already past when it arrives (clock skew; moto
/// answers ECR's `expiresAt` with a date in 2015) is used this long.
const SKEWED_LIFETIME: Duration = Duration::from_secs(60);

/// When to exchange a token that lives `lifetime` from now.
pub(super) fn refresh_at(lifetime: Duration) -> Instant {
    let lifetime = if lifetime.is_zero() {
        SKEWED_LIFETIME
    } else {
        lifetime
    };
    Instant::now() + lifetime - (lifetime / 4).min(MAX_MARGIN)
}

/// [`refresh_at`] for a token expiring at `expires` (wall clock).
pub(super) fn refresh_at_time(expires: SystemTime) -> Instant {
    refresh_at(
        expires
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

impl Context<'_> {
    /// The client for token exchanges: rustls, bounded in time.
    pub fn http(&self) -> &reqwest::Client {
        self.clouds.http.get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("promoter/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default()
        })
    }

    /// The cached token of credential source `key`, or the one `fetch`
    /// exchanges. Holding the lock across the exchange makes concurrent
    /// lookups for hosts sharing a source wait for one exchange. A failed
    /// exchange is remembered too, and answered again for this registry.
    pub async fn cached<F>(&self, key: &str, fetch: F) -> Result<Option<Token>, Error>
    where
        F: AsyncFnOnce() -> Result<Option<Token>, Error>,
    {
        let mut tokens = self.clouds.tokens.lock().await;
        match tokens.get(key) {
            Some(Exchanged::Failed(reason)) => {
                return Err(Error::Credentials {
                    registry: self.host.to_owned(),
                    reason: reason.clone(),
                });
            }
            Some(Exchanged::Token(entry)) => {
                let fresh = entry.as_ref().is_none_or(|t| t.refresh_at > Instant::now());
                if fresh && !(self.refresh && entry.is_some()) {
                    return Ok(entry.clone());
                }
            }
            None => {}
        }
        match fetch().await {
            Ok(token) => {
                tokens.insert(key.to_owned(), Exchanged::Token(token.clone()));
                Ok(token)
            }
            Err(Error::Credentials { registry, reason }) => {
                tokens.insert(key.to_owned(), Exchanged::Failed(reason.clone()));
                Err(Error::Credentials { registry, reason })
            }
            Err(other) => Err(other),
        }
    }

    /// [`Context::fail`] for every failure of one step: what the service
    /// said is all that differs.
    pub fn failing<'a>(
        &'a self,
        source: &'a str,
        step: String,
        hint: &'a str,
    ) -> impl Fn(String) -> Error + 'a {
        move |said| {
            self.fail(Failure {
                source,
                step: step.clone(),
                said,
                hint,
            })
        }
    }

    /// The error of a failed exchange for this registry.
    pub fn fail(&self, failure: Failure<'_>) -> Error {
        Error::Credentials {
            registry: self.host.to_owned(),
            reason: format!(
                "{}: {} failed: {}. {}",
                failure.source, failure.step, failure.said, failure.hint
            ),
        }
    }
}

/// What a failed exchange tells the user.
pub(super) struct Failure<'a> {
    /// The credential source, e.g. `GOOGLE_APPLICATION_CREDENTIALS (external_account)`.
    pub source: &'a str,
    /// The step, e.g. `the STS token exchange at https://sts.googleapis.com/v1/token`.
    pub step: String,
    /// The service's own error, or why there was no answer.
    pub said: String,
    /// What to configure.
    pub hint: &'a str,
}

/// `request` with `pairs` as its form-encoded body.
pub(super) fn form(
    request: reqwest::RequestBuilder,
    pairs: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    request
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
}

/// A URL as errors show it: without its query, which may carry a token.
pub(super) fn shown(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// Retries of a token exchange: 3 attempts, 1 s then 2 s apart (plus
/// jitter) on a connection error, a 408, 429 or 5xx; a `Retry-After` is
/// waited for up to 10 s.
pub(super) const RETRY: Policy = Policy::new(Backoff {
    retries: 2,
    min_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(2),
})
.with_max_retry_after(Duration::from_secs(10));

/// Send the request `build` makes, retried by [`RETRY`]. Answers the final
/// status and body (a transient status too, once the retries are spent), or
/// why there was none.
pub(super) async fn send(
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(StatusCode, bytes::Bytes), String> {
    send_with(&RETRY, build).await
}

/// The body of a successful answer to the request `build` makes
/// ([`send`]); otherwise why there is none: no answer, or the service's
/// own error ([`service_error`]).
pub(super) async fn success(
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<bytes::Bytes, String> {
    let (status, body) = send(build).await?;
    if !status.is_success() {
        return Err(service_error(status, &body));
    }
    Ok(body)
}

/// [`send`] with one attempt only.
pub(super) async fn send_once(
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(StatusCode, bytes::Bytes), String> {
    let once = Policy::new(Backoff {
        retries: 0,
        ..RETRY.failures
    });
    send_with(&once, build).await
}

async fn send_with(
    policy: &Policy,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(StatusCode, bytes::Bytes), String> {
    // Boxed: the retry loop's future would otherwise sit inline in every
    // registry request's future, deeper than the compiler lays out.
    match Box::pin(policy.send_text("credential exchange", build)).await {
        Ok((status, body)) | Err(HttpFailure::Status { status, body, .. }) => {
            Ok((status, body.into()))
        }
        Err(HttpFailure::Transport(e)) => Err(describe(&e)),
        Err(failure @ HttpFailure::TooLarge) => Err(failure.to_string()),
    }
}

/// Why a request got no answer, with its causes (never its URL).
pub(super) fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// The service's own error in a failed answer: the OAuth2 `error` and
/// `error_description` (RFC 6749 section 5.2), Google's `error.status` and
/// `error.message`, AWS JSON `__type` and `message`, or AWS XML `Code` and
/// `Message`. Only those fields: a body may echo what was sent.
pub(super) fn service_error(status: StatusCode, body: &[u8]) -> String {
    let found = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| json_error(&v))
        .or_else(|| xml_error(body));
    match found {
        Some(said) => format!("HTTP {status}: {said}"),
        None => format!("HTTP {status}"),
    }
}

fn json_error(v: &serde_json::Value) -> Option<String> {
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    match v.get("error") {
        Some(serde_json::Value::String(code)) => Some(match text(v.get("error_description")) {
            Some(d) => format!("{code}: {d}"),
            None => code.clone(),
        }),
        Some(e @ serde_json::Value::Object(_)) => {
            let status = text(e.get("status")).unwrap_or_default();
            let message = text(e.get("message")).unwrap_or_default();
            Some(format!("{status}: {message}"))
        }
        _ => {
            let kind = text(v.get("__type")).or_else(|| text(v.get("code")))?;
            let message = text(v.get("message").or_else(|| v.get("Message"))).unwrap_or_default();
            Some(format!("{kind}: {message}"))
        }
    }
}

fn xml_error(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].trim().to_owned())
    };
    let code = tag("Code")?;
    Some(match tag("Message") {
        Some(message) => format!("{code}: {message}"),
        None => code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_quote_only_their_error_fields() {
        let oauth =
            br#"{"error":"invalid_grant","error_description":"audience mismatch","echo":"tok"}"#;
        assert_eq!(
            service_error(StatusCode::BAD_REQUEST, oauth),
            "HTTP 400 Bad Request: invalid_grant: audience mismatch"
        );
        let google = br#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#;
        assert_eq!(
            service_error(StatusCode::FORBIDDEN, google),
            "HTTP 403 Forbidden: PERMISSION_DENIED: denied"
        );
        let xml = b"<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad</Message></Error></ErrorResponse>";
        assert_eq!(
            service_error(StatusCode::BAD_REQUEST, xml),
            "HTTP 400 Bad Request: InvalidIdentityToken: bad"
        );
        assert_eq!(
            service_error(StatusCode::BAD_GATEWAY, b"secret-ish text"),
            "HTTP 502 Bad Gateway"
        );
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let hour = refresh_at(Duration::from_secs(3600));
        let early = hour.duration_since(Instant::now());
        assert!(early <= Duration::from_secs(3300) && early > Duration::from_secs(3200));
        let short = refresh_at(Duration::from_secs(8)).duration_since(Instant::now());
        assert!(short <= Duration::from_secs(6));
        assert!(refresh_at_time(SystemTime::UNIX_EPOCH) > Instant::now());
    }
}
