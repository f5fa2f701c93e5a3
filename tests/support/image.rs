//! Test images: a two-platform OCI index (linux/amd64, linux/arm64) whose
//! images share a base layer and each have their own layer, all real gzip
//! tar layers of pseudo-random data (a few MiB, incompressible). Written
//! to disk as an OCI image layout by plain file writes, independently of the
//! code under test, or pushed through the `Registry` trait.

use std::path::Path;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use promoter::registry::manifest::{OCI_INDEX, OCI_MANIFEST};
use promoter::registry::{Digest, Manifest, Reference, Registry, RepoName, stream};
use sha2::Digest as _;

use super::Noise;

/// Media type of the layers.
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of the configs.
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// A blob with its digest.
#[derive(Clone)]
pub struct TestBlob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Content.
    pub bytes: Bytes,
}

impl TestBlob {
    fn new(bytes: Vec<u8>) -> TestBlob {
        TestBlob {
            digest: sha256(&bytes),
            bytes: Bytes::from(bytes),
        }
    }

    /// The digest as the library's type.
    pub fn digest(&self) -> Digest {
        self.digest.parse().expect("test digest")
    }
}

/// A two-platform image: the index, its two manifests, and every blob.
pub struct TestImage {
    /// The OCI index.
    pub index: TestBlob,
    /// The per-platform OCI manifests, amd64 first.
    pub manifests: Vec<TestBlob>,
    /// Configs and layers (the shared base layer once).
    pub blobs: Vec<TestBlob>,
}

/// `sha256:<hex>` of `bytes`, computed with sha2 directly.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A gzip tar holding one file of `len` pseudo-random bytes.
pub fn gzip_tar_layer(name: &str, len: usize, noise: &mut Noise) -> (Vec<u8>, String) {
    let data = noise.bytes(len);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(len as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, data.as_slice())
        .expect("tar");
    let tar_bytes = tar.into_inner().expect("tar");
    let diff_id = sha256(&tar_bytes);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    std::io::Write::write_all(&mut gz, &tar_bytes).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

impl TestImage {
    /// Build an image; different seeds give different digests. Layers: a
    /// shared 1 MiB base, plus 2 MiB (amd64) and 1.5 MiB (arm64).
    pub fn build(seed: u64) -> TestImage {
        TestImage::build_sized(seed, 1 << 20, [2 << 20, 3 << 19])
    }

    /// Build an image with a shared base layer of `base_len` bytes and one
    /// layer per platform (amd64, arm64) of the given lengths (uncompressed;
    /// the data is incompressible, so the blobs are about as large).
    pub fn build_sized(seed: u64, base_len: usize, platform_lens: [usize; 2]) -> TestImage {
        let mut noise = Noise::new(seed);
        let base = gzip_tar_layer("base.bin", base_len, &mut noise);
        TestImage::assemble(seed, base, &mut noise, platform_lens)
    }

    /// An index over two platforms (amd64, arm64), each image the shared
    /// `base` layer (gzip bytes, diff id) plus its own layer of the given
    /// length drawn from `noise`.
    fn assemble(
        seed: u64,
        (base, base_diff): (Vec<u8>, String),
        noise: &mut Noise,
        platform_lens: [usize; 2],
    ) -> TestImage {
        let base = TestBlob::new(base);
        let mut blobs = vec![base.clone()];
        let mut manifests = Vec::new();
        for (arch, len) in [("amd64", platform_lens[0]), ("arm64", platform_lens[1])] {
            let (layer, diff) = gzip_tar_layer(&format!("{arch}.bin"), len, noise);
            let layer = TestBlob::new(layer);
            let config = TestBlob::new(
                serde_json::json!({
                    "architecture": arch,
                    "os": "linux",
                    "config": {"Labels": {"seed": seed.to_string()}},
                    "rootfs": {"type": "layers", "diff_ids": [base_diff, diff]},
                })
                .to_string()
                .into_bytes(),
            );
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.bytes.len()},
                "layers": [
                    {"mediaType": LAYER_TYPE, "digest": base.digest, "size": base.bytes.len()},
                    {"mediaType": LAYER_TYPE, "digest": layer.digest, "size": layer.bytes.len()},
                ],
            });
            manifests.push((arch, TestBlob::new(manifest.to_string().into_bytes())));
            blobs.push(config);
            blobs.push(layer);
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests.iter().map(|(arch, m)| serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": m.digest,
                "size": m.bytes.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })).collect::<Vec<_>>(),
        });
        TestImage {
            index: TestBlob::new(index.to_string().into_bytes()),
            manifests: manifests.into_iter().map(|(_, m)| m).collect(),
            blobs,
        }
    }

    /// The index as the library's manifest type.
    pub fn index_manifest(&self) -> Manifest {
        Manifest::new(Some(OCI_INDEX), self.index.bytes.clone()).expect("index")
    }

    /// Write the image as an OCI image layout at `dir`, tagged `tag`, with
    /// plain file writes (no library code).
    pub fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for blob in self
            .blobs
            .iter()
            .chain(&self.manifests)
            .chain([&self.index])
        {
            let hex = blob.digest.strip_prefix("sha256:").unwrap();
            std::fs::write(blobs.join(hex), &blob.bytes).unwrap();
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_INDEX,
                "digest": self.index.digest,
                "size": self.index.bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    }

    /// Push through the trait, children first: blobs, the platform
    /// manifests by digest, then the index under `tag`.
    pub async fn push(&self, registry: &dyn Registry, repo: &RepoName, tag: &str) {
        for blob in &self.blobs {
            registry
                .push_blob(
                    repo,
                    &blob.digest(),
                    blob.bytes.len() as u64,
                    stream::stream_from_bytes(blob.bytes.clone()),
                )
                .await
                .unwrap_or_else(|e| panic!("push blob {}: {e}", blob.digest));
        }
        for m in &self.manifests {
            let manifest = Manifest::new(Some(OCI_MANIFEST), m.bytes.clone()).unwrap();
            registry
                .push_manifest(repo, &Reference::Digest(manifest.digest()), &manifest)
                .await
                .unwrap_or_else(|e| panic!("push manifest {}: {e}", m.digest));
        }
        registry
            .push_manifest(repo, &Reference::tag(tag).unwrap(), &self.index_manifest())
            .await
            .unwrap_or_else(|e| panic!("push index: {e}"));
    }
}

impl TestImage {
    /// Like [`TestImage::build`], but the 1 MiB base layer comes from
    /// `base_seed`, so images built with the same `base_seed` share it, and
    /// the per-platform layers are `own_layer` bytes (amd64) and three
    /// quarters of that (arm64).
    pub fn build_sharing(seed: u64, base_seed: u64, own_layer: usize) -> TestImage {
        let base = gzip_tar_layer("base.bin", 1 << 20, &mut Noise::new(base_seed));
        let mut noise = Noise::new(seed);
        TestImage::assemble(seed, base, &mut noise, [own_layer, own_layer / 4 * 3])
    }

    /// Total size of the image's blobs (configs and layers, each once).
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.bytes.len() as u64).sum()
    }
}
