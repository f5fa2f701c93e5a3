//! Google Application Default Credentials for Artifact Registry and GCR, read
//! as Google's client libraries read them: `GOOGLE_APPLICATION_CREDENTIALS`
//! (an `external_account`, `service_account` or `authorized_user` file),
//! else gcloud's well-known file, else the GCE metadata server
//! (`GCE_METADATA_HOST` honoured). The access token goes to the registry as
//! Basic `oauth2accesstoken:<token>`. URLs in a credentials file are used as
//! given.
//!
//! Protocol references:
//! - external_account: <https://google.aip.dev/auth/4117> (credential
//!   sources), STS `token` <https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token>
//!   (RFC 8693), IAM Credentials `generateAccessToken`
//!   <https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken>;
//! - service_account: the JWT bearer grant (RFC 7523),
//!   <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>;
//! - authorized_user: the refresh-token grant (RFC 6749 section 6);
//! - metadata server: <https://cloud.google.com/compute/docs/access/authenticate-workloads#applications>.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;

use super::exchange::{self, Context, Failure, Token, refresh_at, shown};
use super::{Credential, Found, Secret};
use crate::registry::error::{Error, Result};

/// The scope every token is asked for.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Where refresh-token and JWT grants go when a file names no `token_uri`.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const METADATA_HOST: &str = "metadata.google.internal";
const HINT: &str = "Configure Workload Identity Federation with \
    google-github-actions/auth (it sets GOOGLE_APPLICATION_CREDENTIALS), or \
    set PROMOTER_AUTH_<HOST>; see docs/credentials.md";

/// `gcr.io`, `*.gcr.io` and `*.pkg.dev` (without the port).
pub(super) fn is_google_host(name: &str) -> bool {
    name == "gcr.io" || name.ends_with(".gcr.io") || name.ends_with(".pkg.dev")
}

/// The credential for a Google registry, or `None` when the environment has
/// no Google credentials. `required`: the docker config named the `gcloud`
/// helper, so having none is an error.
pub(super) async fn credential(ctx: &Context<'_>, required: bool) -> Result<Option<Found>> {
    let token = ctx.cached("google", async || fetch(ctx).await).await?;
    match token {
        Some(token) => Ok(Some(Found {
            credential: Credential::Basic {
                username: "oauth2accesstoken".into(),
                password: token.secret,
            },
            refresh_at: Some(token.refresh_at),
        })),
        None if required => Err(Error::Credentials {
            registry: ctx.host.to_owned(),
            reason: format!(
                "the docker config names the credential helper `gcloud`, which is not \
                 installed, and there are no Google credentials: no \
                 GOOGLE_APPLICATION_CREDENTIALS, no gcloud application_default_credentials.json, \
                 no metadata server. {HINT}"
            ),
        }),
        None => Ok(None),
    }
}

