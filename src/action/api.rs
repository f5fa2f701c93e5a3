//! A small client for the GitHub REST API: the four calls the action makes
//! (create and update a Check Run, list and write issue comments), against
//! `GITHUB_API_URL` so that GitHub Enterprise Server works.
//!
//! Plain `reqwest` (already the registry client's HTTP stack) rather than
//! octocrab: see docs/crates.md. The token is sent only to
//! `GITHUB_API_URL`, marked sensitive, and never printed (`Debug` hides it).
//! Retries follow the shared policy ([`crate::retry`]), with GitHub's
//! rate-limit signals read here.

use std::fmt;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use crate::retry::{Backoff, Class, Policy, Retryable};

/// Each call's limit: reporting must never hold the job for long.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Retries per call: 3 attempts, 0.5 s then 1 s apart (plus jitter), or
/// as long as GitHub asks (`Retry-After`, or the reset of a spent quota),
/// up to a minute. GitHub's API has short hiccups, and a report lost to one
/// is a report nobody sees.
pub const RETRY: Policy = Policy::new(Backoff {
    retries: 2,
    min_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(1),
});

/// The version of the REST API the request and response shapes follow.
const API_VERSION: &str = "2022-11-28";

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// GitHub answered with an error status (403 on a fork's read-only token).
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
        /// How long GitHub asked us to wait, when it did.
        wait: Option<Duration>,
    },
    #[error("{method} {path}: {source}")]
    Transport {
        method: &'static str,
        path: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Worth another attempt. A rate-limited request (429, or 403 with
/// `Retry-After` or no quota left, as GitHub's REST guide describes:
/// docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api)
/// was not acted on, so it is repeated whatever its method. Otherwise a POST
/// is repeated only when it never reached GitHub (a refused connection), so
/// that no Check Run or comment is created twice.
impl Retryable for ApiError {
    fn class(&self) -> Class {
        match self {
            ApiError::Status {
                status: 403 | 429,
                wait: after @ Some(_),
                ..
            }
            | ApiError::Status {
                status: 429,
                wait: after,
                ..
            } => Class::Throttled { after: *after },
            ApiError::Status {
                method,
                status,
                wait,
                ..
            } if *method != "POST" && *status >= 500 => Class::Transient { after: *wait },
            ApiError::Transport { method, source, .. }
                if *method != "POST" || source.is_connect() =>
            {
                Class::Transient { after: None }
            }
            _ => Class::Permanent,
        }
    }
}

/// What a GitHub answer asks us to wait: `Retry-After`, else, when the
/// quota is spent (`x-ratelimit-remaining: 0`), until `x-ratelimit-reset`
/// (Unix seconds).
fn github_wait(headers: &HeaderMap) -> Option<Duration> {
    if let Some(after) = crate::retry::retry_after(headers) {
        return Some(after);
    }
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    if number("x-ratelimit-remaining")? != 0 {
        return None;
    }
    let reset = std::time::UNIX_EPOCH + Duration::from_secs(number("x-ratelimit-reset")?);
    Some(
        reset
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

impl ApiError {
    /// The token may not do this (fork pull requests, missing `permissions:`).
    #[must_use]
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            ApiError::Status {
                status: 401 | 403 | 404,
                ..
            }
        )
    }
}

/// The repository's API.
#[derive(Clone)]
pub struct GitHub {
    http: reqwest::Client,
    /// `{GITHUB_API_URL}/repos/{owner}/{name}`.
    repo_url: String,
    auth: HeaderValue,
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHub")
            .field("repo_url", &self.repo_url)
            .finish_non_exhaustive()
    }
}

impl GitHub {
    /// A client for `repository` (`owner/name`) at `api_url`.
    ///
    /// # Errors
    ///
    /// When the token is not a valid header value or TLS cannot be set up.
    pub fn new(api_url: &str, repository: &str, token: &str) -> anyhow::Result<Self> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("the github-token input holds invalid characters"))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("promoter-action/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .build()?;
        Ok(GitHub {
            http,
            repo_url: format!("{}/repos/{repository}", api_url.trim_end_matches('/')),
            auth,
        })
    }

    /// Sends `body` with `method` to `path` (under the repository) and
    /// returns the JSON answer.
    ///
    /// # Errors
    ///
    /// On a transport failure or a status other than 2xx.
    pub async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        RETRY.run(path, || self.call_once(method, path, body)).await
    }

    async fn call_once(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.repo_url);
        let transport = |source| ApiError::Transport {
            method,
            path: path.to_string(),
            source,
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = self
            .http
            .request(m, &url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let wait = github_wait(response.headers());
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(ApiError::Status {
                method,
                path: path.to_string(),
                status: status.as_u16(),
                message,
                wait,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
