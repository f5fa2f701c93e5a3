//! Authentication for one registry: acting on the `WWW-Authenticate`
//! challenge (anonymous, Basic or Bearer; parsed in `headers.rs`), token
//! fetches from the challenge's realm, a
//! token cache per scope set, and the one `authorization` header function the
//! request path calls. Tokens and passwords stay in [`Secret`]s and in
//! sensitive header values; none reaches an error or a log line.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::headers;
use super::transport::{self, Request};
use crate::registry::credentials::{Credential, CredentialStore, Found, Secret};
use crate::registry::error::{Error, Result};

pub(crate) use super::headers::Challenge;

struct CachedToken {
    header: HeaderValue,
    expires: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    /// Any JSON value: a hostile or sloppy server's `-1`, `1e30` or `"300"`
    /// is no reason to refuse the token (see [`expires_in_secs`]).
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// `expires_in` as whole seconds: a non-negative number, cut to `u64`;
/// anything else is absent (the default lifetime).
fn expires_in_secs(value: &serde_json::Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.min(u64::MAX as f64) as u64)
    })
}

/// Read a token response body (at most `transport::TOKEN_BODY`): the
/// `Authorization` value and `expires_in`. The body holds the token, so no
/// error quotes it; they say what it looked like instead.
pub(crate) fn parse_token_response(
    body: &[u8],
    content_type: Option<&str>,
    realm_url: &str,
) -> Result<(HeaderValue, Option<u64>)> {
    let invalid = |reason: String| Error::InvalidResponse {
        url: realm_url.to_owned(),
        reason,
    };
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|_| {
        invalid(format!(
            "token response is not JSON (Content-Type {}, {} bytes): the realm of the \
             registry's WWW-Authenticate challenge must be its token endpoint; promoter gave up \
             on this request",
            headers::quote(content_type.unwrap_or("absent"), 60),
            body.len()
        ))
    })?;
    let token = parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("token response has no `token`".into()))?;
    let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| invalid("token is not a valid header value".into()))?;
    header.set_sensitive(true);
    Ok((header, parsed.expires_in.as_ref().and_then(expires_in_secs)))
}

/// Tokens without `expires_in` live 60 s (the distribution token spec's
/// default); we stop using a token 10 s before it expires.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// A token is used at most this long, whatever its `expires_in` says: a
/// run that lasts longer fetches a new one, and no `expires_in` (up to
/// `u64::MAX` seconds) can overflow the clock.
const LONGEST_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When a token fetched `now` stops being used.
fn token_expiry(now: Instant, expires_in: Option<u64>) -> Instant {
    let lifetime = expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        .min(LONGEST_TOKEN_LIFETIME);
    now + lifetime.saturating_sub(EXPIRY_MARGIN)
}

