//! A small client for the GitHub REST API: the four calls the action makes
//! (create and update a Check Run, list and write issue comments), against
//! `GITHUB_API_URL` so that GitHub Enterprise Server works.
//!
//! Plain `reqwest` (already the registry client's HTTP stack) rather than
//! octocrab: see the README, "GitHub Action". The token is sent only to
//! `GITHUB_API_URL`, marked sensitive, and never printed (`Debug` hides it).

use std::fmt;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde_json::Value;

/// Each call's limit: reporting must never hold the job for long.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts per call. A 5xx or 429 answer, or a lost connection, is tried
/// again after [`RETRY_DELAY`] times the attempt number: GitHub's API has
/// short hiccups, and a report lost to one is a report nobody sees.
const ATTEMPTS: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_millis(500);

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
    },
    #[error("{method} {path}: {source}")]
    Transport {
        method: &'static str,
        path: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ApiError {
    /// Worth another attempt. A POST is repeated only when it never reached
    /// GitHub (a refused connection), so that no Check Run or comment is
    /// created twice.
    fn is_retryable(&self, method: &str) -> bool {
        match self {
            ApiError::Status { status, .. } => {
                method != "POST" && (*status == 429 || *status >= 500)
            }
            ApiError::Transport { source, .. } => method != "POST" || source.is_connect(),
        }
    }

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
        let mut attempt = 1;
        loop {
            match self.call_once(method, path, body).await {
                Err(err) if attempt < ATTEMPTS && err.is_retryable(method) => {
                    tokio::time::sleep(RETRY_DELAY * attempt).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
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
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
