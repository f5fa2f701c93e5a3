//! A loopback stand-in for the Google endpoints Application Default
//! Credentials talk to, checking every field as Google documents it:
//!
//! - the GitHub OIDC endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`), the subject
//!   token source google-github-actions/auth writes into an
//!   `external_account` file;
//! - STS `POST /v1/token` (token exchange, RFC 8693);
//! - IAM Credentials `generateAccessToken`;
//! - the OAuth2 token endpoint for the service-account JWT bearer grant;
//! - the GCE metadata server's token.
//!
//! A request that breaks a rule gets Google's error shape and is recorded in
//! `refusals`, so a test can show which rule. Access tokens it hands out
//! live [`GoogleStandIn::lifetime`]; [`GoogleStandIn::accepts`] is the check
//! the registry's token realm runs on `oauth2accesstoken:<token>`, as
//! Artifact Registry does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

/// The service account the stand-in knows.
pub const SERVICE_ACCOUNT: &str = "promoter@test-project.iam.gserviceaccount.com";
/// The workload identity provider the `external_account` audience names.
pub const AUDIENCE: &str = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/github";
/// The bearer the GitHub OIDC endpoint wants (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
pub const REQUEST_TOKEN: &str = "gh-request-token-0b1c";
/// The scope every token must be asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The test service-account key (tests/data/google/README.md).
pub const KEY_PEM: &str = include_str!("../data/google/test-service-account-key.pem");

#[derive(Default)]
struct State {
    /// Subject tokens handed out by the OIDC endpoint.
    subjects: Vec<String>,
    /// The audience of each.
    audiences: Vec<String>,
    /// Federated tokens from STS (only good for generateAccessToken).
    federated: Vec<String>,
    /// Access tokens and when they stop working.
    access: HashMap<String, Instant>,
    /// `(endpoint, count)` of good requests.
    calls: HashMap<&'static str, usize>,
    /// Why requests were refused.
    refusals: Vec<String>,
    serial: usize,
}

