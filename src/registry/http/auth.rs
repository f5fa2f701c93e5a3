//! Authentication for one registry: the `WWW-Authenticate` challenge
//! (anonymous, Basic or Bearer), token fetches from the challenge's realm, a
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

use super::transport::{self, Request};
use crate::registry::credentials::{Credential, CredentialStore, Found, Secret};
use crate::registry::error::{Error, Result};

/// What the registry asked for in `WWW-Authenticate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No authentication asked for (yet).
    None,
    /// HTTP Basic.
    Basic,
    /// Token authentication: fetch a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value such as
/// `Bearer realm="https://auth/token",service="registry",scope="..."`.
pub(crate) fn parse_challenge(value: &str) -> Challenge {
    let value = value.trim();
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::None;
    }
    let mut realm = None;
    let mut service = None;
    for (key, val) in parse_params(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(val),
            "service" => service = Some(val),
            _ => {}
        }
    }
    match realm {
        Some(realm) => Challenge::Bearer { realm, service },
        None => Challenge::None,
    }
}

/// `k="v", k2=v2` pairs; quoted values may contain commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            }
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, val));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

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
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Tokens without `expires_in` live 60 s (the distribution token spec's
/// default); we stop using a token 10 s before it expires.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

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
        let body = response.bytes().await.map_err(|source| Error::Transport {
            method: method.to_string(),
            url: realm_url.clone(),
            cause: source,
        })?;
        // The body holds the token: never quote it in an error.
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| Error::InvalidResponse {
                url: realm_url.clone(),
                reason: "token response is not JSON".into(),
            })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::InvalidResponse {
                url: realm_url.clone(),
                reason: "token response has no `token`".into(),
            })?;
        let mut header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::InvalidResponse {
                url: realm_url,
                reason: "token is not a valid header value".into(),
            }
        })?;
        header.set_sensitive(true);
        let lifetime = parsed
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Ok(CachedToken {
            header,
            expires: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
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
    fn parses_bearer_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Challenge::Basic
        );
        assert_eq!(parse_challenge("Negotiate"), Challenge::None);
        assert_eq!(
            parse_challenge("bearer realm=http://x/t"),
            Challenge::Bearer {
                realm: "http://x/t".into(),
                service: None
            }
        );
    }
}
