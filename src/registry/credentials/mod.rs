//! Where registry credentials come from, in this order (docs/credentials.md
//! documents it for users):
//!
//! 1. the environment variable `PROMOTER_AUTH_<HOST>` = `<user>:<password>`,
//!    where `<HOST>` is the registry host (and port) upper-cased with every
//!    character other than a letter or digit replaced by `_`;
//! 2. the docker config file (`$REGISTRY_AUTH_FILE`, else
//!    `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    `credHelpers[host]`, then `credsStore`, then `auths[host]`, each helper
//!    run as `docker-credential-<name> get`; the helpers `gcloud`,
//!    `ecr-login` and `acr-env` have built-in stand-ins used when their
//!    program is not installed (`docker_config`);
//! 3. the cloud the host belongs to, from the keyless material of the
//!    environment: Google Application Default Credentials for `gcr.io`,
//!    `*.gcr.io` and `*.pkg.dev` (`google`), AWS credentials for ECR and
//!    ECR Public (`aws`), Microsoft Entra ID and ACR's token exchange for
//!    `*.azurecr.io` (`azure`), the Action's `github-token` for `ghcr.io`
//!    (`github`);
//! 4. anonymous.
//!
//! Cloud tokens expire: a lookup answers a [`Found`] with the instant its
//! credential stops being good, and the clouds' token caches are shared by
//! every clone of the store, so a run makes one exchange per credential
//! source and refreshes it before it expires (`exchange`).
//!
//! Secrets live in [`Secret`], whose `Debug` prints `<redacted>`; no error of
//! this module contains one.

mod aws;
mod azure;
mod docker_config;
mod exchange;
mod github;
mod google;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

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

/// What a lookup found: the credential, and until when it is good (`None`:
/// it does not expire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The credential.
    pub credential: Credential,
    /// Past this instant, look it up again (a cloud token about to expire).
    pub refresh_at: Option<Instant>,
}

impl Found {
    fn lasting(credential: Credential) -> Found {
        Found {
            credential,
            refresh_at: None,
        }
    }
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

/// The process environment as the store saw it when built. `Debug` prints
/// the names only.
#[derive(Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The UTF-8 variables of this process (`vars_os`: `vars` panics on a
    /// variable that is not UTF-8).
    pub fn from_process() -> Env {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect())
    }

    /// The given variables only (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// A variable, `None` when unset or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Looks up credentials per registry host. Build it once with
/// [`CredentialStore::from_env`]; tests build it explicitly. Clones share the
/// clouds' token caches.
#[derive(Clone, Debug, Default)]
pub struct CredentialStore {
    config_path: Option<PathBuf>,
    env: Arc<Env>,
    helper_path: Option<OsString>,
    clouds: Arc<exchange::Clouds>,
}

impl CredentialStore {
    /// The store the binary uses: the `PROMOTER_AUTH_*` variables, the
    /// docker config file and the cloud credentials of this process's
    /// environment.
    pub fn from_env() -> CredentialStore {
        CredentialStore::with_env(Env::from_process())
    }

    /// A store seeing `env` as its environment: the docker config it names
    /// and its cloud credentials.
    pub fn with_env(env: Env) -> CredentialStore {
        let config_path = env
            .get("REGISTRY_AUTH_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                env.get("DOCKER_CONFIG")
                    .map(|d| PathBuf::from(d).join("config.json"))
            })
            .or_else(|| {
                env.get("HOME")
                    .map(|h| PathBuf::from(h).join(".docker/config.json"))
            });
        CredentialStore {
            config_path,
            env: Arc::new(env),
            helper_path: None,
            clouds: Arc::default(),
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
        let mut env = (*self.env).clone();
        env.0
            .insert(env_var_name(host), format!("{username}:{password}"));
        self.env = Arc::new(env);
        self
    }

    /// Search credential helpers in this `PATH` instead of the process's.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Credentials for `host` (`host[:port]`), or `None` for anonymous access.
    pub async fn lookup(&self, host: &str) -> Result<Option<Credential>> {
        Ok(self.find(host, false).await?.map(|f| f.credential))
    }

    /// Credentials for `host` with the instant to look again. `refresh`:
    /// the registry refused the last one; exchange cloud tokens anew.
    pub async fn find(&self, host: &str, refresh: bool) -> Result<Option<Found>> {
        let var = env_var_name(host);
        if let Some(value) = self.env.get(&var) {
            let (user, pass) = value.split_once(':').ok_or_else(|| Error::Credentials {
                registry: host.to_owned(),
                reason: format!("{var} must be `<user>:<password>`"),
            })?;
            return Ok(Some(Found::lasting(basic(user, pass))));
        }
        if let Some(path) = &self.config_path {
            let from_config = docker_config::lookup(self, path, host, refresh).await?;
            if let docker_config::Answer::Found(found) = from_config {
                return Ok(found);
            }
        }
        self.cloud(host, None, refresh).await
    }

