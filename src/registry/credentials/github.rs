//! GitHub inside the Action: the `github-token` input for the GitHub
//! container registry (`ghcr.io`, or the `github-registry` input for GitHub
//! Enterprise Server's `containers.<host>`), with `GITHUB_ACTOR` as user; and
//! the job's OIDC token (`ACTIONS_ID_TOKEN_REQUEST_URL` with the bearer
//! `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, `permissions: id-token: write`) for the
//! clouds that federate with it.
//!
//! Both inputs reach the promoter as the runner passes every input to a
//! container action: `INPUT_GITHUB-TOKEN` and `INPUT_GITHUB-REGISTRY`.

use serde::Deserialize;

use super::exchange::{self, Context, Failure, shown};
use super::{Credential, Env, Found, Secret};
use crate::registry::error::Result;

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
    #[derive(Deserialize)]
    struct Answer {
        value: String,
    }
    let (Some(url), Some(bearer)) = (
        ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_URL"),
        ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Ok(None);
    };
    let mut url = url::Url::parse(url).map_err(|e| {
        ctx.fail(Failure {
            source,
            step: "reading ACTIONS_ID_TOKEN_REQUEST_URL".into(),
            said: e.to_string(),
            hint,
        })
    })?;
    url.query_pairs_mut().append_pair("audience", audience);
    let step = format!("fetching the job's OIDC token from {}", shown(url.as_str()));
    let fail = |said: String| {
        ctx.fail(Failure {
            source,
            step: step.clone(),
            said,
            hint,
        })
    };
    let (status, body) = exchange::send(|| ctx.http().get(url.clone()).bearer_auth(bearer))
        .await
        .map_err(fail)?;
    if !status.is_success() {
        return Err(fail(exchange::service_error(status, &body)));
    }
    let answer: Answer =
        serde_json::from_slice(&body).map_err(|_| fail("the answer has no `value`".into()))?;
    Ok(Some(Secret::new(answer.value)))
}
