//! The long description of every rule, with a bad and a good example,
//! for `promoter explain`. Written for this project; the match is
//! exhaustive, so a new [`Code`] does not build without its text.
//! Examples use two placeholder digests (all 1s, all 2s).

use crate::diagnostic::Code;

/// One rule's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    /// What the rule checks and why, a paragraph.
    pub description: &'static str,
    /// What triggers it.
    pub bad: &'static str,
    /// The same, fixed.
    pub good: &'static str,
}

/// The documentation of `code`.
#[must_use]
pub fn of(code: Code) -> RuleDoc {
    match code {
        Code::Io => IO,
        Code::YamlSyntax => YAML_SYNTAX,
        Code::UnknownKey => UNKNOWN_KEY,
        Code::DuplicateKey => DUPLICATE_KEY,
        Code::SourceRegistry => SOURCE_REGISTRY,
        Code::EmptyRegistries => EMPTY_REGISTRIES,
        Code::EmptyName => EMPTY_NAME,
        Code::EmptyDmap => EMPTY_DMAP,
        Code::MissingImagesFile => MISSING_IMAGES_FILE,
        Code::OrphanImagesFile => ORPHAN_IMAGES_FILE,
        Code::UnexpectedFile => UNEXPECTED_FILE,
        Code::DeprecatedKey => DEPRECATED_KEY,
        Code::InvalidDigest => INVALID_DIGEST,
        Code::InvalidTag => INVALID_TAG,
        Code::InvalidImageName => INVALID_IMAGE_NAME,
        Code::InvalidRegistryName => INVALID_REGISTRY_NAME,
        Code::TagConflict => TAG_CONFLICT,
        Code::DuplicateTag => DUPLICATE_TAG,
        Code::DuplicateDigest => DUPLICATE_DIGEST,
        Code::Removal => REMOVAL,
        Code::TagMove => TAG_MOVE,
        Code::BaseSkipped => BASE_SKIPPED,
        Code::RegistryTagMove => REGISTRY_TAG_MOVE,
        Code::SourceMissing => SOURCE_MISSING,
        Code::CopyFailed => COPY_FAILED,
        Code::SourceSignature => SOURCE_SIGNATURE,
        Code::SourceProvenance => SOURCE_PROVENANCE,
        Code::UnsortedImages => UNSORTED_IMAGES,
        Code::UnsortedDigests => UNSORTED_DIGESTS,
        Code::UnquotedDigest => UNQUOTED_DIGEST,
        Code::CrlfLineEndings => CRLF_LINE_ENDINGS,
        Code::NestedManifest => NESTED_MANIFEST,
    }
}

const IO: RuleDoc = RuleDoc {
    description: r#"A file or directory promoter was told to read, or one the thin layout
names, could not be read: it does not exist, permissions forbid it, or it
is not UTF-8 text. Nothing in it is checked or promoted. A missing
`--manifest` file or an unreadable `--thin-manifest-dir` stops the command
with exit code 2 instead; this finding is for files inside a tree."#,
    bad: r#"manifests/foo/promoter-manifest.yaml   (mode 000, or Latin-1 text)"#,
    good: r#"manifests/foo/promoter-manifest.yaml   (readable, UTF-8)"#,
};

const YAML_SYNTAX: RuleDoc = RuleDoc {
    description: r#"The file is not valid YAML, or a value has the wrong shape (a string where
kpromo expects a list, a list where it expects a mapping). kpromo would
refuse the whole file; promoter reports where the parser stopped."#,
    bad: r#"images:
- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": "v1.0""#,
    good: r#"images:
- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const UNKNOWN_KEY: RuleDoc = RuleDoc {
    description: r#"A key the kpromo schema does not have. Usually a misspelling, which kpromo
silently ignores: `dmaps:` instead of `dmap:` promotes nothing."#,
    bad: r#"- name: foo
  dmaps:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const DUPLICATE_KEY: RuleDoc = RuleDoc {
    description: r#"The same key twice in one mapping. YAML parsers keep only the last one, so
the first digest's tags are silently dropped."#,
    bad: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.1"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0", "v1.1"]"#,
};

