//! Registry credentials with no long-lived secret, end to end: the promoter
//! binary finds them only in the environment and the docker config (no
//! `PROMOTER_AUTH_*`), promotes into an authenticated `docker-registry`, and
//! does it again after the token has expired. Google's endpoints are the
//! stand-in of `support/google.rs`; AWS's are moto (`support/aws.rs`); the
//! registry behind Google's flows is in token mode whose realm accepts
//! `oauth2accesstoken:<token>` only while the stand-in's token lives, as
//! Artifact Registry does. Every output is searched for every secret.

#[path = "support/nginx.rs"]
mod nginx;
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use support::aws::Moto;
use support::azure::AzureStandIn;
use support::google::GoogleStandIn;
use support::image::TestImage;
use support::promote::{ManifestImage, manifest_yaml, push_images};
use support::server::{Login, Mode, RegistryServer};

const BIN: &str = env!("CARGO_BIN_EXE_promoter");

/// A plain source with two images and an empty authenticated destination.
struct World {
    source: RegistryServer,
    dest: RegistryServer,
    images: [TestImage; 2],
    dir: tempfile::TempDir,
}

impl World {
    fn new(dest: RegistryServer) -> World {
        let source = RegistryServer::start(Mode::Plain);
        let images = [TestImage::build(61), TestImage::build(62)];
        push_images(
            &source,
            &[
                ("staging/a", &images[0], "s0"),
                ("staging/b", &images[1], "s1"),
            ],
        );
        World {
            source,
            dest,
            images,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A docker config mapping the destination to credential `helper`.
    fn docker_config(&self, helper: &str) -> String {
        let dir = self.dir.path().join("docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"credHelpers":{{"{}":"{helper}"}}}}"#, self.dest.host),
        )
        .unwrap();
        dir.to_str().unwrap().to_owned()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Promote image `n` (0 or 1) to `prod/<a|b>:v1` with only `env`.
    fn promote(&self, n: usize, env: &BTreeMap<&str, String>) -> Output {
        let name = ["a", "b"][n];
        let digest = self.images[n].index.digest().to_string();
        let yaml = manifest_yaml(
            &format!("{}/staging", self.source.host),
            &[format!("{}/prod", self.dest.host)],
            &[ManifestImage::one(name, &digest, &["v1"])],
        );
        let manifest = self.file(&format!("promoter-{n}.yaml"), &yaml);
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        // No credential helper programs (this machine has
        // docker-credential-gcloud): the built-in ones answer.
        let bin = self.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let out = Command::new(BIN)
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", &home)
            .envs(env)
            .args(["run", "--manifest", &manifest, "--confirm", "--sign=false"])
            .output()
            .expect("run promoter");
        Output {
            code: out.status.code().unwrap_or(-1),
            text: format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// The digest `prod/<name>:v1` points at, read from the registry's
    /// storage (not through the code under test).
    fn promoted(&self, name: &str) -> Option<String> {
        let link = self.dest.dir.path().join(format!(
            "storage/docker/registry/v2/repositories/prod/{name}/_manifests/tags/v1/current/link"
        ));
        std::fs::read_to_string(link).ok()
    }

    fn assert_promoted(&self, n: usize, out: &Output) {
        assert_eq!(out.code, 0, "promoter failed:\n{}", out.text);
        let name = ["a", "b"][n];
        assert_eq!(
            self.promoted(name).as_deref(),
            Some(self.images[n].index.digest().to_string().as_str()),
            "prod/{name}:v1 is not the promoted image:\n{}",
            out.text
        );
    }
}

struct Output {
    code: i32,
    text: String,
}

fn assert_no_secret(out: &Output, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !out.text.contains(secret.as_str()),
            "secret in the output:\n{}",
            out.text
        );
    }
}

/// Token lifetime of the Google stand-in: long enough for one run, short
/// enough to wait out.
const LIFETIME: Duration = Duration::from_secs(6);

fn google_world(google: &GoogleStandIn) -> World {
    World::new(RegistryServer::start_with(
        Mode::Token,
        Login::Check("oauth2accesstoken".into(), google.accepts()),
    ))
}

/// Two runs, the second after the first run's token expired; answers both
/// outputs.
fn twice(world: &World, google: &GoogleStandIn, env: &BTreeMap<&str, String>) -> [Output; 2] {
    let first = world.promote(0, env);
    world.assert_promoted(0, &first);
    let old = google.secrets();
    std::thread::sleep(google.lifetime + Duration::from_secs(1));
    let accepts = google.accepts();
    assert!(
        old.iter().all(|t| !accepts(t)),
        "the first run's tokens still work"
    );
    let second = world.promote(1, env);
    world.assert_promoted(1, &second);
    for out in [&first, &second] {
        assert_no_secret(out, &google.secrets());
    }
    assert!(google.refusals().is_empty(), "{:?}", google.refusals());
    [first, second]
}

#[test]
fn google_external_account_as_google_github_actions_auth_writes_it() {
    let google = GoogleStandIn::start(LIFETIME);
    let world = google_world(&google);
    let env = BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("gcloud")),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            world.file("gha-creds.json", &google.external_account_json()),
        ),
    ]);
    twice(&world, &google, &env);
    // One exchange per run: subject token, STS, generateAccessToken.
    assert_eq!(
        (
            google.calls("oidc"),
            google.calls("sts"),
            google.calls("iam")
        ),
        (2, 2, 2)
    );
    assert_eq!(
        google.audiences(),
        vec![GoogleStandIn::provider_audience(); 2]
    );
}