/// A credentials file, any of the three types.
#[derive(Deserialize)]
struct File {
    #[serde(rename = "type", default)]
    kind: String,
    // external_account
    #[serde(default)]
    audience: String,
    #[serde(default)]
    subject_token_type: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    service_account_impersonation_url: Option<String>,
    #[serde(default)]
    service_account_impersonation: Option<Impersonation>,
    #[serde(default)]
    credential_source: Option<CredentialSource>,
    // service_account and authorized_user
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key: Option<Secret>,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Option<Secret>,
    #[serde(default)]
    refresh_token: Option<Secret>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[derive(Deserialize)]
struct Impersonation {
    #[serde(default)]
    token_lifetime_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct CredentialSource {
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    format: Option<Format>,
    #[serde(default)]
    environment_id: Option<String>,
    #[serde(default)]
    executable: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Format {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    subject_token_field_name: Option<String>,
}

/// An OAuth2 token answer (STS, token_uri, metadata server).
#[derive(Deserialize)]
struct OAuthToken {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Where the credentials were found, as errors name it.
struct Origin {
    label: String,
}

impl Origin {
    fn fail(&self, ctx: &Context<'_>, step: String, said: String) -> Error {
        ctx.fail(Failure {
            source: &self.label,
            step,
            said,
            hint: HINT,
        })
    }
}

/// Find the credentials and exchange them for an access token.
async fn fetch(ctx: &Context<'_>) -> Result<Option<Token>> {
    let (path, label) = match ctx.env.get("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(path) => (PathBuf::from(path), "GOOGLE_APPLICATION_CREDENTIALS"),
        None => match well_known_file(ctx) {
            Some(path) => (path, "gcloud's application_default_credentials.json"),
            None => return metadata(ctx).await,
        },
    };
    let text = tokio::fs::read(&path).await.map_err(|e| {
        Origin {
            label: label.to_owned(),
        }
        .fail(ctx, format!("reading {}", path.display()), e.to_string())
    })?;
    // serde_json's message names a line and column, never the content.
    let file: File = serde_json::from_slice(&text).map_err(|e| {
        Origin {
            label: label.to_owned(),
        }
        .fail(
            ctx,
            format!("parsing {}", path.display()),
            format!("not a Google credentials file: {e}"),
        )
    })?;
    let origin = Origin {
        label: format!("{label} ({})", file.kind),
    };
    match file.kind.as_str() {
        "external_account" => external_account(ctx, &origin, &file).await.map(Some),
        "service_account" => service_account(ctx, &origin, &file).await.map(Some),
        "authorized_user" => authorized_user(ctx, &origin, &file).await.map(Some),
        other => Err(origin.fail(
            ctx,
            format!("reading {}", path.display()),
            format!(
                "credentials of type `{other}` are not supported (external_account, \
                 service_account or authorized_user)"
            ),
        )),
    }
}

/// `$CLOUDSDK_CONFIG/application_default_credentials.json`, else
/// `~/.config/gcloud/...`, when it exists.
fn well_known_file(ctx: &Context<'_>) -> Option<PathBuf> {
    let dir = match ctx.env.get("CLOUDSDK_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(ctx.env.get("HOME")?).join(".config/gcloud"),
    };
    let path = dir.join("application_default_credentials.json");
    path.is_file().then_some(path)
}

/// POST `form` to `url` and read an OAuth2 token answer.
async fn token_grant(
    ctx: &Context<'_>,
    origin: &Origin,
    step: &str,
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &Secret)>,
) -> Result<Token> {
    let step = format!("{step} at {}", shown(url));
    let body = exchange::success(|| {
        let request = exchange::form(ctx.http().post(url), form);
        match basic {
            Some((user, password)) => request.basic_auth(user, Some(password.expose())),
            None => request,
        }
    })
    .await
    .map_err(|said| origin.fail(ctx, step.clone(), said))?;
    let token: OAuthToken = serde_json::from_slice(&body)
        .map_err(|_| origin.fail(ctx, step, "the answer has no `access_token`".into()))?;
    Ok(Token {
        secret: token.access_token,
        refresh_at: refresh_at(Duration::from_secs(token.expires_in.unwrap_or(3600))),
    })
}

/// Workload Identity Federation: subject token, STS exchange, then the
/// service account's token if the file names one to impersonate.
async fn external_account(ctx: &Context<'_>, origin: &Origin, file: &File) -> Result<Token> {
    let subject = subject_token(ctx, origin, file).await?;
    // STS `token` (RFC 8693): these six fields, form-encoded.
    let federated = token_grant(
        ctx,
        origin,
        "the STS token exchange",
        &file.token_url,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("audience", &file.audience),
            ("scope", SCOPE),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("subject_token", subject.expose()),
            ("subject_token_type", &file.subject_token_type),
        ],
        None,
    )
    .await?;
    match &file.service_account_impersonation_url {
        Some(url) => {
            let lifetime = file
                .service_account_impersonation
                .as_ref()
                .and_then(|i| i.token_lifetime_seconds)
                .unwrap_or(3600);
            impersonate(ctx, origin, url, &federated.secret, lifetime).await
        }
        None => Ok(federated),
    }
}

/// The subject token from `credential_source`: a file or a URL (with its
/// headers), as text or as a field of a JSON answer.
async fn subject_token(ctx: &Context<'_>, origin: &Origin, file: &File) -> Result<Secret> {
    let Some(source) = &file.credential_source else {
        return Err(origin.fail(
            ctx,
            "reading credential_source".into(),
            "it is missing".into(),
        ));
    };
    let (step, raw) = if let Some(path) = &source.file {
        let step = format!("reading the subject token file {}", path.display());
        let raw = tokio::fs::read(path)
            .await
            .map_err(|e| origin.fail(ctx, step.clone(), e.to_string()))?;
        (step, raw)
    } else if let Some(url) = &source.url {
        let step = format!("fetching the subject token from {}", shown(url));
        let body = exchange::success(|| {
            let mut request = ctx.http().get(url);
            for (name, value) in &source.headers {
                request = request.header(name, value);
            }
            request
        })
        .await
        .map_err(|said| origin.fail(ctx, step.clone(), said))?;
        (step, body.to_vec())
    } else {
        let kind = if source.environment_id.is_some() {
            "an AWS environment_id"
        } else if source.executable.is_some() {
            "an executable"
        } else {
            "neither `file` nor `url`"
        };
        return Err(origin.fail(
            ctx,
            "reading credential_source".into(),
            format!("it names {kind}; promoter reads `file` and `url` sources"),
        ));
    };
    let token = match source.format.as_ref().filter(|f| f.kind == "json") {
        Some(format) => {
            let field = format.subject_token_field_name.as_deref().unwrap_or("");
            serde_json::from_slice::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| v.get(field)?.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    origin.fail(ctx, step, format!("the answer has no JSON field `{field}`"))
                })?
        }
        None => String::from_utf8_lossy(&raw).trim().to_owned(),
    };
    Ok(Secret(token))
}