/// Authentication state of one registry, shared by every clone of its
/// `HttpRegistry`.
pub(crate) struct Auth {
    host: String,
    store: CredentialStore,
    /// The credential looked up, until its `refresh_at` passes or the
    /// registry refuses it.
    credential: Mutex<Option<Option<Found>>>,
    /// The registry refused the credential: the next lookup exchanges anew.
    refused: std::sync::atomic::AtomicBool,
    challenge: std::sync::Mutex<Challenge>,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(host: &str, store: CredentialStore) -> Auth {
        Auth {
            host: host.to_owned(),
            store,
            credential: Mutex::new(None),
            refused: Default::default(),
            challenge: std::sync::Mutex::new(Challenge::None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Credentials for this registry: looked up once, and again when a
    /// cloud token is about to expire or was refused.
    pub async fn credential(&self) -> Result<Option<Credential>> {
        let mut cached = self.credential.lock().await;
        let refused = self
            .refused
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(found) = &*cached {
            let expired = found
                .as_ref()
                .and_then(|f| f.refresh_at)
                .is_some_and(|at| at <= Instant::now());
            if !expired && !refused {
                return Ok(found.as_ref().map(|f| f.credential.clone()));
            }
        }
        let found = self.store.find(&self.host, refused).await?;
        let credential = found.as_ref().map(|f| f.credential.clone());
        *cached = Some(found);
        Ok(credential)
    }

    /// The registry refused what was sent: if the credential is a cloud
    /// token, exchange it anew before the next try (once per refusal).
    async fn refuse_credential(&self) {
        let cached = self.credential.lock().await;
        if cached
            .as_ref()
            .is_some_and(|f| f.as_ref().is_some_and(|f| f.refresh_at.is_some()))
        {
            self.refused
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    pub fn set_challenge(&self, challenge: Challenge) {
        *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) = challenge;
    }

    fn challenge(&self) -> Challenge {
        self.challenge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forget the token for `scopes` (the registry refused it), and a cloud
    /// credential behind it.
    pub async fn forget(&self, scopes: &[String]) {
        self.tokens.lock().await.remove(&scopes.join(" "));
        self.refuse_credential().await;
    }

    /// The `Authorization` header for a request needing `scopes`, if any.
    pub async fn header(
        &self,
        client: &transport::Transport,
        scopes: &[String],
        repository: &str,
    ) -> Result<Option<HeaderValue>> {
        match self.challenge() {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(match self.credential().await? {
                Some(Credential::Basic { username, password }) => {
                    Some(basic_header(&username, &password))
                }
                _ => None,
            }),
            Challenge::Bearer { realm, service } => {
                let key = scopes.join(" ");
                let mut tokens = self.tokens.lock().await;
                if let Some(t) = tokens.get(&key)
                    && t.expires > Instant::now()
                {
                    return Ok(Some(t.header.clone()));
                }
                let mut token = self
                    .fetch_token(client, &realm, service.as_deref(), scopes, repository)
                    .await;
                if matches!(token, Err(Error::Unauthorized { .. })) {
                    // The realm refused a cloud token: one fresh exchange.
                    self.refuse_credential().await;
                    if self.refused.load(std::sync::atomic::Ordering::SeqCst) {
                        token = self
                            .fetch_token(client, &realm, service.as_deref(), scopes, repository)
                            .await;
                    }
                }
                let token = token?;
                let header = token.header.clone();
                tokens.insert(key, token);
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(
        &self,
        client: &transport::Transport,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        repository: &str,
    ) -> Result<CachedToken> {
        let mut url = Url::parse(realm).map_err(|e| Error::InvalidResponse {
            url: realm.to_owned(),
            reason: format!("token realm is not a URL: {e}"),
        })?;
        let credential = self.credential().await?;
        let request = match &credential {
            Some(Credential::IdentityToken(refresh)) => {
                // OAuth2 refresh-token grant, as docker does for identity tokens.
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh.expose())
                    .append_pair("client_id", "promoter")
                    .append_pair("scope", &scopes.join(" "));
                if let Some(service) = service {
                    form.append_pair("service", service);
                }
                Request::new(Method::POST, url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.finish().into())
            }
            _ => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for scope in scopes {
                        query.append_pair("scope", scope);
                    }
                }
                let mut request = Request::new(Method::GET, url);
                if let Some(Credential::Basic { username, password }) = &credential {
                    request
                        .headers
                        .insert(AUTHORIZATION, basic_header(username, password));
                }
                request
            }
        };
        let method = request.method.clone();
        let response = transport::send(client, request).await?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(Error::Unauthorized {
                registry: self.host.clone(),
                repository: repository.to_owned(),
                had_credentials: credential.is_some(),
            });
        }
        if !response.status().is_success() {
            return Err(transport::unexpected(&method, response).await);
        }
        let realm_url = response.url().to_string();
        let content_type = transport::header_str(&response, "content-type").map(str::to_owned);
        let body = transport::read_body(&method, response, transport::TOKEN_BODY).await?;
        let (header, expires_in) =
            parse_token_response(&body, content_type.as_deref(), &realm_url)?;
        Ok(CachedToken {
            header,
            expires: token_expiry(Instant::now(), expires_in),
        })
    }
}

fn basic_header(username: &str, password: &Secret) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_expires_in_gives_a_bounded_expiry() {
        let now = Instant::now();
        assert_eq!(token_expiry(now, None), now + Duration::from_secs(50));
        assert_eq!(token_expiry(now, Some(300)), now + Duration::from_secs(290));
        assert_eq!(token_expiry(now, Some(0)), now);
        assert_eq!(
            token_expiry(now, Some(u64::MAX)),
            now + LONGEST_TOKEN_LIFETIME - EXPIRY_MARGIN
        );
    }

    #[test]
    fn token_responses() {
        let url = "http://127.0.0.1:1/token";
        let (_, exp) = parse_token_response(
            br#"{"token":"t","expires_in":18446744073709551615}"#,
            None,
            url,
        )
        .unwrap();
        assert_eq!(exp, Some(u64::MAX));
        for odd in ["-1", "1e300", "\"300\"", "null"] {
            let body = format!(r#"{{"access_token":"t","expires_in":{odd}}}"#);
            let (_, exp) = parse_token_response(body.as_bytes(), None, url).unwrap();
            assert!(exp.is_none_or(|e| e > 1_000_000), "{odd}: {exp:?}");
        }
        let err = parse_token_response(b"<html>secret-looking</html>", Some("text/html"), url)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not JSON (Content-Type text/html, 27 bytes)"),
            "{err}"
        );
        assert!(!err.contains("secret-looking"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_token_body_is_parsed_or_refused(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = parse_token_response(&body, Some("application/json"), "http://h/t");
        }

        #[test]
        fn any_expires_in(n in proptest::prelude::any::<f64>(), u in proptest::prelude::any::<u64>()) {
            let body = format!(r#"{{"token":"t","expires_in":{n}}}"#);
            if let Ok((_, exp)) = parse_token_response(body.as_bytes(), None, "http://h/t") {
                let _ = token_expiry(Instant::now(), exp);
            }
            let _ = token_expiry(Instant::now(), Some(u));
        }
    }
}
