//! Authentication against real `docker-registry` servers: htpasswd (Basic)
//! and token auth (Bearer, ES256 JWTs from the test token server), with
//! credentials from the environment form and from a docker `config.json`,
//! and the errors users see without or with wrong credentials.

mod support;

use base64::Engine as _;
use promoter::registry::credentials::CredentialStore;
use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{Error, Reference, Registry};
use support::conformance::{exercise, repo};
use support::image::TestImage;
use support::server::{Mode, PASSWORD, RegistryServer, USER};
use support::skopeo;

fn client_with(credentials: CredentialStore) -> HttpClient {
    HttpClient::new(HttpOptions {
        credentials,
        ..HttpOptions::default()
    })
    .unwrap()
}

fn env_credentials(server: &RegistryServer, password: &str) -> CredentialStore {
    CredentialStore::with_config_file(None).with_env_credentials(&server.host, USER, password)
}

#[tokio::test]
async fn htpasswd_every_operation_with_env_credentials() {
    let server = RegistryServer::start(Mode::Htpasswd);
    let reg = client_with(env_credentials(&server, PASSWORD))
        .registry(&server.host)
        .unwrap();
    exercise(&reg, &|r| skopeo::inspect_raw(&server, r)).await;
}

#[tokio::test]
async fn htpasswd_credentials_from_a_docker_config_file() {
    let server = RegistryServer::start(Mode::Htpasswd);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, server.host),
    )
    .unwrap();
    let reg = client_with(CredentialStore::with_config_file(Some(config)))
        .registry(&server.host)
        .unwrap();
    let app = repo("cfg/app");
    TestImage::build(21).push(&reg, &app, "v1").await;
    assert_eq!(reg.list_tags(&app).await.unwrap(), ["v1"]);
}

async fn assert_login_hint(reg: &dyn Registry, host: &str, had_credentials: bool) {
    let err = reg.list_tags(&repo("any/thing")).await.unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::Unauthorized {
            registry,
            had_credentials: had,
            ..
        } => {
            assert_eq!(registry, host);
            assert_eq!(*had, had_credentials);
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(msg.contains(host), "{msg}");
    assert!(msg.contains(&format!("docker login {host}")), "{msg}");
    let env = format!("PROMOTER_AUTH_{}", host.replace(['.', ':'], "_"));
    assert!(msg.contains(&env), "{msg}");
    assert!(!msg.contains(PASSWORD), "secret leaked: {msg}");
    assert!(
        !format!("{err:?}").contains(PASSWORD),
        "secret leaked in Debug"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn htpasswd_without_credentials_says_how_to_log_in() {
    let server = RegistryServer::start(Mode::Htpasswd);
    let reg = client_with(CredentialStore::default())
        .registry(&server.host)
        .unwrap();
    assert_login_hint(&reg, &server.host, false).await;
    let msg = reg
        .list_tags(&repo("any/thing"))
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no credentials were found"), "{msg}");
}

#[tokio::test]
async fn htpasswd_with_a_wrong_password_says_they_were_refused() {
    let server = RegistryServer::start(Mode::Htpasswd);
    let reg = client_with(env_credentials(&server, "wrong password"))
        .registry(&server.host)
        .unwrap();
    assert_login_hint(&reg, &server.host, true).await;
    let msg = reg
        .list_tags(&repo("any/thing"))
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("were refused"), "{msg}");
}

#[tokio::test]
async fn token_auth_every_operation() {
    let server = RegistryServer::start(Mode::Token);
    let reg = client_with(env_credentials(&server, PASSWORD))
        .registry(&server.host)
        .unwrap();
    exercise(&reg, &|r| skopeo::inspect_raw(&server, r)).await;
    // The mount asked for pull on the source next to push on the target.
    let scopes = server.token_server.as_ref().unwrap().requested_scopes();
    assert!(
        scopes
            .iter()
            .any(|s| s == "repository:promoter/mounted:pull,push"),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s == "repository:promoter/app:pull"),
        "{scopes:?}"
    );
    // Token requests leave the same client as registry requests; skopeo
    // (the independent reader) fetches tokens too, under its own name.
    let agents = server
        .token_server
        .as_ref()
        .unwrap()
        .user_agents
        .lock()
        .unwrap()
        .clone();
    let ours = concat!("promoter/", env!("CARGO_PKG_VERSION"));
    assert!(agents.iter().any(|a| a == ours), "{agents:?}");
    assert!(
        agents.iter().all(|a| a == ours || a.starts_with("skopeo/")),
        "{agents:?}"
    );
}

#[tokio::test]
async fn token_auth_mounts_across_repositories() {
    let server = RegistryServer::start(Mode::Token);
    let reg = client_with(env_credentials(&server, PASSWORD))
        .registry(&server.host)
        .unwrap();
    let (src, dst) = (repo("team/src"), repo("team/dst"));
    let image = TestImage::build(23);
    image.push(&reg, &src, "v1").await;
    for blob in &image.blobs {
        assert!(
            reg.mount_blob(&dst, &blob.digest(), &src).await.unwrap(),
            "mount of {} declined",
            blob.digest
        );
    }
    for m in &image.manifests {
        let manifest = reg
            .get_manifest(&src, &Reference::Digest(m.digest()))
            .await
            .unwrap();
        reg.push_manifest(&dst, &Reference::Digest(m.digest()), &manifest)
            .await
            .unwrap();
    }
    reg.push_manifest(
        &dst,
        &Reference::tag("v1").unwrap(),
        &image.index_manifest(),
    )
    .await
    .unwrap();
    assert_eq!(
        skopeo::inspect_raw(&server, "team/dst:v1"),
        image.index.bytes.to_vec()
    );
}

#[tokio::test]
async fn token_auth_without_credentials_says_how_to_log_in() {
    let server = RegistryServer::start(Mode::Token);
    let reg = client_with(CredentialStore::default())
        .registry(&server.host)
        .unwrap();
    assert_login_hint(&reg, &server.host, false).await;
}

#[tokio::test]
async fn token_auth_with_a_wrong_password_says_they_were_refused() {
    let server = RegistryServer::start(Mode::Token);
    let reg = client_with(env_credentials(&server, "nope"))
        .registry(&server.host)
        .unwrap();
    assert_login_hint(&reg, &server.host, true).await;
}

#[tokio::test]
async fn token_auth_with_a_credential_helper() {
    use std::os::unix::fs::PermissionsExt;
    let server = RegistryServer::start(Mode::Token);
    let dir = tempfile::tempdir().unwrap();
    // A helper that knows only this registry, as `docker-credential-*` do.
    let helper = dir.path().join("docker-credential-promotertest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\nif [ \"$1\" = get ] && [ \"$host\" = '{}' ]; then\n  \
             printf '%s' '{{\"ServerURL\":\"{}\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            server.host, server.host
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"credHelpers":{{"{}":"promotertest"}}}}"#, server.host),
    )
    .unwrap();
    let store =
        CredentialStore::with_config_file(Some(config)).with_helper_path(dir.path().as_os_str());
    let reg = client_with(store).registry(&server.host).unwrap();
    let app = repo("helper/app");
    TestImage::build(29).push(&reg, &app, "v1").await;
    assert_eq!(reg.list_tags(&app).await.unwrap(), ["v1"]);
}

