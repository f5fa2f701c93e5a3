//! What a repository's tag listing already says about signatures (issue
//! 20, parts 2 and 3): `tags/list` names cosign's `sha256-<hex>.sig` tag
//! and the OCI referrers tag schema's `sha256-<hex>` tag of every signed
//! digest, so presence can be decided from the listing the inventory has
//! already made, without a request per destination image. Pure: no I/O;
//! the callers (the sign phase, `verify`) hand in the tags.

use std::collections::BTreeMap;

use crate::registry::Digest;

/// The signature tags one repository lists for one digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// `sha256-<hex>.sig`: a cosign legacy signature.
    pub signature: bool,
    /// `sha256-<hex>`: the referrers tag schema's index (bundles,
    /// attestations) on registries without the referrers API.
    pub referrers: bool,
}

/// The signature tags among `tags`, by the digest they name. Other tags
/// (and malformed `sha256-` ones) are ignored.
pub fn signature_tags<'t>(tags: impl IntoIterator<Item = &'t str>) -> BTreeMap<Digest, Listed> {
    let mut out: BTreeMap<Digest, Listed> = BTreeMap::new();
    for tag in tags {
        let Some(rest) = tag.strip_prefix("sha256-") else {
            continue;
        };
        let (hex, signature) = match rest.strip_suffix(".sig") {
            Some(hex) => (hex, true),
            None => (rest, false),
        };
        let Ok(digest) = format!("sha256:{hex}").parse::<Digest>() else {
            continue;
        };
        let entry = out.entry(digest).or_default();
        if signature {
            entry.signature = true;
        } else {
            entry.referrers = true;
        }
    }
    out
}

impl Listed {
    /// Whether the tag of the wanted format is there: `.sig` when `legacy`
    /// signatures are wanted, else the referrers tag (which stands for the
    /// bundle where the registry has no referrers API).
    pub fn has(&self, legacy: bool) -> bool {
        if legacy {
            self.signature
        } else {
            self.referrers
        }
    }
}

/// What one digest needs so that every destination carries its
/// signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needed {
    /// Every destination lists its signature tag: nothing to read or write.
    Nothing,
    /// No destination has it: sign (on the first destination), then
    /// replicate to the others.
    Sign,
    /// Signed somewhere: read it once from `donor` (an index into the
    /// destinations) and write it to `to`.
    Replicate { donor: usize, to: Vec<usize> },
}

/// Decide for one digest from whether each of its destinations (in the
/// order of the manifests) lists its signature tag ([`Listed::has`]).
pub fn needed(signed: &[bool]) -> Needed {
    let missing: Vec<usize> = (0..signed.len()).filter(|&i| !signed[i]).collect();
    match signed.iter().position(|&s| s) {
        _ if missing.is_empty() => Needed::Nothing,
        None => Needed::Sign,
        Some(donor) => Needed::Replicate { donor, to: missing },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_signature_tags_from_a_listing() {
        let sig = format!("sha256-{HEX}.sig");
        let referrers = format!("sha256-{HEX}");
        let tags = [
            "v1.0",
            sig.as_str(),
            referrers.as_str(),
            "sha256-nothex.sig",
            "sha256-",
        ];
        let found = signature_tags(tags);
        let digest: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[&digest],
            Listed {
                signature: true,
                referrers: true
            }
        );
    }

    #[test]
    fn decides_sign_replicate_or_nothing() {
        let signed = Listed {
            signature: true,
            referrers: false,
        };
        assert!(signed.has(true));
        // Bundles only: the referrers tag is what counts.
        assert!(!signed.has(false));
        assert_eq!(needed(&[true, true]), Needed::Nothing);
        assert_eq!(needed(&[false, false]), Needed::Sign);
        assert_eq!(
            needed(&[false, true, false]),
            Needed::Replicate {
                donor: 1,
                to: vec![0, 2]
            }
        );
        assert_eq!(needed(&[]), Needed::Nothing);
    }
}
