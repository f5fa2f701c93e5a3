//! The docker config file (`config.json`): its `credHelpers`, `credsStore`
//! and `auths`, and the credential helpers it names, run as
//! `docker-credential-<name> get`. A helper promoter knows (`gcloud`,
//! `ecr-login`, `acr-env`) whose program is not installed is answered by the
//! built-in exchange of its cloud instead: the Action's Alpine image has
//! none of those programs.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{Cloud, CredentialStore, Found, Secret, basic};
use crate::registry::credentials::Credential;
use crate::registry::error::{Error, Result};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// How long a credential helper may take before we give up on it.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the docker config says about a host.
pub(super) enum Answer {
    /// It decided: these credentials, or anonymous.
    Found(Option<Found>),
    /// It says nothing about the host.
    NotHere,
}

/// Look `host` up in the docker config at `path`.
pub(super) async fn lookup(
    store: &CredentialStore,
    path: &Path,
    host: &str,
    refresh: bool,
) -> Result<Answer> {
    let Some(config) = read_config(path, host).await? else {
        return Ok(Answer::NotHere);
    };
    let keys = config_keys(host);
    if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
        return Ok(Answer::Found(
            run_helper(store, helper, host, refresh).await?,
        ));
    }
    if let Some(helper) = &config.creds_store
        && let Some(found) = run_helper(store, helper, host, refresh).await?
    {
        return Ok(Answer::Found(Some(found)));
    }
    let entry = config
        .auths
        .iter()
        .find(|(k, _)| keys.contains(&normalize_key(k)))
        .map(|(_, v)| v);
    match entry {
        Some(entry) => Ok(Answer::Found(
            entry_credential(entry, host)?.map(Found::lasting),
        )),
        None => Ok(Answer::NotHere),
    }
}

/// `docker-credential-<helper> get` for `host`, or the built-in exchange of
/// a known helper whose program is missing.
async fn run_helper(
    store: &CredentialStore,
    helper: &str,
    host: &str,
    refresh: bool,
) -> Result<Option<Found>> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| Error::Credentials {
        registry: host.to_owned(),
        reason,
    };
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = &store.helper_path {
        cmd.env("PATH", path);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && Cloud::of_helper(helper).is_some() =>
        {
            return store.cloud(host, Some(helper), refresh).await;
        }
        Err(e) => return Err(fail(format!("cannot run {program}: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its
        // exit status below, not by this write.
        let _ = stdin.write_all(host.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "{program} did not answer within {HELPER_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| fail(format!("{program}: {e}")))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout);
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("{program} get failed with {}", output.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|_| {
        fail(format!(
            "{program} get printed something other than credentials JSON"
        ))
    })?;
    let credential = if answer.username == "<token>" {
        Credential::IdentityToken(Secret(answer.secret))
    } else {
        basic(&answer.username, &answer.secret)
    };
    Ok(Some(Found::lasting(credential)))
}

async fn read_config(path: &Path, host: &str) -> Result<Option<DockerConfig>> {
    let text = match tokio::fs::read(path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    // serde_json's message names a line and column, never the content.
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| Error::Credentials {
            registry: host.to_owned(),
            reason: format!("{} is not a valid docker config: {e}", path.display()),
        })
}

/// The keys a docker config may use for `host`. Docker Hub is stored under
/// its historical index URL.
fn config_keys(host: &str) -> Vec<String> {
    let mut keys = vec![host.to_owned()];
    if matches!(
        host,
        "docker.io" | "registry-1.docker.io" | "index.docker.io"
    ) {
        keys.extend(["index.docker.io".to_owned(), "docker.io".to_owned()]);
    }
    keys
}

/// `https://host/v1/` -> `host`: config keys may be URLs.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_owned()
}

fn entry_credential(entry: &AuthEntry, host: &str) -> Result<Option<Credential>> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(Secret(token.to_owned()))));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || Error::Credentials {
            registry: host.to_owned(),
            reason: "the `auth` entry of the docker config is not base64 of `user:password`".into(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(basic(user, pass)));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(pass)) => Ok(Some(basic(user, pass))),
        _ => Ok(None),
    }
}