#[test]
fn google_service_account_key() {
    let google = GoogleStandIn::start(LIFETIME);
    let world = google_world(&google);
    let env = BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("gcloud")),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            world.file("key.json", &google.service_account_json()),
        ),
    ]);
    twice(&world, &google, &env);
    assert_eq!(google.calls("jwt"), 2);
}

#[test]
fn google_metadata_server() {
    let google = GoogleStandIn::start(LIFETIME);
    let world = google_world(&google);
    let env = BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("gcloud")),
        ("GCE_METADATA_HOST", google.host.clone()),
    ]);
    twice(&world, &google, &env);
    assert_eq!(google.calls("metadata"), 2);
}

#[test]
fn google_failure_names_the_host_the_source_the_step_and_the_service_error() {
    let google = GoogleStandIn::start(LIFETIME);
    let world = google_world(&google);
    // The audience of another provider: STS refuses it.
    let file = google
        .external_account_json()
        .replace("providers/github", "providers/other");
    let env = BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("gcloud")),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            world.file("gha-creds.json", &file),
        ),
    ]);
    let out = world.promote(0, &env);
    assert_ne!(out.code, 0, "{}", out.text);
    for needle in [
        world.dest.host.as_str(),
        "GOOGLE_APPLICATION_CREDENTIALS (external_account)",
        "the STS token exchange at",
        "sts: audience is the provider",
        "google-github-actions/auth",
    ] {
        assert!(
            out.text.contains(needle),
            "`{needle}` missing:\n{}",
            out.text
        );
    }
    assert_no_secret(&out, &google.secrets());
    assert_eq!(world.promoted("a"), None);
}

/// A token-mode destination accepting the stand-in's tokens, and a library
/// client (one run) whose credentials come only from a docker config
/// mapping that destination to `gcloud` and from `var`.
fn google_client(
    google: &GoogleStandIn,
    var: (&str, &str),
) -> (
    RegistryServer,
    tempfile::TempDir,
    promoter::registry::http::HttpClient,
) {
    use promoter::registry::credentials::{CredentialStore, Env};
    use promoter::registry::http::{HttpClient, HttpOptions};

    let dest = RegistryServer::start_with(
        Mode::Token,
        Login::Check("oauth2accesstoken".into(), google.accepts()),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"gcloud"}}}}"#, dest.host),
    )
    .unwrap();
    let env = Env::from_pairs([("DOCKER_CONFIG", dir.path().to_str().unwrap()), var]);
    // An empty PATH for helpers: the built-in gcloud answers.
    let store = CredentialStore::with_env(env).with_helper_path(dir.path().as_os_str().to_owned());
    let client = HttpClient::new(HttpOptions {
        credentials: store,
        ..HttpOptions::default()
    })
    .unwrap();
    (dest, dir, client)
}

/// Inside one run (the library, one client): the cloud token is exchanged
/// once for many requests, again shortly before it expires, and once more
/// when the registry's token realm refuses it mid-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exchange_per_lifetime_a_refresh_before_expiry_and_one_after_a_refusal() {
    use promoter::registry::Registry as _;
    use support::conformance::repo;

    let google = GoogleStandIn::start(LIFETIME);
    let (dest, _dir, client) = google_client(&google, ("GCE_METADATA_HOST", &google.host));
    let reg = client.registry(&dest.host).unwrap();
    let image = TestImage::build(63);
    for name in ["r/one", "r/two", "r/three"] {
        image.push(&reg, &repo(name), "v1").await;
    }
    assert_eq!(
        google.calls("metadata"),
        1,
        "one exchange for many requests"
    );
    // Past the refresh point (3/4 of the lifetime), before the expiry.
    tokio::time::sleep(LIFETIME * 3 / 4 + Duration::from_millis(500)).await;
    image.push(&reg, &repo("r/four"), "v1").await;
    assert_eq!(google.calls("metadata"), 2, "refreshed before it expired");
    // Revoked mid-run: the realm refuses it; one fresh exchange.
    google.revoke();
    image.push(&reg, &repo("r/five"), "v1").await;
    assert_eq!(
        google.calls("metadata"),
        3,
        "re-authenticated once after the refusal"
    );
    assert_eq!(reg.list_tags(&repo("r/five")).await.unwrap(), ["v1"]);
}

