//! Manifest data as the registry layer sees it: raw bytes with their media
//! type and digest ([`Manifest`]), OCI descriptors ([`Descriptor`]), the four
//! manifest media types, and the few fields the pipeline reads from a
//! manifest (its children, its subject). Bytes are never re-serialized: a
//! manifest is copied byte for byte so that its digest stays the same.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Error, Result};

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (schema 2).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The four manifest media types, in the order sent in `Accept`. Without all
/// four, distribution 2.8 answers 404 for an OCI index.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Manifests larger than this are refused, as distribution and most
/// registries do (4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Artifact type, for referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations; tags live in `org.opencontainers.image.ref.name` in an
    /// image layout's `index.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform of an index entry, kept as-is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with only the three required fields.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            artifact_type: None,
            annotations: None,
            platform: None,
        }
    }
}

/// A manifest: its exact bytes, media type and digest. The digest always
/// matches the bytes: constructors compute or check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    media_type: String,
    digest: Digest,
    bytes: Bytes,
}

/// The fields of any manifest kind that the pipeline needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestFields {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

impl Manifest {
    /// Wrap `bytes`, computing their digest. When `media_type` is `None` the
    /// manifest's own `mediaType` field is used.
    pub fn new(media_type: Option<&str>, bytes: Bytes) -> Result<Manifest> {
        let media_type = match media_type {
            Some(m) if is_manifest_type(m) => m.to_owned(),
            _ => sniff_media_type(&bytes).ok_or_else(|| Error::InvalidResponse {
                url: format!("manifest {}", Digest::of(&bytes)),
                reason: "cannot tell the manifest's media type".into(),
            })?,
        };
        Ok(Manifest {
            digest: Digest::of(&bytes),
            media_type,
            bytes,
        })
    }

    /// Like [`Manifest::new`], but the bytes must hash to `expected`.
    pub fn verified(
        media_type: Option<&str>,
        bytes: Bytes,
        expected: &Digest,
        location: &str,
    ) -> Result<Manifest> {
        // Integrity first: bytes that do not match are not worth parsing.
        let actual = Digest::of(&bytes);
        if actual != *expected {
            return Err(Error::DigestMismatch {
                location: location.to_owned(),
                expected: *expected,
                actual,
            });
        }
        Manifest::new(media_type, bytes)
    }

    /// Media type, such as [`OCI_INDEX`].
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// sha256 of the bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// A descriptor pointing at this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.digest,
            self.bytes.len() as u64,
        )
    }

    /// True for an OCI index or a Docker manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    fn fields(&self) -> Result<ManifestFields> {
        serde_json::from_slice(&self.bytes).map_err(|e| Error::InvalidResponse {
            url: format!("manifest {}", self.digest),
            reason: format!("not a valid manifest: {e}"),
        })
    }

    /// For an index: its child manifests.
    pub fn child_manifests(&self) -> Result<Vec<Descriptor>> {
        Ok(self.fields()?.manifests)
    }

    /// For an image manifest: its config followed by its layers.
    pub fn blobs(&self) -> Result<Vec<Descriptor>> {
        let fields = self.fields()?;
        Ok(fields.config.into_iter().chain(fields.layers).collect())
    }

    /// The `subject` this manifest refers to, if it is a referrer.
    pub fn subject(&self) -> Result<Option<Descriptor>> {
        Ok(self.fields()?.subject)
    }
}

/// True for the four manifest media types.
pub fn is_manifest_type(media_type: &str) -> bool {
    MANIFEST_MEDIA_TYPES.contains(&media_type)
}

/// The manifest's own `mediaType` field, or a guess from its shape (an OCI
/// manifest may omit the field).
fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    let fields: ManifestFields = serde_json::from_slice(bytes).ok()?;
    match fields.media_type {
        Some(m) if is_manifest_type(&m) => Some(m),
        Some(_) => None,
        None if !fields.manifests.is_empty() => Some(OCI_INDEX.to_owned()),
        None if fields.config.is_some() => Some(OCI_MANIFEST.to_owned()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_children_and_media_type() {
        let child = Digest::of(b"child");
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{child}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let m = Manifest::new(None, Bytes::from(json.clone())).unwrap();
        assert_eq!(m.media_type(), OCI_INDEX);
        assert!(m.is_index());
        assert_eq!(m.digest(), Digest::of(json.as_bytes()));
        let children = m.child_manifests().unwrap();
        assert_eq!(children[0].digest, child);
        assert!(children[0].platform.is_some());
    }

    #[test]
    fn verified_refuses_other_bytes() {
        let err = Manifest::verified(
            Some(OCI_MANIFEST),
            Bytes::from_static(b"{}"),
            &Digest::of(b"x"),
            "r/x",
        )
        .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    }
}
