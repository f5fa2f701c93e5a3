//! OIDC identity tokens for keyless signing: where they come from (GitHub
//! Actions' token endpoint, a file, an environment variable) and what they
//! claim. Claims are read as real tokens carry them: URL-safe base64 without
//! padding, often no `email`, `aud` as a string or an array. The token's
//! signature is Fulcio's business, not ours: this module never trusts a
//! claim for anything but picking what to prove possession of.
//!
//! A token is a secret: it is never logged, `Debug` redacts it, and on
//! GitHub Actions `::add-mask::` is printed before anything else could print
//! it.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

use super::Error;
use crate::github_oidc::{self, Failure};

/// Where the identity token of a run comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// GitHub Actions: `ACTIONS_ID_TOKEN_REQUEST_URL` with the bearer
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (needs `permissions: id-token: write`).
    GitHub {
        /// The request URL, without the audience.
        url: String,
        /// The request token (a secret too).
        request_token: String,
    },
    /// A token in a file (`--identity-token-file`), read once.
    File(PathBuf),
    /// A token in the `SIGSTORE_ID_TOKEN` environment variable.
    Env(String),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::GitHub { url, .. } => write!(f, "GitHub({url})"),
            TokenSource::File(path) => write!(f, "File({})", path.display()),
            TokenSource::Env(_) => f.write_str("Env(SIGSTORE_ID_TOKEN)"),
        }
    }
}

/// The environment variable a static token may come in.
pub const TOKEN_ENV: &str = "SIGSTORE_ID_TOKEN";

impl TokenSource {
    /// The first available source: the file if given, then
    /// `SIGSTORE_ID_TOKEN`, then GitHub Actions' variables. `None` when there
    /// is no identity to sign with.
    pub fn detect(token_file: Option<&std::path::Path>) -> Option<TokenSource> {
        if let Some(path) = token_file {
            return Some(TokenSource::File(path.to_path_buf()));
        }
        if let Ok(token) = std::env::var(TOKEN_ENV)
            && !token.trim().is_empty()
        {
            return Some(TokenSource::Env(token.trim().to_owned()));
        }
        match (
            std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"),
            std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        ) {
            (Ok(url), Ok(request_token)) if !url.is_empty() && !request_token.is_empty() => {
                Some(TokenSource::GitHub { url, request_token })
            }
            _ => None,
        }
    }

    /// Get the token. GitHub requests are retried on transient failures
    /// (connection errors, 408, 429, 5xx): [`github_oidc::RETRY`].
    pub async fn fetch(&self, client: &reqwest::Client) -> Result<IdentityToken, Error> {
        let raw = match self {
            TokenSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| Error::Token(format!("cannot read {}: {e}", path.display())))?
                .trim()
                .to_owned(),
            TokenSource::Env(token) => token.clone(),
            TokenSource::GitHub { url, request_token } => {
                fetch_github(client, url, request_token).await?
            }
        };
        if on_github_actions() || matches!(self, TokenSource::GitHub { .. }) {
            mask(&raw);
        }
        IdentityToken::parse(raw)
    }
}

fn on_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Tell GitHub Actions to hide `secret` in every later log line.
fn mask(secret: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "::add-mask::{secret}");
    let _ = out.flush();
}

async fn fetch_github(
    client: &reqwest::Client,
    url: &str,
    request_token: &str,
) -> Result<String, Error> {
    mask(request_token);
    let url = github_oidc::url(url, "sigstore").map_err(|e| {
        Error::Token(format!(
            "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL ({e}); it is the runner's own, do not set it"
        ))
    })?;
    github_oidc::fetch(client, &url, request_token)
        .await
        .map_err(|failure| Error::Token(match failure {
            Failure::Unanswered(last) => format!(
                "the GitHub token endpoint failed {} times, last: {last}",
                github_oidc::RETRY.attempts()
            ),
            Failure::Refused { status, .. } => format!(
                "the GitHub token endpoint refused the request (HTTP {status}); does the job have `permissions: id-token: write`?"
            ),
            Failure::NoToken(e) => {
                format!("the GitHub token endpoint answered without a token: {e}")
            }
        }))
}

/// A raw JWT and the claims signing needs.
#[derive(Clone)]
pub struct IdentityToken {
    raw: String,
    /// The decoded claims (not verified here: Fulcio verifies the token).
    pub claims: Claims,
}

impl fmt::Debug for IdentityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityToken")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// The claims of an identity token that matter here.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer, e.g. `https://token.actions.githubusercontent.com`.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audiences: a string or an array in the token, a list here.
    #[serde(default, deserialize_with = "string_or_list")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Email, for tokens of people; GitHub's have none.
    #[serde(default)]
    pub email: Option<String>,
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(a) => vec![a],
        Aud::Many(a) => a,
    })
}

impl IdentityToken {
    /// Read the claims of a JWT (`header.payload.signature`).
    pub fn parse(raw: String) -> Result<IdentityToken, Error> {
        let claims = parse_claims(&raw)?;
        Ok(IdentityToken { raw, claims })
    }

    /// The token itself, for Fulcio. Never log it.
    pub fn secret(&self) -> &str {
        &self.raw
    }

    /// What Fulcio's proof of possession signs: the email for people, the
    /// subject for workloads (GitHub Actions).
    pub fn challenge(&self) -> &str {
        self.claims.email.as_deref().unwrap_or(&self.claims.sub)
    }
}

/// Decode the payload of a JWT. URL-safe base64 without padding, as RFC
/// 7519 says; padding and the standard alphabet are tolerated.
pub fn parse_claims(jwt: &str) -> Result<Claims, Error> {
    let mut parts = jwt.trim().split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Token(
            "the identity token is not a JWT (three dot-separated parts)".into(),
        ));
    };
    let normalized: String = payload
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(normalized)
        .map_err(|e| {
            Error::Token(format!(
                "the identity token's payload is not base64url: {e}"
            ))
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Token(format!("the identity token's claims are unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"ES256"}"#), b64(claims))
    }

    #[test]
    fn github_token_without_email_and_aud_array() {
        let t = jwt(
            r#"{"iss":"https://token.actions.githubusercontent.com","sub":"repo:o/r:ref:refs/heads/main","aud":["sigstore"],"exp":1,"x":"\u00ff\u00fe>?"}"#,
        );
        assert!(t.contains('-') || t.contains('_'), "{t}");
        let c = parse_claims(&t).unwrap();
        assert_eq!(c.aud, vec!["sigstore"]);
        assert_eq!(c.email, None);
        let token = IdentityToken::parse(t).unwrap();
        assert_eq!(token.challenge(), "repo:o/r:ref:refs/heads/main");
        assert!(!format!("{token:?}").contains("eyJ"));
    }

    #[test]
    fn aud_string_and_email() {
        let c = parse_claims(&jwt(
            r#"{"iss":"i","sub":"s","aud":"sigstore","email":"a@b"}"#,
        ))
        .unwrap();
        assert_eq!(c.aud, vec!["sigstore"]);
        assert_eq!(c.email.as_deref(), Some("a@b"));
    }

    #[test]
    fn not_a_jwt() {
        assert!(parse_claims("abc").is_err());
        assert!(parse_claims("a.!!!.c").is_err());
    }
}
