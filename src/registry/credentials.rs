//! Where registry credentials come from, in this order (the README's
//! "Registries" section documents it for users):
//!
//! 1. the environment variable `PROMOTER_AUTH_<HOST>` = `<user>:<password>`,
//!    where `<HOST>` is the registry host (and port) upper-cased with every
//!    character other than a letter or digit replaced by `_`;
//! 2. the docker config file (`$REGISTRY_AUTH_FILE`, else
//!    `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    `credHelpers[host]`, then `credsStore`, then `auths[host]`, each helper
//!    run as `docker-credential-<name> get`;
//! 3. anonymous.
//!
//! Secrets live in [`Secret`], whose `Debug` prints `<redacted>`; no error of
//! this module contains one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::error::{Error, Result};

/// A credential string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or personal access token).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken` in docker's config), exchanged
    /// at the token realm for access tokens.
    IdentityToken(Secret),
}

/// The name of the environment variable holding credentials for `host`:
/// `PROMOTER_AUTH_` + the host upper-cased, non-alphanumerics as `_`.
pub fn env_var_name(host: &str) -> String {
    let suffix: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("PROMOTER_AUTH_{suffix}")
}

/// Looks up credentials per registry host. Build it once with
/// [`CredentialStore::from_env`]; tests build it explicitly.
#[derive(Clone, Debug, Default)]
pub struct CredentialStore {
    config_path: Option<PathBuf>,
    env: BTreeMap<String, Secret>,
    helper_path: Option<OsString>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
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

impl CredentialStore {
    /// The store the binary uses: the `PROMOTER_AUTH_*` variables and the
    /// docker config file of this process's environment.
    pub fn from_env() -> CredentialStore {
        let config_path = std::env::var_os("REGISTRY_AUTH_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("DOCKER_CONFIG").map(|d| PathBuf::from(d).join("config.json"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
            });
        // `vars_os`: `vars` panics on a variable that is not UTF-8.
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("PROMOTER_AUTH_"))
            .map(|(k, v)| (k, Secret(v)))
            .collect();
        CredentialStore {
            config_path,
            env,
            helper_path: None,
        }
    }

    /// A store reading only the given docker config file (if any).
    pub fn with_config_file(path: Option<PathBuf>) -> CredentialStore {
        CredentialStore {
            config_path: path,
            ..CredentialStore::default()
        }
    }

    /// Add credentials as if `PROMOTER_AUTH_<HOST>` were set to
    /// `<username>:<password>`.
    pub fn with_env_credentials(mut self, host: &str, username: &str, password: &str) -> Self {
        self.env
            .insert(env_var_name(host), Secret(format!("{username}:{password}")));
        self
    }

    /// Search credential helpers in this `PATH` instead of the process's.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Credentials for `host` (`host[:port]`), or `None` for anonymous access.
    pub async fn lookup(&self, host: &str) -> Result<Option<Credential>> {
        let var = env_var_name(host);
        if let Some(value) = self.env.get(&var) {
            let (user, pass) =
                value
                    .expose()
                    .split_once(':')
                    .ok_or_else(|| Error::Credentials {
                        registry: host.to_owned(),
                        reason: format!("{var} must be `<user>:<password>`"),
                    })?;
            return Ok(Some(basic(user, pass)));
        }
        let Some(path) = &self.config_path else {
            return Ok(None);
        };
        let config = match read_config(path, host).await? {
            Some(config) => config,
            None => return Ok(None),
        };
        let keys = config_keys(host);
        if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
            return self.run_helper(helper, host).await;
        }
        if let Some(store) = &config.creds_store
            && let Some(found) = self.run_helper(store, host).await?
        {
            return Ok(Some(found));
        }
        let entry = config
            .auths
            .iter()
            .find(|(k, _)| keys.contains(&normalize_key(k)))
            .map(|(_, v)| v);
        match entry {
            Some(entry) => entry_credential(entry, host),
            None => Ok(None),
        }
    }

    async fn run_helper(&self, helper: &str, host: &str) -> Result<Option<Credential>> {
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
        if let Some(path) = &self.helper_path {
            cmd.env("PATH", path);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
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
        if answer.username == "<token>" {
            return Ok(Some(Credential::IdentityToken(Secret(answer.secret))));
        }
        Ok(Some(basic(&answer.username, &answer.secret)))
    }
}

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.to_owned(),
        password: Secret(password.to_owned()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names_are_shell_safe() {
        assert_eq!(
            env_var_name("127.0.0.1:5000"),
            "PROMOTER_AUTH_127_0_0_1_5000"
        );
        assert_eq!(
            env_var_name("us-docker.pkg.dev"),
            "PROMOTER_AUTH_US_DOCKER_PKG_DEV"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let c = basic("me", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn reads_auths_entries_by_host_or_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{auth}"}},"other.example":{{"identitytoken":"tok"}}}}}}"#
            ),
        )
        .unwrap();
        let store = CredentialStore::with_config_file(Some(path));
        assert_eq!(
            store.lookup("reg.example:5000").await.unwrap(),
            Some(basic("alice", "s3cret"))
        );
        assert_eq!(
            store.lookup("other.example").await.unwrap(),
            Some(Credential::IdentityToken(Secret("tok".into())))
        );
        assert_eq!(store.lookup("none.example").await.unwrap(), None);
    }

    #[tokio::test]
    async fn env_wins_over_the_config_file() {
        let store = CredentialStore::with_config_file(None).with_env_credentials("h:1", "u", "p:q");
        assert_eq!(store.lookup("h:1").await.unwrap(), Some(basic("u", "p:q")));
    }

    #[tokio::test]
    async fn runs_credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\nif [ \"$host\" = known.example ]; then\n  echo '{\"ServerURL\":\"known.example\",\"Username\":\"bob\",\"Secret\":\"pw\"}'\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"credHelpers":{"known.example":"fake"},"credsStore":"fake","auths":{"fallback.example":{"username":"x","password":"y"}}}"#,
        )
        .unwrap();
        let store = CredentialStore::with_config_file(Some(config))
            .with_helper_path(dir.path().as_os_str().to_owned());
        assert_eq!(
            store.lookup("known.example").await.unwrap(),
            Some(basic("bob", "pw"))
        );
        // credsStore says "not found": fall back to `auths`.
        assert_eq!(
            store.lookup("fallback.example").await.unwrap(),
            Some(basic("x", "y"))
        );
    }
}