const SOURCE_REGISTRY: RuleDoc = RuleDoc {
    description: r#"Exactly one registry must be the staging source (`src: true`): images are
copied from it to every other registry. None means nothing to copy from;
two make the source ambiguous."#,
    bad: r#"registries:
- name: gcr.io/k8s-staging-foo
- name: us-docker.pkg.dev/k8s-artifacts-prod/images/foo"#,
    good: r#"registries:
- name: gcr.io/k8s-staging-foo
  src: true
- name: us-docker.pkg.dev/k8s-artifacts-prod/images/foo"#,
};

const EMPTY_REGISTRIES: RuleDoc = RuleDoc {
    description: r#"`registries:` is missing or empty, or every registry is a source: there is
nowhere to promote to."#,
    bad: r#"registries:
- name: gcr.io/k8s-staging-foo
  src: true"#,
    good: r#"registries:
- name: gcr.io/k8s-staging-foo
  src: true
- name: us-docker.pkg.dev/k8s-artifacts-prod/images/foo"#,
};

const EMPTY_NAME: RuleDoc = RuleDoc {
    description: r#"An image or registry entry without a `name` (or with an empty one): there
is no repository to read or write."#,
    bad: r#"- name: ""
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const EMPTY_DMAP: RuleDoc = RuleDoc {
    description: r#"An image entry whose `dmap` (digest to tags) is missing, null or empty
promotes nothing; it is usually a leftover or a mistake."#,
    bad: r#"- name: foo
  dmap: {}"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const MISSING_IMAGES_FILE: RuleDoc = RuleDoc {
    description: r#"A thin-manifest project has `manifests/<project>/promoter-manifest.yaml`
but no `images/<project>/images.yaml`: the project promotes nothing."#,
    bad: r#"manifests/foo/promoter-manifest.yaml
images/                                (no foo/)"#,
    good: r#"manifests/foo/promoter-manifest.yaml
images/foo/images.yaml"#,
};

const ORPHAN_IMAGES_FILE: RuleDoc = RuleDoc {
    description: r#"A thin-manifest project has `images/<project>/images.yaml` but no
manifest naming its registries: its images are never promoted. Often a
typo in one of the two directory names."#,
    bad: r#"manifests/fooo/promoter-manifest.yaml
images/foo/images.yaml"#,
    good: r#"manifests/foo/promoter-manifest.yaml
images/foo/images.yaml"#,
};

const UNEXPECTED_FILE: RuleDoc = RuleDoc {
    description: r#"A YAML file the thin layout does not read (anything but
`manifests/<project>/promoter-manifest.yaml` and
`images/<project>/images.yaml`). Whatever it lists is never promoted."#,
    bad: r#"images/foo/images-extra.yaml"#,
    good: r#"images/foo/images.yaml                 (the entries merged into it)"#,
};

const DEPRECATED_KEY: RuleDoc = RuleDoc {
    description: r#"`imagesPath` in a thin manifest is deprecated: kpromo and promoter always
read `images/<project>/images.yaml` and ignore it."#,
    bad: r#"registries:
- name: gcr.io/k8s-staging-foo
  src: true
- name: us-docker.pkg.dev/k8s-artifacts-prod/images/foo
imagesPath: images/foo"#,
    good: r#"registries:
- name: gcr.io/k8s-staging-foo
  src: true
- name: us-docker.pkg.dev/k8s-artifacts-prod/images/foo"#,
};