/// Inside one run: a failed exchange is not tried again for each request;
/// every later request fails at once with the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exchange_is_tried_once_per_run() {
    use promoter::registry::Registry as _;
    use support::conformance::repo;

    let google = GoogleStandIn::start(LIFETIME);
    // The audience of another provider: STS refuses it (a 400, not retried).
    let creds = tempfile::tempdir().unwrap();
    let file = creds.path().join("gha-creds.json");
    std::fs::write(
        &file,
        google
            .external_account_json()
            .replace("providers/github", "providers/other"),
    )
    .unwrap();
    let (dest, _dir, client) = google_client(
        &google,
        ("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap()),
    );
    let reg = client.registry(&dest.host).unwrap();
    let mut errors = Vec::new();
    for name in ["r/one", "r/two", "r/three"] {
        errors.push(reg.list_tags(&repo(name)).await.unwrap_err().to_string());
    }
    assert_eq!(google.refusals().len(), 1, "{:?}", google.refusals());
    assert!(
        errors[0].contains("the STS token exchange at"),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
}

fn aws_world(moto: &Moto) -> World {
    World::new(RegistryServer::start_with(
        Mode::Htpasswd,
        Login::Password("AWS".into(), moto.setup.password.clone()),
    ))
}

#[test]
fn aws_access_keys_sign_get_authorization_token_for_moto_to_check() {
    let moto = Moto::start_validating();
    let world = aws_world(&moto);
    let mut env = BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("ecr-login")),
        ("AWS_ENDPOINT_URL_ECR", moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", moto.setup.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            moto.setup.secret_access_key.clone(),
        ),
    ]);
    let first = world.promote(0, &env);
    world.assert_promoted(0, &first);
    let second = world.promote(1, &env);
    world.assert_promoted(1, &second);
    let secrets = [
        moto.setup.secret_access_key.clone(),
        moto.setup.password.clone(),
    ];
    for out in [&first, &second] {
        assert_no_secret(out, &secrets);
    }
    // A wrong secret: moto's SignatureDoesNotMatch, named with the source.
    env.insert("AWS_SECRET_ACCESS_KEY", "wrong-secret-key".into());
    let bad = world.promote(0, &env);
    assert_ne!(bad.code, 0);
    for needle in [
        world.dest.host.as_str(),
        "AWS_ACCESS_KEY_ID",
        "ECR GetAuthorizationToken",
        "SignatureDoesNotMatch",
    ] {
        assert!(
            bad.text.contains(needle),
            "`{needle}` missing:\n{}",
            bad.text
        );
    }
    assert_no_secret(
        &bad,
        &["wrong-secret-key".into(), moto.setup.password.clone()],
    );
}

#[test]
fn aws_web_identity_token_file() {
    let moto = Moto::start();
    let world = aws_world(&moto);
    let env = BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("ecr-login")),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ROLE_ARN", moto.setup.role_arn.clone()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            world.file("web-identity", "eyJ.web-identity.token"),
        ),
    ]);
    let out = world.promote(0, &env);
    world.assert_promoted(0, &out);
    assert_no_secret(
        &out,
        &["eyJ.web-identity.token".into(), moto.setup.password.clone()],
    );
}

#[test]
fn aws_role_arn_input_with_the_jobs_oidc_token() {
    let moto = Moto::start();
    let google = GoogleStandIn::start(LIFETIME); // its /oidc is GitHub's endpoint
    let world = aws_world(&moto);
    let env = BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("ecr-login")),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("INPUT_AWS-ROLE-ARN", moto.setup.role_arn.clone()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/oidc?api-version=2.0", google.url),
        ),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            support::google::REQUEST_TOKEN.to_owned(),
        ),
    ]);
    let out = world.promote(0, &env);
    world.assert_promoted(0, &out);
    assert_eq!(google.audiences(), ["sts.amazonaws.com"]);
    assert_no_secret(&out, &google.secrets());
}