    /// The cloud credential for `host`: the one `helper` (a docker config
    /// credential helper name) stands for, else the one its name implies.
    async fn cloud(
        &self,
        host: &str,
        helper: Option<&str>,
        refresh: bool,
    ) -> Result<Option<Found>> {
        let ctx = exchange::Context {
            host,
            env: &self.env,
            clouds: &self.clouds,
            refresh,
        };
        let cloud = match helper {
            Some(helper) => Cloud::of_helper(helper),
            None => Cloud::of_host(host, &self.env),
        };
        match cloud {
            Some(Cloud::Google) => google::credential(&ctx, helper.is_some()).await,
            Some(Cloud::Aws) => aws::credential(&ctx).await,
            Some(Cloud::GitHub) => Ok(github::credential(&ctx)),
            Some(Cloud::Azure) => match azure::credential(&ctx).await? {
                None if helper.is_some() => Err(Error::Credentials {
                    registry: host.to_owned(),
                    reason: "the docker config names the credential helper `acr-env`, which \
                             is not installed, and its built-in stand-in found no Azure \
                             application: set AZURE_CLIENT_ID and AZURE_TENANT_ID, with \
                             AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE or (in the \
                             Action) `permissions: id-token: write`; see docs/credentials.md"
                        .into(),
                }),
                found => Ok(found),
            },
            None => Ok(None),
        }
    }
}

/// The clouds whose credentials promoter obtains itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cloud {
    Google,
    Aws,
    GitHub,
    Azure,
}

impl Cloud {
    /// The cloud a docker config credential helper stands for.
    fn of_helper(helper: &str) -> Option<Cloud> {
        match helper {
            "gcloud" | "gcr" => Some(Cloud::Google),
            "ecr-login" => Some(Cloud::Aws),
            "acr-env" => Some(Cloud::Azure),
            _ => None,
        }
    }

    /// The cloud a registry host belongs to by its name.
    fn of_host(host: &str, env: &Env) -> Option<Cloud> {
        let name = host.split(':').next().unwrap_or(host);
        if google::is_google_host(name) {
            Some(Cloud::Google)
        } else if aws::is_aws_host(name) {
            Some(Cloud::Aws)
        } else if azure::is_azure_host(name) {
            Some(Cloud::Azure)
        } else if github::is_github_host(host, env) {
            Some(Cloud::GitHub)
        } else {
            None
        }
    }
}

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.to_owned(),
        password: Secret(password.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

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
    async fn a_missing_known_helper_is_answered_by_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers":{"acr.example":"acr-env","ghcr.io":"nope"}}"#,
        )
        .unwrap();
        let env = Env::from_pairs([("DOCKER_CONFIG", dir.path().to_str().unwrap())]);
        let store =
            CredentialStore::with_env(env).with_helper_path(dir.path().as_os_str().to_owned());
        let err = store.lookup("acr.example").await.unwrap_err().to_string();
        assert!(
            err.contains("acr-env") && err.contains("found no Azure application"),
            "{err}"
        );
        // An unknown helper that is missing stays an error of its own.
        let err = store.lookup("ghcr.io").await.unwrap_err().to_string();
        assert!(err.contains("cannot run docker-credential-nope"), "{err}");
    }

    #[test]
    fn hosts_belong_to_their_clouds() {
        let none = Env::default();
        let action = Env::from_pairs([("INPUT_GITHUB-TOKEN", "t")]);
        assert_eq!(
            Cloud::of_host("us-docker.pkg.dev", &none),
            Some(Cloud::Google)
        );
        assert_eq!(Cloud::of_host("eu.gcr.io", &none), Some(Cloud::Google));
        assert_eq!(Cloud::of_host("gcr.io:443", &none), Some(Cloud::Google));
        assert_eq!(Cloud::of_host("notgcr.io", &none), None);
        assert_eq!(Cloud::of_host("public.ecr.aws", &none), Some(Cloud::Aws));
        assert_eq!(Cloud::of_host("reg.azurecr.io", &none), Some(Cloud::Azure));
        assert_eq!(Cloud::of_host("ghcr.io", &none), None);
        assert_eq!(Cloud::of_host("ghcr.io", &action), Some(Cloud::GitHub));
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
