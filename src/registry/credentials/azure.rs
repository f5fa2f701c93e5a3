//! Azure Container Registry, the way `az acr login --expose-token` does it:
//! a Microsoft Entra ID access token for the registry's resource, exchanged
//! at the registry's `/oauth2/exchange` for an ACR refresh token, which is
//! then the password of the user `00000000-0000-0000-0000-000000000000`
//! (the registry's token realm takes it as Basic, as docker does after
//! `az acr login`).
//!
//! The Entra token comes from the client credentials grant of the
//! application `AZURE_CLIENT_ID` in tenant `AZURE_TENANT_ID` (the variables
//! azure-identity's `EnvironmentCredential` and `WorkloadIdentityCredential`
//! read), proven by, in this order:
//! 1. `AZURE_CLIENT_SECRET`;
//! 2. the token in `AZURE_FEDERATED_TOKEN_FILE` (AKS workload identity);
//! 3. inside the Action, the job's OIDC token for the audience
//!    `api://AzureADTokenExchange` (what `azure/login` asks for), with
//!    `permissions: id-token: write` and a federated credential on the
//!    application.
//!
//! `AZURE_AUTHORITY_HOST` replaces `https://login.microsoftonline.com`, as
//! in the Azure SDKs.
//!
//! References: the Entra client credentials grant
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>
//! (with a federated assertion: `client_assertion_type`
//! `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`); ACR's
//! exchange, `POST /oauth2/exchange` with `grant_type=access_token`,
//! `service`, `tenant` and `access_token`
//! <https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md>; the user name
//! and refresh-token lifetime (3 hours) in "az acr login --expose-token"
//! <https://learn.microsoft.com/azure/container-registry/container-registry-authentication>.

use std::time::Duration;

use serde::Deserialize;

use super::exchange::{self, Context, Failure, Token, refresh_at, shown};
use super::{Credential, Found, Secret};
use crate::registry::error::Result;

const HINT: &str = "Set AZURE_CLIENT_ID and AZURE_TENANT_ID, and AZURE_CLIENT_SECRET, \
    AZURE_FEDERATED_TOKEN_FILE, or (in the Action) `permissions: id-token: write` with a \
    federated credential for the workflow; give the application the AcrPush role on the \
    registry; see docs/credentials.md";

/// The user name of an ACR refresh token.
const ACR_USER: &str = "00000000-0000-0000-0000-000000000000";
/// The resource of ACR's Entra tokens (ACR accepts its own audience even
/// where `authentication-as-arm` is turned off).
const SCOPE: &str = "https://containerregistry.azure.net/.default";
/// The audience `azure/login` asks GitHub's OIDC endpoint for.
const GITHUB_AUDIENCE: &str = "api://AzureADTokenExchange";
/// ACR refresh tokens are good for 3 hours.
const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(3 * 3600);

/// `*.azurecr.io` (public cloud), `*.azurecr.cn` (China), `*.azurecr.us`
/// (US Government).
pub(super) fn is_azure_host(name: &str) -> bool {
    [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
        .iter()
        .any(|suffix| name.strip_suffix(suffix).is_some_and(|n| !n.is_empty()))
}

/// The application and how it proves itself.
struct App<'a> {
    client_id: &'a str,
    tenant: &'a str,
    proof: Proof<'a>,
    /// The credential source, for errors.
    source: &'static str,
}

enum Proof<'a> {
    Secret(&'a str),
    TokenFile(&'a str),
    GitHubOidc,
}

/// The credential for an ACR host (or one the docker config maps to
/// `acr-env`), or `None` when the environment names no Azure application.
pub(super) async fn credential(ctx: &Context<'_>) -> Result<Option<Found>> {
    let Some(app) = app(ctx) else {
        return Ok(None);
    };
    let key = format!("azure {} {} {}", app.tenant, app.client_id, ctx.host);
    let token = ctx
        .cached(&key, async || {
            let entra = entra_token(ctx, &app).await?;
            refresh_token(ctx, &app, &entra).await.map(Some)
        })
        .await?;
    Ok(token.map(|token| Found {
        credential: Credential::Basic {
            username: ACR_USER.into(),
            password: token.secret,
        },
        refresh_at: Some(token.refresh_at),
    }))
}

fn app<'a>(ctx: &Context<'a>) -> Option<App<'a>> {
    let env = ctx.env;
    let (client_id, tenant) = (env.get("AZURE_CLIENT_ID")?, env.get("AZURE_TENANT_ID")?);
    let (proof, source) = if let Some(secret) = env.get("AZURE_CLIENT_SECRET") {
        (Proof::Secret(secret), "AZURE_CLIENT_SECRET")
    } else if let Some(file) = env.get("AZURE_FEDERATED_TOKEN_FILE") {
        (Proof::TokenFile(file), "AZURE_FEDERATED_TOKEN_FILE")
    } else if env.get("ACTIONS_ID_TOKEN_REQUEST_URL").is_some() {
        (
            Proof::GitHubOidc,
            "AZURE_CLIENT_ID with the job's OIDC token",
        )
    } else {
        return None;
    };
    Some(App {
        client_id,
        tenant,
        proof,
        source,
    })
}