/// A running stand-in. Its thread ends with the test process.
pub struct GoogleStandIn {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`, for `GCE_METADATA_HOST`.
    pub host: String,
    /// How long access tokens live.
    pub lifetime: Duration,
    state: Arc<Mutex<State>>,
}

/// One HTTP/1.1 request as the stand-ins read it (also `azure`'s).
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    /// The form-encoded body.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

impl GoogleStandIn {
    /// Start on a random loopback port; access tokens live `lifetime`.
    pub fn start(lifetime: Duration) -> GoogleStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind google stand-in");
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (state2, base) = (state.clone(), format!("http://{host}"));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (state, base) = (state2.clone(), base.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &state, &base, lifetime);
                });
            }
        });
        GoogleStandIn {
            url: format!("http://{host}"),
            host,
            lifetime,
            state,
        }
    }

    /// Whether `token` is a live access token (the registry realm's check).
    pub fn accepts(&self) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let state = self.state.clone();
        Arc::new(move |token| {
            let state = state.lock().unwrap();
            state
                .access
                .get(token)
                .is_some_and(|until| *until > Instant::now())
        })
    }

    /// Whether `token` is a GitHub OIDC token its `/oidc` handed out (the
    /// check another cloud's federation runs on the assertion).
    pub fn issued_oidc(&self) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let state = self.state.clone();
        Arc::new(move |token| state.lock().unwrap().subjects.iter().any(|s| s == token))
    }

    /// Revoke every access token handed out so far (they stop working
    /// before they expire).
    pub fn revoke(&self) {
        self.state.lock().unwrap().access.clear();
    }

    /// Good requests to `endpoint` so far (`oidc`, `sts`, `iam`, `jwt`, `metadata`).
    pub fn calls(&self, endpoint: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// The audience of every OIDC token asked for.
    pub fn audiences(&self) -> Vec<String> {
        self.state.lock().unwrap().audiences.clone()
    }

    /// The OIDC audience google-github-actions/auth asks for: the provider
    /// as an https URL.
    pub fn provider_audience() -> String {
        format!("https://iam.googleapis.com{}", &AUDIENCE[1..])
    }

    /// Every refusal, with the rule it broke.
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().unwrap().refusals.clone()
    }

    /// Every secret the stand-in handed out or expects, for leak checks.
    pub fn secrets(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut all: Vec<String> = state
            .subjects
            .iter()
            .chain(&state.federated)
            .cloned()
            .collect();
        all.extend(state.access.keys().cloned());
        all.push(REQUEST_TOKEN.into());
        all
    }

    /// An `external_account` file as google-github-actions/auth writes it:
    /// the subject token from the job's OIDC URL with its bearer header,
    /// STS at this stand-in, impersonating [`SERVICE_ACCOUNT`].
    pub fn external_account_json(&self) -> String {
        json!({
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("{}/v1/token", self.url),
            "service_account_impersonation_url": format!(
                "{}/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken", self.url),
            "credential_source": {
                "url": format!("{}/oidc?api-version=2.0&audience={}", self.url, GoogleStandIn::provider_audience()),
                "headers": {"Authorization": format!("Bearer {REQUEST_TOKEN}")},
                "format": {"type": "json", "subject_token_field_name": "value"},
            },
        })
        .to_string()
    }

    /// A `service_account` key file whose `token_uri` is this stand-in.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "test-key-1",
            "private_key": KEY_PEM,
            "client_email": SERVICE_ACCOUNT,
            "client_id": "1234567890",
            "token_uri": format!("{}/token", self.url),
        })
        .to_string()
    }
}

fn serve(
    conn: TcpStream,
    state: &Mutex<State>,
    base: &str,
    lifetime: Duration,
) -> std::io::Result<()> {
    let request = read_request(&conn)?;
    let answer = route(&request, state, base, lifetime);
    let (status, body) = match answer {
        Ok((endpoint, body)) => {
            *state.lock().unwrap().calls.entry(endpoint).or_default() += 1;
            ("200 OK", body)
        }
        Err((status, rule)) => {
            state.lock().unwrap().refusals.push(rule.clone());
            (
                status,
                json!({"error": "invalid_request", "error_description": rule}),
            )
        }
    };
    let body = body.to_string();
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nMetadata-Flavor: Google\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Read one request (headers and a `Content-Length` body) from `conn`.
pub fn read_request(conn: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let url = url::Url::parse(&format!("http://x{target}")).expect("request target");
    Ok(Request {
        method,
        path: url.path().to_owned(),
        query: url.query_pairs().into_owned().collect(),
        headers,
        body,
    })
}

type Answer = Result<(&'static str, Value), (&'static str, String)>;

fn refuse(rule: impl Into<String>) -> (&'static str, String) {
    ("400 Bad Request", rule.into())
}

fn require(ok: bool, rule: &str) -> Result<(), (&'static str, String)> {
    if ok { Ok(()) } else { Err(refuse(rule)) }
}

fn route(r: &Request, state: &Mutex<State>, base: &str, lifetime: Duration) -> Answer {
    let impersonate =
        format!("/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken");
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/oidc") => oidc(r, state),
        ("POST", "/v1/token") => sts(r, state, lifetime),
        ("POST", p) if p == impersonate => generate_access_token(r, state, lifetime),
        ("POST", "/token") => jwt_bearer(r, state, base, lifetime),
        ("GET", "/computeMetadata/v1/instance/service-accounts/default/token") => {
            metadata(r, state, lifetime)
        }
        _ => Err((
            "404 Not Found",
            format!("no endpoint {} {}", r.method, r.path),
        )),
    }
}

fn next_token(state: &Mutex<State>, prefix: &str) -> String {
    let mut state = state.lock().unwrap();
    state.serial += 1;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:08x}", state.serial)
}

fn grant_access(state: &Mutex<State>, prefix: &str, lifetime: Duration) -> String {
    let token = next_token(state, prefix);
    state
        .lock()
        .unwrap()
        .access
        .insert(token.clone(), Instant::now() + lifetime);
    token
}

/// GitHub's OIDC token request: `Authorization: bearer
/// $ACTIONS_ID_TOKEN_REQUEST_TOKEN` and an `audience` parameter; the answer
/// is `{"value": <jwt>}` (docs.github.com, "Configuring OpenID Connect in
/// cloud providers", "Requesting the JWT using environment variables").
fn oidc(r: &Request, state: &Mutex<State>) -> Answer {
    let bearer = r.header("authorization").unwrap_or("");
    require(
        bearer.eq_ignore_ascii_case(&format!("bearer {REQUEST_TOKEN}")),
        "oidc: bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    )?;
    let audience = r
        .query
        .iter()
        .find(|(k, _)| k == "audience")
        .map(|(_, v)| v.clone());
    let audience = audience
        .filter(|a| !a.is_empty())
        .ok_or_else(|| refuse("oidc: an audience"))?;
    let subject = next_token(state, "eyJ.subject");
    let mut state = state.lock().unwrap();
    state.subjects.push(subject.clone());
    state.audiences.push(audience);
    Ok(("oidc", json!({ "count": 1, "value": subject })))
}

/// STS `token` (cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token):
/// form-encoded; `grantType` must be
/// `urn:ietf:params:oauth:grant-type:token-exchange`, `requestedTokenType`
/// `urn:ietf:params:oauth:token-type:access_token`, `subjectTokenType` one of
/// the listed types (a JWT here), `audience` the full provider resource name,
/// `scope` the OAuth scope(s), `subjectToken` the external token.
fn sts(r: &Request, state: &Mutex<State>, lifetime: Duration) -> Answer {
    let form = r.form();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    require(
        r.header("content-type") == Some("application/x-www-form-urlencoded"),
        "sts: form-encoded body",
    )?;
    require(
        field("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange",
        "sts: grant_type token-exchange",
    )?;
    require(
        field("requested_token_type") == "urn:ietf:params:oauth:token-type:access_token",
        "sts: requested_token_type access_token",
    )?;
    require(
        field("subject_token_type") == "urn:ietf:params:oauth:token-type:jwt",
        "sts: subject_token_type jwt",
    )?;
    require(
        field("audience") == AUDIENCE,
        "sts: audience is the provider",
    )?;
    require(
        field("scope").split(' ').any(|s| s == SCOPE),
        "sts: scope cloud-platform",
    )?;
    let known = state
        .lock()
        .unwrap()
        .subjects
        .iter()
        .any(|s| s == field("subject_token"));
    require(known, "sts: subject_token from the OIDC endpoint")?;
    let token = next_token(state, "fed");
    state.lock().unwrap().federated.push(token.clone());
    Ok((
        "sts",
        json!({
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
        }),
    ))
}

/// IAM Credentials `generateAccessToken`
/// (cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken):
/// `Authorization: Bearer` the caller's (federated) token; JSON body with
/// `scope` (array, required) and `lifetime` (a duration such as `3600s`);
/// answers `accessToken` and `expireTime` (RFC 3339).
fn generate_access_token(r: &Request, state: &Mutex<State>, lifetime: Duration) -> Answer {
    let bearer = r
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("");
    let known = state.lock().unwrap().federated.iter().any(|t| t == bearer);
    require(
        known,
        "iam: Authorization Bearer <federated token from STS>",
    )?;
    let body: Value = serde_json::from_slice(&r.body).map_err(|_| refuse("iam: JSON body"))?;
    let scopes = body["scope"].as_array().cloned().unwrap_or_default();
    require(
        scopes.iter().any(|s| s == SCOPE),
        "iam: scope array with cloud-platform",
    )?;
    let lifetime_field = body["lifetime"].as_str().unwrap_or("3600s");
    require(
        lifetime_field
            .strip_suffix('s')
            .is_some_and(|n| n.parse::<u64>().is_ok()),
        "iam: lifetime like 3600s",
    )?;
    let token = grant_access(state, "ya29.impersonated", lifetime);
    let expire = time::OffsetDateTime::now_utc() + lifetime;
    let expire = expire
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Ok(("iam", json!({ "accessToken": token, "expireTime": expire })))
}

/// The service-account JWT bearer grant
/// (developers.google.com/identity/protocols/oauth2/service-account#httprest):
/// form-encoded `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and
/// `assertion`, a JWT signed RS256 by the key, with `iss` the account's
/// email, `scope`, `aud` the token URI, `iat`, and `exp` at most an hour later.
fn jwt_bearer(r: &Request, state: &Mutex<State>, base: &str, lifetime: Duration) -> Answer {
    let form = r.form();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    require(
        field("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "jwt: grant_type jwt-bearer",
    )?;
    let parts: Vec<&str> = field("assertion").split('.').collect();
    require(parts.len() == 3, "jwt: assertion is a JWT")?;
    let decode = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
    };
    let header: Value = decode(parts[0])
        .and_then(|h| serde_json::from_slice(&h).ok())
        .unwrap_or_default();
    let claims: Value = decode(parts[1])
        .and_then(|c| serde_json::from_slice(&c).ok())
        .unwrap_or_default();
    require(
        header["alg"] == "RS256" && header["kid"] == "test-key-1",
        "jwt: header alg RS256, kid the key id",
    )?;
    require(
        claims["iss"] == SERVICE_ACCOUNT,
        "jwt: iss is the account's email",
    )?;
    require(
        claims["aud"] == format!("{base}/token"),
        "jwt: aud is the token URI",
    )?;
    require(
        claims["scope"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|s| s == SCOPE)),
        "jwt: scope cloud-platform",
    )?;
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    require(
        exp > iat && exp - iat <= 3600,
        "jwt: exp at most an hour after iat",
    )?;
    let signature = decode(parts[2]).unwrap_or_default();
    require(
        verify_rs256(&format!("{}.{}", parts[0], parts[1]), &signature),
        "jwt: RS256 signature by the key",
    )?;
    let token = grant_access(state, "ya29.sa", lifetime);
    Ok((
        "jwt",
        json!({ "access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer" }),
    ))
}

fn verify_rs256(message: &str, signature: &[u8]) -> bool {
    use aws_lc_rs::signature::{
        KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey,
    };
    let body: String = KEY_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let key = RsaKeyPair::from_pkcs8(&der).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
        .verify(message.as_bytes(), signature)
        .is_ok()
}

/// The metadata server (cloud.google.com/compute/docs/metadata/querying-metadata):
/// requests must carry `Metadata-Flavor: Google`; the token endpoint answers
/// `access_token`, `expires_in`, `token_type`.
fn metadata(r: &Request, state: &Mutex<State>, lifetime: Duration) -> Answer {
    require(
        r.header("metadata-flavor") == Some("Google"),
        "metadata: Metadata-Flavor: Google",
    )?;
    let token = grant_access(state, "ya29.gce", lifetime);
    Ok((
        "metadata",
        json!({ "access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer" }),
    ))
}