/// IAM Credentials `generateAccessToken` with the federated token.
async fn impersonate(
    ctx: &Context<'_>,
    origin: &Origin,
    url: &str,
    federated: &Secret,
    lifetime: u64,
) -> Result<Token> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        access_token: Secret,
        expire_time: String,
    }
    let step = format!("generateAccessToken at {}", shown(url));
    let body = serde_json::json!({ "scope": [SCOPE], "lifetime": format!("{lifetime}s") });
    let answer = exchange::success(|| {
        ctx.http()
            .post(url)
            .bearer_auth(federated.expose())
            .json(&body)
    })
    .await
    .map_err(|said| origin.fail(ctx, step.clone(), said))?;
    let answer: Answer = serde_json::from_slice(&answer)
        .map_err(|_| origin.fail(ctx, step.clone(), "the answer has no `accessToken`".into()))?;
    let expires = time::OffsetDateTime::parse(
        &answer.expire_time,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| origin.fail(ctx, step, "`expireTime` is not an RFC 3339 time".into()))?;
    let expires = UNIX_EPOCH + Duration::from_secs(expires.unix_timestamp().max(0) as u64);
    Ok(Token {
        secret: answer.access_token,
        refresh_at: exchange::refresh_at_time(expires),
    })
}

/// A service account key: a self-signed JWT (RS256) exchanged at `token_uri`.
async fn service_account(ctx: &Context<'_>, origin: &Origin, file: &File) -> Result<Token> {
    let token_uri = file.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI);
    let assertion = sign_assertion(file, token_uri)
        .map_err(|said| origin.fail(ctx, "signing the JWT assertion".into(), said))?;
    token_grant(
        ctx,
        origin,
        "the JWT bearer grant",
        token_uri,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.expose()),
        ],
        None,
    )
    .await
}

/// `header.claims.signature` as Google's service-account flow asks.
fn sign_assertion(file: &File, token_uri: &str) -> std::result::Result<Secret, String> {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pem = file
        .private_key
        .as_ref()
        .ok_or("the file has no `private_key`")?;
    let der = pem_body(pem.expose()).ok_or("`private_key` is not a PEM private key")?;
    let key = RsaKeyPair::from_pkcs8(&der)
        .map_err(|_| "`private_key` is not an RSA PKCS#8 key".to_owned())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let header = b64(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": file.private_key_id}));
    let claims = b64(serde_json::json!({
        "iss": file.client_email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": now,
        "exp": now + 3600,
    }));
    let message = format!("{header}.{claims}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing failed".to_owned())?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
    Ok(Secret(format!("{message}.{signature}")))
}

/// The DER inside `-----BEGIN PRIVATE KEY-----`.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = pem[start..].find("-----END PRIVATE KEY-----")? + start;
    let body: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// gcloud's user credentials: the refresh-token grant.
async fn authorized_user(ctx: &Context<'_>, origin: &Origin, file: &File) -> Result<Token> {
    let missing = |field: &str| {
        origin.fail(
            ctx,
            "reading the file".into(),
            format!("it has no `{field}`"),
        )
    };
    let refresh = file
        .refresh_token
        .as_ref()
        .ok_or_else(|| missing("refresh_token"))?;
    let secret = file
        .client_secret
        .as_ref()
        .ok_or_else(|| missing("client_secret"))?;
    token_grant(
        ctx,
        origin,
        "the refresh-token grant",
        file.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &file.client_id),
            ("client_secret", secret.expose()),
            ("refresh_token", refresh.expose()),
        ],
        None,
    )
    .await
}

/// The metadata server's token for the default service account. Without
/// `GCE_METADATA_HOST`, a server that does not answer means "not on Google
/// Cloud": no credentials, not an error.
async fn metadata(ctx: &Context<'_>) -> Result<Option<Token>> {
    let explicit = ctx.env.get("GCE_METADATA_HOST");
    let host = explicit.unwrap_or(METADATA_HOST);
    let url = format!(
        "http://{host}/computeMetadata/v1/instance/service-accounts/default/token?scopes={SCOPE}"
    );
    let origin = Origin {
        label: match explicit {
            Some(_) => format!("the metadata server at GCE_METADATA_HOST={host}"),
            None => format!("the metadata server at {host}"),
        },
    };
    let step = format!("fetching the token from {}", shown(&url));
    let request = || {
        let request = ctx.http().get(&url).header("Metadata-Flavor", "Google");
        match explicit {
            Some(_) => request,
            // Google's libraries give the implicit probe a few seconds.
            None => request.timeout(Duration::from_secs(3)),
        }
    };
    // The implicit probe gets one try: most runs are not on Google Cloud.
    let sent = if explicit.is_some() {
        exchange::send(request).await
    } else {
        exchange::send_once(request).await
    };
    let (status, body) = match sent {
        Ok(answer) => answer,
        Err(_) if explicit.is_none() => return Ok(None),
        Err(said) => return Err(origin.fail(ctx, step, said)),
    };
    if !status.is_success() {
        return Err(origin.fail(ctx, step, exchange::service_error(status, &body)));
    }
    let token: OAuthToken = serde_json::from_slice(&body)
        .map_err(|_| origin.fail(ctx, step, "the answer has no `access_token`".into()))?;
    Ok(Some(Token {
        secret: token.access_token,
        refresh_at: refresh_at(Duration::from_secs(token.expires_in.unwrap_or(3600))),
    }))
}
