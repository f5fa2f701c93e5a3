//! AWS credentials for ECR and ECR Public, found as the AWS SDKs find them:
//! the Action's `aws-role-arn` input with the job's OIDC token, else
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else
//! web identity (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`); both role
//! flows go through STS `AssumeRoleWithWebIdentity`. The registry password
//! comes from a SigV4-signed `GetAuthorizationToken` (signed by `aws-sigv4`,
//! which leaves `User-Agent` out of the signed headers as botocore does) and
//! is sent as Basic `AWS:<password>`. Endpoints follow the SDKs'
//! `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL`.
//!
//! References: STS AssumeRoleWithWebIdentity
//! <https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html>,
//! ECR GetAuthorizationToken
//! <https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html>,
//! ECR Public GetAuthorizationToken
//! <https://docs.aws.amazon.com/AmazonECRPublic/latest/APIReference/API_GetAuthorizationToken.html>,
//! service endpoints
//! <https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html>.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;

use super::exchange::{self, Context, Failure, Token, refresh_at, refresh_at_time, shown};
use super::{Credential, Found, Secret};
use crate::registry::error::Result;

const HINT: &str = "Configure aws-actions/configure-aws-credentials (it sets the AWS_* \
    variables), or give the Action `aws-role-arn` with `permissions: id-token: write`; \
    see docs/credentials.md";

/// `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` and `public.ecr.aws`.
pub(super) fn is_aws_host(name: &str) -> bool {
    name == "public.ecr.aws" || private_parts(name).is_some()
}