/// The Entra ID access token for ACR, by the client credentials grant.
async fn entra_token(ctx: &Context<'_>, app: &App<'_>) -> Result<Secret> {
    let fail = |step: String, said: String| {
        ctx.fail(Failure {
            source: app.source,
            step,
            said,
            hint: HINT,
        })
    };
    let assertion = match &app.proof {
        Proof::Secret(_) => None,
        Proof::TokenFile(file) => {
            let text = tokio::fs::read_to_string(file)
                .await
                .map_err(|e| fail(format!("reading {file}"), e.to_string()))?;
            Some(Secret::new(text.trim()))
        }
        Proof::GitHubOidc => {
            super::github::id_token(ctx, GITHUB_AUDIENCE, app.source, HINT).await?
        }
    };
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id),
        ("scope", SCOPE),
    ];
    match (&app.proof, &assertion) {
        (Proof::Secret(secret), _) => form.push(("client_secret", secret)),
        (_, Some(assertion)) => {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            form.push(("client_assertion", assertion.expose()));
        }
        (_, None) => {
            return Err(fail(
                "fetching the job's OIDC token".into(),
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set".into(),
            ));
        }
    }
    let authority = ctx
        .env
        .get("AZURE_AUTHORITY_HOST")
        .unwrap_or("https://login.microsoftonline.com")
        .trim_end_matches('/');
    let url = format!("{authority}/{}/oauth2/v2.0/token", app.tenant);
    let step = format!("the Entra ID token request at {}", shown(&url));
    let body = post(ctx, &url, &form)
        .await
        .map_err(|said| fail(step.clone(), said))?;
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
    }
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|_| fail(step, "the answer has no `access_token`".into()))?;
    Ok(Secret::new(answer.access_token))
}

/// ACR's exchange of the Entra token for a refresh token, at the registry.
async fn refresh_token(ctx: &Context<'_>, app: &App<'_>, entra: &Secret) -> Result<Token> {
    let name = ctx.host.split(':').next().unwrap_or(ctx.host);
    let loopback = name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme = if loopback { "http" } else { "https" };
    let url = format!("{scheme}://{}/oauth2/exchange", ctx.host);
    let step = format!("the ACR token exchange at {url}");
    let form = [
        ("grant_type", "access_token"),
        ("service", ctx.host),
        ("tenant", app.tenant),
        ("access_token", entra.expose()),
    ];
    let fail = |said: String| {
        ctx.fail(Failure {
            source: app.source,
            step: step.clone(),
            said,
            hint: HINT,
        })
    };
    let body = post(ctx, &url, &form).await.map_err(fail)?;
    #[derive(Deserialize)]
    struct Answer {
        refresh_token: String,
    }
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|_| fail("the answer has no `refresh_token`".into()))?;
    Ok(Token {
        secret: Secret::new(answer.refresh_token),
        refresh_at: refresh_at(REFRESH_TOKEN_LIFETIME),
    })
}

/// POST `form` to `url`; the body of a 2xx answer, else the service's own
/// error.
async fn post(
    ctx: &Context<'_>,
    url: &str,
    form: &[(&str, &str)],
) -> std::result::Result<bytes::Bytes, String> {
    let (status, body) = exchange::send(|| exchange::form(ctx.http().post(url), form)).await?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(exchange::service_error(status, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_hosts() {
        assert!(is_azure_host("myregistry.azurecr.io"));
        assert!(is_azure_host("reg.azurecr.cn"));
        assert!(is_azure_host("reg.azurecr.us"));
        assert!(!is_azure_host("azurecr.io"));
        assert!(!is_azure_host(".azurecr.io"));
        assert!(!is_azure_host("reg.azurecr.io.example"));
    }
}
