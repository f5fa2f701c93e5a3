//! GitHub Actions' OIDC token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`
//! with the bearer `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, which needs
//! `permissions: id-token: write`): one request for a token of an
//! audience, retried by [`RETRY`]. Keyless signing asks it for `sigstore`,
//! the clouds' credential exchanges for their own audiences; each caller
//! words the [`Failure`] for its users. Neither token is ever put in a
//! failure.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::retry::{Backoff, HttpFailure, Policy};

/// Retries of the token endpoint: 5 attempts, 1 s doubling (plus jitter),
/// as GitHub's own toolkit retries it; `Retry-After` is waited for up to a
/// minute.
pub const RETRY: Policy = Policy::new(Backoff {
    retries: 4,
    min_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(8),
});

/// Why there is no token.
#[derive(Debug)]
pub enum Failure {
    /// Every attempt failed: the last failure.
    Unanswered(HttpFailure),
    /// The endpoint answered with an error status.
    Refused { status: StatusCode, body: String },
    /// The answer holds no `value`.
    NoToken(serde_json::Error),
}

/// The request URL with `audience` added to its query.
///
/// # Errors
///
/// When `url` is not a URL.
pub fn url(url: &str, audience: &str) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(url)?;
    url.query_pairs_mut().append_pair("audience", audience);
    Ok(url)
}

/// The token the endpoint at `url` (from [`url()`]) issues for the bearer
/// `request_token`.
///
/// # Errors
///
/// A [`Failure`]: no answer, an error status, or no token in the answer.
pub async fn fetch(
    client: &reqwest::Client,
    url: &url::Url,
    request_token: &str,
) -> Result<String, Failure> {
    #[derive(Deserialize)]
    struct Answer {
        value: String,
    }
    // `bearer` in lower case, as GitHub documents the request.
    let request = || {
        client
            .get(url.clone())
            .header(
                reqwest::header::AUTHORIZATION,
                format!("bearer {request_token}"),
            )
            .header(reqwest::header::ACCEPT, "application/json")
    };
    let (status, body) = RETRY
        .send_text("OIDC token request", request)
        .await
        .map_err(Failure::Unanswered)?;
    if !status.is_success() {
        return Err(Failure::Refused { status, body });
    }
    let answer: Answer = serde_json::from_str(&body).map_err(Failure::NoToken)?;
    Ok(answer.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_joins_the_query() {
        let with = url("https://t.example/token?api-version=2.0", "sigstore").unwrap();
        assert_eq!(
            with.as_str(),
            "https://t.example/token?api-version=2.0&audience=sigstore"
        );
        let bare = url("https://t.example/token", "sts.amazonaws.com").unwrap();
        assert_eq!(
            bare.as_str(),
            "https://t.example/token?audience=sts.amazonaws.com"
        );
        assert!(url("not a url", "sigstore").is_err());
    }
}