/// `(account, region)` of a private ECR host name.
fn private_parts(name: &str) -> Option<(&str, &str)> {
    let rest = name
        .strip_suffix(".amazonaws.com")
        .or_else(|| name.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = rest.split_once(".dkr.")?;
    let region = rest
        .strip_prefix("ecr.")
        .or_else(|| rest.strip_prefix("ecr-fips."))?;
    let valid = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (valid && !region.is_empty() && !region.contains('.')).then_some((account, region))
}

/// Signing keys, from the environment or from STS.
#[derive(Clone)]
struct Keys {
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
}

/// Which ECR API a host needs.
struct Api {
    /// `ecr` or `ecr-public`, the signing name.
    service: &'static str,
    region: String,
    endpoint: String,
    target: &'static str,
    /// The registry id to ask for (private ECR hosts).
    registry_id: Option<String>,
}

/// The credential for an ECR host (or one the docker config maps to
/// `ecr-login`), or `None` when the environment has no AWS credentials.
pub(super) async fn credential(ctx: &Context<'_>) -> Result<Option<Found>> {
    let api = api_for(ctx);
    let key = format!(
        "aws {} {}",
        api.endpoint,
        api.registry_id.as_deref().unwrap_or("")
    );
    let token = ctx
        .cached(&key, async || {
            let Some((keys, source)) = keys(ctx).await? else {
                return Ok(None);
            };
            authorization_token(ctx, &api, &keys, &source)
                .await
                .map(Some)
        })
        .await?;
    Ok(token.map(|token| Found {
        credential: Credential::Basic {
            username: "AWS".into(),
            password: token.secret,
        },
        refresh_at: Some(token.refresh_at),
    }))
}

fn api_for(ctx: &Context<'_>) -> Api {
    let name = ctx.host.split(':').next().unwrap_or(ctx.host);
    let endpoint = |var: &str, default: String| {
        ctx.env
            .get(var)
            .or_else(|| ctx.env.get("AWS_ENDPOINT_URL"))
            .map(str::to_owned)
            .unwrap_or(default)
    };
    if name == "public.ecr.aws" {
        // ECR Public's API lives in us-east-1 only.
        return Api {
            service: "ecr-public",
            region: "us-east-1".into(),
            endpoint: endpoint(
                "AWS_ENDPOINT_URL_ECR_PUBLIC",
                "https://api.ecr-public.us-east-1.amazonaws.com".into(),
            ),
            target: "SpencerFrontendService.GetAuthorizationToken",
            registry_id: None,
        };
    }
    // A host mapped through `ecr-login` keeps its own name; its region and
    // account come from the environment then.
    let (account, region) = match private_parts(name) {
        Some((account, region)) => (Some(account.to_owned()), region.to_owned()),
        None => (None, region(ctx)),
    };
    let suffix = if region.starts_with("cn-") { ".cn" } else { "" };
    Api {
        service: "ecr",
        endpoint: endpoint(
            "AWS_ENDPOINT_URL_ECR",
            format!("https://api.ecr.{region}.amazonaws.com{suffix}"),
        ),
        region,
        target: "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
        registry_id: account,
    }
}

fn region(ctx: &Context<'_>) -> String {
    ctx.env
        .get("AWS_REGION")
        .or_else(|| ctx.env.get("AWS_DEFAULT_REGION"))
        .unwrap_or("us-east-1")
        .to_owned()
}

/// The signing keys and the name of their source, or `None`.
async fn keys(ctx: &Context<'_>) -> Result<Option<(Keys, String)>> {
    if let Some(role) = ctx.env.get("INPUT_AWS-ROLE-ARN") {
        let source = "the Action's aws-role-arn with the job's OIDC token".to_owned();
        let hint = "Give the job `permissions: id-token: write`, and let the role trust \
                    token.actions.githubusercontent.com; see docs/credentials.md";
        let token = super::github::id_token(ctx, "sts.amazonaws.com", &source, hint)
            .await?
            .ok_or_else(|| {
                ctx.fail(Failure {
                    source: &source,
                    step: "fetching the job's OIDC token".into(),
                    said: "ACTIONS_ID_TOKEN_REQUEST_URL is not set".into(),
                    hint,
                })
            })?;
        return assume_role(ctx, role, &token, &source)
            .await
            .map(|k| Some((k, source)));
    }
    if let (Some(id), Some(secret)) = (
        ctx.env.get("AWS_ACCESS_KEY_ID"),
        ctx.env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        let keys = Keys {
            access_key_id: id.to_owned(),
            secret_access_key: Secret::new(secret),
            session_token: ctx.env.get("AWS_SESSION_TOKEN").map(Secret::new),
        };
        return Ok(Some((keys, "AWS_ACCESS_KEY_ID".to_owned())));
    }
    let (Some(role), Some(file)) = (
        ctx.env.get("AWS_ROLE_ARN"),
        ctx.env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
    ) else {
        return Ok(None);
    };
    let source = "AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE".to_owned();
    let token = tokio::fs::read_to_string(file).await.map_err(|e| {
        ctx.fail(Failure {
            source: &source,
            step: format!("reading {file}"),
            said: e.to_string(),
            hint: HINT,
        })
    })?;
    let token = Secret::new(token.trim());
    assume_role(ctx, role, &token, &source)
        .await
        .map(|k| Some((k, source)))
}

/// STS `AssumeRoleWithWebIdentity` (unsigned: the web identity token is
/// the credential), form-encoded; the answer is XML.
async fn assume_role(ctx: &Context<'_>, role: &str, token: &Secret, source: &str) -> Result<Keys> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        assume_role_with_web_identity_result: WebIdentityResult,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct WebIdentityResult {
        credentials: StsCredentials,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct StsCredentials {
        access_key_id: String,
        secret_access_key: String,
        session_token: String,
    }
    let endpoint = ctx
        .env
        .get("AWS_ENDPOINT_URL_STS")
        .or_else(|| ctx.env.get("AWS_ENDPOINT_URL"))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", region(ctx)));
    let session = ctx
        .env
        .get("AWS_ROLE_SESSION_NAME")
        .map(str::to_owned)
        .or_else(|| {
            ctx.env
                .get("GITHUB_RUN_ID")
                .map(|id| format!("promoter-{id}"))
        })
        .unwrap_or_else(|| "promoter".into());
    let step = format!("STS AssumeRoleWithWebIdentity at {}", shown(&endpoint));
    let fail = ctx.failing(source, step, HINT);
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role),
        ("RoleSessionName", &session),
        ("WebIdentityToken", token.expose()),
    ];
    let body = exchange::success(|| exchange::form(ctx.http().post(&endpoint), &form))
        .await
        .map_err(&fail)?;
    let text = String::from_utf8_lossy(&body);
    let parsed: Response = quick_xml::de::from_str(&text)
        .map_err(|_| fail("the answer holds no credentials".into()))?;
    let c = parsed.assume_role_with_web_identity_result.credentials;
    Ok(Keys {
        access_key_id: c.access_key_id,
        secret_access_key: Secret::new(c.secret_access_key),
        session_token: Some(Secret::new(c.session_token)),
    })
}

/// `GetAuthorizationToken`, SigV4-signed, and the password in its answer.
async fn authorization_token(
    ctx: &Context<'_>,
    api: &Api,
    keys: &Keys,
    source: &str,
) -> Result<Token> {
    let body = match &api.registry_id {
        Some(id) => serde_json::json!({ "registryIds": [id] }).to_string(),
        None => "{}".to_owned(),
    };
    let step = format!(
        "{} GetAuthorizationToken at {}",
        api.service.to_uppercase(),
        shown(&api.endpoint)
    );
    let fail = ctx.failing(source, step, HINT);
    let answer = exchange::success(|| signed_request(ctx, api, keys, &body))
        .await
        .map_err(&fail)?;
    let data = parse_authorization(&answer)
        .ok_or_else(|| fail("the answer has no authorizationToken".into()))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token.expose())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(|| fail("authorizationToken is not base64 of `AWS:<password>`".into()))?;
    let password = decoded
        .strip_prefix("AWS:")
        .ok_or_else(|| fail("authorizationToken is not base64 of `AWS:<password>`".into()))?;
    let refresh_at = match data.expires_at {
        Some(epoch) => refresh_at_time(UNIX_EPOCH + Duration::from_secs_f64(epoch.max(0.0))),
        // ECR tokens last 12 hours.
        None => refresh_at(Duration::from_secs(12 * 3600)),
    };
    Ok(Token {
        secret: Secret::new(password),
        refresh_at,
    })
}

