//! GitHub inside the Action: the `github-token` input for the GitHub
//! container registry (`ghcr.io`, or the `github-registry` input for GitHub
//! Enterprise Server's `containers.<host>`), with `GITHUB_ACTOR` as user; and
//! the job's OIDC token (`ACTIONS_ID_TOKEN_REQUEST_URL` with the bearer
//! `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, `permissions: id-token: write`) for the
//! clouds that federate with it.
//!
//! Both inputs reach the promoter as the runner passes every input to a
//! container action: `INPUT_GITHUB-TOKEN` and `INPUT_GITHUB-REGISTRY`.

use super::exchange::{self, Context, Failure, shown};
use super::{Credential, Env, Found, Secret};
use crate::github_oidc;
use crate::registry::error::Result;
use crate::retry::HttpFailure;

const TOKEN_INPUT: &str = "INPUT_GITHUB-TOKEN";
const REGISTRY_INPUT: &str = "INPUT_GITHUB-REGISTRY";

/// The host the `github-token` is for, in the Action.
pub(super) fn is_github_host(host: &str, env: &Env) -> bool {
    env.get(TOKEN_INPUT).is_some() && host == env.get(REGISTRY_INPUT).unwrap_or("ghcr.io")
}

/// `GITHUB_ACTOR` and the `github-token` input.
pub(super) fn credential(ctx: &Context<'_>) -> Option<Found> {
    let token = ctx.env.get(TOKEN_INPUT)?;
    Some(Found {
        credential: Credential::Basic {
            // GHCR takes any user name with a token; the actor names the run.
            username: ctx
                .env
                .get("GITHUB_ACTOR")
                .unwrap_or("github-actions")
                .to_owned(),
            password: Secret::new(token),
        },
        refresh_at: None,
    })
}

/// The job's OIDC token for `audience`, when the job may have one. `source`
/// and `hint` name the credential source in errors.
pub(super) async fn id_token(
    ctx: &Context<'_>,
    audience: &str,
    source: &str,
    hint: &str,
) -> Result<Option<Secret>> {
    let (Some(url), Some(bearer)) = (
        ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_URL"),
        ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Ok(None);
    };
    let fail = |step: String, said: String| {
        ctx.fail(Failure {
            source,
            step,
            said,
            hint,
        })
    };
    let url = github_oidc::url(url, audience)
        .map_err(|e| fail("reading ACTIONS_ID_TOKEN_REQUEST_URL".into(), e.to_string()))?;
    let step = format!("fetching the job's OIDC token from {}", shown(url.as_str()));
    let token = github_oidc::fetch(ctx.http(), &url, bearer)
        .await
        .map_err(|failure| fail(step, said(failure)))?;
    Ok(Some(Secret::new(token)))
}

/// What the token endpoint said, as a failed exchange reports it.
fn said(failure: github_oidc::Failure) -> String {
    match failure {
        github_oidc::Failure::Unanswered(HttpFailure::Status { status, body, .. })
        | github_oidc::Failure::Refused { status, body } => {
            exchange::service_error(status, body.as_bytes())
        }
        github_oidc::Failure::Unanswered(HttpFailure::Transport(e)) => exchange::describe(&e),
        github_oidc::Failure::Unanswered(failure @ HttpFailure::TooLarge) => failure.to_string(),
        github_oidc::Failure::NoToken(_) => "the answer has no `value`".into(),
    }
}