const INVALID_DIGEST: RuleDoc = RuleDoc {
    description: r#"A digest must be `sha256:` followed by 64 lowercase hexadecimal digits:
promotion is by digest, and anything else names no image."#,
    bad: r#"- name: foo
  dmap:
    "sha256:ABC": ["v1.0"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const INVALID_TAG: RuleDoc = RuleDoc {
    description: r#"A tag must match `^\w[\w.-]{0,127}$` (the OCI distribution grammar):
letters, digits, `_`, `.` and `-`, at most 128 characters, not starting with
`.` or `-`. Registries refuse any other."#,
    bad: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0+build1"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0_build1"]"#,
};

const INVALID_IMAGE_NAME: RuleDoc = RuleDoc {
    description: r#"An image name must follow the OCI distribution grammar: lowercase
components of letters and digits, separated by `.`, `_`, `__`, `-` or `/`."#,
    bad: r#"- name: Foo/Bar
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
    good: r#"- name: foo/bar
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const INVALID_REGISTRY_NAME: RuleDoc = RuleDoc {
    description: r#"A registry name must be `host[:port][/path]`, without a scheme, a tag or a
trailing slash."#,
    bad: r#"registries:
- name: https://gcr.io/k8s-staging-foo/
  src: true"#,
    good: r#"registries:
- name: gcr.io/k8s-staging-foo
  src: true"#,
};

const TAG_CONFLICT: RuleDoc = RuleDoc {
    description: r#"One destination tag claimed by two different digests, anywhere in the tree
(two entries of one project, or two projects writing the same repository).
Which digest the tag gets would depend on the order of promotion."#,
    bad: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.0"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.1"]"#,
};

const DUPLICATE_TAG: RuleDoc = RuleDoc {
    description: r#"The same tag twice in one tag list: harmless, but a sign of a copy and
paste that may have meant another tag."#,
    bad: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0", "v1.0"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0", "latest"]"#,
};

const DUPLICATE_DIGEST: RuleDoc = RuleDoc {
    description: r#"The same digest listed under the same image name in two entries: its tags
are split over two places; keep them in one list."#,
    bad: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["latest"]"#,
    good: r#"- name: foo
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0", "latest"]"#,
};

