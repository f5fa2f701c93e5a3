//! Fault tolerance against real servers on loopback: a `docker-registry`
//! killed and restarted mid-run on the same port and storage, and a small
//! TCP server that sends response headers and then stalls, or trickles a
//! body slowly.

#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/tiny_image.rs"]
mod tiny_image;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use promoter::registry::http::{HostStats, HttpClient, HttpOptions, RetryOptions};
use promoter::registry::{Digest, Error, Reference, Registry, RepoName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registry_restarted_mid_run_loses_nothing() {
    let mut backend = nginx::Backend::start();
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let reg: Arc<dyn Registry> = Arc::new(client.registry(&backend.host).unwrap());
    let app = repo("restart/app");
    tiny_image::push_blob(reg.as_ref(), &app, &tiny_image::config())
        .await
        .unwrap();

    let count = 150;
    let run = {
        let reg = reg.clone();
        let app = app.clone();
        tokio::spawn(async move {
            join_all((0..count).map(|i| {
                let reg = reg.clone();
                let app = app.clone();
                async move { tiny_image::push(reg.as_ref(), &app, i).await }
            }))
            .await
        })
    };
    // Stop it while pushes are in flight (SIGTERM: see `Backend::stop`),
    // and bring it back a second later on the same port and storage; the
    // requests sent meanwhile find the port closed. In flight: once a third
    // of the run's requests (3 per image) are sent, not after a fixed
    // time, which a fast machine can finish the run within.
    while stats_of(&client, &backend.host).requests < count as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    backend.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    backend.restart();
    let results = run.await.unwrap();
    let failures: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let stats = stats_of(&client, &backend.host);
    eprintln!(
        "restart: {} of {count} pushes failed; client: {stats:?}",
        failures.len()
    );
    for e in &failures {
        assert!(e.is_transient(), "a clear, transient error: {e}");
    }
    assert!(
        stats.transport_errors > 0,
        "the kill was not noticed: {stats:?}"
    );
    assert!(stats.retries > 0, "{stats:?}");

    // A re-run completes, and every image is whole.
    for i in 0..count {
        tiny_image::push(reg.as_ref(), &app, i).await.unwrap();
    }
    for i in 0..count {
        tiny_image::check(reg.as_ref(), &app, i).await.unwrap();
        let (layer, _) = tiny_image::image(i);
        assert_eq!(
            reg.blob_exists(&app, &Digest::of(&layer)).await.unwrap(),
            Some(layer.len() as u64)
        );
    }
}

/// What the test server does after a request's headers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Headers announcing 100 bytes, then nothing, connection held open.
    Stall,
    /// `body` in 10 pieces, `gap` apart.
    Trickle { gap: Duration },
}

/// The body the trickling server sends.
const BODY: &[u8] = &[b'p'; 100];

/// A loopback HTTP server answering `/v2/` with 200 and every other
/// request per `behaviour`; counts those other requests.
async fn start_server(behaviour: Behaviour) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(serve(socket, behaviour, counter));
        }
    });
    (host, hits)
}

async fn serve(mut socket: TcpStream, behaviour: Behaviour, hits: Arc<AtomicUsize>) {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match socket.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
            // A TLS ClientHello (the https probe): not HTTP, hang up.
            if head.first().is_some_and(|b| !b.is_ascii_uppercase()) {
                return;
            }
        }
        let head = String::from_utf8_lossy(&head);
        if head.starts_with("GET /v2/ ") {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .await;
            continue;
        }
        hits.fetch_add(1, Ordering::SeqCst);
        let headers = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n";
        if socket.write_all(headers.as_bytes()).await.is_err() {
            return;
        }
        match behaviour {
            Behaviour::Stall => {
                // Hold the connection open, sending nothing.
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            Behaviour::Trickle { gap } => {
                for piece in BODY.chunks(10) {
                    tokio::time::sleep(gap).await;
                    if socket.write_all(piece).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn options(stall: Duration, retries: usize) -> HttpOptions {
    HttpOptions {
        stall_timeout: Some(stall),
        retry: RetryOptions {
            max_retries: retries,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        },
        ..HttpOptions::default()
    }
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_and_retried() {
    let (host, hits) = start_server(Behaviour::Stall).await;
    let client = HttpClient::new(options(Duration::from_secs(1), 2)).unwrap();
    let reg = client.registry(&host).unwrap();
    let started = Instant::now();
    let err = reg
        .get_manifest(&repo("stalled/app"), &Reference::tag("v1").unwrap())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!(
        "stalled: {err} after {elapsed:?}; {:?}",
        stats_of(&client, &host)
    );
    let Error::Transport { cause, .. } = &err else {
        panic!("expected a transport error, got {err:?}");
    };
    assert!(cause.is_timeout() || cause.is_body(), "{cause:?}");
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "one attempt and two retries"
    );
    assert_eq!(stats_of(&client, &host).retries, 2);
    // Three stalls of ~1 s each, not the 60 s the server would hold on.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn a_slow_but_moving_body_is_not_cut_off() {
    // 10 pieces 400 ms apart: 4 s in all, with a 1 s stall timeout.
    let (host, hits) = start_server(Behaviour::Trickle {
        gap: Duration::from_millis(400),
    })
    .await;
    let client = HttpClient::new(options(Duration::from_secs(1), 0)).unwrap();
    let reg = client.registry(&host).unwrap();
    let started = Instant::now();
    let blob = reg
        .get_blob(&repo("slow/app"), &Digest::of(BODY))
        .await
        .unwrap();
    let mut stream = blob.into_stream();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, BODY);
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
