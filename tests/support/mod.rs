//! Test support shared by the `registry_*` integration tests: real servers
//! on 127.0.0.1 (the Debian `docker-registry` in four configurations,
//! `ferro-oci-server` with the referrers API, a token server signing ES256
//! JWTs), profile fronts that answer as ECR, GHCR, Harbor, Quay, GitLab and
//! Docker Hub do, generated test images, `skopeo` as an independent client,
//! and peak-memory measurement.
//!
//! Every server listens on a random loopback port and is killed on drop.
#![allow(dead_code)] // Each test crate uses a different part of the support.

pub mod aws;
pub mod azure;
pub mod certs;
pub mod conformance;
pub mod ferro;
pub mod front;
pub mod google;
pub mod hostile;
pub mod image;
pub mod promote;
pub mod server;
pub mod skopeo;
pub mod token;

use std::path::Path;

/// True when the external programs the tests need are installed. Tests
/// assert it: a missing tool is a broken environment, not a pass.
pub fn require_tools() {
    for tool in ["/usr/bin/docker-registry", "/usr/bin/skopeo"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install the Debian packages `.ci/run` lists"
        );
    }
}

/// A finished command's exit code and both outputs, for assertion messages.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reset the peak resident set size of this process (`VmHWM`), so that a
/// later [`peak_rss_bytes`] measures only what follows.
pub fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM (Linux >= 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM via /proc/self/clear_refs");
}

/// The peak resident set size of this process, from `/proc/self/status`.
pub fn peak_rss_bytes() -> u64 {
    field_kib("VmHWM:") * 1024
}

/// The current resident set size of this process.
pub fn rss_bytes() -> u64 {
    field_kib("VmRSS:") * 1024
}

fn field_kib(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /proc/self/status"))
}

/// A small deterministic pseudo-random generator (xorshift64*): test data
/// that gzip cannot shrink, without a `rand` dependency.
pub struct Noise(u64);

impl Noise {
    /// A generator for `seed` (any value).
    pub fn new(seed: u64) -> Noise {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Fill `buf` with the next bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill(&mut v);
        v
    }
}

use promoter::registry::{Error, Reference, Registry, RepoName};

/// A minimal promotion of `tag`: blobs (skipping those already there), child
/// manifests by digest, then the index under the same tag. Stops at the
/// first error, as the copy executor will.
pub async fn copy_image(
    src: &dyn Registry,
    src_repo: &RepoName,
    dst: &dyn Registry,
    dst_repo: &RepoName,
    tag: &str,
) -> Result<(), Error> {
    let reference = Reference::tag(tag)?;
    let index = src.get_manifest(src_repo, &reference).await?;
    let mut children = Vec::new();
    for child in index.child_manifests()? {
        children.push(
            src.get_manifest(src_repo, &Reference::Digest(child.digest))
                .await?,
        );
    }
    for child in &children {
        for blob in child.blobs()? {
            if dst.blob_exists(dst_repo, &blob.digest).await?.is_some() {
                continue;
            }
            let content = src.get_blob(src_repo, &blob.digest).await?;
            dst.push_blob(dst_repo, &blob.digest, blob.size, content.into_stream())
                .await?;
        }
    }
    for child in &children {
        dst.push_manifest(dst_repo, &Reference::Digest(child.digest()), child)
            .await?;
    }
    dst.push_manifest(dst_repo, &reference, &index).await
}