#[test]
fn github_token_for_the_github_registry() {
    let token = "ghs_test-job-token-5a7e";
    let world = World::new(RegistryServer::start_with(
        Mode::Htpasswd,
        Login::Password("octocat".into(), token.into()),
    ));
    let env = BTreeMap::from([
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_ACTOR", "octocat".to_owned()),
        ("INPUT_GITHUB-TOKEN", token.to_owned()),
        ("INPUT_GITHUB-REGISTRY", world.dest.host.clone()),
    ]);
    let out = world.promote(0, &env);
    world.assert_promoted(0, &out);
    assert_no_secret(&out, &[token.into()]);
    // Other credentials for the host win over the github-token.
    let dir = world.dir.path().join("explicit");
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = base64_auth("octocat", "not-the-token");
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{wrong}"}}}}}}"#,
            world.dest.host
        ),
    )
    .unwrap();
    let mut env = env;
    env.insert("DOCKER_CONFIG", dir.to_str().unwrap().to_owned());
    let refused = world.promote(1, &env);
    assert_ne!(
        refused.code, 0,
        "the docker config's credentials were not used"
    );
    assert_no_secret(&refused, &[token.into(), "not-the-token".into()]);
}

fn base64_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// An ACR-like destination: a registry whose token realm takes the ACR
/// refresh tokens `azure` hands out as the password of its user, behind a
/// front that serves `/oauth2/` from `azure` on the registry's own host, as
/// ACR serves `/oauth2/exchange`. The front must outlive the world.
fn azure_world(azure: &AzureStandIn) -> (World, nginx::Nginx) {
    let dest = RegistryServer::start_with(
        Mode::Token,
        Login::Check(support::azure::ACR_USER.into(), azure.accepts()),
    );
    let front = nginx::Nginx::start_routing(&dest.host, "/oauth2/", &azure.host);
    let mut world = World::new(dest);
    world.dest.host = front.host.clone();
    (world, front)
}

fn azure_env(world: &World, azure: &AzureStandIn) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("DOCKER_CONFIG", world.docker_config("acr-env")),
        ("AZURE_CLIENT_ID", support::azure::CLIENT_ID.to_owned()),
        ("AZURE_TENANT_ID", support::azure::TENANT.to_owned()),
        ("AZURE_AUTHORITY_HOST", azure.url.clone()),
    ])
}

#[test]
fn azure_federated_credential_with_the_jobs_oidc_token() {
    let google = GoogleStandIn::start(LIFETIME);
    let azure = AzureStandIn::start(google.issued_oidc());
    let (world, _front) = azure_world(&azure);
    let mut env = azure_env(&world, &azure);
    env.insert(
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        format!("{}/oidc?api-version=2.0", google.url),
    );
    env.insert(
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        support::google::REQUEST_TOKEN.to_owned(),
    );
    let first = world.promote(0, &env);
    world.assert_promoted(0, &first);
    let second = world.promote(1, &env);
    world.assert_promoted(1, &second);
    // One OIDC token, Entra token and ACR exchange per run, for the
    // audience azure/login asks for, at the registry's own host.
    assert_eq!(google.audiences(), vec!["api://AzureADTokenExchange"; 2]);
    assert_eq!((azure.calls("entra"), azure.calls("exchange")), (2, 2));
    assert_eq!(azure.services(), vec![world.dest.host.clone(); 2]);
    assert!(azure.refusals().is_empty(), "{:?}", azure.refusals());
    let secrets: Vec<String> = azure
        .secrets()
        .into_iter()
        .chain(google.secrets())
        .collect();
    assert_no_secret(&first, &secrets);
    assert_no_secret(&second, &secrets);
}

#[test]
fn azure_client_secret_and_federated_token_file_and_a_refusal() {
    let azure = AzureStandIn::start(std::sync::Arc::new(|_: &str| false));
    let (world, _front) = azure_world(&azure);
    let mut env = azure_env(&world, &azure);
    env.insert(
        "AZURE_CLIENT_SECRET",
        support::azure::CLIENT_SECRET.to_owned(),
    );
    let out = world.promote(0, &env);
    world.assert_promoted(0, &out);
    assert_no_secret(&out, &azure.secrets());

    let mut file_env = azure_env(&world, &azure);
    let file = world.file("azure-token", support::azure::FILE_ASSERTION);
    file_env.insert("AZURE_FEDERATED_TOKEN_FILE", file);
    let out = world.promote(1, &file_env);
    world.assert_promoted(1, &out);
    assert_no_secret(&out, &azure.secrets());
    assert_eq!((azure.calls("entra"), azure.calls("exchange")), (2, 2));

    // A wrong secret: Entra refuses it, and the error says where and why.
    env.insert("AZURE_CLIENT_SECRET", "not-the-secret".to_owned());
    let refused = world.promote(0, &env);
    assert_ne!(refused.code, 0, "{}", refused.text);
    for needle in [
        world.dest.host.as_str(),
        "AZURE_CLIENT_SECRET",
        "the Entra ID token request at",
        "invalid_client",
        "AcrPush",
    ] {
        assert!(
            refused.text.contains(needle),
            "`{needle}` missing:\n{}",
            refused.text
        );
    }
    assert_no_secret(
        &refused,
        &[
            support::azure::CLIENT_SECRET.into(),
            "not-the-secret".into(),
        ],
    );
}