/// The POST, its headers and its SigV4 signature. A request that cannot be
/// signed is sent unsigned and refused by the service, which says why.
fn signed_request(
    ctx: &Context<'_>,
    api: &Api,
    keys: &Keys,
    body: &str,
) -> reqwest::RequestBuilder {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", api.target),
    ];
    let mut request = ctx.http().post(&api.endpoint).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let credentials = aws_credential_types::Credentials::new(
        &keys.access_key_id,
        keys.secret_access_key.expose(),
        keys.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "promoter",
    );
    let identity = aws_smithy_runtime_api::client::identity::Identity::from(credentials);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&api.region)
        .name(api.service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build();
    let Ok(params) = params else { return request };
    let Ok(signable) = SignableRequest::new(
        "POST",
        &api.endpoint,
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    ) else {
        return request;
    };
    let Ok(signed) = sign(signable, &params.into()) else {
        return request;
    };
    let (instructions, _) = signed.into_parts();
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    request
}

struct AuthorizationData {
    authorization_token: Secret,
    expires_at: Option<f64>,
}

/// ECR answers a list of `authorizationData`, ECR Public one object.
fn parse_authorization(body: &[u8]) -> Option<AuthorizationData> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = v.get("authorizationData")?;
    let data = if data.is_array() { data.get(0)? } else { data };
    Some(AuthorizationData {
        authorization_token: Secret::new(data.get("authorizationToken")?.as_str()?),
        expires_at: data.get("expiresAt").and_then(|e| e.as_f64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_host_names() {
        assert_eq!(
            private_parts("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012", "eu-west-1"))
        );
        assert_eq!(
            private_parts("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some(("123456789012", "cn-north-1"))
        );
        assert!(is_aws_host("public.ecr.aws"));
        assert!(!is_aws_host("12345.dkr.ecr.eu-west-1.amazonaws.com"));
        assert!(!is_aws_host("example.com"));
    }

    fn api(host: &str, env: &[(&str, &str)]) -> Api {
        let env = super::super::Env::from_pairs(env.iter().copied());
        let clouds = exchange::Clouds::default();
        let ctx = Context {
            host,
            env: &env,
            clouds: &clouds,
            refresh: false,
        };
        api_for(&ctx)
    }

    #[test]
    fn endpoints_follow_the_sdk_variables() {
        let a = api("123456789012.dkr.ecr.eu-west-1.amazonaws.com", &[]);
        assert_eq!(a.endpoint, "https://api.ecr.eu-west-1.amazonaws.com");
        assert_eq!((a.service, a.region.as_str()), ("ecr", "eu-west-1"));
        assert_eq!(a.registry_id.as_deref(), Some("123456789012"));
        let cn = api("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", &[]);
        assert_eq!(cn.endpoint, "https://api.ecr.cn-north-1.amazonaws.com.cn");
        let general = [("AWS_ENDPOINT_URL", "http://general")];
        assert_eq!(api("public.ecr.aws", &general).endpoint, "http://general");
        let both = [
            ("AWS_ENDPOINT_URL", "http://general"),
            ("AWS_ENDPOINT_URL_ECR", "http://ecr"),
        ];
        assert_eq!(
            api("123456789012.dkr.ecr.eu-west-1.amazonaws.com", &both).endpoint,
            "http://ecr"
        );
        let public = api("public.ecr.aws", &[("AWS_REGION", "eu-west-1")]);
        assert_eq!(
            (public.service, public.region.as_str()),
            ("ecr-public", "us-east-1")
        );
        assert_eq!(
            public.endpoint,
            "https://api.ecr-public.us-east-1.amazonaws.com"
        );
        // A host mapped through ecr-login: the environment's region, no
        // registry id (the credentials' own account).
        let mapped = api(
            "registry.example:5000",
            &[("AWS_DEFAULT_REGION", "ap-south-1")],
        );
        assert_eq!(
            (mapped.region.as_str(), mapped.registry_id),
            ("ap-south-1", None)
        );
    }

    #[test]
    fn authorization_data_of_both_apis() {
        let ecr = br#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":1.7E9}]}"#;
        let data = parse_authorization(ecr).unwrap();
        assert_eq!(data.authorization_token.expose(), "QVdTOnB3");
        assert_eq!(data.expires_at, Some(1.7e9));
        let public = br#"{"authorizationData":{"authorizationToken":"QVdTOnB3"}}"#;
        assert!(parse_authorization(public).unwrap().expires_at.is_none());
    }
}
