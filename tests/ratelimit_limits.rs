//! The rate limiter and retries against real servers: the Debian
//! `docker-registry` behind Debian `nginx`, which answers 429 beyond a
//! request rate (`limit_req`) or 503 on a share of requests
//! (`split_clients`). Rates are measured from nginx's access log.

#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/tiny_image.rs"]
mod tiny_image;

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use promoter::registry::http::{HostStats, HttpClient, HttpOptions};
use promoter::registry::{Registry, RepoName};

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

fn stats_of(client: &HttpClient, host: &str) -> HostStats {
    client
        .stats()
        .into_iter()
        .find(|s| s.host == host)
        .unwrap_or_else(|| panic!("no stats for {host}: {:?}", client.stats()))
}

/// Push `count` tiny images from `count` concurrent tasks, then read every
/// one back, again all at once. Returns the failures.
async fn push_and_read(reg: Arc<dyn Registry>, repo: &RepoName, count: usize) -> Vec<String> {
    tiny_image::push_blob(reg.as_ref(), repo, &tiny_image::config())
        .await
        .expect("push the shared config");
    let pushes = join_all((0..count).map(|i| {
        let reg = reg.clone();
        async move { tiny_image::push(reg.as_ref(), repo, i).await }
    }))
    .await;
    let reads = join_all((0..count).map(|i| {
        let reg = reg.clone();
        async move { tiny_image::check(reg.as_ref(), repo, i).await }
    }))
    .await;
    pushes
        .into_iter()
        .chain(reads)
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_images_through_a_20_per_second_limit_without_a_failure() {
    let backend = nginx::Backend::start();
    let proxy = nginx::Nginx::start(
        &backend.host,
        nginx::Faults {
            rate_limit: Some(20),
            burst: 5,
            fail_percent: None,
        },
    );
    // The default options: 50 r/s to start with, well above the limit.
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let reg: Arc<dyn Registry> = Arc::new(client.registry(&proxy.host).unwrap());

    let started = Instant::now();
    let failures = push_and_read(reg, &repo("limited/app"), 100).await;
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );

    let log = proxy.access_log();
    let (answered, rate) = nginx::answered_rate(&log);
    let refused = log.iter().filter(|(_, s)| *s == 429).count();
    let stats = stats_of(&client, &proxy.host);
    eprintln!(
        "20 r/s limit: {answered} requests answered at {rate:.1} r/s, {refused} refused (429) in {:.1} s; client: {stats:?}",
        elapsed.as_secs_f64()
    );
    assert!(
        rate >= 16.0,
        "achieved {rate:.1} r/s, less than 80% of 20 r/s"
    );
    assert!(rate <= 20.0 * 1.1 + 1.0, "{rate:.1} r/s is above the limit");
    assert_eq!(
        stats.throttled as usize, refused,
        "client and server count 429s alike"
    );
    // Every request the client sent reached the front, except those lost
    // on a connection (a keep-alive connection the front closed as the
    // request went out is never logged there; the client retries it).
    let sent = stats.requests as usize;
    let lost = stats.transport_errors as usize;
    assert!(
        (sent - lost..=sent).contains(&log.len()),
        "client sent {sent} ({lost} lost on the connection), the front logged {}",
        log.len()
    );
    assert!(stats.rate_cuts > 0 && stats.rate_rps < 50.0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_completes_when_a_tenth_of_requests_get_503() {
    let backend = nginx::Backend::start();
    let proxy = nginx::Nginx::start(
        &backend.host,
        nginx::Faults {
            rate_limit: None,
            burst: 0,
            fail_percent: Some(10),
        },
    );
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let reg: Arc<dyn Registry> = Arc::new(client.registry(&proxy.host).unwrap());

    let failures = push_and_read(reg, &repo("flaky/app"), 60).await;
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );

    let log = proxy.access_log();
    let failed = log.iter().filter(|(_, s)| *s == 503).count();
    let stats = stats_of(&client, &proxy.host);
    eprintln!(
        "10% 503: {} requests, {failed} answered 503; client: {stats:?}",
        log.len()
    );
    assert!(failed > 0, "the proxy failed no request");
    assert_eq!(stats.status_5xx as usize, failed);
    assert!(stats.retries as usize >= failed, "{stats:?}");
    // A 503 is not a rate signal: the rate was never cut.
    assert_eq!(stats.rate_cuts, 0);
}
