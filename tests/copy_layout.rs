//! The copy executor with OCI image layouts (`oci:<dir>`, the embedded
//! default) as source and destinations: into another layout directory, into
//! a `docker-registry`, and into another image of the same layout directory
//! (a mount: hard links, no bytes read). `skopeo` reads back the results.

mod support;

use std::sync::Arc;

use promoter::copy::{self, CopyJob, CopyOptions, Target};
use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Registry};
use support::conformance::repo;
use support::image::TestImage;
use support::server::{Mode, RegistryServer};
use support::skopeo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_between_layouts_and_into_a_registry() {
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let server = RegistryServer::start(Mode::Plain);
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let open = |name: &str| registry::open(name, &client).unwrap();
    let source_name = format!("oci:{}", src_dir.path().display());
    let source = open(&source_name);
    let dests: Vec<Arc<dyn Registry>> = vec![
        open(&format!("oci:{}", dst_dir.path().display())),
        open(&server.host),
        // The source's own directory, under another image name.
        open(&source_name),
    ];

    // Two images sharing a base layer, one with layers over 8 MiB.
    let images = [
        TestImage::build_sharing(21, 300, 2 << 20),
        TestImage::build_sharing(22, 300, 10 << 20),
    ];
    let staging = repo("staging/app");
    for (i, image) in images.iter().enumerate() {
        image
            .push(source.as_ref(), &staging, &format!("seed{i}"))
            .await;
    }
    let jobs: Vec<CopyJob> = images
        .iter()
        .enumerate()
        .map(|(i, image)| CopyJob {
            source: source.clone(),
            source_repo: staging.clone(),
            digest: image.index.digest(),
            targets: dests
                .iter()
                .map(|d| Target {
                    registry: d.clone(),
                    repo: repo("prod/app"),
                    copy: true,
                    tags: vec![format!("v{i}")],
                })
                .collect(),
        })
        .collect();
    let report = copy::execute(jobs, &CopyOptions::default(), &|_| {}).await;
    for o in &report.outcomes {
        assert!(o.result.is_ok(), "{:?}", o.result);
    }
    let mut distinct: Vec<_> = images
        .iter()
        .flat_map(|i| &i.blobs)
        .map(|b| (b.digest.clone(), b.bytes.len() as u64))
        .collect();
    distinct.sort();
    distinct.dedup();
    let bytes: u64 = distinct.iter().map(|(_, n)| n).sum();
    let count = distinct.len() as u64;
    assert_eq!(count, 9);
    let stats = report.stats;
    assert_eq!(stats.blobs_mounted, count, "same layout directory: mounted");
    assert_eq!(stats.blobs_uploaded, 2 * count);
    assert_eq!(stats.bytes_uploaded, 2 * bytes);
    assert_eq!(stats.bytes_read_from_source, bytes, "each blob read once");
    assert_eq!(stats.manifests_pushed, 3 * 2 * 3);
    assert_eq!(stats.tags_pushed, 3 * 2);

    for (i, image) in images.iter().enumerate() {
        let tag = format!("v{i}");
        for dir in [dst_dir.path(), src_dir.path()] {
            let raw = skopeo::inspect_layout_raw(&dir.join("prod/app"), &tag);
            assert_eq!(raw, image.index.bytes, "{}", dir.display());
        }
        let raw = skopeo::inspect_raw(&server, &format!("prod/app:{tag}"));
        assert_eq!(raw, image.index.bytes);
    }

    // A registry as the source and a layout as the destination.
    let back_dir = tempfile::tempdir().unwrap();
    let back = open(&format!("oci:{}", back_dir.path().display()));
    let report = copy::execute(
        vec![CopyJob {
            source: dests[1].clone(),
            source_repo: repo("prod/app"),
            digest: images[1].index.digest(),
            targets: vec![Target {
                registry: back,
                repo: repo("mirror/app"),
                copy: true,
                tags: vec!["back".into()],
            }],
        }],
        &CopyOptions::default(),
        &|_| {},
    )
    .await;
    assert!(
        report.outcomes[0].result.is_ok(),
        "{:?}",
        report.outcomes[0].result
    );
    assert_eq!(report.stats.blobs_uploaded, 5);
    let raw = skopeo::inspect_layout_raw(&back_dir.path().join("mirror/app"), "back");
    assert_eq!(raw, images[1].index.bytes);
}
