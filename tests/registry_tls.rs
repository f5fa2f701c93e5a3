//! HTTPS against a real `docker-registry` whose certificate is made at test
//! time: trusted through the client's extra root CA (the future
//! `--registry-ca FILE`), refused without it.

mod support;

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{Error, Registry};
use support::conformance::{exercise, repo};
use support::server::{Mode, RegistryServer};
use support::skopeo;

#[tokio::test]
async fn every_operation_over_tls_with_an_extra_ca() {
    let server = RegistryServer::start(Mode::Tls);
    let ca = server.ca_pem.clone().unwrap();
    let client = HttpClient::new(HttpOptions {
        extra_ca_pem: vec![ca.into_bytes()],
        ..HttpOptions::default()
    })
    .unwrap();
    let reg = client.registry(&server.host).unwrap();
    exercise(&reg, &|r| skopeo::inspect_raw(&server, r)).await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_without_falling_back_to_http() {
    let server = RegistryServer::start(Mode::Tls);
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let reg = client.registry(&server.host).unwrap();
    let err = reg.list_tags(&repo("any/thing")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("GET https://{}/v2/", server.host)),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
    assert!(
        !err.is_transient(),
        "a certificate problem is not worth retrying: {err:?}"
    );
}

#[test]
fn a_malformed_ca_is_a_setup_error() {
    let err = HttpClient::new(HttpOptions {
        extra_ca_pem: vec![b"not a certificate".to_vec()],
        ..HttpOptions::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Setup(_)), "{err:?}");
}

#[tokio::test]
async fn plain_http_only_for_loopback_names_and_listed_insecure_hosts() {
    // `0.0.0.0:PORT` reaches the loopback listener on Linux, but is not a
    // loopback name: plain HTTP must be refused unless the host is listed.
    let server = RegistryServer::start(Mode::Plain);
    let port = server.host.rsplit_once(':').unwrap().1;
    let other_name = format!("0.0.0.0:{port}");

    let strict = HttpClient::new(HttpOptions::default()).unwrap();
    let err = strict
        .registry(&other_name)
        .unwrap()
        .list_tags(&repo("x"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("GET https://{other_name}/v2/")),
        "{msg}"
    );

    let listed = HttpClient::new(HttpOptions {
        insecure_registries: vec![other_name.clone()],
        ..HttpOptions::default()
    })
    .unwrap();
    let tags = listed
        .registry(&other_name)
        .unwrap()
        .list_tags(&repo("x"))
        .await
        .unwrap();
    assert!(tags.is_empty());
}
