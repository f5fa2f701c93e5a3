//! A 256 MiB blob, generated on the fly, streams through both backends with
//! flat memory: pushed to a real `docker-registry` (chunked upload), read
//! back (verified while streaming), and copied into an OCI layout. The peak
//! resident memory of this test process is measured for each phase and must
//! stay far below the blob size.
//!
//! One test in its own file, so that its process measures only itself.

mod support;

use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use promoter::registry::digest::Hasher;
use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::layout::LayoutRegistry;
use promoter::registry::{BlobStream, Digest, Registry};
use support::conformance::repo;
use support::server::{Mode, RegistryServer};
use support::{Noise, peak_rss_bytes, reset_peak_rss, rss_bytes};

const BLOB_SIZE: u64 = 256 * 1024 * 1024;
const PIECE: usize = 1024 * 1024;
/// The bound the whole process's peak RSS must stay under in each phase: a
/// quarter of the blob. Holding the blob in memory would need all of it.
const PEAK_LIMIT: u64 = BLOB_SIZE / 4;
const MIB: f64 = 1024.0 * 1024.0;

/// The blob as a stream of 1 MiB pieces, generated as it is consumed.
fn generated() -> BlobStream {
    let pieces = (BLOB_SIZE as usize) / PIECE;
    Box::pin(futures_util::stream::unfold(
        (Noise::new(99), 0usize),
        move |(mut noise, n)| async move {
            if n == pieces {
                return None;
            }
            let mut piece = vec![0u8; PIECE];
            noise.fill(&mut piece);
            Some((Ok(Bytes::from(piece)), (noise, n + 1)))
        },
    ))
}

async fn digest_of(mut stream: BlobStream) -> (Digest, u64) {
    let mut hasher = Hasher::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk.expect("chunk"));
    }
    let len = hasher.len();
    (hasher.finish(), len)
}

/// Run `phase`, report its time and peak RSS, and assert the peak stays
/// under [`PEAK_LIMIT`].
async fn measure<F: std::future::Future<Output = ()>>(name: &str, phase: F) {
    reset_peak_rss();
    let before = rss_bytes();
    let start = Instant::now();
    phase.await;
    let rise = peak_rss_bytes().saturating_sub(before);
    let peak = peak_rss_bytes();
    eprintln!(
        "{name}: {:.1} s, peak RSS {:.1} MiB ({:.1} MiB above the start of the phase), blob {} MiB",
        start.elapsed().as_secs_f64(),
        peak as f64 / MIB,
        rise as f64 / MIB,
        BLOB_SIZE >> 20
    );
    assert!(
        peak < PEAK_LIMIT,
        "{name}: peak RSS {} MiB, more than {} MiB",
        peak >> 20,
        PEAK_LIMIT >> 20
    );
}

#[tokio::test]
async fn a_256_mib_blob_streams_with_flat_memory() {
    let server = RegistryServer::start(Mode::Plain);
    let http = HttpClient::new(HttpOptions::default())
        .unwrap()
        .registry(&server.host)
        .unwrap();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = LayoutRegistry::new(layout_dir.path());
    let (src, dst) = (repo("big/src"), repo("big/dst"));

    let (digest, size) = digest_of(generated()).await;
    assert_eq!(size, BLOB_SIZE);

    measure("push to registry (chunked)", async {
        http.push_blob(&src, &digest, BLOB_SIZE, generated())
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        http.blob_exists(&src, &digest).await.unwrap(),
        Some(BLOB_SIZE)
    );

    measure("read from registry (verified)", async {
        let blob = http.get_blob(&src, &digest).await.unwrap();
        assert_eq!(blob.size, Some(BLOB_SIZE));
        let (seen, len) = digest_of(blob.into_stream()).await;
        assert_eq!((seen, len), (digest, BLOB_SIZE));
    })
    .await;

    measure("registry -> OCI layout", async {
        let blob = http.get_blob(&src, &digest).await.unwrap();
        layout
            .push_blob(&dst, &digest, BLOB_SIZE, blob.into_stream())
            .await
            .unwrap();
    })
    .await;
    let stored = layout_dir
        .path()
        .join("big/dst/blobs/sha256")
        .join(digest.hex());
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), BLOB_SIZE);

    measure("OCI layout -> registry", async {
        let blob = layout.get_blob(&dst, &digest).await.unwrap();
        http.push_blob(&dst, &digest, BLOB_SIZE, blob.into_stream())
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        http.blob_exists(&dst, &digest).await.unwrap(),
        Some(BLOB_SIZE)
    );
}