const REMOVAL: RuleDoc = RuleDoc {
    description: r#"A digest or tag that the base revision lists is gone. Promotion never
deletes from a registry, so the removal changes nothing there, and it hides
what was published. Pass `--allow-removal` when it is intended (e.g. a
cleanup of the manifests only)."#,
    bad: r#"# base
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
# head
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": []"#,
    good: r#"# base
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
# head
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const TAG_MOVE: RuleDoc = RuleDoc {
    description: r#"A tag now points at a different digest than in the base revision.
Published tags are immutable for their users; promoter never moves a tag in
a registry, so the change could not be promoted anyway. Publish a new tag."#,
    bad: r#"# base
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
# head
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.0"]"#,
    good: r#"# base
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
# head
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.0.1"]"#,
};

const BASE_SKIPPED: RuleDoc = RuleDoc {
    description: r#"The comparison with the base revision (tag moves, removals) did not run,
because some head files could not be read: every entry in them would have
looked removed. Fix the errors reported above and check again."#,
    bad: r#"head: images/foo/images.yaml is not valid YAML"#,
    good: r#"head: every file parses; the comparison runs"#,
};

const REGISTRY_TAG_MOVE: RuleDoc = RuleDoc {
    description: r#"A destination tag already points at another digest than the manifest
says. Promoter never moves or overwrites a tag in a destination: the tag is
left alone and reported. Give the new image a new tag, or fix the manifest
to name the digest the registry holds."#,
    bad: r#"manifest:     "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.0"]
destination:  foo:v1.0 -> sha256:1111111111111111111111111111111111111111111111111111111111111111"#,
    good: r#"manifest:     "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.0.1"]
destination:  foo:v1.0 -> sha256:1111111111111111111111111111111111111111111111111111111111111111"#,
};

const SOURCE_MISSING: RuleDoc = RuleDoc {
    description: r#"The staging registry does not hold the digest to promote: it was never
pushed there, was pushed to another repository, or was deleted. Nothing is
copied for it."#,
    bad: r#"manifest:  foo "sha256:1111111111111111111111111111111111111111111111111111111111111111"
staging:   gcr.io/k8s-staging-foo/foo has no sha256:1111111111111111111111111111111111111111111111111111111111111111"#,
    good: r#"staging:   crane push ... gcr.io/k8s-staging-foo/foo   (then the manifest names its digest)"#,
};

const COPY_FAILED: RuleDoc = RuleDoc {
    description: r#"Copying an image to a destination failed after retries: the message names
the registry, repository and status. Other images and destinations go on;
a new run resumes, as it skips what is in place."#,
    bad: r#"error[P103]: copying foo@sha256:... to us-docker.pkg.dev/...: 403 Forbidden"#,
    good: r#"grant the promoter's identity write access to the destination, then run again"#,
};

const SOURCE_SIGNATURE: RuleDoc = RuleDoc {
    description: r#"The staging image's signature does not verify, or does not match the
expected identity and issuer (`--certificate-identity*`,
`--certificate-oidc-issuer*`); with `--require-signed-source`, a missing
signature too. The image is neither promoted with a signature nor
replicated."#,
    bad: r#"staging signature by https://github.com/someone-else/...  (expected .../k8s-staging-foo/...)"#,
    good: r#"staging signature by the identity --certificate-identity names, logged in Rekor"#,
};

const SOURCE_PROVENANCE: RuleDoc = RuleDoc {
    description: r#"The staging image's SLSA provenance does not verify, or names a builder
that `--allowed-builder` does not allow; with `--require-provenance`, a
missing provenance too. The image is not promoted."#,
    bad: r#"runDetails.builder.id: https://example.com/laptop   (not allowed)"#,
    good: r#"runDetails.builder.id: https://github.com/actions/runner/github-hosted"#,
};

const UNSORTED_IMAGES: RuleDoc = RuleDoc {
    description: r#"Image entries are not sorted by name. Sorted files give small, readable
diffs and make duplicates easy to see."#,
    bad: r#"- name: zeta
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1"]
- name: alpha
  dmap:
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1"]"#,
    good: r#"- name: alpha
  dmap:
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1"]
- name: zeta
  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1"]"#,
};

const UNSORTED_DIGESTS: RuleDoc = RuleDoc {
    description: r#"Digests in a dmap are not sorted. kpromo's own formatter sorts them; sorted
keys keep diffs small."#,
    bad: r#"  dmap:
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.1"]
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
    good: r#"  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
    "sha256:2222222222222222222222222222222222222222222222222222222222222222": ["v1.1"]"#,
};

const UNQUOTED_DIGEST: RuleDoc = RuleDoc {
    description: r#"A digest key without quotes. kpromo writes them quoted, and an unquoted
`sha256:...` relies on YAML reading `key: value` at the first `: `."#,
    bad: r#"  dmap:
    sha256:1111111111111111111111111111111111111111111111111111111111111111: ["v1.0"]"#,
    good: r#"  dmap:
    "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]"#,
};

const CRLF_LINE_ENDINGS: RuleDoc = RuleDoc {
    description: r#"The file uses Windows (CRLF) line endings; the manifests use LF. Mixed
endings produce whole-file diffs."#,
    bad: r#"- name: foo\r\n"#,
    good: r#"- name: foo\n"#,
};

const NESTED_MANIFEST: RuleDoc = RuleDoc {
    description: r#"A `promoter-manifest.yaml` below `manifests/<project>/` (e.g.
`manifests/foo/bar/promoter-manifest.yaml`). kpromo refuses such a tree
(ParseThinManifestsFromDir), and no image in it would ever be promoted.
Each project is one directory directly under `manifests/`."#,
    bad: r#"manifests/foo/bar/promoter-manifest.yaml
images/foo/bar/images.yaml"#,
    good: r#"manifests/foo-bar/promoter-manifest.yaml
images/foo-bar/images.yaml"#,
};
