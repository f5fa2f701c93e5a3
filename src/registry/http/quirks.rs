//! What no response tells about a registry host: the largest chunk it
//! accepts, the largest `tags/list` page, whether its tag listing's
//! `manifest` map stops being complete, and how to allow a refused tag
//! rewrite. One small table keyed on the host name, each entry citing where
//! the behaviour is documented. Everything a response does tell (201 or 202,
//! `OCI-Chunk-Min-Length`, a 416 with `Range`, `OCI-Subject`) is read from
//! the response instead, by the code that receives it.

/// What is known of one registry host beyond what it answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Quirks {
    /// Largest PATCH body the host accepts.
    pub max_chunk: Option<usize>,
    /// Smallest PATCH body but the last the host accepts, when it does not
    /// say so in `OCI-Chunk-Min-Length`.
    pub min_chunk: Option<usize>,
    /// Largest `n` the host accepts (or honours) on `tags/list`.
    pub max_page: Option<usize>,
    /// How to allow rewriting the signature tags where the host refuses it.
    pub immutable_tags_hint: Option<&'static str>,
}

const MIB: usize = 1024 * 1024;

/// What `host` (`host[:port]`, as a promoter manifest names it) is known for.
pub(crate) fn for_host(host: &str) -> Quirks {
    let name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let under = |domain: &str| name == domain || name.ends_with(&format!(".{domain}"));
    if name == "ghcr.io" {
        // A PATCH body over 4 MiB is answered 416 ("exceeds ... 4.00MiB"):
        // oras-project/rust-oci-client#35 and #37.
        return Quirks {
            max_chunk: Some(4 * MIB),
            ..Quirks::default()
        };
    }
    if under("amazonaws.com") && name.contains(".dkr.ecr.") || name == "public.ecr.aws" {
        // Layer parts are 5 MiB at least but for the last one (ECR API
        // reference, UploadLayerPart / service quotas "layer part size");
        // `n` over 1000 on tags/list is an error (ECR user guide, and
        // aws/containers-roadmap#2860); IMMUTABLE repositories refuse
        // rewriting a tag unless an exclusion filter lets it through (ECR
        // user guide, "Image tag mutability").
        return Quirks {
            min_chunk: Some(5 * MIB),
            max_page: Some(1000),
            immutable_tags_hint: Some(
                "set the repository's tag mutability to MUTABLE, or keep IMMUTABLE with \
                 exclusion filters for the signature tags: `aws ecr put-image-tag-mutability \
                 --image-tag-mutability IMMUTABLE_WITH_EXCLUSION --image-tag-mutability-exclusion-filters \
                 filterType=WILDCARD,filter='sha256-*'`",
            ),
            ..Quirks::default()
        };
    }
    if under("azurecr.io") {
        // ACR ignores `n` and answers at most 1000 tags a page
        // (azure.github.io/acr, "Tags pagination").
        return Quirks {
            max_page: Some(1000),
            ..Quirks::default()
        };
    }
    if name == "quay.io" {
        // Quay pages tags at 50 (quay/quay#3071).
        return Quirks {
            max_page: Some(50),
            ..Quirks::default()
        };
    }
    // Artifact Registry / GCR: the `manifest` map of tags/list is incomplete
    // past 10,000 tags (go-containerregistry `pkg/v1/google/list.go`). That
    // one the response tells (tags listed that the map lacks): listing.rs
    // resolves those tags, whatever the host.
    Quirks::default()
}

/// Harbor's immutability rules refuse `.sig` pushes with 412
/// (goharbor/harbor#17332): any host may be a Harbor, so the refusal itself
/// is recognised, and this is what to say about it when the host is unknown.
pub(crate) const HARBOR_HINT: &str = "exclude the signature tags (`sha256-*`) from the \
     repository's tag immutability rules (Harbor: Project > Policy > Tag Immutability; \
     ECR: tag mutability exclusion filters)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts() {
        assert_eq!(for_host("ghcr.io").max_chunk, Some(4 * MIB));
        let ecr = for_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!(ecr.max_page, Some(1000));
        assert_eq!(ecr.min_chunk, Some(5 * MIB));
        assert!(ecr.immutable_tags_hint.unwrap().contains("sha256-*"));
        assert_eq!(for_host("myreg.azurecr.io").max_page, Some(1000));
        assert_eq!(for_host("quay.io").max_page, Some(50));
        assert_eq!(for_host("127.0.0.1:5000"), Quirks::default());
        // A name that merely contains a known one is not it.
        assert_eq!(for_host("notghcr.io"), Quirks::default());
        assert_eq!(for_host("amazonaws.com.example"), Quirks::default());
    }
}