#[tokio::test]
async fn token_auth_with_an_identity_token_from_the_docker_config() {
    let server = RegistryServer::start(Mode::Token);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{}"}}}}}}"#,
            server.host,
            support::token::REFRESH_TOKEN
        ),
    )
    .unwrap();
    let reg = client_with(CredentialStore::with_config_file(Some(config)))
        .registry(&server.host)
        .unwrap();
    let app = repo("oauth/app");
    TestImage::build(33).push(&reg, &app, "v1").await;
    assert_eq!(reg.list_tags(&app).await.unwrap(), ["v1"]);
}

#[tokio::test]
async fn tokens_are_cached_per_registry_and_scope() {
    let server = RegistryServer::start(Mode::Token);
    let client = client_with(env_credentials(&server, PASSWORD));
    let reg = client.registry(&server.host).unwrap();
    let app = repo("cache/app");
    TestImage::build(35).push(&reg, &app, "v1").await;
    let tokens = server.token_server.as_ref().unwrap();
    let pulls = |scopes: Vec<String>| {
        scopes
            .iter()
            .filter(|s| *s == "repository:cache/app:pull")
            .count()
    };
    let before = pulls(tokens.requested_scopes());
    // Many reads, through two registry values of the same client: one token.
    let again = client.registry(&server.host).unwrap();
    for _ in 0..10 {
        reg.head_manifest(&app, &Reference::tag("v1").unwrap())
            .await
            .unwrap();
        again.list_tags(&app).await.unwrap();
    }
    assert_eq!(pulls(tokens.requested_scopes()) - before, 1);
    // Another scope gets its own token.
    let other = repo("cache/other");
    reg.list_tags(&other).await.unwrap();
    assert!(
        tokens
            .requested_scopes()
            .iter()
            .any(|s| s == "repository:cache/other:pull")
    );
}
